#include "grpc_echo.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <chrono>

#include "vigil/security/tls.h"
#include "vigil/signal/v1/signal.grpc.pb.h"

namespace vigil::bench {
namespace {

using namespace std::chrono_literals;
constexpr auto kStall = 20s;
constexpr uint32_t kEvent = 1;

// The rpc method's baseline: the same gRPC service answering in its handler, with no vigil
// logic and no hand-off to a voter thread.
class EchoVoter final : public vigil::signal::v1::Voter::Service {
  grpc::Status Signal(grpc::ServerContext*, const vigil::signal::v1::EventRecord* req,
                      vigil::signal::v1::EventRecord* resp) override {
    *resp = *req;
    return grpc::Status::OK;
  }
};

}  // namespace

Result<LatencySummary> MeasureGrpcEcho(uint64_t warmup, uint64_t iterations, uint32_t bytes) {
  EchoVoter service;
  int port = 0;
  // Plaintext on loopback, through the one place that allows it (security::TlsOptions::insecure).
  security::TlsOptions plain;
  plain.insecure = true;
  VIGIL_ASSIGN_OR_RETURN(auto creds, security::ServerCredentials(plain, "127.0.0.1:0"));
  grpc::ServerBuilder b;
  b.AddListeningPort("127.0.0.1:0", creds, &port);
  b.RegisterService(&service);
  auto server = b.BuildAndStart();
  if (!server || port == 0) return Unavailable("gRPC echo baseline cannot listen on 127.0.0.1");
  VIGIL_ASSIGN_OR_RETURN(auto channel, security::Channel(plain, fmt::format("127.0.0.1:{}", port)));
  auto stub = vigil::signal::v1::Voter::NewStub(channel);
  vigil::signal::v1::EventRecord req, resp;
  req.set_kind(kEvent);
  req.set_payload(std::string(bytes, 'Z'));
  LatencySamples samples(iterations);
  const uint64_t total = warmup + iterations;
  for (uint64_t i = 0; i < total; ++i) {
    req.set_seq(i + 1);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kStall);
    const auto t0 = std::chrono::steady_clock::now();
    grpc::Status st = stub->Signal(&ctx, req, &resp);
    const auto t1 = std::chrono::steady_clock::now();
    if (!st.ok()) return Unavailable("gRPC echo baseline: " + st.error_message());
    if (i >= warmup) {
      samples.Record(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
    }
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  return samples.Summarize();
}

}  // namespace vigil::bench
