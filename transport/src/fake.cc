#include "vigil/transport/fake.h"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

#include "vigil/common/thread_annotations.h"

namespace vigil::transport {

namespace {
// A FIFO of completions that keeps its storage: a connection in steady use allocates nothing
// for its completions (std::deque frees and allocates a node every few dozen).
class CompletionFifo {
 public:
  bool empty() const { return head_ == items_.size(); }
  const Completion& front() const { return items_[head_]; }
  void push_back(const Completion& c) { items_.push_back(c); }
  void pop_front() {
    ++head_;
    if (empty()) {
      items_.clear();
      head_ = 0;
    } else if (head_ > items_.size() / 2) {  // each entry moves at most once on average
      items_.erase(items_.begin(), items_.begin() + static_cast<ptrdiff_t>(head_));
      head_ = 0;
    }
  }

 private:
  std::vector<Completion> items_;
  size_t head_ = 0;
};

class FakeConnection;

struct Registration {
  std::byte* data;
  size_t size;
  uint32_t access;
  uint32_t domain;  // usable only through connections of the same protection domain
};

struct PostedRecv {
  LocalSlice dst;
  uint64_t wr_id;
};

struct Inbound {  // a SEND or WRITE_WITH_IMM on its way to the peer's next posted receive
  std::vector<std::byte> bytes;
  bool is_send;
  bool has_imm;
  uint32_t imm;
  uint32_t sender_qpn;  // SEND only: who gets the completion once it is delivered
  uint64_t wr_id;
  bool signaled;
};

const char* WcText(WcStatus s) {
  switch (s) {
    case WcStatus::kSuccess:
      return "success";
    case WcStatus::kLocalLengthError:
      return "local length error";
    case WcStatus::kLocalProtectionError:
      return "local protection error";
    case WcStatus::kFlushed:
      return "Work Request Flushed Error";
    case WcStatus::kRemoteAccessError:
      return "remote access error";
    case WcStatus::kRemoteInvalidRequest:
      return "remote invalid request error";
    case WcStatus::kRemoteOperationError:
      return "remote operation error";
    case WcStatus::kRetryExceeded:
      return "transport retry counter exceeded";
    case WcStatus::kRnrRetryExceeded:
      return "RNR retry counter exceeded";
    case WcStatus::kPeerTimeout:
      return "no progress within peer_timeout (vigil watchdog)";
    case WcStatus::kOther:
      return "general error";
  }
  return "general error";
}
}  // namespace

struct FakeFabric::State {
  // The whole fabric's: its tables, and every fake connection's queues (FakeConnection).
  Mutex mu;
  std::condition_variable_any cv;  // any queue changed
  uint32_t next_key VIGIL_GUARDED_BY(mu) = 0x1000;
  uint32_t next_qpn VIGIL_GUARDED_BY(mu) = 0x100;
  uint32_t next_domain VIGIL_GUARDED_BY(mu) = 1;
  std::map<uint32_t, Registration> regs VIGIL_GUARDED_BY(mu);      // by rkey
  std::map<uint32_t, FakeConnection*> conns VIGIL_GUARDED_BY(mu);  // by qpn
};

FakeFabric::FakeFabric() : state_(std::make_unique<State>()) {}
FakeFabric::~FakeFabric() = default;

namespace {

class FakeMemoryRegion final : public MemoryRegion {
 public:
  FakeMemoryRegion(std::shared_ptr<FakeFabric> fabric, std::byte* data, size_t size, uint32_t key,
                   uint32_t access)
      : MemoryRegion(data, size, key, key, access), fabric_(std::move(fabric)) {}
  ~FakeMemoryRegion() override {
    MutexLock lock(fabric_->state().mu);
    fabric_->state().regs.erase(rkey());
  }

 private:
  std::shared_ptr<FakeFabric> fabric_;
};

class FakeConnection final : public Connection {
 public:
  FakeConnection(std::shared_ptr<FakeFabric> fabric, ConnectionOptions opts, uint32_t qpn,
                 uint32_t domain)
      : fabric_(std::move(fabric)), opts_(std::move(opts)), qpn_(qpn), domain_(domain) {}

  ~FakeConnection() override {
    MutexLock lock(S().mu);
    S().conns.erase(qpn_);
  }

  const std::string& name() const override { return opts_.name; }
  uint32_t max_inline() const override { return opts_.max_inline; }

  Endpoint local_endpoint() const override {
    Endpoint ep;
    ep.qpn = qpn_;
    ep.psn = 0;
    ep.mtu = 4096;
    ep.port = 1;
    return ep;
  }

  Status Connect(const Endpoint& peer) override {
    MutexLock lock(S().mu);
    if (!S().conns.count(peer.qpn)) {
      return Unavailable(fmt::format("{}: fake peer QP {} does not exist", opts_.name, peer.qpn));
    }
    peer_qpn_ = peer.qpn;
    connected_ = true;
    return Status::Ok();
  }

  Status PostWrite(const LocalSlice& src, RemoteAddr dst, uint64_t wr_id,
                   const SendFlags& flags) override {
    MutexLock lock(S().mu);
    VIGIL_RETURN_IF_ERROR(CheckPost(src, "RDMA_WRITE"));
    FakeConnection* peer = Peer();
    if (peer == nullptr) return PeerGone(wr_id);
    // A zero-length WRITE touches no memory, so its key is not checked (IB C9-88): a liveness
    // probe, acknowledged while the peer's connection exists.
    if (src.length > 0) {
      std::byte* target = Resolve(*peer, dst, src.length, kRemoteWrite);
      if (target == nullptr) return AccessError(peer, wr_id);
      std::memcpy(target, src.mr->data() + src.offset, src.length);
    }
    if (flags.imm) peer->Deliver(Inbound{{}, false, true, *flags.imm, 0, 0, false});
    if (flags.signaled) Complete(send_cq_, wr_id, Opcode::kWrite, WcStatus::kSuccess, 0);
    return Status::Ok();
  }

  Status PostRead(const LocalSlice& dst, RemoteAddr src, uint64_t wr_id) override {
    MutexLock lock(S().mu);
    VIGIL_RETURN_IF_ERROR(CheckPost(dst, "RDMA_READ"));
    FakeConnection* peer = Peer();
    if (peer == nullptr) return PeerGone(wr_id);
    std::byte* source = Resolve(*peer, src, dst.length, kRemoteRead);
    if (source == nullptr) return AccessError(peer, wr_id);
    std::memcpy(dst.mr->data() + dst.offset, source, dst.length);
    Complete(send_cq_, wr_id, Opcode::kRead, WcStatus::kSuccess, static_cast<uint32_t>(dst.length));
    return Status::Ok();
  }

  Status PostSend(const LocalSlice& src, uint64_t wr_id, const SendFlags& flags) override {
    MutexLock lock(S().mu);
    VIGIL_RETURN_IF_ERROR(CheckPost(src, "SEND"));
    FakeConnection* peer = Peer();
    if (peer == nullptr) return PeerGone(wr_id);
    const std::byte* p = src.mr->data() + src.offset;
    // Like RC, the sender's completion comes when the SEND is delivered into a receive (see
    // DrainInbound), not when it is posted.
    peer->Deliver(Inbound{std::vector<std::byte>(p, p + src.length), true, flags.imm.has_value(),
                          flags.imm.value_or(0), qpn_, wr_id, flags.signaled});
    return Status::Ok();
  }

  Status PostRecv(const LocalSlice& dst, uint64_t wr_id) override {
    MutexLock lock(S().mu);
    VIGIL_RETURN_IF_ERROR(CheckSlice(dst, "RECV"));
    if (broken_) return Aborted(fmt::format("{}: connection is broken", opts_.name));
    if (posted_.size() >= opts_.rq_depth) {
      return ResourceExhausted(
          fmt::format("{}: receive queue full ({})", opts_.name, opts_.rq_depth));
    }
    posted_.push_back({dst, wr_id});
    DrainInbound();
    return Status::Ok();
  }

  size_t PollSend(std::span<Completion> out) override { return Poll(send_cq_, out); }
  size_t PollRecv(std::span<Completion> out) override { return Poll(recv_cq_, out); }
  Result<Completion> WaitSend(std::chrono::nanoseconds t) override {
    return Wait(send_cq_, t, "send");
  }
  Result<Completion> WaitRecv(std::chrono::nanoseconds t) override {
    return Wait(recv_cq_, t, "receive");
  }

  // Called with the fabric lock held by the sending side (one fabric, one lock: the sender's S()
  // is this connection's).
  void Deliver(Inbound in) {
    S().mu.AssertHeld();
    inbound_.push_back(std::move(in));
    DrainInbound();
  }

  // Moves this end to the error state: its posted receives complete with `first_recv` (the
  // first one) or kFlushed, and further posts fail.
  void Break(WcStatus first_recv = WcStatus::kFlushed) {
    if (broken_) return;
    broken_ = true;
    for (auto& r : posted_) {
      Complete(recv_cq_, r.wr_id, Opcode::kOther, first_recv, 0);
      first_recv = WcStatus::kFlushed;
    }
    posted_.clear();
  }

 private:
  FakeFabric::State& S() const { return fabric_->state(); }

  FakeConnection* Peer() VIGIL_REQUIRES(S().mu) {
    auto it = S().conns.find(peer_qpn_);
    return it == S().conns.end() ? nullptr : it->second;
  }

  Status CheckSlice(const LocalSlice& s, const char* op) const {
    return CheckLocalSlice(s, opts_.name, op);
  }

  Status CheckPost(const LocalSlice& s, const char* op) const {
    VIGIL_RETURN_IF_ERROR(CheckSlice(s, op));
    if (!connected_)
      return FailedPrecondition(fmt::format("{}: {} before Connect", opts_.name, op));
    if (broken_) return Aborted(fmt::format("{}: connection is broken", opts_.name));
    return Status::Ok();
  }

  // The peer memory [addr, addr+len) if the key grants `need` over all of it and belongs to the
  // responder's protection domain, else nullptr.
  std::byte* Resolve(const FakeConnection& responder, RemoteAddr a, size_t len, uint32_t need)
      VIGIL_REQUIRES(S().mu) {
    auto it = S().regs.find(a.rkey);
    if (it == S().regs.end() || (it->second.access & need) == 0 ||
        it->second.domain != responder.domain_) {
      return nullptr;
    }
    const auto base = reinterpret_cast<uint64_t>(it->second.data);
    if (a.addr < base || a.addr - base > it->second.size ||
        len > it->second.size - (a.addr - base)) {
      return nullptr;
    }
    return it->second.data + (a.addr - base);
  }

  // The operation is accepted and completes with an error (RC reports errors by completion).
  Status Fail(WcStatus why, uint64_t wr_id) {
    Complete(send_cq_, wr_id, Opcode::kOther, why, 0);
    Break();
    return Status::Ok();
  }

  // Like an RC QP towards a destroyed QP: no ACK ever comes, the retries run out.
  Status PeerGone(uint64_t wr_id) { return Fail(WcStatus::kRetryExceeded, wr_id); }

  // A remote access error moves both the requester and the responder to the error state.
  Status AccessError(FakeConnection* peer, uint64_t wr_id) {
    peer->Break();
    return Fail(WcStatus::kRemoteAccessError, wr_id);
  }

  // Matches queued messages with posted receives, in order. Called with the fabric lock held.
  void DrainInbound() VIGIL_REQUIRES(S().mu) {
    while (!inbound_.empty() && !posted_.empty()) {
      Inbound& in = inbound_.front();
      FakeConnection* sender = nullptr;
      if (in.is_send) {
        auto it = S().conns.find(in.sender_qpn);
        sender = it == S().conns.end() ? nullptr : it->second;
      }
      if (in.is_send && in.bytes.size() > posted_.front().dst.length) {
        // The receive is too small: RC breaks both ends, and nothing is written.
        const uint64_t wr_id = in.wr_id;
        inbound_.clear();
        Break(WcStatus::kLocalLengthError);
        if (sender != nullptr) {
          // Fail() reports through the sender's completion queue; its Status is always OK.
          static_cast<void>(sender->Fail(WcStatus::kRemoteInvalidRequest, wr_id));
        }
        break;
      }
      PostedRecv r = posted_.front();
      posted_.pop_front();
      if (in.is_send && !in.bytes.empty()) {
        std::memcpy(r.dst.mr->data() + r.dst.offset, in.bytes.data(), in.bytes.size());
      }
      Completion c;
      c.wr_id = r.wr_id;
      c.opcode = in.is_send ? Opcode::kRecv : Opcode::kRecvWithImm;
      c.byte_len = static_cast<uint32_t>(in.bytes.size());
      c.has_imm = in.has_imm;
      c.imm = in.imm;
      recv_cq_.push_back(c);
      if (sender != nullptr && in.signaled) {
        sender->Complete(sender->send_cq_, in.wr_id, Opcode::kSend, WcStatus::kSuccess, 0);
      }
      inbound_.pop_front();
    }
    S().cv.notify_all();
  }

  void Complete(CompletionFifo& cq, uint64_t wr_id, Opcode op, WcStatus st, uint32_t len) {
    Completion c;
    c.wr_id = wr_id;
    c.opcode = op;
    c.status = st;
    c.status_text = WcText(st);
    c.byte_len = len;
    cq.push_back(c);
    S().cv.notify_all();
  }

  size_t Poll(CompletionFifo& cq, std::span<Completion> out) {
    MutexLock lock(S().mu);
    size_t n = 0;
    while (n < out.size() && !cq.empty()) {
      out[n++] = cq.front();
      cq.pop_front();
    }
    return n;
  }

  Result<Completion> Wait(CompletionFifo& cq, std::chrono::nanoseconds t, const char* side) {
    MutexLock lock(S().mu);
    if (!S().cv.wait_for(lock, t, [&] { return !cq.empty(); })) {
      return DeadlineExceeded(
          fmt::format("{}: no {} completion within {} ms", opts_.name, side,
                      std::chrono::duration_cast<std::chrono::milliseconds>(t).count()));
    }
    Completion c = cq.front();
    cq.pop_front();
    return c;
  }

  std::shared_ptr<FakeFabric> fabric_;
  ConnectionOptions opts_;
  uint32_t qpn_;
  uint32_t domain_;
  uint32_t peer_qpn_ = 0;
  bool connected_ = false;
  bool broken_ = false;
  CompletionFifo send_cq_;
  CompletionFifo recv_cq_;
  std::deque<PostedRecv> posted_;
  std::deque<Inbound> inbound_;
};

Result<std::unique_ptr<MemoryRegion>> RegisterIn(const std::shared_ptr<FakeFabric>& fabric,
                                                 uint32_t domain, void* addr, size_t size,
                                                 uint32_t access) {
  if (addr == nullptr || size == 0) {
    return InvalidArgument(fmt::format("cannot register {} bytes at {}", size, addr));
  }
  auto& s = fabric->state();
  MutexLock lock(s.mu);
  const uint32_t key = s.next_key++;
  s.regs[key] = Registration{static_cast<std::byte*>(addr), size, access, domain};
  return std::unique_ptr<MemoryRegion>(
      new FakeMemoryRegion(fabric, static_cast<std::byte*>(addr), size, key, access));
}

Result<std::unique_ptr<Connection>> CreateIn(const std::shared_ptr<FakeFabric>& fabric,
                                             uint32_t domain, const ConnectionOptions& opts) {
  auto& s = fabric->state();
  MutexLock lock(s.mu);
  const uint32_t qpn = s.next_qpn++;
  auto conn = std::make_unique<FakeConnection>(fabric, opts, qpn, domain);
  s.conns[qpn] = conn.get();
  return std::unique_ptr<Connection>(std::move(conn));
}

uint32_t NewDomain(FakeFabric& fabric) {
  MutexLock lock(fabric.state().mu);
  return fabric.state().next_domain++;
}

class FakeDomain final : public ProtectionDomain {
 public:
  explicit FakeDomain(std::shared_ptr<FakeFabric> fabric)
      : fabric_(std::move(fabric)), domain_(NewDomain(*fabric_)) {}
  Result<std::unique_ptr<MemoryRegion>> Register(void* addr, size_t size,
                                                 uint32_t access) override {
    return RegisterIn(fabric_, domain_, addr, size, access);
  }
  Result<std::unique_ptr<Connection>> CreateConnection(const ConnectionOptions& opts) override {
    return CreateIn(fabric_, domain_, opts);
  }

 private:
  std::shared_ptr<FakeFabric> fabric_;
  uint32_t domain_;
};

}  // namespace

FakeTransport::FakeTransport(std::shared_ptr<FakeFabric> fabric, std::string node_name)
    : fabric_(std::move(fabric)), node_name_(std::move(node_name)), domain_(NewDomain(*fabric_)) {}

std::string FakeTransport::Describe() const {
  return fmt::format("FAKE in-process transport (node '{}'; no NIC, memcpy emulation)", node_name_);
}

Result<std::unique_ptr<MemoryRegion>> FakeTransport::Register(void* addr, size_t size,
                                                              uint32_t access) {
  return RegisterIn(fabric_, domain_, addr, size, access);
}

Result<std::unique_ptr<Connection>> FakeTransport::CreateConnection(const ConnectionOptions& opts) {
  return CreateIn(fabric_, domain_, opts);
}

Result<std::unique_ptr<ProtectionDomain>> FakeTransport::CreateDomain() {
  return std::unique_ptr<ProtectionDomain>(new FakeDomain(fabric_));
}

}  // namespace vigil::transport
