// What every latency benchmark of vigil-bench shares: opening the transport, a loopback
// bootstrap between a pinned server thread and the pinned calling thread, and the report with
// perftest's ib_write_lat measured in the same run.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "perftest.h"
#include "vigil/common/histogram.h"
#include "vigil/testing/thread_launcher.h"
#include "vigil/transport/bootstrap.h"
#include "vigil/transport/transport.h"
#include "vigil/transport/verbs.h"
#include "vigil/voter/group.h"

namespace vigil::bench {

struct BenchSetup {
  std::unique_ptr<transport::Transport> transport;  // null for benchmarks without RDMA (rpc)
  transport::VerbsOptions verbs;
  transport::ConnectionOptions conn;
  std::string device_name;  // "fake" for the fake transport
  int gid_index = 0;
};

Result<BenchSetup> OpenTransport(const CommonBenchOptions& options);
// The device line of the environment header.
std::string Describe(const BenchSetup& setup);
// OpenTransport, then the environment header; errors are printed and yield nullopt.
std::optional<BenchSetup> OpenAndDescribe(const CommonBenchOptions& options);

// One end of a benchmark connection.
struct Side {
  std::vector<transport::RemoteRegion> regions;           // advertised to the peer
  std::function<Status(transport::Connection&)> prepare;  // before connecting (post receives)
  std::function<Status(transport::Connection&, const transport::PeerInfo&)> run;
};

// Connects `server` and `client` over a loopback bootstrap, runs server.run on a thread pinned to
// core 1 and client.run on the calling thread pinned to core 0, and restores the calling thread's
// CPU mask afterwards (children inherit it: perftest must not be squeezed onto one core).
Status RunPair(BenchSetup& setup, Side server, Side client);

// Runs `server` on a thread pinned to core 1 and `client` on the calling thread pinned to core 0
// (restored afterwards); returns the client's status, else the server's.
Status RunPinned(const std::function<Status()>& server, const std::function<Status()>& client);

struct Row {
  uint32_t bytes = 0;       // payload size, as shown
  uint32_t wire_bytes = 0;  // bytes per message; a perftest baseline uses this size
  LatencySummary rtt;
  // A baseline measured in this process (e.g. a bare gRPC echo); otherwise perftest is run.
  std::optional<LatencySummary> baseline_rtt;
};

// One round of vigil's measurement at `bytes`: `iterations` samples after the options' warm-up.
using MeasureFn = std::function<Result<Row>(uint32_t bytes, uint64_t iterations)>;

// Measures every size and prints the table with its baseline (the row's own baseline_rtt when
// `baseline.in_process`, else the perftest `baseline` when enabled, at the payload size and at
// the wire size), writes JSON, returns the exit code. With a baseline, vigil and the baseline
// run in options.pairs alternating rounds per size (--iters split among them); the ratio is the
// median of the rounds' ratios, printed with its min-max. `target_ratio` <= 0: no target line.
// `collect` (optional): append the table's JSON there instead of writing options.json.
int Report(const BenchSetup& setup, const CommonBenchOptions& options, const std::string& title,
           const Baseline& baseline, double target_ratio, const std::vector<uint32_t>& sizes,
           const MeasureFn& measure, nlohmann::json* collect = nullptr);

struct GroupRun {
  voter::GroupReport report;
  std::vector<testing::ThreadReplicaResult> replicas;
  double wall_ms = 0;
};

// What a group run measures besides its wall time. Measuring costs clock reads and system calls
// on the signalling path, so each benchmark asks only for what it reports.
enum class Measure {
  kNothing,
  kVoter,      // the voter's deciding time (GroupReport::voter_ns): two clock reads per round
  kBreakdown,  // that, and each replica's signalling wait, CPU time outside signalling and
               // the part of it keeping the state (ThreadReplicaResult::signal_wait_ns,
               // work_cpu_ns, state_cpu_ns): five clock reads per event, three of them system
               // calls, and two per checkpoint
};

// Runs one group with options `g` to its end, thread replicas made by `factory` (on the voter's
// transport), however it ends: the report says whether it completed. `input_bytes`: each
// replica's input buffer (0: the default); `verdict_timeout`: how long a replica waits for a
// verdict (a replica the group no longer answers ends after it); `replica_transport`: the
// replicas' transport, if not the voter's (a fault-injecting wrapper of it).
Result<GroupRun> RunGroupAsIs(BenchSetup& setup, voter::GroupOptions g,
                              const testing::ThreadLauncher::ProgramFactory& factory, std::FILE* in,
                              std::FILE* out, voter::SyscallExecutor* syscalls = nullptr,
                              Measure measure = Measure::kNothing, bool pin = false,
                              size_t input_bytes = 0,
                              std::chrono::milliseconds verdict_timeout = std::chrono::seconds(300),
                              transport::Transport* replica_transport = nullptr);

// Runs one group to its end with thread replicas made by `factory` (on the voter's transport),
// `syscalls` handling system call events (vigil-run), if given.
Result<GroupRun> RunGroup(BenchSetup& setup, channel::Method method, voter::Mode mode,
                          uint32_t max_payload, uint32_t spin_us, bool pin,
                          const testing::ThreadLauncher::ProgramFactory& factory, std::FILE* in,
                          std::FILE* out, voter::SyscallExecutor* syscalls = nullptr,
                          Measure measure = Measure::kNothing,
                          uint32_t max_lag = voter::GroupOptions{}.max_lag);

// A latency summary as JSON (count, min/p50/p99/p999/max/mean in microseconds).
nlohmann::json SummaryJson(const LatencySummary& s);

// Writes `doc` to `path` (pretty-printed) and says so; an error (printed) gives exit code 1.
int WriteJson(const std::string& path, const nlohmann::json& doc);

}  // namespace vigil::bench
