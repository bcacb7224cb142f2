// Subcommands of vigil-bench.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vigil::bench {

struct CommonBenchOptions {
  std::string transport = "verbs";  // or "fake" (in-process emulation, for smoke tests only)
  std::string device;
  std::string config;
  uint64_t iterations = 10000;
  uint64_t warmup = 1000;
  std::string perftest = "auto";  // auto | always | never
  std::string json;
};

struct TransportBenchOptions {
  CommonBenchOptions common;
  std::vector<uint32_t> sizes{8, 64, 256, 1024, 4096};
};

struct ChannelBenchOptions {
  CommonBenchOptions common;
  std::string method = "polling";           // polling | notify | rpc
  std::vector<uint32_t> sizes{8, 64, 200};  // event payload bytes
  uint32_t slots = 64;                      // ring slots (polling) or posted receives (notify)
};

struct SignalBenchOptions {
  CommonBenchOptions common;
  std::vector<std::string> methods{"polling", "notify", "rpc"};
  std::vector<std::string> modes{"simplex", "dmr", "tmr"};
  std::vector<uint32_t> sizes{8, 64, 1024};              // sync event argument bytes
  std::vector<std::string> workloads{"crc32", "susan"};  // empty: no overhead table
  uint32_t crc32_mib = 4;
  uint32_t spin_us = 20;
  bool pin = false;  // voter thread on CPU 0, replicas on the other CPUs in turn
};

int RunTransportBench(const TransportBenchOptions& options);
int RunSignalBench(const SignalBenchOptions& options);
int RunChannelBench(const ChannelBenchOptions& options);

}  // namespace vigil::bench
