// Runs a perftest latency tool (ib_write_lat, ib_send_lat; server and client on this host, same
// device) as the baseline for a vigil benchmark, and parses its result line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "vigil/common/status.h"

namespace vigil::bench {

struct PerftestLatency {
  uint32_t bytes = 0;
  uint64_t iterations = 0;
  uint32_t inline_bytes = 0;  // the -I it ran with (0: perftest's default)
  // perftest reports half of the round trip (one-way latency), in microseconds.
  double t_min = 0, t_max = 0, t_typical = 0, t_avg = 0, t_stdev = 0, p99 = 0, p999 = 0;
};

// Which perftest tool and extra flags (e.g. {"ib_send_lat", "-e"} for event-driven completions).
struct Baseline {
  std::string tool = "ib_write_lat";
  std::string flags;
  // Measured by the benchmark itself in each round (Row::baseline_rtt, e.g. a bare gRPC echo),
  // not by running `tool`.
  bool in_process = false;
  // perftest runs pinned like the benchmark's own threads (PerftestPlacement).
  bool pinned = true;
};

// Parses the result table line for `bytes` from a perftest latency tool's output.
Result<PerftestLatency> ParseLatency(const std::string& output, uint32_t bytes);

// Cycles of the CPU timestamp counter per microsecond, measured against CLOCK_MONOTONIC over
// ~200 ms. perftest's own MHz estimate is wrong under software emulation (it reports inf or
// milliseconds), so vigil runs it with -C (raw cycles) and converts with this rate.
Result<double> CalibrateCyclesPerMicrosecond();

// How perftest runs beside vigil: on the cores vigil's benchmark threads are pinned to (server
// on core 1, client on core 0, as RunPinned does; not pinned on a 1-core machine) and with
// vigil's requested inline size (-I).
struct PerftestPlacement {
  bool pin = true;
  uint32_t inline_bytes = 0;  // 0: perftest's default
};

// Runs the baseline's server + client (each under `timeout`), returning the client's result in
// microseconds (converted from cycles with `cycles_per_us`).
Result<PerftestLatency> RunLatency(const Baseline& baseline, const std::string& device,
                                   int gid_index, uint32_t bytes, uint64_t iterations, int tcp_port,
                                   double cycles_per_us, const PerftestPlacement& placement = {});

}  // namespace vigil::bench
