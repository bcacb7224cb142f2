// The messages between vigil-run and its executor process (vigil-executor, executor_process.h)
// over a private stream socket. Each message is a fixed header and then the bytes it announces:
//
//   request  Request, then `record_bytes` of the call's record and `aside_bytes` of the bytes
//            fetched aside (kExecute only; the other operations carry nothing)
//   reply    Reply, then `message_bytes` of an error message (code != 0) or of the executor's
//            description of its confinement (the hello), then `result_bytes` of result bytes
//
// The executor is the less privileged side, so vigil-run checks every reply header before reading
// what it announces (a reply may never announce more result bytes than the request had room for);
// the executor checks requests the same way. Both ends are x86_64 processes of the same build:
// the headers travel in host byte order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>

#include "vigil/common/status.h"

namespace vigil::run::wire {

inline constexpr uint32_t kRequestMagic = 0x58455152;  // "RQEX"
inline constexpr uint32_t kReplyMagic = 0x58455052;    // "RPEX"
// Bounds on what a header may announce.
inline constexpr uint64_t kMaxRecordBytes = 1 << 20;
inline constexpr uint64_t kMaxDataBytes = uint64_t{1} << 32;  // aside and result bytes
inline constexpr uint64_t kMaxMessageBytes = 4096;
inline constexpr uint64_t kMaxLocalCalls = uint64_t{1} << 40;

enum class Op : uint32_t { kExecute = 1, kCheckpoint = 2, kRollback = 3, kFinish = 4 };

struct Request {
  uint32_t magic = kRequestMagic;
  uint32_t op = 0;
  uint64_t nr = 0;            // kExecute: the system call number
  uint64_t piece = 0;         // kExecute: which piece of a call sent in pieces
  uint64_t record_bytes = 0;  // kExecute
  uint64_t aside_bytes = 0;   // kExecute
  uint64_t result_room = 0;   // kExecute: the most result bytes the reply may carry
  uint64_t completed = 0;     // kFinish: 1 when the job completed (its changes are kept)
  // Any operation: calls vigil-run decided itself since the last request (every replica executes
  // them: HostExecutor::DecideLocal), counted by the executor before it acts.
  uint64_t local_calls = 0;
};

struct Reply {
  uint32_t magic = kReplyMagic;
  int32_t code = 0;  // a StatusCode; 0 is OK
  uint64_t message_bytes = 0;
  int64_t value = 0;  // kExecute: the call's result (-errno when it failed)
  uint64_t result_bytes = 0;
  // After every operation: what the executor did so far.
  uint64_t calls = 0;            // calls executed or decided, in every execution
  uint64_t refused = 0;          // accesses the sandbox refused
  uint64_t journal_entries = 0;  // file-system entries the job changed (undo journal)
};

static_assert(sizeof(Request) == 64 && sizeof(Reply) == 56, "fixed wire headers");

// The header at the start of `bytes`, checked: magic, a known operation, sizes within bounds and
// zero where the operation carries nothing. kDataLoss names the field and its value.
Result<Request> DecodeRequest(std::span<const std::byte> bytes);
// The same for a reply to a request that left room for `result_room` bytes.
Result<Reply> DecodeReply(std::span<const std::byte> bytes, uint64_t result_room);
// The Status a reply carries (its message read separately).
Status ReplyStatus(const Reply& r, std::string message);

// The socket I/O of both ends. SendAll: every byte of at most four `parts`, in order, through as
// few sendmsg calls as the kernel takes (MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE).
// ReadAll: exactly `dst.size()` bytes; kAborted at the end of the stream; `timeout_ms` < 0 waits
// as long as it takes, else kDeadlineExceeded when nothing arrives for that long.
Status SendAll(int fd, std::initializer_list<std::span<const std::byte>> parts);
Status ReadAll(int fd, std::span<std::byte> dst, int timeout_ms = -1);

}  // namespace vigil::run::wire
