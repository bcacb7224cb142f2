// The rpc method's baseline: a bare gRPC unary echo of the signal service over loopback.
#pragma once

#include <cstdint>
#include <memory>

#include "vigil/common/histogram.h"
#include "vigil/common/status.h"
#include "vigil/security/tls.h"
#include "vigil/signal/v1/signal.pb.h"

namespace vigil::bench {

// The echo service on 127.0.0.1 (any port), with `tls`'s credentials on both ends: the same
// gRPC service answering in its handler, with no vigil logic and no hand-off to a voter thread.
class EchoServer {
 public:
  static Result<std::unique_ptr<EchoServer>> Start(const security::TlsOptions& tls);
  ~EchoServer();
  // One round trip of `req`: its time in nanoseconds.
  Result<uint64_t> Call(const vigil::signal::v1::EventRecord& req);

 private:
  EchoServer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Round trips of `bytes`-byte payloads: `warmup` unrecorded, then `iterations` recorded.
Result<LatencySummary> MeasureGrpcEcho(uint64_t warmup, uint64_t iterations, uint32_t bytes);

}  // namespace vigil::bench
