// The rpc method: one synchronous gRPC call per event (vigil.signal.v1.Voter/Signal). The call's
// handler thread parks until the voter replies, like a replica whose call "migrates" into the
// voter's context and returns with the verdict.
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>

#include "vigil/channel/channel.h"
#include "vigil/common/logging.h"
#include "vigil/common/text.h"
#include "vigil/common/thread_annotations.h"
#include "vigil/security/nonce.h"
#include "vigil/security/permissions.h"
#include "vigil/security/tls.h"
#include "vigil/signal/v1/signal.grpc.pb.h"

namespace vigil::channel {
namespace {

namespace pb = vigil::signal::v1;
using Clock = std::chrono::steady_clock;

// Checks what came over the wire against the channel's limits.
Status CheckWire(const pb::EventRecord& r, size_t max_payload, const char* what) {
  if (r.kind() > 0xFFFF || r.flags() > 0xFFFF) {
    return InvalidArgument(
        fmt::format("{}: kind {} / flags {} exceed 16 bits", what, r.kind(), r.flags()));
  }
  if (r.payload().size() > max_payload) {
    return InvalidArgument(fmt::format("{}: payload of {} bytes exceeds the channel's {} bytes",
                                       what, r.payload().size(), max_payload));
  }
  return Status::Ok();
}

Result<Record> ToRecord(const pb::EventRecord& r, std::span<std::byte> buf) {
  if (r.payload().size() > buf.size()) {
    return InvalidArgument(fmt::format("buffer of {} bytes cannot hold a {}-byte payload",
                                       buf.size(), r.payload().size()));
  }
  std::memcpy(buf.data(), r.payload().data(), r.payload().size());
  return Record{r.seq(), static_cast<uint16_t>(r.kind()), static_cast<uint16_t>(r.flags()),
                buf.first(r.payload().size())};
}

class RpcVoterImpl final : public VoterChannel, public pb::Voter::Service {
 public:
  RpcVoterImpl(size_t max_payload, std::string token)
      : max_payload_(max_payload), token_(std::move(token)) {}
  ~RpcVoterImpl() override {
    {
      MutexLock lock(mu_);
      shutdown_ = true;
    }
    cv_.notify_all();
    if (server_)
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  }

  Status Start(const std::string& listen) {
    grpc::ServerBuilder b;
    VIGIL_RETURN_IF_ERROR(security::AddPort(b, security::ProcessTls(), listen, &port_));
    b.RegisterService(this);
    server_ = b.BuildAndStart();
    if (!server_ || port_ == 0) {
      return Unavailable(fmt::format("rpc voter cannot listen on '{}'", listen));
    }
    return Status::Ok();
  }
  int port() const { return port_; }

  std::string_view method() const override { return "rpc"; }
  size_t max_payload() const override { return max_payload_; }

  // gRPC handler thread: queue the event, park until the voter replies (or the caller gives up).
  grpc::Status Signal(grpc::ServerContext* ctx, const pb::EventRecord* req,
                      pb::EventRecord* resp) override {
    if (grpc::Status st = security::AuthorizeCall(*ctx, "/vigil.signal.v1.Voter/Signal");
        !st.ok()) {
      return st;
    }
    if (!token_.empty() && !security::SameNonce(token_, req->token())) {
      const std::string why =
          fmt::format("rpc event sequence {} from {} refused: {} replica nonce", req->seq(),
                      Escaped(ctx->peer(), 128), req->token().empty() ? "no" : "wrong");
      log::Get("channel")->warn("{}", why);
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, why);
    }
    if (Status st = CheckWire(*req, max_payload_, "rpc event"); !st.ok()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, st.message());
    }
    Pending p{*req, {}, false};
    MutexLock lock(mu_);
    // A replica has one event in flight (and an abandoned attempt or two being cleaned up): a
    // caller parking more is refused, so it cannot pin the port's threads.
    if (queue_.size() >= kMaxParked) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          fmt::format("{} rpc events are parked: the cap (max parked rpc events) "
                                      "is {}",
                                      queue_.size(), kMaxParked));
    }
    // Sequences only grow: an attempt the replica abandoned leaves a gap, a replay is refused.
    if (req->seq() < expected_) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          fmt::format("rpc event sequence {} replayed (next expected >= {})",
                                      req->seq(), expected_));
    }
    expected_ = req->seq() + 1;
    queue_.push_back(&p);
    cv_.notify_all();
    while (!p.done && !shutdown_) {
      cv_.wait_for(lock, std::chrono::milliseconds(50));
      if (ctx->IsCancelled() && !p.done) {
        queue_.erase(std::remove(queue_.begin(), queue_.end(), &p), queue_.end());
        if (current_ == &p) current_ = nullptr;
        return grpc::Status(grpc::StatusCode::CANCELLED, "replica gave up waiting for the verdict");
      }
    }
    if (!p.done) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "voter shutting down");
    *resp = p.verdict;
    return grpc::Status::OK;
  }

  Result<Record> NextEvent(std::span<std::byte> buf, std::chrono::nanoseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    MutexLock lock(mu_);
    while (queue_.empty() && !shutdown_ &&
           cv_.wait_until(lock, deadline) == std::cv_status::no_timeout) {
    }
    if (queue_.empty() || shutdown_) {
      return DeadlineExceeded(
          fmt::format("rpc voter: no event within {} ms",
                      std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()));
    }
    current_ = queue_.front();
    queue_.pop_front();
    return ToRecord(current_->event, buf);
  }

  Status Reply(uint16_t kind, std::span<const std::byte> payload,
               std::chrono::nanoseconds) override {
    if (payload.size() > max_payload_) {
      return OutOfRange(fmt::format("verdict payload of {} bytes exceeds the channel's {} bytes",
                                    payload.size(), max_payload_));
    }
    MutexLock lock(mu_);
    if (current_ == nullptr) return FailedPrecondition("rpc voter: no event awaits a verdict");
    current_->verdict.set_seq(current_->event.seq());
    current_->verdict.set_kind(kind);
    current_->verdict.set_payload(payload.data(), payload.size());
    current_->done = true;
    current_ = nullptr;
    cv_.notify_all();
    return Status::Ok();
  }

 private:
  struct Pending {
    pb::EventRecord event;
    pb::EventRecord verdict;
    bool done;
  };
  static constexpr size_t kMaxParked = 8;
  const size_t max_payload_;
  const std::string token_;  // the incarnation's nonce; empty: not checked
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  Mutex mu_;
  std::condition_variable_any cv_;
  std::deque<Pending*> queue_ VIGIL_GUARDED_BY(mu_);
  Pending* current_ VIGIL_GUARDED_BY(mu_) = nullptr;
  uint64_t expected_ VIGIL_GUARDED_BY(mu_) = 1;
  bool shutdown_ VIGIL_GUARDED_BY(mu_) = false;
};

class RpcReplicaImpl final : public ReplicaChannel {
 public:
  RpcReplicaImpl(const std::string& target, size_t max_payload, std::string token,
                 const std::atomic<bool>* cancel)
      : target_(target),
        max_payload_(max_payload),
        token_(std::move(token)),
        cancel_(cancel),
        channel_(security::Channel(security::ProcessTls(), target, security::Role::kVoter)),
        stub_(channel_.ok() ? pb::Voter::NewStub(*channel_) : nullptr) {}

  std::string_view method() const override { return "rpc"; }
  size_t max_payload() const override { return max_payload_; }

  Result<Record> Signal(uint16_t kind, std::span<const std::byte> payload, std::span<std::byte> buf,
                        std::chrono::nanoseconds timeout) override {
    if (payload.size() > max_payload_) {
      return OutOfRange(
          fmt::format("event payload of {} bytes exceeds the rpc capacity of {} bytes",
                      payload.size(), max_payload_));
    }
    if (!channel_.ok()) return channel_.status();
    pb::EventRecord req, resp;
    const uint64_t seq = next_++;  // every attempt gets its own sequence, even if it fails
    req.set_seq(seq);
    req.set_token(token_);
    req.set_kind(kind);
    req.set_payload(payload.data(), payload.size());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::duration_cast<std::chrono::system_clock::duration>(timeout));
    ctx.set_wait_for_ready(true);
    grpc::Status st = Call(ctx, req, resp);
    if (!st.ok() && cancelled_) return Aborted(fmt::format("rpc signal {}: cancelled", seq));
    if (!st.ok()) {
      const StatusCode code = st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                                  ? StatusCode::kDeadlineExceeded
                                  : StatusCode::kUnavailable;
      return Status(code,
                    fmt::format("rpc signal {} to voter {}: {}", seq, target_, st.error_message()));
    }
    VIGIL_RETURN_IF_ERROR(CheckWire(resp, max_payload_, "rpc verdict"));
    if (resp.seq() != seq) {
      return DataLoss(fmt::format("rpc verdict for sequence {}, expected {}", resp.seq(), seq));
    }
    return ToRecord(resp, buf);
  }

 private:
  // The call; with a cancel flag, one that can be cancelled (kCancelGrace after the flag).
  grpc::Status Call(grpc::ClientContext& ctx, const pb::EventRecord& req, pb::EventRecord& resp) {
    cancelled_ = false;
    if (cancel_ == nullptr) return stub_->Signal(&ctx, req, &resp);
    std::mutex mu;
    std::condition_variable cv;
    std::optional<grpc::Status> done;
    stub_->async()->Signal(&ctx, &req, &resp, [&](grpc::Status s) {
      std::lock_guard<std::mutex> l(mu);
      done = std::move(s);
      cv.notify_one();
    });
    std::unique_lock<std::mutex> l(mu);
    CancelGrace cancel(cancel_);
    // The callback always runs (also after TryCancel): the call's objects live until then.
    while (!cv.wait_for(l, std::chrono::milliseconds(50), [&] { return done.has_value(); })) {
      if (!cancelled_ && cancel.Expired()) {
        cancelled_ = true;
        ctx.TryCancel();
      }
    }
    return *done;
  }

  std::string target_;
  size_t max_payload_;
  std::string token_;
  const std::atomic<bool>* cancel_;
  bool cancelled_ = false;
  Result<std::shared_ptr<grpc::Channel>> channel_;  // the process's TLS settings
  std::unique_ptr<pb::Voter::Stub> stub_;
  uint64_t next_ = 1;
};

}  // namespace

Result<std::unique_ptr<VoterChannel>> RpcVoter(const std::string& listen, size_t max_payload,
                                               const std::string& token) {
  auto v = std::make_unique<RpcVoterImpl>(max_payload, token);
  VIGIL_RETURN_IF_ERROR(v->Start(listen));
  return std::unique_ptr<VoterChannel>(std::move(v));
}

int RpcVoterPort(const VoterChannel& voter) {
  auto* v = dynamic_cast<const RpcVoterImpl*>(&voter);
  return v ? v->port() : 0;
}

Result<std::unique_ptr<ReplicaChannel>> RpcReplica(const std::string& target, size_t max_payload,
                                                   const std::string& token,
                                                   const std::atomic<bool>* cancel) {
  return std::unique_ptr<ReplicaChannel>(
      std::make_unique<RpcReplicaImpl>(target, max_payload, token, cancel));
}

}  // namespace vigil::channel
