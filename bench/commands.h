// Subcommands of vigil-bench.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vigil/voter/group.h"

namespace vigil::bench {

struct CommonBenchOptions {
  std::string transport = "verbs";  // or "fake" (in-process emulation, for smoke tests only)
  std::string device;
  std::string config;
  uint64_t iterations = 10000;
  uint64_t warmup = 1000;
  std::string perftest = "auto";  // auto | always | never
  uint32_t pairs = 5;             // alternating rounds of vigil and its baseline per size
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
  uint32_t runs = 3;  // runs per overhead row (each column: the median)
  uint32_t spin_us = 20;
  bool pin = false;  // voter thread on CPU 0, replicas on the other CPUs in turn
  uint32_t max_lag = voter::GroupOptions{}.max_lag;  // TMR: 0 waits for all three every round
};

struct SsrBenchOptions {
  CommonBenchOptions common;
  // Kill loop (either set): servers started elsewhere under a supervisor.
  std::string kv;        // host:port of a kv vigil-server
  std::string lock;      // host:port of a lock vigil-server
  uint32_t clients = 3;  // per service
  uint32_t duration_s = 20;
  uint32_t kill_min_ms = 1000, kill_max_ms = 3000;
  bool kill = true;
  uint32_t seed = 1;
  uint32_t call_deadline_ms = 60000;  // kill loop: how long a client call may stay suspended
  uint32_t kills = 0;                 // kill loop: stop after this many strikes (0: duration only)
  uint32_t hang_percent = 0;          // kill loop: strikes that SIGSTOP instead of SIGKILL
  // Kill loop with TLS: one --tls-dir per client thread, each a client certificate
  // (vigil://client/ID) whose ID the thread acts as (the same ones serve kv and lock).
  std::vector<std::string> client_tls_dirs;
  uint32_t spin_us = 20;  // latency: the server polls the store's answers this long, then sleeps
};

struct TlsBenchOptions {
  CommonBenchOptions common;
  std::vector<uint32_t> sizes{64};  // rpc payload bytes
  uint32_t connects = 200;          // bootstrap connections per mode
};

struct RunBenchOptions {
  CommonBenchOptions common;
  std::vector<std::string> methods{"polling", "notify", "rpc"};
  std::vector<std::string> modes{"simplex", "dmr", "tmr"};
  std::vector<std::string> programs{"sha256sum", "cksum", "sort", "gzip"};
  std::vector<std::string> executors{"process", "in-process"};
  uint32_t input_mib = 4;
  uint32_t repeats = 3;  // plain runs (the best one is the reference)
  uint32_t spin_us = 20;
};

struct FaultsBenchOptions {
  CommonBenchOptions common;
  std::vector<std::string> workloads{"crc32", "susan", "sha256sum", "sort", "gzip", "kv"};
  std::vector<std::string> modes{"dmr", "tmr"};
  std::vector<std::string> methods{"polling"};
  std::vector<std::string> kinds;  // empty: every kind that fits each workload
  uint64_t injections = 1000;
  uint64_t seed = 1;
  std::vector<uint64_t> only;  // not empty: run only these injections (to reproduce them)
  uint32_t input_kib = 64;     // crc32's and the programs' input
  uint32_t deadline_ms = 5000;
};

int RunFaultsBench(const FaultsBenchOptions& options);
int RunRunBench(const RunBenchOptions& options);
int RunSsrBench(const SsrBenchOptions& options);
int RunKillLoop(const SsrBenchOptions& options);  // ssr with --kv/--lock (ssr_kill_loop.cc)
int RunTransportBench(const TransportBenchOptions& options);
int RunSignalBench(const SignalBenchOptions& options);
int RunChannelBench(const ChannelBenchOptions& options);
int RunTlsBench(const TlsBenchOptions& options);

}  // namespace vigil::bench
