// Subcommands of vigil-bench.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vigil::bench {

struct TransportBenchOptions {
  std::string transport = "verbs";  // or "fake" (in-process emulation, for smoke tests only)
  std::string device;
  std::string config;
  std::vector<uint32_t> sizes{8, 64, 256, 1024, 4096};
  uint64_t iterations = 10000;
  uint64_t warmup = 1000;
  std::string perftest = "auto";  // auto | always | never
  std::string json;
};

int RunTransportBench(const TransportBenchOptions& options);

}  // namespace vigil::bench
