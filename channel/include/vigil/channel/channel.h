// One interface over the three signalling methods, in the two roles of a replica group:
//   ReplicaChannel: at an externalization point, send the event record and wait for the verdict;
//   VoterChannel:   take the next event, decide, reply with the verdict.
// Implementations: polling (signal rings, busy-polling), notify (SEND + sleeping receiver) and
// rpc (one synchronous gRPC call per event). The same protocol tests run against all three.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "vigil/channel/notify.h"
#include "vigil/channel/record.h"
#include "vigil/channel/ring.h"

namespace vigil::channel {

class ReplicaChannel {
 public:
  virtual ~ReplicaChannel() = default;
  virtual std::string_view method() const = 0;
  virtual size_t max_payload() const = 0;
  // Sends the event and waits (at most `timeout`) for the verdict, whose payload is copied into
  // `buf` (at least max_payload() bytes).
  virtual Result<Record> Signal(uint16_t kind, std::span<const std::byte> payload,
                                std::span<std::byte> buf, std::chrono::nanoseconds timeout) = 0;
};

class VoterChannel {
 public:
  virtual ~VoterChannel() = default;
  virtual std::string_view method() const = 0;
  virtual size_t max_payload() const = 0;
  // The next event (payload copied into `buf`), or kDeadlineExceeded after `timeout`.
  virtual Result<Record> NextEvent(std::span<std::byte> buf, std::chrono::nanoseconds timeout) = 0;
  // Non-blocking: true and `out` set if an event was there. One thread can poll many channels
  // this way. Default: NextEvent with a zero timeout.
  virtual Result<bool> TryNextEvent(std::span<std::byte> buf, Record& out);
  // The verdict for the event NextEvent returned last.
  virtual Status Reply(uint16_t kind, std::span<const std::byte> payload,
                       std::chrono::nanoseconds timeout) = 0;
  // Non-blocking Reply: false when the verdict cannot go out yet (no room toward the replica);
  // the caller tries again. One thread can answer many channels this way. Default: Reply with a
  // zero timeout.
  virtual Result<bool> TryReply(uint16_t kind, std::span<const std::byte> payload);
};

// polling: the replica writes events into the voter's ring and polls its own ring for verdicts.
// Rings and connection must already be attached (RingWriter::Attach / RingReader::Attach).
std::unique_ptr<ReplicaChannel> PollingReplica(RingWriter& events, RingReader& verdicts);
std::unique_ptr<VoterChannel> PollingVoter(RingReader& events, RingWriter& verdicts);

// notify: both directions over one attached NotifyEndpoint per side. A raised `cancel` ends the
// replica's wait for a verdict kCancelGrace later (kAborted), as the polling ring's.
std::unique_ptr<ReplicaChannel> NotifyReplica(NotifyEndpoint& endpoint,
                                              const std::atomic<bool>* cancel = nullptr);
std::unique_ptr<VoterChannel> NotifyVoter(NotifyEndpoint& endpoint);

// rpc: the voter serves vigil.signal.v1.Voter on `listen` ("host:port", port 0 = any; the bound
// port is reported by RpcVoterPort); the replica calls it at `target`. With a `token` (a replica
// incarnation's nonce) the voter takes events only from calls that carry it: any other call is
// PERMISSION_DENIED, logged, and changes nothing (the expected sequence stays). A raised `cancel`
// cancels the replica's call in flight kCancelGrace later (kAborted).
Result<std::unique_ptr<VoterChannel>> RpcVoter(const std::string& listen, size_t max_payload,
                                               const std::string& token = {});
int RpcVoterPort(const VoterChannel& voter);
Result<std::unique_ptr<ReplicaChannel>> RpcReplica(const std::string& target, size_t max_payload,
                                                   const std::string& token = {},
                                                   const std::atomic<bool>* cancel = nullptr);

}  // namespace vigil::channel
