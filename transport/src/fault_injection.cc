#include "vigil/transport/fault_injection.h"

#include <fmt/format.h>

#include <bit>
#include <cstring>
#include <thread>

#include "vigil/common/logging.h"

namespace vigil::transport {

Status FaultInjector::Add(const FaultRule& rule) {
  if (rule.action == FaultAction::kCorrupt && (rule.ops & (kOpRead | kOpRecv))) {
    return InvalidArgument("corrupt faults apply to outbound payloads only (kOpWrite, kOpSend)");
  }
  if (rule.action == FaultAction::kCorrupt && rule.corrupt_mask == 0) {
    return InvalidArgument("corrupt fault with corrupt_mask 0 would change nothing");
  }
  if (rule.count == 0) return InvalidArgument("fault rule with count 0 would never apply");
  MutexLock lock(mu_);
  rules_.push_back({rule});
  return Status::Ok();
}

void FaultInjector::Clear() {
  MutexLock lock(mu_);
  rules_.clear();
}

uint64_t FaultInjector::injected(FaultAction action) const {
  return counts_[static_cast<int>(action)].load(std::memory_order_relaxed);
}

uint64_t FaultInjector::posted(OpMask op) const {
  return posted_[std::countr_zero(static_cast<uint32_t>(op)) & 3].load(std::memory_order_relaxed);
}

std::optional<FaultRule> FaultInjector::Next(uint32_t op, size_t bytes) {
  posted_[std::countr_zero(op) & 3].fetch_add(1, std::memory_order_relaxed);
  MutexLock lock(mu_);
  for (auto& live : rules_) {
    if ((live.rule.ops & op) == 0 || live.applied >= live.rule.count) continue;
    if (bytes > live.rule.max_bytes) continue;
    if (live.seen++ < live.rule.skip) continue;
    live.applied++;
    counts_[static_cast<int>(live.rule.action)].fetch_add(1, std::memory_order_relaxed);
    return live.rule;
  }
  return std::nullopt;
}

Result<std::unique_ptr<FaultInjectingConnection>> FaultInjectingConnection::Wrap(
    std::unique_ptr<Connection> inner, std::shared_ptr<FaultInjector> injector,
    Transport& transport, size_t scratch_bytes) {
  VIGIL_ASSIGN_OR_RETURN(auto scratch,
                         RegisteredBuffer::Allocate(transport, scratch_bytes, kLocalWrite));
  return Make(std::move(inner), std::move(injector), std::move(scratch));
}

Result<std::unique_ptr<FaultInjectingConnection>> FaultInjectingConnection::Wrap(
    std::unique_ptr<Connection> inner, std::shared_ptr<FaultInjector> injector,
    ProtectionDomain& domain, size_t scratch_bytes) {
  VIGIL_ASSIGN_OR_RETURN(auto scratch,
                         RegisteredBuffer::Allocate(domain, scratch_bytes, kLocalWrite));
  return Make(std::move(inner), std::move(injector), std::move(scratch));
}

std::unique_ptr<FaultInjectingConnection> FaultInjectingConnection::Make(
    std::unique_ptr<Connection> inner, std::shared_ptr<FaultInjector> injector,
    RegisteredBuffer scratch) {
  std::unique_ptr<FaultInjectingConnection> c(new FaultInjectingConnection());
  c->scratch_ = std::make_unique<RegisteredBuffer>(std::move(scratch));
  c->inner_ = std::move(inner);
  c->injector_ = std::move(injector);
  return c;
}

Status FaultInjectingConnection::Apply(uint32_t op, LocalSlice& src, uint64_t wr_id, bool signaled,
                                       Opcode opcode, bool& forward) {
  forward = true;
  auto rule = injector_->Next(op, src.length);
  if (!rule) return Status::Ok();
  auto logger = log::Get("fault");
  switch (rule->action) {
    case FaultAction::kFail:
      logger->info("{}: injected failure of {} wr_id={}", name(), OpcodeName(opcode), wr_id);
      forward = false;
      return Unavailable(
          fmt::format("{}: injected fault: {} wr_id={} failed", name(), OpcodeName(opcode), wr_id));
    case FaultAction::kDrop:
      logger->info("{}: injected drop of {} wr_id={}", name(), OpcodeName(opcode), wr_id);
      forward = false;
      if (signaled) {
        Completion c;
        c.wr_id = wr_id;
        c.opcode = opcode;
        synthesized_.push_back(c);
      }
      return Status::Ok();
    case FaultAction::kDelay:
      logger->info("{}: injected delay of {} us before {} wr_id={}", name(), rule->delay.count(),
                   OpcodeName(opcode), wr_id);
      std::this_thread::sleep_for(rule->delay);
      return Status::Ok();
    case FaultAction::kCorrupt: {
      if (src.mr == nullptr || src.length > scratch_->size() || src.offset > src.mr->size() ||
          src.length > src.mr->size() - src.offset) {
        return InvalidArgument(
            fmt::format("{}: cannot corrupt a {}-byte payload (scratch holds {})", name(),
                        src.length, scratch_->size()));
      }
      std::memcpy(scratch_->data(), src.mr->data() + src.offset, src.length);
      const size_t at = src.length == 0 ? 0 : rule->corrupt_offset % src.length;
      if (src.length > 0) scratch_->data()[at] ^= std::byte{rule->corrupt_mask};
      logger->info("{}: injected corruption of {} wr_id={} (byte {} ^= {:#04x})", name(),
                   OpcodeName(opcode), wr_id, at, rule->corrupt_mask);
      src = scratch_->mr().Slice(0, src.length);
      return Status::Ok();
    }
  }
  return Status::Ok();
}

Status FaultInjectingConnection::PostWrite(const LocalSlice& src, RemoteAddr dst, uint64_t wr_id,
                                           const SendFlags& flags) {
  LocalSlice s = src;
  bool forward;
  VIGIL_RETURN_IF_ERROR(Apply(kOpWrite, s, wr_id, flags.signaled,
                              flags.imm ? Opcode::kWriteWithImm : Opcode::kWrite, forward));
  return forward ? inner_->PostWrite(s, dst, wr_id, flags) : Status::Ok();
}

Status FaultInjectingConnection::PostRead(const LocalSlice& dst, RemoteAddr src, uint64_t wr_id) {
  LocalSlice s = dst;
  bool forward;
  VIGIL_RETURN_IF_ERROR(Apply(kOpRead, s, wr_id, true, Opcode::kRead, forward));
  return forward ? inner_->PostRead(dst, src, wr_id) : Status::Ok();
}

Status FaultInjectingConnection::PostSend(const LocalSlice& src, uint64_t wr_id,
                                          const SendFlags& flags) {
  LocalSlice s = src;
  bool forward;
  VIGIL_RETURN_IF_ERROR(Apply(kOpSend, s, wr_id, flags.signaled, Opcode::kSend, forward));
  return forward ? inner_->PostSend(s, wr_id, flags) : Status::Ok();
}

Status FaultInjectingConnection::PostRecv(const LocalSlice& dst, uint64_t wr_id) {
  LocalSlice s = dst;
  bool forward;
  VIGIL_RETURN_IF_ERROR(Apply(kOpRecv, s, wr_id, false, Opcode::kRecv, forward));
  return forward ? inner_->PostRecv(dst, wr_id) : Status::Ok();
}

size_t FaultInjectingConnection::PollSend(std::span<Completion> out) {
  size_t n = 0;
  while (n < out.size() && !synthesized_.empty()) {
    out[n++] = synthesized_.front();
    synthesized_.pop_front();
  }
  return n + inner_->PollSend(out.subspan(n));
}

Result<Completion> FaultInjectingConnection::WaitSend(std::chrono::nanoseconds timeout) {
  if (!synthesized_.empty()) {
    Completion c = synthesized_.front();
    synthesized_.pop_front();
    return c;
  }
  return inner_->WaitSend(timeout);
}

Result<std::unique_ptr<Connection>> FaultInjectingTransport::CreateConnection(
    const ConnectionOptions& opts) {
  VIGIL_ASSIGN_OR_RETURN(auto conn, inner_.CreateConnection(opts));
  VIGIL_ASSIGN_OR_RETURN(auto wrapped,
                         FaultInjectingConnection::Wrap(std::move(conn), injector_, inner_));
  return std::unique_ptr<Connection>(std::move(wrapped));
}

namespace {
class FaultInjectingDomain final : public ProtectionDomain {
 public:
  FaultInjectingDomain(std::unique_ptr<ProtectionDomain> inner,
                       std::shared_ptr<FaultInjector> injector)
      : inner_(std::move(inner)), injector_(std::move(injector)) {}
  Result<std::unique_ptr<MemoryRegion>> Register(void* addr, size_t size,
                                                 uint32_t access) override {
    return inner_->Register(addr, size, access);
  }
  Result<std::unique_ptr<Connection>> CreateConnection(const ConnectionOptions& opts) override {
    VIGIL_ASSIGN_OR_RETURN(auto conn, inner_->CreateConnection(opts));
    VIGIL_ASSIGN_OR_RETURN(auto wrapped,
                           FaultInjectingConnection::Wrap(std::move(conn), injector_, *inner_));
    return std::unique_ptr<Connection>(std::move(wrapped));
  }

 private:
  std::unique_ptr<ProtectionDomain> inner_;
  std::shared_ptr<FaultInjector> injector_;
};
}  // namespace

Result<std::unique_ptr<ProtectionDomain>> FaultInjectingTransport::CreateDomain() {
  VIGIL_ASSIGN_OR_RETURN(auto domain, inner_.CreateDomain());
  return std::unique_ptr<ProtectionDomain>(new FaultInjectingDomain(std::move(domain), injector_));
}

}  // namespace vigil::transport
