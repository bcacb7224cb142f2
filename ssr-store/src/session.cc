#include "vigil/ssr/session.h"

#include <fmt/format.h>

#include <algorithm>

#include "vigil/common/adaptive_wait.h"
#include "vigil/common/logging.h"
#include "vigil/transport/bootstrap.h"

namespace vigil::ssr {
namespace {
constexpr size_t kSlots = 8;  // requests in flight at most; receives posted for their replies
constexpr size_t kRepliesOff = kSlots * wire::kRequestBytes;
constexpr uint64_t kRecvTag = 1ull << 40;
}  // namespace

Result<std::unique_ptr<StoreSession>> StoreSession::Open(transport::Transport& transport,
                                                         const SessionOptions& options) {
  VIGIL_RETURN_IF_ERROR(wire::CheckName("service name", options.service));
  VIGIL_RETURN_IF_ERROR(wire::CheckName("instance name", options.instance));
  std::unique_ptr<StoreSession> s(new StoreSession());
  s->options_ = options;
  VIGIL_ASSIGN_OR_RETURN(
      auto msgs, transport::RegisteredBuffer::Allocate(
                     transport, kRepliesOff + kSlots * wire::kReplyBytes, transport::kLocalWrite));
  s->msgs_ = std::make_unique<transport::RegisteredBuffer>(std::move(msgs));
  transport::DialOptions dial;
  dial.target = options.store;
  dial.server_role = security::Role::kStore;
  dial.service = std::string(kBootstrapService);
  dial.node_name = fmt::format("{}/{}", options.service, options.instance);
  dial.connection = options.connection;
  dial.timeout = options.timeout;
  dial.tls = options.tls;
  auto* raw = s.get();
  dial.before_connect = [raw](transport::Connection& conn) -> Status {
    for (size_t i = 0; i < kSlots; ++i) {
      VIGIL_RETURN_IF_ERROR(conn.PostRecv(
          raw->msgs_->mr().Slice(kRepliesOff + i * wire::kReplyBytes, wire::kReplyBytes),
          kRecvTag | i));
    }
    return Status::Ok();
  };
  auto dialed = transport::Dial(transport, dial);
  if (!dialed.ok()) {
    return dialed.status().WithContext(
        fmt::format("connect to the SSR store at {}", options.store));
  }
  s->conn_ = std::move(dialed->connection);
  wire::Request open;
  open.op = wire::Op::kOpen;
  open.name = options.service;
  open.instance = options.instance;
  VIGIL_ASSIGN_OR_RETURN(wire::Reply r, s->Call(open));
  VIGIL_RETURN_IF_ERROR(r.ToStatus());
  if (r.service_id == 0 || r.capacity == 0 || r.capacity > (64u << 20)) {
    return DataLoss(fmt::format("SSR store answered open with service id {} and capacity {}",
                                r.service_id, r.capacity));
  }
  s->service_id_ = r.service_id;
  s->epoch_ = r.epoch;
  s->capacity_ = r.capacity;
  VIGIL_ASSIGN_OR_RETURN(auto staging, transport::RegisteredBuffer::Allocate(
                                           transport, s->region_bytes(), transport::kLocalWrite));
  s->staging_ = std::make_unique<transport::RegisteredBuffer>(std::move(staging));
  log::Get("ssr")->info(
      "session with SSR store {} open: service '{}' (id {}) instance '{}', "
      "epoch {}, capacity {} bytes",
      options.store, options.service, s->service_id_, options.instance, s->epoch_, s->capacity_);
  return s;
}

StoreSession::~StoreSession() {
  if (conn_ == nullptr || !broken_.ok()) return;
  if (Status st = Close(); !st.ok())
    log::Get("ssr")->debug("closing the session: {}", st.ToString());
}

void StoreSession::Abandon() {
  (void)Fail(Aborted("the SSR store session was abandoned"));
  conn_.reset();
}

Status StoreSession::Close(std::chrono::milliseconds timeout) {
  options_.timeout = std::min(options_.timeout, timeout);
  wire::Request req;
  req.op = wire::Op::kClose;
  auto r = Call(req);
  (void)Fail(FailedPrecondition("the SSR store session was closed"));
  if (!r.ok()) return r.status();
  return r->ToStatus();
}

Status StoreSession::Fail(Status st) {
  if (broken_.ok()) broken_ = st;
  return st;
}

Status StoreSession::Post(wire::Request& req) {
  if (!broken_.ok()) return broken_;
  req.seq = next_seq_++;
  const size_t slot = req.seq % kSlots;
  wire::Encode(req, std::span<std::byte, wire::kRequestBytes>(
                        msgs_->data() + slot * wire::kRequestBytes, wire::kRequestBytes));
  transport::SendFlags flags;
  flags.signaled = false;
  Status st = transport::PostWhenQueueHasRoom(*conn_, [&] {
    return conn_->PostSend(msgs_->mr().Slice(slot * wire::kRequestBytes, wire::kRequestBytes),
                           req.seq, flags);
  });
  if (!st.ok()) return Fail(st);
  unanswered_++;
  posted_since_reply_++;
  return Status::Ok();
}

Result<wire::Reply> StoreSession::Call(wire::Request req) {
  // Request slots are reused only after their reply was consumed: Release(wait=false) leaves a
  // slot free for this call, and this call consumes every reply up to its own.
  VIGIL_RETURN_IF_ERROR(Post(req));
  for (;;) {
    auto next = NextCompletion(/*send=*/false, "answer of the SSR store");
    if (!next.ok()) return next.status().WithContext(wire::OpName(req.op));
    const transport::Completion c = *next;
    VIGIL_RETURN_IF_ERROR(transport::DrainSendCompletions(*conn_).WithContext("SSR session"));
    if (!c.ok()) return Fail(c.ToStatus(conn_->name()));
    const size_t slot = c.wr_id & ~kRecvTag;
    if ((c.wr_id & kRecvTag) == 0 || slot >= kSlots) {
      return Fail(Internal(fmt::format("unexpected receive completion wr_id {:#x}", c.wr_id)));
    }
    auto reply = wire::DecodeReply(std::span<const std::byte>(
        msgs_->data() + kRepliesOff + slot * wire::kReplyBytes, c.byte_len));
    Status repost = conn_->PostRecv(
        msgs_->mr().Slice(kRepliesOff + slot * wire::kReplyBytes, wire::kReplyBytes), c.wr_id);
    if (!repost.ok()) return Fail(repost);
    if (!reply.ok()) return Fail(reply.status().WithContext("reply from the SSR store"));
    unanswered_--;
    posted_since_reply_ = 0;
    if (reply->seq == req.seq) return *reply;
    if (reply->seq > req.seq) {
      return Fail(DataLoss(
          fmt::format("SSR store answered request {} while {} was awaited", reply->seq, req.seq)));
    }
    if (reply->code != StatusCode::kOk) {  // an earlier request nobody waited for
      log::Get("ssr")->warn("{}", reply->ToStatus().ToString());
    }
  }
}

Result<Grant> StoreSession::Acquire(uint64_t client, bool create) {
  wire::Request req;
  req.op = wire::Op::kGrant;
  req.client_id = client;
  req.create = create;
  VIGIL_ASSIGN_OR_RETURN(wire::Reply r, Call(req));
  VIGIL_RETURN_IF_ERROR(r.ToStatus());
  if (r.length != region_bytes() || r.addr == 0) {
    return DataLoss(fmt::format("SSR store granted {} bytes at {:#x}; this session expects {}",
                                r.length, r.addr, region_bytes()));
  }
  Grant g;
  g.id = r.grant_id;
  g.client = client;
  g.region = transport::RemoteRegion{r.addr, r.length, r.rkey, "ssr"};
  g.created = r.created;
  return g;
}

Status StoreSession::Release(const Grant& grant, bool wait) {
  wire::Request req;
  req.op = wire::Op::kRelease;
  req.grant_id = grant.id;
  if (!wait && posted_since_reply_ + 1 < kSlots) {
    // Fire and forget: the store handles requests in order, so the next request sees it done.
    req.no_reply = true;
    VIGIL_RETURN_IF_ERROR(Post(req));
    unanswered_--;  // no reply will come
    return Status::Ok();
  }
  VIGIL_ASSIGN_OR_RETURN(wire::Reply r, Call(req));
  return r.ToStatus();
}

Status StoreSession::Free(uint64_t client) {
  wire::Request req;
  req.op = wire::Op::kFree;
  req.client_id = client;
  VIGIL_ASSIGN_OR_RETURN(wire::Reply r, Call(req));
  return r.ToStatus();
}

Result<std::vector<uint64_t>> StoreSession::Clients() {
  std::vector<uint64_t> all;
  wire::Request req;
  req.op = wire::Op::kList;
  for (;;) {
    VIGIL_ASSIGN_OR_RETURN(wire::Reply r, Call(req));
    VIGIL_RETURN_IF_ERROR(r.ToStatus());
    for (uint64_t c : r.clients) {
      if (!all.empty() && c <= all.back()) {
        return DataLoss("SSR store listed clients out of order");
      }
      all.push_back(c);
    }
    if (!r.more || r.clients.empty()) return all;
    req.client_id = all.back();
  }
}

Result<transport::Completion> StoreSession::NextCompletion(bool send, std::string_view what) {
  // The clock is read once every 64 empty polls: a completion that comes within them costs no
  // clock read, and the timeout runs from the first read.
  LazyDeadline deadline(options_.timeout);
  AdaptiveWait wait(options_.spin_us);
  for (uint32_t polls = 1;; ++polls) {
    transport::Completion c;
    if ((send ? conn_->PollSend(std::span(&c, 1)) : conn_->PollRecv(std::span(&c, 1))) == 1) {
      return c;
    }
    if (polls % 64 != 0) continue;
    const auto now = std::chrono::steady_clock::now();
    const auto left = deadline.LeftAt(now);
    if (wait.PhaseAt(now) == AdaptiveWait::Phase::kSpin) continue;
    if (left <= LazyDeadline::Clock::duration::zero()) {
      return Fail(
          DeadlineExceeded(fmt::format("no {} within {} ms", what, options_.timeout.count())));
    }
    auto w = send ? conn_->WaitSend(left) : conn_->WaitRecv(left);
    if (w.ok()) return *w;
    if (w.status().code() != StatusCode::kDeadlineExceeded) return Fail(w.status());
  }
}

Result<transport::Completion> StoreSession::AwaitSend(uint64_t wr_id) {
  for (;;) {
    VIGIL_ASSIGN_OR_RETURN(
        transport::Completion c,
        NextCompletion(/*send=*/true, "completion of an RDMA operation on an SSR"));
    if (!c.ok()) {
      static_cast<void>(Fail(c.ToStatus(conn_->name())));
      return c;
    }
    if (c.wr_id == wr_id) return c;
  }
}

Status StoreSession::Load(const Grant& grant, std::span<std::byte> mirror) {
  if (!broken_.ok()) return broken_;
  if (mirror.size() != region_bytes()) {
    return InvalidArgument(
        fmt::format("SSR mirror of {} bytes (expected {})", mirror.size(), region_bytes()));
  }
  VIGIL_ASSIGN_OR_RETURN(auto src, grant.region.At(0, region_bytes()));
  const uint64_t wr = next_wr_++;
  VIGIL_RETURN_IF_ERROR(conn_->PostRead(staging_->mr().Slice(0, region_bytes()), src, wr));
  VIGIL_ASSIGN_OR_RETURN(auto c, AwaitSend(wr));
  if (!c.ok()) return c.ToStatus(conn_->name()).WithContext("RDMA READ of an SSR");
  std::memcpy(mirror.data(), staging_->data(), region_bytes());
  return Status::Ok();
}

Result<Written> StoreSession::Save(const Grant& grant, std::span<std::byte> mirror,
                                   std::span<const std::byte> payload) {
  if (!broken_.ok()) return broken_;
  VIGIL_ASSIGN_OR_RETURN(Written w,
                         Write(mirror, capacity_, identity(grant.client), epoch_, payload));
  VIGIL_ASSIGN_OR_RETURN(auto dst, grant.region.At(w.offset, w.length));
  std::memcpy(staging_->data() + w.offset, mirror.data() + w.offset, w.length);
  const uint64_t wr = next_wr_++;
  VIGIL_RETURN_IF_ERROR(conn_->PostWrite(staging_->mr().Slice(w.offset, w.length), dst, wr));
  VIGIL_ASSIGN_OR_RETURN(auto c, AwaitSend(wr));
  if (!c.ok()) return c.ToStatus(conn_->name()).WithContext("RDMA WRITE of an SSR");
  return w;
}

Result<transport::WcStatus> StoreSession::ProbeWrite(transport::RemoteAddr dst, size_t len) {
  if (!broken_.ok()) return broken_;
  len = std::min(len, region_bytes());
  const uint64_t wr = next_wr_++;
  VIGIL_RETURN_IF_ERROR(conn_->PostWrite(staging_->mr().Slice(0, len), dst, wr));
  VIGIL_ASSIGN_OR_RETURN(auto c, AwaitSend(wr));
  return c.status;
}

}  // namespace vigil::ssr
