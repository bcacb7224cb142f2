// `vigil-bench signal`: replicated execution as a replica sees it, through the whole voter.
//
// 1. Round trip: a probe program declares `iterations` externalization points (sync events of
//    N bytes); replica 0 times each one from its event to its verdict. Every replica of the group
//    runs, the voter votes on each event (DMR or TMR) and answers. Per method x mode x size,
//    against the method's baseline measured in this run (ib_write_lat, ib_send_lat -e, bare
//    gRPC echo).
// 2. Workload overhead: crc32 and susan unreplicated vs DMR vs TMR per method: wall time, and a
//    breakdown that stays meaningful when there are fewer cores than threads: per replica, its
//    set-up (memory registration, connecting), its work (the program's time outside
//    signalling) and CPU time outside signalling, its signalling wait, and the voter's own time.
//
// Replicas are threads of this process (testing::ThreadLauncher) with their own connections and
// registered state; the voter's threads run alongside them on the same cores.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "environment.h"
#include "grpc_echo.h"
#include "harness.h"
#include "vigil/common/cpu_time.h"
#include "vigil/replica/context.h"
#include "vigil/testing/thread_launcher.h"
#include "vigil/transport/bootstrap.h"
#include "vigil/voter/group.h"
#include "vigil/workloads/workloads.h"

namespace vigil::bench {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct ProbeState {
  uint64_t done;
};

// `total` sync events of `bytes` bytes, 64 per step; `samples` (replica 0 only) gets the round
// trip of each one after the first `warmup`.
class Probe final : public replica::Program {
 public:
  Probe(uint32_t bytes, uint64_t total, uint64_t warmup, LatencySamples* samples)
      : payload_(bytes, std::byte{0x5a}), total_(total), warmup_(warmup), samples_(samples) {}
  std::string name() const override { return "probe"; }
  size_t state_bytes() const override { return sizeof(ProbeState); }
  Status Init(replica::ReplicaContext&) override { return Status::Ok(); }
  Result<bool> Step(replica::ReplicaContext& ctx) override {
    for (int i = 0; i < 64; ++i) {
      if (ctx.State<ProbeState>().done >= total_) return true;
      const auto t0 = Clock::now();
      VIGIL_RETURN_IF_ERROR(ctx.Sync(payload_));
      const auto t1 = Clock::now();
      auto& s = ctx.State<ProbeState>();
      if (samples_ != nullptr && s.done >= warmup_) {
        samples_->Record(static_cast<uint64_t>((t1 - t0).count()));
      }
      ++s.done;
    }
    return ctx.State<ProbeState>().done >= total_;
  }

 private:
  std::vector<std::byte> payload_;
  uint64_t total_, warmup_;
  LatencySamples* samples_;
};

uint32_t PayloadFor(uint32_t bytes) {
  return std::max<uint32_t>(replica::kEventHeaderBytes + 64, replica::kEventHeaderBytes + bytes);
}

Result<Row> MeasureRoundTrip(BenchSetup& setup, const SignalBenchOptions& o, channel::Method method,
                             voter::Mode mode, uint32_t bytes) {
  const uint64_t total = o.common.warmup + o.common.iterations;
  LatencySamples samples(o.common.iterations);
  const uint32_t max_payload = PayloadFor(bytes);
  std::FILE* devnull = std::fopen("/dev/null", "r+");
  if (devnull == nullptr) return ErrnoStatus(StatusCode::kUnavailable, "open /dev/null", errno);
  auto run = RunGroup(
      setup, method, mode, max_payload, o.spin_us, o.pin,
      [&](const voter::LaunchSpec& s, auto) -> Result<std::unique_ptr<replica::Program>> {
        return std::unique_ptr<replica::Program>(std::make_unique<Probe>(
            bytes, total, o.common.warmup, s.replica == 0 ? &samples : nullptr));
      },
      devnull, devnull, nullptr, Measure::kNothing, o.max_lag);
  std::fclose(devnull);
  VIGIL_RETURN_IF_ERROR(run.status());
  // Bytes per message as the baseline should send them: the event's record (and, polling, its
  // padding and ring trailer; the verdict going back is smaller).
  const uint32_t record =
      static_cast<uint32_t>(channel::kRecordHeaderBytes + replica::kEventHeaderBytes + bytes);
  const auto ring = static_cast<uint32_t>(channel::WireBytes(replica::kEventHeaderBytes + bytes));
  Row row{bytes, method == channel::Method::kPolling ? ring : record, samples.Summarize(),
          std::nullopt};
  if (method == channel::Method::kRpc) {
    VIGIL_ASSIGN_OR_RETURN(
        row.baseline_rtt,
        MeasureGrpcEcho(o.common.warmup, o.common.iterations,
                        static_cast<uint32_t>(replica::kEventHeaderBytes + bytes)));
  }
  return row;
}

std::string Crc32Input(uint32_t mib) {
  std::string s(size_t{mib} << 20, '\0');
  uint64_t x = 88172645463325252ull;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return s;
}

std::string SusanInput() {
  auto img = workloads::MakeTestImage(workloads::kSusanMaxSide, workloads::kSusanMaxSide, 11);
  return std::string(reinterpret_cast<const char*>(img.data()), img.size());
}

std::FILE* FileWith(const std::string& bytes) {
  std::FILE* f = std::tmpfile();
  if (f != nullptr) {
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::rewind(f);
  }
  return f;
}

std::string ReadBack(std::FILE* f) {
  std::string s;
  std::rewind(f);
  char buf[65536];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), f)) > 0;) s.append(buf, n);
  return s;
}

// One run of a workload; the replicated fields are per replica, averaged.
struct OverheadRun {
  double wall_ms = 0, setup_ms = 0, work_ms = 0, cpu_ms = 0, state_ms = 0, wait_ms = 0,
         voter_ms = 0, events = 0;
  std::string output;
};

// Per field, the median over the runs (each field on its own: the runs' noise is independent).
OverheadRun Median(const std::vector<OverheadRun>& runs) {
  auto med = [&](double OverheadRun::*f) {
    std::vector<double> v;
    for (const auto& r : runs) v.push_back(r.*f);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  OverheadRun m;
  for (double OverheadRun::*f :
       {&OverheadRun::wall_ms, &OverheadRun::setup_ms, &OverheadRun::work_ms, &OverheadRun::cpu_ms,
        &OverheadRun::state_ms, &OverheadRun::wait_ms, &OverheadRun::voter_ms,
        &OverheadRun::events}) {
    m.*f = med(f);
  }
  return m;
}

// A job's input (a temporary file holding its bytes) and output (an empty one), closed at the end.
struct JobFiles {
  std::FILE* in = nullptr;
  std::FILE* out = nullptr;
  JobFiles() = default;
  JobFiles(const JobFiles&) = delete;
  JobFiles& operator=(const JobFiles&) = delete;
  ~JobFiles() {
    if (in != nullptr) std::fclose(in);
    if (out != nullptr) std::fclose(out);
  }
};

Result<std::unique_ptr<JobFiles>> OpenJobFiles(const std::string& input) {
  auto f = std::make_unique<JobFiles>();
  f->in = FileWith(input);
  if (f->in == nullptr) return ErrnoStatus(StatusCode::kUnavailable, "tmpfile (input)", errno);
  f->out = std::tmpfile();
  if (f->out == nullptr) return ErrnoStatus(StatusCode::kUnavailable, "tmpfile (output)", errno);
  return f;
}

// Unreplicated, in this thread.
Result<OverheadRun> RunAlone(const std::string& w, const std::string& input) {
  VIGIL_ASSIGN_OR_RETURN(auto files, OpenJobFiles(input));
  VIGIL_ASSIGN_OR_RETURN(auto program, workloads::MakeWorkload(w, "edges"));
  VIGIL_ASSIGN_OR_RETURN(
      auto ctx, replica::LocalContext::Create(program->state_bytes(), files->in, files->out));
  const uint64_t cpu0 = ThreadCpuNs();
  const auto t0 = Clock::now();
  Status st = replica::RunProgram(*program, *ctx);
  OverheadRun r;
  r.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  r.cpu_ms = static_cast<double>(ThreadCpuNs() - cpu0) / 1e6;
  r.work_ms = r.wall_ms;
  VIGIL_RETURN_IF_ERROR(st.WithContext("unreplicated " + w));
  std::fflush(files->out);
  r.output = ReadBack(files->out);
  return r;
}

Result<OverheadRun> RunReplicated(BenchSetup& setup, const SignalBenchOptions& o,
                                  const std::string& w, const std::string& input, channel::Method m,
                                  voter::Mode mode) {
  VIGIL_ASSIGN_OR_RETURN(auto files, OpenJobFiles(input));
  auto run = RunGroup(
      setup, m, mode, 4096 + replica::kEventHeaderBytes, o.spin_us, o.pin,
      [&](const voter::LaunchSpec&, auto) { return workloads::MakeWorkload(w, "edges"); },
      files->in, files->out, nullptr, Measure::kBreakdown, o.max_lag);
  OverheadRun r;
  std::fflush(files->out);
  r.output = ReadBack(files->out);
  VIGIL_RETURN_IF_ERROR(run.status().WithContext(
      fmt::format("{} {} {}", w, channel::MethodName(m), voter::ModeName(mode))));
  for (const auto& rep : run->replicas) {
    r.setup_ms += static_cast<double>(rep.setup_ns) / 1e6;
    r.work_ms += static_cast<double>(rep.wall_ns - rep.setup_ns - rep.signal_wait_ns) / 1e6;
    r.cpu_ms += static_cast<double>(rep.work_cpu_ns) / 1e6;
    r.state_ms += static_cast<double>(rep.state_cpu_ns) / 1e6;
    r.wait_ms += static_cast<double>(rep.signal_wait_ns) / 1e6;
    r.events += static_cast<double>(rep.events);
  }
  const double n = static_cast<double>(run->replicas.size());
  r.setup_ms /= n;
  r.work_ms /= n;
  r.cpu_ms /= n;
  r.state_ms /= n;
  r.wait_ms /= n;
  r.events /= n;
  r.wall_ms = run->wall_ms;
  r.voter_ms = static_cast<double>(run->report.voter_ns) / 1e6;
  return r;
}

int RunOverheads(BenchSetup& setup, const SignalBenchOptions& o,
                 const std::vector<channel::Method>& methods, const std::vector<voter::Mode>& modes,
                 nlohmann::json& out) {
  fmt::print(
      "\n# workload overhead: wall time vs unreplicated (the group's whole run, replica start-up "
      "included), and per replica (averaged): setup = registering memory and connecting before "
      "the program starts, work = the program's time outside signalling, cpu = its CPU time "
      "outside signalling (what it would take on a core of its own), state = the part of cpu "
      "spent on state digests and checkpoint copies, w/o state = cpu minus state vs alone (the "
      "program's own CPU time), wait = time from event to verdict; voter = time the voter spent "
      "deciding. Each row runs {} times; each column is the median of its runs\n",
      o.runs);
  fmt::print(
      "{:>8} {:>8} {:>5} | {:>10} {:>9} | {:>8} {:>10} {:>10} {:>9} {:>9} {:>9} {:>10} {:>9} | "
      "{:>7} {:>6}\n",
      "workload", "method", "mode", "wall ms", "vs alone", "setup ms", "work ms", "cpu ms",
      "vs alone", "state ms", "w/o state", "wait ms", "voter ms", "events", "output");
  for (const std::string& w : o.workloads) {
    const std::string input = w == "crc32" ? Crc32Input(o.crc32_mib) : SusanInput();
    std::vector<OverheadRun> runs;
    for (uint32_t i = 0; i < o.runs; ++i) {
      auto r = RunAlone(w, input);
      if (!r.ok()) {
        fmt::print(stderr, "error: {}\n", r.status().ToString());
        return 1;
      }
      if (!runs.empty() && r->output != runs[0].output) {
        fmt::print(stderr, "error: unreplicated {} run {} gave other output than run 1\n", w,
                   i + 1);
        return 1;
      }
      runs.push_back(std::move(*r));
    }
    const std::string want = runs[0].output;
    const OverheadRun alone = Median(runs);
    fmt::print(
        "{:>8} {:>8} {:>5} | {:>10.1f} {:>9} | {:>8} {:>10.1f} {:>10.1f} {:>9} {:>9} {:>9} "
        "{:>10} {:>9} | {:>7} {:>6}\n",
        w, "-", "alone", alone.wall_ms, "1.00x", "-", alone.work_ms, alone.cpu_ms, "1.00x", "-",
        "1.00x", "-", "-", "-", "-");
    out.push_back({{"workload", w},
                   {"mode", "unreplicated"},
                   {"runs", o.runs},
                   {"wall_ms", alone.wall_ms},
                   {"cpu_ms", alone.cpu_ms},
                   {"input_bytes", input.size()}});
    for (channel::Method m : methods) {
      for (voter::Mode mode : modes) {
        runs.clear();
        for (uint32_t i = 0; i < o.runs; ++i) {
          auto r = RunReplicated(setup, o, w, input, m, mode);
          if (!r.ok()) {
            fmt::print(stderr, "error: {}\n", r.status().ToString());
            return 1;
          }
          if (r->output != want) {
            fmt::print(stderr, "error: {} {} {}: output differs from the unreplicated run\n", w,
                       channel::MethodName(m), voter::ModeName(mode));
            return 1;
          }
          runs.push_back(std::move(*r));
        }
        const OverheadRun r = Median(runs);
        fmt::print(
            "{:>8} {:>8} {:>5} | {:>10.1f} {:>8.2f}x | {:>8.1f} {:>10.1f} {:>10.1f} {:>8.2f}x "
            "{:>9.1f} {:>8.2f}x {:>10.1f} {:>9.1f} | {:>7.0f} {:>6}\n",
            w, channel::MethodName(m), voter::ModeName(mode), r.wall_ms, r.wall_ms / alone.wall_ms,
            r.setup_ms, r.work_ms, r.cpu_ms, r.cpu_ms / alone.cpu_ms, r.state_ms,
            (r.cpu_ms - r.state_ms) / alone.cpu_ms, r.wait_ms, r.voter_ms, r.events, "same");
        out.push_back({{"workload", w},
                       {"method", channel::MethodName(m)},
                       {"mode", voter::ModeName(mode)},
                       {"runs", o.runs},
                       {"wall_ms", r.wall_ms},
                       {"wall_vs_unreplicated", r.wall_ms / alone.wall_ms},
                       {"replica_setup_ms", r.setup_ms},
                       {"replica_work_ms", r.work_ms},
                       {"replica_work_cpu_ms", r.cpu_ms},
                       {"replica_work_cpu_vs_unreplicated", r.cpu_ms / alone.cpu_ms},
                       {"replica_state_cpu_ms", r.state_ms},
                       {"replica_work_cpu_without_state_vs_unreplicated",
                        (r.cpu_ms - r.state_ms) / alone.cpu_ms},
                       {"replica_signal_wait_ms", r.wait_ms},
                       {"voter_ms", r.voter_ms},
                       {"events_per_replica", r.events},
                       {"output_matches_unreplicated", true}});
      }
    }
  }
  return 0;
}

}  // namespace

int RunSignalBench(const SignalBenchOptions& o) {
  std::vector<channel::Method> methods;
  for (const auto& m : o.methods) methods.push_back(*channel::ParseMethod(m));
  std::vector<voter::Mode> modes;
  for (const auto& m : o.modes) modes.push_back(*voter::ParseMode(m));
  for (uint32_t b : o.sizes) {
    if (b > 65536 - channel::kSlotOverhead - replica::kEventHeaderBytes) {
      fmt::print(stderr, "error: --sizes: {} bytes exceeds an event's room\n", b);
      return 2;
    }
  }
  std::optional<BenchSetup> setup = OpenAndDescribe(o.common);
  if (!setup) return 1;
  fmt::print(
      "# threads: per group 1 (simplex), 2 (DMR) or 3 (TMR) replica threads; the voter polls "
      "all rings from one thread (polling) or has one sleeping thread per replica (notify, "
      "rpc); waits spin {} us, then yield, then sleep. Only simplex polling has no more busy "
      "pollers than ib_write_lat (2); with more pollers than cores, round trips measure the "
      "scheduler. TMR decides on the first two matching ballots; the third may owe {} events "
      "(--max-lag). Round trips are replica 0's: when it is the one lagging, the log answers it "
      "at once, so TMR's percentiles understate; its mean (the run's time per event) does "
      "not.\n",
      o.spin_us, o.max_lag);
  nlohmann::json tables = nlohmann::json::array();
  for (channel::Method m : methods) {
    for (voter::Mode mode : modes) {
      fmt::print(
          "\n# {} {}: replica-observed event -> verdict round trip through the voter, "
          "{} iterations per size after {} warm-up\n",
          channel::MethodName(m), voter::ModeName(mode), o.common.iterations, o.common.warmup);
      Baseline baseline = m == channel::Method::kRpc       ? Baseline{"grpc-unary-echo", "", true}
                          : m == channel::Method::kPolling ? Baseline{"ib_write_lat", ""}
                                                           : Baseline{"ib_send_lat", "-e"};
      baseline.pinned = o.pin;  // perftest placed like the group's threads
      // Targets for polling: <= 1.3x ib_write_lat (simplex, DMR), <= 1.5x (TMR).
      const double target = m != channel::Method::kPolling ? 0.0
                            : mode == voter::Mode::kTmr    ? 1.5
                                                           : 1.3;
      auto measure = [&](uint32_t b, uint64_t iterations) -> Result<Row> {
        SignalBenchOptions round = o;
        round.common.iterations = iterations;
        Result<Row> row = MeasureRoundTrip(*setup, round, m, mode, b);
        if (!row.ok()) {
          return row.status().WithContext(
              fmt::format("{} {}", channel::MethodName(m), voter::ModeName(mode)));
        }
        return row;
      };
      const int rc =
          Report(*setup, o.common,
                 fmt::format("signal-{}-{}", channel::MethodName(m), voter::ModeName(mode)),
                 baseline, target, o.sizes, measure, &tables);
      if (rc != 0) return rc;
    }
  }
  nlohmann::json overheads = nlohmann::json::array();
  if (!o.workloads.empty()) {
    if (int rc = RunOverheads(*setup, o, methods, modes, overheads); rc != 0) return rc;
  }
  if (!o.common.json.empty()) {
    return WriteJson(o.common.json, {{"benchmark", "signal"},
                                     {"environment", Environment(Describe(*setup))},
                                     {"max_lag", o.max_lag},
                                     {"round_trips", tables},
                                     {"workload_overheads", overheads}});
  }
  return 0;
}

}  // namespace vigil::bench
