#include "vigil/server/client.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <random>
#include <thread>

#include "vigil/common/logging.h"
#include "vigil/server/v1/restartable.grpc.pb.h"

namespace vigil::server {
namespace {

namespace pb = vigil::server::v1;
using Clock = std::chrono::steady_clock;

// gRPC failures that mean "the server is not there right now": wait and retry.
bool Transient(grpc::StatusCode c) {
  return c == grpc::UNAVAILABLE || c == grpc::DEADLINE_EXCEEDED || c == grpc::CANCELLED ||
         c == grpc::ABORTED || c == grpc::UNKNOWN || c == grpc::INTERNAL;
}

}  // namespace

struct Client::Stub {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::Restartable::Stub> stub;
};

Client::Client(ClientOptions options) : options_(std::move(options)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  if (options.server.empty()) return InvalidArgument("client: no server address");
  if (options.deadline.count() <= 0 || options.attempt_timeout.count() <= 0) {
    return InvalidArgument("client: deadline and attempt_timeout must be positive");
  }
  std::unique_ptr<Client> c(new Client(options));
  while (c->options_.client_id == 0)
    c->options_.client_id = std::random_device{}() * 4294967296ull + std::random_device{}();
  grpc::ChannelArguments args;
  // Reconnect quickly after a server restart (the default backoff grows to minutes): 10 ms, up
  // to 50 ms, between attempts. gRPC also gives each connection attempt (TCP and, with TLS, the
  // handshake) the "min reconnect backoff" to finish: at 10 ms, TLS handshakes on a loaded or
  // emulated machine never finished and every client retried them in a storm.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 10);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 5000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 50);
  c->stub_ = std::make_unique<Stub>();
  VIGIL_ASSIGN_OR_RETURN(c->stub_->channel,
                         security::Channel(security::OrProcessTls(options.tls), options.server,
                                           security::Role::kServer, args));
  c->stub_->stub = pb::Restartable::NewStub(c->stub_->channel);
  return c;
}

Result<std::string> Client::Call(std::string_view body) {
  pb::CallRequest req;
  req.set_client_id(options_.client_id);
  req.set_request_id(next_request_++);
  req.set_last_recorded(last_recorded_);
  req.set_body(std::string(body));
  last_ = CallInfo{};
  const auto start = Clock::now();
  const auto deadline = start + options_.deadline;
  auto backoff = std::chrono::milliseconds(5);
  Clock::time_point first_failure{};
  for (;;) {
    last_.attempts++;
    grpc::ClientContext ctx;
    const auto attempt_end = std::min(deadline, Clock::now() + options_.attempt_timeout);
    ctx.set_deadline(std::chrono::system_clock::now() + (attempt_end - Clock::now()));
    ctx.set_wait_for_ready(true);  // a restarting server: wait for it within the attempt
    pb::CallReply resp;
    grpc::Status st = stub_->stub->Call(&ctx, req, &resp);
    if (st.ok()) {
      if (resp.request_id() != req.request_id() ||
          resp.code() > static_cast<uint32_t>(StatusCode::kInternal)) {
        return DataLoss(fmt::format("server answered request {} with request {} code {}",
                                    req.request_id(), resp.request_id(), resp.code()));
      }
      if (resp.recorded()) last_recorded_ = req.request_id();
      last_.replayed = resp.replayed();
      last_.reset = resp.reset();
      last_.epoch = resp.epoch();
      if (first_failure != Clock::time_point{}) {
        last_.suspended =
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - first_failure);
      }
      const auto code = static_cast<StatusCode>(resp.code());
      if (code != StatusCode::kOk) return Status(code, resp.error());
      return std::move(*resp.mutable_body());
    }
    if (!Transient(st.error_code())) {
      const StatusCode code =
          st.error_code() == grpc::StatusCode::PERMISSION_DENIED ? StatusCode::kPermissionDenied
          : st.error_code() == grpc::StatusCode::UNAUTHENTICATED ? StatusCode::kUnauthenticated
                                                                 : StatusCode::kInvalidArgument;
      return Status(
          code, fmt::format("server {} refused the call: {}", options_.server, st.error_message()));
    }
    if (first_failure == Clock::time_point{}) {
      first_failure = Clock::now();
      log::Get("client")->debug("client {}: request {} suspended: {}", options_.client_id,
                                req.request_id(), st.error_message());
    }
    if (Clock::now() + backoff >= deadline) {
      // Suspended for the whole deadline: the server is restarting, or its store is down.
      return Unavailable(fmt::format(
          "server {} did not answer request {} within the call's deadline of {} ms ({} attempts; "
          "it is down, restarting, or waiting for its SSR store; last: {})",
          options_.server, req.request_id(), options_.deadline.count(), last_.attempts,
          st.error_message()));
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(50));
  }
}

Status Client::Bye() {
  const auto deadline = Clock::now() + options_.deadline;
  for (;;) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + options_.attempt_timeout);
    ctx.set_wait_for_ready(true);
    pb::ByeRequest req;
    req.set_client_id(options_.client_id);
    pb::ByeReply resp;
    grpc::Status st = stub_->stub->Bye(&ctx, req, &resp);
    if (st.ok()) return Status::Ok();
    if (!Transient(st.error_code()) || Clock::now() >= deadline) {
      return Unavailable(fmt::format("bye to {}: {}", options_.server, st.error_message()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace vigil::server
