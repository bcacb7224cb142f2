// What a replica and its voter say to each other over a signalling channel (channel.h carries the
// records; this is their payload).
//
// Replica -> voter, one event per externalization point:
//   payload = EventHeader (40 bytes) + data
//   kJoin        a fresh replica incarnation asks to be given the group's state
//   kInput       read input: arg0 = input offset, arg1 = most bytes wanted
//   kOutput      write output: arg0 = output offset, data = the bytes
//   kCheckpoint  the state after a step; arg0 = checkpoint number
//   kExit        the program finished; arg0 = exit code
//   kSync        a declared externalization point without I/O (e.g. a system call's
//                arguments, or a benchmark probe); data = the arguments, voted on
//   kSyscall     a system call of an unmodified program (vigil-run): arg0 = call number,
//                arg1 = piece (a large write goes in several events), data = SyscallRecord
//                (run/syscalls.h): the arguments and the bytes the call carries. The
//                voter executes it once (or lets every replica execute it) and answers with
//                the result; bytes the call returns are RDMA-written into the input buffer
// Voter -> replica, one verdict per event:
//   payload = VerdictHeader (16 bytes) + data
//   kProceed     agreed: go on (kInput: the voter has RDMA-written the input into the replica's
//                input buffer first; arg = its length, 0 at end of input)
//                (kSyscall: arg = the call's result as int64, -errno on failure; data = 8
//                bytes, how many result bytes were written into the input buffer)
//   kRepaired    the voter overwrote this replica's state with a healthy replica's (RDMA WRITE);
//                otherwise as kProceed
//   kRollback    restore the last agreed checkpoint and re-execute from there;
//                arg = the checkpoint's event sequence
//   kAbort       the group failed; data = the reason
//
// Every field that arrives is checked before use: kind, sizes, group, replica and sequence.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "vigil/channel/record.h"
#include "vigil/common/status.h"

namespace vigil::replica {

enum class EventKind : uint16_t {
  kJoin = 1,
  kInput = 2,
  kOutput = 3,
  kCheckpoint = 4,
  kExit = 5,
  kSync = 6,
  kSyscall = 7,
};
enum class VerdictKind : uint16_t {
  kProceed = 16,
  kRepaired = 17,
  kRollback = 18,
  kAbort = 19,
};

std::string_view EventKindName(EventKind k);
std::string_view VerdictKindName(VerdictKind k);

struct EventHeader {
  uint32_t group = 0;
  uint16_t replica = 0;
  uint16_t reserved = 0;
  uint64_t event_seq = 0;     // the program's externalization point count (restored on rollback)
  uint64_t state_digest = 0;  // StateDigest of the state region (state_digest.h)
  uint64_t arg0 = 0;
  uint64_t arg1 = 0;
};
inline constexpr size_t kEventHeaderBytes = 40;
static_assert(sizeof(EventHeader) == kEventHeaderBytes);

struct VerdictHeader {
  uint64_t event_seq = 0;  // the event this answers
  uint64_t arg = 0;
};
inline constexpr size_t kVerdictHeaderBytes = 16;
static_assert(sizeof(VerdictHeader) == kVerdictHeaderBytes);

struct Event {
  EventKind kind = EventKind::kJoin;
  EventHeader header;
  std::span<const std::byte> data;  // points into the record's payload
};

struct Verdict {
  VerdictKind kind = VerdictKind::kProceed;
  VerdictHeader header;
  std::span<const std::byte> data;
};

// Writes header + data into `dst`; returns the bytes used, or an error if `dst` is too small.
Result<size_t> EncodeEvent(std::span<std::byte> dst, const EventHeader& h,
                           std::span<const std::byte> data);
Result<size_t> EncodeVerdict(std::span<std::byte> dst, const VerdictHeader& h,
                             std::span<const std::byte> data);

// Validates a record as an event from replica `replica` of `group`. Errors (kDataLoss) name the
// replica and what is wrong.
Result<Event> DecodeEvent(const channel::Record& r, uint32_t group, uint16_t replica);
// Validates a record as the verdict for event `event_seq` (an abort is taken for any event).
Result<Verdict> DecodeVerdict(const channel::Record& r, uint64_t event_seq);

}  // namespace vigil::replica
