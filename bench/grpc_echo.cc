#include "grpc_echo.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <chrono>

#include "vigil/signal/v1/signal.grpc.pb.h"

namespace vigil::bench {
namespace {

using namespace std::chrono_literals;
constexpr auto kStall = 20s;
constexpr uint32_t kEvent = 1;

class EchoVoter final : public vigil::signal::v1::Voter::Service {
  grpc::Status Signal(grpc::ServerContext*, const vigil::signal::v1::EventRecord* req,
                      vigil::signal::v1::EventRecord* resp) override {
    *resp = *req;
    return grpc::Status::OK;
  }
};

}  // namespace

struct EchoServer::Impl {
  EchoVoter service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<vigil::signal::v1::Voter::Stub> stub;
};

EchoServer::EchoServer() : impl_(std::make_unique<Impl>()) {}

EchoServer::~EchoServer() {
  if (impl_->server) impl_->server->Shutdown(std::chrono::system_clock::now() + 500ms);
}

Result<std::unique_ptr<EchoServer>> EchoServer::Start(const security::TlsOptions& tls) {
  std::unique_ptr<EchoServer> e(new EchoServer());
  int port = 0;
  grpc::ServerBuilder b;
  VIGIL_RETURN_IF_ERROR(security::AddPort(b, tls, "127.0.0.1:0", &port));
  b.RegisterService(&e->impl_->service);
  e->impl_->server = b.BuildAndStart();
  if (!e->impl_->server || port == 0) {
    return Unavailable("gRPC echo baseline cannot listen on 127.0.0.1");
  }
  VIGIL_ASSIGN_OR_RETURN(auto channel,
                         security::Channel(tls, fmt::format("127.0.0.1:{}", port), std::nullopt));
  e->impl_->stub = vigil::signal::v1::Voter::NewStub(channel);
  return e;
}

Result<uint64_t> EchoServer::Call(const vigil::signal::v1::EventRecord& req) {
  vigil::signal::v1::EventRecord resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kStall);
  const auto t0 = std::chrono::steady_clock::now();
  grpc::Status st = impl_->stub->Signal(&ctx, req, &resp);
  const auto t1 = std::chrono::steady_clock::now();
  if (!st.ok()) return Unavailable("gRPC echo baseline: " + st.error_message());
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
}

Result<LatencySummary> MeasureGrpcEcho(uint64_t warmup, uint64_t iterations, uint32_t bytes) {
  // Plaintext on loopback, through the one place that allows it (security::TlsOptions::insecure).
  security::TlsOptions plain;
  plain.insecure = true;
  VIGIL_ASSIGN_OR_RETURN(auto echo, EchoServer::Start(plain));
  vigil::signal::v1::EventRecord req;
  req.set_kind(kEvent);
  req.set_payload(std::string(bytes, 'Z'));
  LatencySamples samples(iterations);
  const uint64_t total = warmup + iterations;
  for (uint64_t i = 0; i < total; ++i) {
    req.set_seq(i + 1);
    VIGIL_ASSIGN_OR_RETURN(uint64_t ns, echo->Call(req));
    if (i >= warmup) samples.Record(ns);
  }
  return samples.Summarize();
}

}  // namespace vigil::bench
