// The rpc method's baseline: a bare gRPC unary echo of the signal service over loopback.
#pragma once

#include <cstdint>

#include "vigil/common/histogram.h"
#include "vigil/common/status.h"

namespace vigil::bench {

// Round trips of `bytes`-byte payloads: `warmup` unrecorded, then `iterations` recorded.
Result<LatencySummary> MeasureGrpcEcho(uint64_t warmup, uint64_t iterations, uint32_t bytes);

}  // namespace vigil::bench
