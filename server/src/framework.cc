#include "vigil/server/framework.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <string.h>
#include <sysexits.h>

#include <algorithm>
#include <cstring>

#include "vigil/common/logging.h"
#include "vigil/security/permissions.h"
#include "vigil/server/v1/restartable.grpc.pb.h"
#include "vigil/ssr/slot.h"

namespace vigil::server {
namespace {

namespace pb = vigil::server::v1;

std::shared_ptr<spdlog::logger> Log() { return log::Get("server"); }

template <typename T>
void Append(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

template <typename T>
bool Take(std::string_view& in, T& v) {
  if (in.size() < sizeof(T)) return false;
  std::memcpy(&v, in.data(), sizeof(T));
  in.remove_prefix(sizeof(T));
  return true;
}

bool TakeBytes(std::string_view& in, uint32_t n, std::string& out) {
  if (in.size() < n) return false;
  out.assign(in.data(), n);
  in.remove_prefix(n);
  return true;
}

std::string_view AsText(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace

// Zeroes a record's bytes and empties it.
static void Wipe(Record& r) {
  for (std::string* s : {&r.error, &r.reply, &r.state}) explicit_bzero(s->data(), s->size());
  r = Record{};
}

std::string EncodeRecord(const Record& r) {
  std::string out;
  Append<uint64_t>(out, r.request_id);
  Append<uint32_t>(out, static_cast<uint32_t>(r.code));
  const std::string_view error = std::string_view(r.error).substr(0, kMaxError);
  Append<uint32_t>(out, static_cast<uint32_t>(error.size()));
  Append<uint32_t>(out, static_cast<uint32_t>(r.reply.size()));
  Append<uint32_t>(out, static_cast<uint32_t>(r.state.size()));
  out.append(error);
  out.append(r.reply);
  out.append(r.state);
  return out;
}

Result<Record> DecodeRecord(std::string_view in) {
  Record r;
  uint32_t code = 0, elen = 0, rlen = 0, slen = 0;
  if (!Take(in, r.request_id) || !Take(in, code) || !Take(in, elen) || !Take(in, rlen) ||
      !Take(in, slen)) {
    return DataLoss("SSR record shorter than its header");
  }
  if (code > static_cast<uint32_t>(StatusCode::kInternal) || elen > kMaxError || rlen > kMaxReply ||
      static_cast<uint64_t>(elen) + rlen + slen != in.size()) {
    return DataLoss(fmt::format(
        "SSR record header out of range (code {}, error {} B, reply {} B, state {} B, {} B left)",
        code, elen, rlen, slen, in.size()));
  }
  r.code = static_cast<StatusCode>(code);
  if (!TakeBytes(in, elen, r.error) || !TakeBytes(in, rlen, r.reply) ||
      !TakeBytes(in, slen, r.state)) {
    return DataLoss("SSR record truncated");
  }
  return r;
}

size_t StateLimit(uint32_t capacity) {
  const size_t fixed = kRecordHeaderBytes + kMaxError + kMaxReply;
  return capacity > fixed ? capacity - fixed : 0;
}

namespace {

// With TLS, a client acts only as the client its certificate names: vigil://client/42 is client
// 42. (Without TLS nobody is authenticated, and any id is taken as given.)
grpc::Status BindClient(const grpc::ServerContext& ctx, std::string_view method, uint64_t client) {
  security::Identity who;
  if (grpc::Status st = security::AuthorizeCall(ctx, method, &who); !st.ok()) return st;
  if (who.unauthenticated || who.name == std::to_string(client)) return grpc::Status::OK;
  return grpc::Status(
      grpc::PERMISSION_DENIED,
      fmt::format("the certificate {} may act only as client {}", who.Uri(), who.name));
}

}  // namespace

class RestartableServer::Rpc final : public pb::Restartable::Service {
 public:
  explicit Rpc(RestartableServer& owner) : owner_(owner) {}

  grpc::Status Call(grpc::ServerContext* ctx, const pb::CallRequest* req,
                    pb::CallReply* resp) override {
    if (grpc::Status st = BindClient(*ctx, "/vigil.server.v1.Restartable/Call", req->client_id());
        !st.ok()) {
      return st;
    }
    if (req->client_id() == 0 || req->request_id() == 0) {
      return grpc::Status(grpc::INVALID_ARGUMENT, "client_id and request_id must be non-zero");
    }
    if (req->body().size() > owner_.options_.max_request) {
      return grpc::Status(grpc::INVALID_ARGUMENT,
                          fmt::format("request body of {} bytes exceeds {}", req->body().size(),
                                      owner_.options_.max_request));
    }
    owner_.in_flight_.fetch_add(1, std::memory_order_relaxed);
    auto r = owner_.Call(req->client_id(), req->request_id(), req->last_recorded(), req->body());
    // Relaxed: the probe only compares counts between its own reads; no data hangs on them.
    owner_.in_flight_.fetch_sub(1, std::memory_order_relaxed);
    owner_.completed_.fetch_add(1, std::memory_order_relaxed);
    if (!r.ok()) return grpc::Status(grpc::UNAVAILABLE, r.status().ToString());
    resp->set_request_id(r->request_id);
    resp->set_code(static_cast<uint32_t>(r->code));
    resp->set_error(r->error);
    resp->set_body(r->body);
    resp->set_epoch(owner_.epoch());
    resp->set_replayed(r->replayed);
    resp->set_reset(r->reset);
    resp->set_recorded(r->recorded);
    return grpc::Status::OK;
  }

  grpc::Status Bye(grpc::ServerContext* ctx, const pb::ByeRequest* req, pb::ByeReply*) override {
    if (grpc::Status st = BindClient(*ctx, "/vigil.server.v1.Restartable/Bye", req->client_id());
        !st.ok()) {
      return st;
    }
    Status st = owner_.Bye(req->client_id());
    if (!st.ok() && st.code() != StatusCode::kNotFound) {
      return grpc::Status(grpc::UNAVAILABLE, st.ToString());
    }
    return grpc::Status::OK;
  }

  grpc::Status Health(grpc::ServerContext* ctx, const pb::HealthRequest*,
                      pb::HealthReply* resp) override {
    if (grpc::Status st = security::AuthorizeCall(*ctx, "/vigil.server.v1.Restartable/Health");
        !st.ok()) {
      return st;
    }
    resp->set_epoch(owner_.epoch());
    resp->set_completed(owner_.completed_.load(std::memory_order_relaxed));
    resp->set_in_flight(owner_.in_flight_.load(std::memory_order_relaxed));
    resp->set_instance(owner_.instance_);
    return grpc::Status::OK;
  }

 private:
  RestartableServer& owner_;
};

RestartableServer::RestartableServer(std::unique_ptr<Service> service, ServerOptions options)
    : service_(std::move(service)), options_(std::move(options)) {
  std::random_device rd;
  instance_ = (static_cast<uint64_t>(rd()) << 32) | rd();
  crash_rng_.seed(static_cast<uint32_t>(instance_));
}

RestartableServer::~RestartableServer() { Shutdown(); }

Result<std::unique_ptr<RestartableServer>> RestartableServer::Start(
    transport::Transport* transport, std::unique_ptr<Service> service, ServerOptions options) {
  options.store.service = std::string(service->name());
  if (transport == nullptr && !options.store.store.empty()) {
    return InvalidArgument(fmt::format("server '{}': an SSR store ({}) but no RDMA transport",
                                       options.store.instance, options.store.store));
  }
  std::unique_ptr<RestartableServer> s(
      new RestartableServer(std::move(service), std::move(options)));
  if (s->options_.store.store.empty()) {
    Log()->info(
        "{} server '{}' runs WITHOUT an SSR store: client state is lost when it "
        "stops (a baseline for benchmarks, not a restartable server)",
        s->service_->name(), s->options_.store.instance);
    VIGIL_RETURN_IF_ERROR(s->Listen());
    return s;
  }
  VIGIL_ASSIGN_OR_RETURN(s->session_, ssr::StoreSession::Open(*transport, s->options_.store));
  if (StateLimit(s->session_->capacity()) < 64) {
    return FailedPrecondition(fmt::format(
        "the SSR store's capacity of {} bytes leaves {} bytes for a client's state: configure "
        "the store with at least {} bytes",
        s->session_->capacity(), StateLimit(s->session_->capacity()),
        kRecordHeaderBytes + kMaxError + kMaxReply + 64));
  }
  if (s->service_->recovery() == Recovery::kAllClients) VIGIL_RETURN_IF_ERROR(s->RecoverAll());
  VIGIL_RETURN_IF_ERROR(s->Listen());
  return s;
}

Status RestartableServer::Listen() {
  rpc_ = std::make_unique<Rpc>(*this);
  grpc::ServerBuilder builder;
  VIGIL_RETURN_IF_ERROR(
      security::AddPort(builder, security::OrProcessTls(options_.tls), options_.listen, &port_));
  builder.RegisterService(rpc_.get());
  grpc_ = builder.BuildAndStart();
  if (!grpc_ || port_ == 0) {
    return Unavailable(fmt::format("server '{}' cannot listen on '{}' (address in use?)",
                                   service_->name(), options_.listen));
  }
  Log()->info("{} server '{}' serving on port {} (SSR epoch {}, {} recovery)", service_->name(),
              options_.store.instance, port_, epoch(),
              service_->recovery() == Recovery::kAllClients ? "all-clients" : "per-client");
  return Status::Ok();
}

void RestartableServer::Shutdown() {
  if (grpc_) {
    grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    grpc_.reset();
  }
}

uint64_t RestartableServer::epoch() const { return session_ ? session_->epoch() : 0; }

ServerStats RestartableServer::Stats() const {
  MutexLock lock(mu_);
  return stats_;
}

void RestartableServer::FailStop(const Status& why) {
  Log()->critical(
      "{} server '{}': the SSR store failed ({}); exiting so that the supervisor "
      "restarts this server from the SSRs",
      service_->name(), options_.store.instance, why.ToString());
  spdlog::shutdown();
  std::_Exit(EX_TEMPFAIL);
}

bool RestartableServer::ResetPending(const Record& r) {
  return r.code == StatusCode::kDataLoss && r.request_id == 0 && !r.error.empty();
}

void RestartableServer::MarkReset(uint64_t client, Record& r, std::string_view what,
                                  const Status& why) {
  stats_.resets++;
  Log()->error("{} client {}: {}, session reset: {}", service_->name(), client, what,
               why.ToString());
  r = Record{};
  r.code = StatusCode::kDataLoss;
  r.error = fmt::format("session reset by the server: {}", why.message());
}

void RestartableServer::Visit::Wipe() {
  explicit_bzero(mirror.data(), mirror.size());
  server::Wipe(record);
}

Status RestartableServer::SaveRecord(const ssr::Grant& grant, Visit& v, const Record& r) {
  std::string bytes = EncodeRecord(r);
  Status st = session_->Save(grant, v.mirror, std::as_bytes(std::span(bytes.data(), bytes.size())))
                  .status();
  explicit_bzero(bytes.data(), bytes.size());
  return st;
}

Status RestartableServer::LoadClient(const ssr::Grant& grant, Visit& v) {
  v.mirror.assign(session_->region_bytes(), std::byte{0});
  v.record = Record{};
  if (grant.created) return Status::Ok();
  Status st = session_->Load(grant, v.mirror);
  if (!st.ok()) return st;  // the store or the connection failed: not the client's fault
  stats_.loads++;
  auto state = ssr::Read(v.mirror, session_->capacity(), session_->identity(grant.client));
  if (state.status().code() == StatusCode::kNotFound) return Status::Ok();
  Status bad;
  if (!state.ok()) {
    bad = state.status();
  } else if (state->epoch > session_->epoch()) {
    bad = DataLoss(fmt::format("SSR written in epoch {}, after the current epoch {}", state->epoch,
                               session_->epoch()));
  } else {
    auto record = DecodeRecord(AsText(state->payload));
    if (!record.ok()) {
      bad = record.status();
    } else {
      bad = service_->Validate(grant.client, record->state);
      if (bad.ok()) v.record = std::move(*record);
    }
  }
  if (!bad.ok()) MarkReset(grant.client, v.record, "state does not validate", bad);
  return Status::Ok();
}

Status RestartableServer::RecoverAll() {
  const auto start = std::chrono::steady_clock::now();
  MutexLock lock(mu_);  // before Listen: nothing else runs yet
  VIGIL_ASSIGN_OR_RETURN(auto clients, session_->Clients());
  // In a conflict the client adopted first keeps what it claims, and which SSR is wrong cannot be
  // known: adopt in client id order, so that every restart makes the same choice.
  std::sort(clients.begin(), clients.end());
  for (uint64_t client : clients) {
    VIGIL_ASSIGN_OR_RETURN(ssr::Grant g, session_->Acquire(client, false));
    Status st = LoadClient(g, visit_);
    if (st.ok() && !ResetPending(visit_.record)) {
      Status adopt = service_->Adopt(client, visit_.record.state);
      if (!adopt.ok()) {
        MarkReset(client, visit_.record, "state conflicts with another client's", adopt);
        // The one write outside a call of the client, made before serving anyone and under
        // this client's grant: its SSR then says it was reset, so that a later restart does
        // not adopt the conflicting claim and displace a client that was served since.
        st = SaveRecord(g, visit_, visit_.record);
      }
    }
    visit_.Wipe();
    VIGIL_RETURN_IF_ERROR(st);
    VIGIL_RETURN_IF_ERROR(session_->Release(g));
  }
  stats_.startup_recovery = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  Log()->info("{}: recovered {} client(s) from their SSRs in {} us ({} reset)", service_->name(),
              clients.size(), stats_.startup_recovery.count(), stats_.resets);
  return Status::Ok();
}

RestartableServer::Reply RestartableServer::Decide(uint64_t client, Record& rec,
                                                   uint64_t request_id, uint64_t last_recorded,
                                                   std::string_view body, Record& next,
                                                   bool& save) {
  save = false;
  if (last_recorded > rec.request_id && !ResetPending(rec)) {
    // The client holds a recorded answer to a later request than this record: the SSR lost
    // answered requests (its newest slot corrupted, the region wiped, or a server without a
    // store restarted). Building on the older state would silently undo them.
    MarkReset(client, rec, "state is older than the client's answers",
              DataLoss(fmt::format("the client's record is of request {}, but request {} was "
                                   "answered and recorded",
                                   rec.request_id, last_recorded)));
  }
  Reply out;
  out.request_id = request_id;
  if (request_id == rec.request_id) {
    stats_.replayed++;
    out.code = rec.code;
    out.error = rec.error;
    out.body = rec.reply;
    out.replayed = true;
    out.recorded = true;
    return out;
  }
  if (request_id < rec.request_id) {
    out.code = StatusCode::kFailedPrecondition;
    out.error = fmt::format("request {} is older than the last one executed ({})", request_id,
                            rec.request_id);
    return out;
  }
  next = Record{};
  next.request_id = request_id;
  // A reset found at start-up, or just now while loading: this call reports it instead of
  // executing.
  out.reset = ResetPending(rec);
  if (out.reset) {
    next.code = StatusCode::kDataLoss;
    next.error = rec.error;
    service_->Forget(client);
  } else {
    std::string state = rec.state;
    Status answer = service_->Handle(client, state, body, next.reply, StateLimit(capacity()));
    next.code = answer.code();
    next.error = std::string(answer.message()).substr(0, kMaxError);
    if (state.size() > StateLimit(capacity()) || next.reply.size() > kMaxReply) {
      FailStop(Internal(fmt::format(
          "service '{}' produced {} B of state (limit {}) and {} B of reply (limit {})",
          service_->name(), state.size(), StateLimit(capacity()), next.reply.size(), kMaxReply)));
    }
    next.state = std::move(state);
    stats_.executed++;
  }
  out.code = next.code;
  out.error = next.error;
  out.body = next.reply;
  out.recorded = true;
  save = true;
  return out;
}

Result<RestartableServer::Reply> RestartableServer::Call(uint64_t client, uint64_t request_id,
                                                         uint64_t last_recorded,
                                                         std::string_view body) {
  MutexLock lock(mu_);
  stats_.calls++;
  Record next;
  bool save = false;
  if (!session_) {
    Record& rec = volatile_[client];
    Reply out = Decide(client, rec, request_id, last_recorded, body, next, save);
    if (save) rec = std::move(next);
    return out;
  }
  auto t0 = std::chrono::steady_clock::now();
  auto g = session_->Acquire(client, true);
  stats_.grant_time += std::chrono::steady_clock::now() - t0;
  if (!g.ok()) {
    if (session_->broken()) FailStop(g.status());
    // The store refused (e.g. its arena is full): an answer for the client, not a fault of this
    // server; nothing was executed, so the client may try again later.
    Reply refused;
    refused.request_id = request_id;
    refused.code = g.status().code();
    refused.error = std::string(g.status().message()).substr(0, kMaxError);
    return refused;
  }
  const ssr::Grant& grant = *g;
  t0 = std::chrono::steady_clock::now();
  if (Status st = LoadClient(grant, visit_); !st.ok()) FailStop(st);
  stats_.load_time += std::chrono::steady_clock::now() - t0;
  Reply out = Decide(client, visit_.record, request_id, last_recorded, body, next, save);
  if (save) {
    t0 = std::chrono::steady_clock::now();
    if (Status saved = SaveRecord(grant, visit_, next); !saved.ok()) FailStop(saved);
    stats_.save_time += std::chrono::steady_clock::now() - t0;
    if (options_.crash_after_save > 0 &&
        std::uniform_real_distribution<double>(0, 1)(crash_rng_) < options_.crash_after_save) {
      Log()->warn(
          "fault injection: SIGKILL between the SSR write of client {}'s request {} and "
          "its reply",
          client, request_id);
      spdlog::shutdown();
      raise(SIGKILL);
    }
  }
  // Asynchronous: the next request on the session waits for it.
  if (Status st = session_->Release(grant); !st.ok()) FailStop(st);
  visit_.Wipe();
  Wipe(next);
  return out;
}

uint32_t RestartableServer::capacity() const {
  return session_ ? session_->capacity() : kVolatileCapacity;
}

Status RestartableServer::Bye(uint64_t client) {
  MutexLock lock(mu_);
  service_->Forget(client);
  if (!session_) {
    volatile_.erase(client);
    return Status::Ok();
  }
  Status st = session_->Free(client);
  if (!st.ok() && session_->broken()) FailStop(st);
  return st;
}

}  // namespace vigil::server
