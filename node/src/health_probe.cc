#include "health_probe.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include "vigil/security/tls.h"
#include "vigil/server/v1/restartable.grpc.pb.h"

namespace vigil::node {

struct HealthProbe::Stub {
  std::unique_ptr<server::v1::Restartable::Stub> stub;
};

HealthProbe::HealthProbe(const std::string& target, const ProbePolicy& policy,
                         Clock::time_point started)
    : stub_(std::make_unique<Stub>()), target_(target), policy_(policy), started_(started) {
  // The node's TLS options; the address was checked when the node started (a channel that cannot
  // be made leaves the stub null, and every probe misses).
  auto channel = security::Channel(security::ProcessTls(), target, security::Role::kServer);
  if (channel.ok()) stub_->stub = server::v1::Restartable::NewStub(*channel);
  error_ = channel.ok() ? "" : channel.status().message();
}

HealthProbe::~HealthProbe() = default;

std::string HealthProbe::Check(Clock::time_point now) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + policy_.deadline);
  server::v1::HealthReply r;
  const grpc::Status st = stub_->stub == nullptr
                              ? grpc::Status(grpc::StatusCode::UNAVAILABLE, error_)
                              : stub_->stub->Health(&ctx, server::v1::HealthRequest{}, &r);
  if (!st.ok()) {
    // Misses count once it has answered, or once it had its start-up grace to begin answering.
    if (answered_ || now - started_ >= policy_.grace) ++missed_;
    if (missed_ < policy_.failures) return "";
    return fmt::format("it missed {} health probes in a row at {} ({} ms deadline each; last: {})",
                       missed_, target_, policy_.deadline.count(), st.error_message());
  }
  answered_ = true;
  missed_ = 0;
  if (r.in_flight() == 0 || r.completed() != completed_) {
    stalled_since_.reset();
  } else if (!stalled_since_) {
    stalled_since_ = now;
  } else if (now - *stalled_since_ >= policy_.stuck) {
    return fmt::format(
        "{} call(s) in flight and none completed for {} ms", r.in_flight(),
        std::chrono::duration_cast<std::chrono::milliseconds>(now - *stalled_since_).count());
  }
  completed_ = r.completed();
  return "";
}

}  // namespace vigil::node
