// A Connection wrapper that injects faults on command, for protocol tests (works over the fake
// and the verbs transport alike). Rules are added at any time from any thread; each rule matches
// operations by kind (and, optionally, payload size), lets `skip` of them pass, then applies its
// action to the next `count`.
//
//   kFail     the post returns kUnavailable ("injected fault") and nothing is sent
//   kDrop     nothing is sent, but the post succeeds and, if signaled, a successful completion is
//             reported: the sender believes it was delivered (a lost message)
//   kDelay    the posting thread sleeps `delay` before the operation is forwarded
//   kCorrupt  the payload (WRITE/SEND only) is copied to a scratch buffer, byte
//             `corrupt_offset` (modulo the payload's length) is XORed with `corrupt_mask`, and
//             the copy is sent
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "vigil/common/thread_annotations.h"
#include "vigil/transport/transport.h"

namespace vigil::transport {

enum OpMask : uint32_t {
  kOpWrite = 1u << 0,  // RDMA WRITE and WRITE_WITH_IMM
  kOpRead = 1u << 1,
  kOpSend = 1u << 2,
  kOpRecv = 1u << 3,
  kOpAll = kOpWrite | kOpRead | kOpSend | kOpRecv,
};

enum class FaultAction { kFail, kDrop, kDelay, kCorrupt };

struct FaultRule {
  uint32_t ops = kOpAll;
  FaultAction action = FaultAction::kFail;
  uint32_t skip = 0;   // matching operations to let through first
  uint32_t count = 1;  // matching operations to apply the action to
  // Only operations moving at most this many bytes match (8: the polling ring's credit writes).
  size_t max_bytes = SIZE_MAX;
  std::chrono::microseconds delay{0};
  size_t corrupt_offset = 0;
  uint8_t corrupt_mask = 0x01;
};

class FaultInjector {
 public:
  Status Add(const FaultRule& rule);
  void Clear();
  // How many operations each action was applied to so far.
  uint64_t injected(FaultAction action) const;
  // How many operations of kind `op` (one OpMask bit) were posted so far, with or without a rule.
  uint64_t posted(OpMask op) const;

  // Decides for one operation of kind `op` (an OpMask bit) moving `bytes`. Returns the rule to
  // apply, if any.
  std::optional<FaultRule> Next(uint32_t op, size_t bytes);

 private:
  struct Live {
    FaultRule rule;
    uint32_t seen = 0;
    uint32_t applied = 0;
  };
  mutable Mutex mu_;
  std::vector<Live> rules_ VIGIL_GUARDED_BY(mu_);
  std::atomic<uint64_t> counts_[4] = {};
  std::atomic<uint64_t> posted_[4] = {};  // by OpMask bit
};

class FaultInjectingConnection final : public Connection {
 public:
  // `transport` registers the scratch buffer used for corrupted payloads (up to scratch_bytes).
  static Result<std::unique_ptr<FaultInjectingConnection>> Wrap(
      std::unique_ptr<Connection> inner, std::shared_ptr<FaultInjector> injector,
      Transport& transport, size_t scratch_bytes = 64 * 1024);
  // The same for a connection created in `domain` (the scratch buffer must be in its domain).
  static Result<std::unique_ptr<FaultInjectingConnection>> Wrap(
      std::unique_ptr<Connection> inner, std::shared_ptr<FaultInjector> injector,
      ProtectionDomain& domain, size_t scratch_bytes = 64 * 1024);

  const std::string& name() const override { return inner_->name(); }
  Endpoint local_endpoint() const override { return inner_->local_endpoint(); }
  Status Connect(const Endpoint& peer) override { return inner_->Connect(peer); }
  uint32_t max_inline() const override { return inner_->max_inline(); }

  Status PostWrite(const LocalSlice& src, RemoteAddr dst, uint64_t wr_id,
                   const SendFlags& flags = {}) override;
  Status PostRead(const LocalSlice& dst, RemoteAddr src, uint64_t wr_id) override;
  Status PostSend(const LocalSlice& src, uint64_t wr_id, const SendFlags& flags = {}) override;
  Status PostRecv(const LocalSlice& dst, uint64_t wr_id) override;
  size_t PollSend(std::span<Completion> out) override;
  size_t PollRecv(std::span<Completion> out) override { return inner_->PollRecv(out); }
  Result<Completion> WaitSend(std::chrono::nanoseconds timeout) override;
  Result<Completion> WaitRecv(std::chrono::nanoseconds timeout) override {
    return inner_->WaitRecv(timeout);
  }

  Connection& inner() { return *inner_; }

 private:
  FaultInjectingConnection() = default;
  // Applies the rule for one outbound operation. Sets `forward` false when the operation must
  // not reach the inner connection; may redirect `src` to the corrupted scratch copy.
  Status Apply(uint32_t op, LocalSlice& src, uint64_t wr_id, bool signaled, Opcode opcode,
               bool& forward);

  static std::unique_ptr<FaultInjectingConnection> Make(std::unique_ptr<Connection> inner,
                                                        std::shared_ptr<FaultInjector> injector,
                                                        RegisteredBuffer scratch);

  std::unique_ptr<Connection> inner_;
  std::shared_ptr<FaultInjector> injector_;
  std::unique_ptr<RegisteredBuffer> scratch_;
  std::deque<Completion> synthesized_;  // completions of dropped operations
};

// A transport whose every new connection is a FaultInjectingConnection sharing `injector`, for
// code that creates its connections itself (Dial, the replica runtime).
class FaultInjectingTransport final : public Transport {
 public:
  FaultInjectingTransport(Transport& inner, std::shared_ptr<FaultInjector> injector)
      : inner_(inner), injector_(std::move(injector)) {}
  std::string_view kind() const override { return inner_.kind(); }
  std::string Describe() const override { return inner_.Describe() + " (fault-injecting)"; }
  Result<std::unique_ptr<MemoryRegion>> Register(void* addr, size_t size,
                                                 uint32_t access) override {
    return inner_.Register(addr, size, access);
  }
  Result<std::unique_ptr<Connection>> CreateConnection(const ConnectionOptions& opts) override;
  // Connections of the new domain are fault-injecting too.
  Result<std::unique_ptr<ProtectionDomain>> CreateDomain() override;

 private:
  Transport& inner_;
  std::shared_ptr<FaultInjector> injector_;
};

}  // namespace vigil::transport
