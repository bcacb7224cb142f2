// Runs perftest's ib_write_lat (server and client on this host, same device) as the baseline for
// vigil's RDMA WRITE ping-pong, and parses its result line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "vigil/common/status.h"

namespace vigil::bench {

struct PerftestLatency {
  uint32_t bytes = 0;
  uint64_t iterations = 0;
  // perftest reports half of the round trip (one-way latency), in microseconds.
  double t_min = 0, t_max = 0, t_typical = 0, t_avg = 0, t_stdev = 0, p99 = 0, p999 = 0;
};

// Parses the result table line for `bytes` from ib_write_lat's output.
Result<PerftestLatency> ParseWriteLat(const std::string& output, uint32_t bytes);

// Cycles of the CPU timestamp counter per microsecond, measured against CLOCK_MONOTONIC over
// ~200 ms. perftest's own MHz estimate is wrong under software emulation (it reports inf or
// milliseconds), so vigil runs it with -C (raw cycles) and converts with this rate.
Result<double> CalibrateCyclesPerMicrosecond();

// Runs ib_write_lat server + client (each under `timeout`), returning the client's result in
// microseconds (converted from cycles with `cycles_per_us`).
Result<PerftestLatency> RunWriteLat(const std::string& device, int gid_index, uint32_t bytes,
                                    uint64_t iterations, int tcp_port, double cycles_per_us);

}  // namespace vigil::bench
