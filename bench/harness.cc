#include "harness.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "environment.h"
#include "perftest.h"
#include "vigil/common/config.h"
#include "vigil/common/logging.h"
#include "vigil/transport/config.h"
#include "vigil/transport/fake.h"

namespace vigil::bench {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

cpu_set_t CurrentMask() {
  cpu_set_t set;
  CPU_ZERO(&set);
  pthread_getaffinity_np(pthread_self(), sizeof(set), &set);
  return set;
}

void PinToCore(unsigned core) {
  const unsigned n = std::thread::hardware_concurrency();
  if (n < 2) return;  // one core: pinning both sides to it would only add context switches
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core % n, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

}  // namespace

nlohmann::json SummaryJson(const LatencySummary& s) {
  return {{"count", s.count},     {"min_us", s.min_us}, {"p50_us", s.p50_us},  {"p99_us", s.p99_us},
          {"p999_us", s.p999_us}, {"max_us", s.max_us}, {"mean_us", s.mean_us}};
}

std::string Describe(const BenchSetup& setup) {
  return setup.transport ? setup.transport->Describe()
                         : "no RDMA transport: gRPC over loopback TCP";
}

Result<BenchSetup> OpenTransport(const CommonBenchOptions& o) {
  BenchSetup s;
  if (!o.config.empty()) {
    VIGIL_ASSIGN_OR_RETURN(ConfigReader cfg, ConfigReader::FromFile(o.config));
    VIGIL_RETURN_IF_ERROR(transport::LoadTransportConfig(cfg, s.verbs, s.conn));
  }
  if (!o.device.empty()) s.verbs.device = o.device;
  if (o.transport == "fake") {
    s.transport = std::make_unique<transport::FakeTransport>(
        std::make_shared<transport::FakeFabric>(), "bench");
    s.device_name = "fake";
    return s;
  }
  VIGIL_ASSIGN_OR_RETURN(auto vt, transport::VerbsTransport::Open(s.verbs));
  s.device_name = vt->device().name();
  s.gid_index = vt->device().gid_index();
  s.transport = std::move(vt);
  return s;
}

std::optional<BenchSetup> OpenAndDescribe(const CommonBenchOptions& options) {
  auto setup = OpenTransport(options);
  if (!setup.ok()) {
    fmt::print(stderr, "error: {}\n", setup.status().ToString());
    return std::nullopt;
  }
  PrintEnvironment(Environment(setup->transport->Describe()));
  return std::move(*setup);
}

Status RunPinned(const std::function<Status()>& server, const std::function<Status()>& client) {
  Status server_status;
  std::thread server_thread([&] {
    PinToCore(1);
    server_status = server();
  });
  const cpu_set_t unpinned = CurrentMask();
  PinToCore(0);
  Status client_status = client();
  pthread_setaffinity_np(pthread_self(), sizeof(unpinned), &unpinned);
  server_thread.join();
  VIGIL_RETURN_IF_ERROR(client_status);
  return server_status.WithContext("benchmark server side");
}

Status RunPair(BenchSetup& setup, Side server_side, Side client_side) {
  auto& t = *setup.transport;
  // The acceptor hands the server side its connection; the pinned server thread picks it up.
  std::mutex mu;
  std::condition_variable cv;
  std::shared_ptr<transport::Connection> server_conn;
  transport::PeerInfo server_peer;
  bool accepted = false;
  transport::BootstrapServer server(t, "bench-server", setup.conn);
  server.AddService(
      "bench",
      [&](std::unique_ptr<transport::Connection> c,
          const transport::PeerInfo& peer) -> Result<std::vector<transport::RemoteRegion>> {
        if (server_side.prepare) VIGIL_RETURN_IF_ERROR(server_side.prepare(*c));
        std::lock_guard lock(mu);
        server_conn = std::move(c);
        server_peer = peer;
        accepted = true;
        cv.notify_all();
        return server_side.regions;
      });
  VIGIL_RETURN_IF_ERROR(server.Start("127.0.0.1:0"));
  transport::DialOptions dial;
  dial.target = fmt::format("127.0.0.1:{}", server.port());
  dial.service = "bench";
  dial.node_name = "bench-client";
  dial.connection = setup.conn;
  dial.regions = client_side.regions;
  dial.before_connect = client_side.prepare;
  auto dialed = transport::Dial(t, dial);
  if (!dialed.ok()) return dialed.status();
  Status st = RunPinned(
      [&]() -> Status {
        std::unique_lock lock(mu);
        if (!cv.wait_for(lock, std::chrono::seconds(60), [&] { return accepted; }) || !accepted) {
          return Internal("the bootstrap server never handed over the connection");
        }
        lock.unlock();
        return server_side.run(*server_conn, server_peer);
      },
      [&]() { return client_side.run(*dialed->connection, dialed->peer); });
  server.Shutdown();
  return st;
}

namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The rounds' summaries as one: percentiles are the medians of the rounds' (each round is a
// fresh run after its own warm-up), min and max the extremes, the mean weighted by samples.
LatencySummary Combine(const std::vector<LatencySummary>& rounds) {
  if (rounds.size() == 1) return rounds[0];
  LatencySummary c;
  std::vector<double> p50, p99, p999;
  double weighted = 0;
  c.min_us = rounds[0].min_us;
  for (const auto& r : rounds) {
    c.count += r.count;
    c.min_us = std::min(c.min_us, r.min_us);
    c.max_us = std::max(c.max_us, r.max_us);
    weighted += r.mean_us * static_cast<double>(r.count);
    p50.push_back(r.p50_us);
    p99.push_back(r.p99_us);
    p999.push_back(r.p999_us);
  }
  c.p50_us = Median(p50);
  c.p99_us = Median(p99);
  c.p999_us = Median(p999);
  c.mean_us = c.count == 0 ? 0 : weighted / static_cast<double>(c.count);
  return c;
}

}  // namespace

int Report(const BenchSetup& setup, const CommonBenchOptions& o, const std::string& title,
           const Baseline& baseline, double target_ratio, const std::vector<uint32_t>& sizes,
           const MeasureFn& measure, nlohmann::json* collect) {
  auto logger = log::Get("bench");
  // The baseline is perftest unless the measurement brings its own (a bare gRPC echo).
  const bool perftest_enabled =
      o.perftest == "always" || (o.perftest == "auto" && o.transport == "verbs");
  nlohmann::json out = {{"benchmark", title},
                        {"environment", Environment(Describe(setup))},
                        {"results", nlohmann::json::array()}};
  double cycles_per_us = 0;
  int port = 18515 + (static_cast<int>(getpid()) % 1000);
  // perftest at `bytes` for `iterations`: round trip p50, p99 (us) and its JSON, or the error.
  auto perftest = [&](size_t bytes, uint64_t iterations, nlohmann::json& round,
                      const char* key) -> std::optional<std::pair<double, double>> {
    auto pt = RunLatency(baseline, setup.device_name, setup.gid_index, bytes, iterations + o.warmup,
                         port++, cycles_per_us,
                         {.pin = baseline.pinned, .inline_bytes = setup.conn.max_inline});
    if (!pt.ok()) {
      logger->warn("perftest baseline for {} bytes unavailable: {}", bytes, pt.status().ToString());
      round[std::string(key) + "_error"] = pt.status().ToString();
      return std::nullopt;
    }
    // perftest reports half round trips.
    const std::pair<double, double> rtt{2 * pt->t_typical, 2 * pt->p99};
    round[key] = {{"tool", baseline.tool + " " + baseline.flags},
                  {"bytes", bytes},
                  {"iterations", pt->iterations},
                  {"inline_bytes", pt->inline_bytes},
                  {"t_typical_half_rtt_us", pt->t_typical},
                  {"p99_half_rtt_us", pt->p99},
                  {"p999_half_rtt_us", pt->p999},
                  {"t_max_half_rtt_us", pt->t_max},
                  {"rtt_p50_us", rtt.first},
                  {"rtt_p99_us", rtt.second}};
    return rtt;
  };
  struct Line {
    Row row;  // rtt: the rounds combined
    nlohmann::json json;
    std::optional<std::pair<double, double>> base, wire;  // medians of the rounds' (p50, p99)
    std::vector<double> ratios;                           // p50 ratio of each round
    double ratio50 = 0, ratio99 = 0;                      // medians of the rounds' ratios
  };
  std::vector<Line> lines;
  // Each size: vigil and its baseline in alternating rounds (vigil, baseline, vigil, ...), so
  // that both see the same drift of a noisy machine; --iters is split among the rounds, each
  // after its own warm-up. Without a baseline there is nothing to alternate with: one round.
  const uint32_t rounds =
      (baseline.in_process || perftest_enabled) && o.pairs > 1 ? o.pairs : uint32_t{1};
  const uint64_t per_round = (o.iterations + rounds - 1) / rounds;
  if (perftest_enabled && !baseline.in_process) {
    auto cal = CalibrateCyclesPerMicrosecond();
    if (cal.ok()) {
      cycles_per_us = *cal;
      fmt::print(
          "# perftest runs with -C; cycles converted at {:.1f} cycles/us (calibrated "
          "against CLOCK_MONOTONIC)\n",
          cycles_per_us);
      out["environment"]["tsc_cycles_per_us"] = cycles_per_us;
    } else {
      logger->warn("no perftest baseline: {}", cal.status().ToString());
    }
  }
  for (uint32_t bytes : sizes) {
    Line line;
    std::vector<LatencySummary> vigil, own_base;
    std::vector<double> b50, b99, w50, w99, r99;
    for (uint32_t k = 0; k < rounds; ++k) {
      Result<Row> r = measure(bytes, per_round);
      if (!r.ok()) {
        fmt::print(stderr, "error: {} bytes: {}\n", bytes, r.status().ToString());
        return 1;
      }
      if (k == 0) line.row = *r;
      nlohmann::json round = {{"vigil_rtt", SummaryJson(r->rtt)}};
      std::optional<std::pair<double, double>> base, wire;
      if (r->baseline_rtt) {
        base = {r->baseline_rtt->p50_us, r->baseline_rtt->p99_us};
        own_base.push_back(*r->baseline_rtt);
        round["baseline"] = {{"tool", baseline.tool}, {"rtt", SummaryJson(*r->baseline_rtt)}};
      } else if (cycles_per_us > 0) {
        base = perftest(bytes, per_round, round, "baseline");
        if (r->wire_bytes != bytes) {
          wire = perftest(r->wire_bytes, per_round, round, "baseline_wire");
        }
      }
      vigil.push_back(r->rtt);
      if (base) {
        b50.push_back(base->first);
        b99.push_back(base->second);
        line.ratios.push_back(r->rtt.p50_us / base->first);
        r99.push_back(r->rtt.p99_us / base->second);
        round["ratio_p50"] = line.ratios.back();
      }
      if (wire) {
        w50.push_back(wire->first);
        w99.push_back(wire->second);
      }
      line.json["rounds"].push_back(round);
      // A baseline that fails once (perftest missing, its port refused) is not retried in
      // every round: each attempt can take its 120-s timeout.
      if (!base) break;
    }
    line.row.rtt = Combine(vigil);
    line.json["bytes"] = bytes;
    line.json["wire_bytes"] = line.row.wire_bytes;
    line.json["vigil_rtt"] = SummaryJson(line.row.rtt);
    line.json["rounds_alternated"] = line.json["rounds"].size();
    // Every round needs its baseline, else the size is not measured (a partial median would
    // compare different conditions).
    if (!b50.empty() && b50.size() == vigil.size()) {
      line.base = {Median(b50), Median(b99)};
      line.ratio50 = Median(line.ratios);
      line.ratio99 = Median(r99);
      line.json["ratio_p50"] = line.ratio50;
      line.json["ratio_p99"] = line.ratio99;
      const auto [lo, hi] = std::minmax_element(line.ratios.begin(), line.ratios.end());
      line.json["ratio_p50_min"] = *lo;
      line.json["ratio_p50_max"] = *hi;
      if (!own_base.empty()) {
        line.json["baseline"] = {{"tool", baseline.tool}, {"rtt", SummaryJson(Combine(own_base))}};
      } else {
        line.json["baseline"] = {{"tool", baseline.tool + " " + baseline.flags},
                                 {"rtt_p50_us", line.base->first},
                                 {"rtt_p99_us", line.base->second}};
      }
    } else if (!b50.empty()) {
      line.json["baseline_error"] =
          fmt::format("the baseline ran in {} of {} rounds", b50.size(), vigil.size());
    }
    if (!w50.empty() && w50.size() == vigil.size()) {
      line.wire = {Median(w50), Median(w99)};
      line.json["ratio_p50_wire"] = line.row.rtt.p50_us / line.wire->first;
    }
    lines.push_back(std::move(line));
  }

  // The baseline is measured at the payload size (the target is judged there) and, where vigil
  // sends more bytes than the payload (a ring slot's header and trailer), also at that wire size.
  fmt::print(
      "\nbaseline: {} {} at the payload size (judged) and at vigil's wire size, measured in this "
      "run in up to {} rounds alternating with vigil's; vigil's percentiles and the baseline are "
      "the rounds' medians, the ratio the median of the rounds' ratios (min-max beside it)\n",
      baseline.tool, baseline.flags, o.pairs);
  fmt::print("{:>6} {:>6} | {:^49} | {:^25} | {:^31} | {:^21}\n", "", "", "vigil round trip, us",
             "baseline at payload, us", "vigil / baseline", "baseline at wire size");
  fmt::print(
      "{:>6} {:>6} | {:>9} {:>9} {:>9} {:>9} {:>9} | {:>12} {:>12} | {:>7} {:>13} {:>9} | {:>10} "
      "{:>10}\n",
      "bytes", "wire", "p50", "p99", "p99.9", "max", "mean", "p50", "p99", "p50", "(min-max)",
      "p99", "p50 us", "vigil/it");
  bool all_met = true, any_ratio = false, short_tail = false;
  constexpr size_t kTailSamples = 1000;
  std::vector<size_t> not_measured;  // sizes without a baseline: never counted as met
  for (Line& line : lines) {
    const Row& r = line.row;
    std::string b50 = "-", b99 = "-", ratio50 = "-", spread = "", ratio99 = "-", w50 = "-",
                wratio = "-";
    if (line.base) {
      b50 = fmt::format("{:.2f}", line.base->first);
      b99 = fmt::format("{:.2f}", line.base->second);
      ratio50 = fmt::format("{:.2f}x", line.ratio50);
      if (line.ratios.size() > 1) {
        const auto [lo, hi] = std::minmax_element(line.ratios.begin(), line.ratios.end());
        spread = fmt::format("({:.2f}-{:.2f})", *lo, *hi);
      }
      ratio99 = fmt::format("{:.2f}x", line.ratio99);
      all_met &= line.ratio50 <= target_ratio;
      any_ratio = true;
    } else {
      not_measured.push_back(r.bytes);
    }
    if (line.wire) {
      w50 = fmt::format("{:.2f}", line.wire->first);
      wratio = fmt::format("{:.2f}x", r.rtt.p50_us / line.wire->first);
    }
    // Below kTailSamples (per round) the p99.9 is the maximum or next to it: not a tail.
    const size_t round_samples = r.rtt.count / std::max<size_t>(1, line.json["rounds"].size());
    const bool tail = round_samples >= kTailSamples;
    short_tail |= !tail;
    const std::string p999 = tail ? fmt::format("{:.2f}", r.rtt.p999_us) : "-";
    fmt::print(
        "{:>6} {:>6} | {:>9.2f} {:>9.2f} {:>9} {:>9.2f} {:>9.2f} | {:>12} {:>12} | {:>7} {:>13} "
        "{:>9} | {:>10} {:>10}\n",
        r.bytes, r.wire_bytes, r.rtt.p50_us, r.rtt.p99_us, p999, r.rtt.max_us, r.rtt.mean_us, b50,
        b99, ratio50, spread, ratio99, w50, wratio);
    out["results"].push_back(line.json);
  }
  if (short_tail)
    fmt::print("(p99.9: '-' where a round has fewer than {} samples)\n", kTailSamples);
  if (any_ratio && target_ratio > 0) {
    std::string verdict = all_met ? "met at every size" : "MISSED at some size (see table)";
    if (!not_measured.empty()) {
      verdict = fmt::format("{} measured; not measured at {} bytes (no baseline)",
                            all_met ? "met at every size" : "MISSED at some size",
                            fmt::join(not_measured, ", "));
    }
    fmt::print("\ntarget: vigil p50 round trip <= {:.1f}x {} at the payload size: {}\n",
               target_ratio, baseline.tool, verdict);
    out["target"] = {{"ratio_p50", target_ratio},
                     {"baseline", baseline.tool},
                     {"met", all_met && not_measured.empty()},
                     {"not_measured_bytes", not_measured}};
  } else if (perftest_enabled && !any_ratio) {
    fmt::print("\nno perftest baseline (install perftest: apt-get install perftest)\n");
  }
  if (collect != nullptr) {
    collect->push_back(out);
  } else if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << out.dump(2) << "\n";
    if (!f) {
      fmt::print(stderr, "error: cannot write JSON results to '{}'\n", o.json);
      return 1;
    }
    fmt::print("results written to {}\n", o.json);
  }
  return 0;
}

Result<GroupRun> RunGroupAsIs(BenchSetup& setup, voter::GroupOptions g,
                              const testing::ThreadLauncher::ProgramFactory& factory, std::FILE* in,
                              std::FILE* out, voter::SyscallExecutor* syscalls, Measure measure,
                              bool pin, size_t input_bytes,
                              std::chrono::milliseconds verdict_timeout,
                              transport::Transport* replica_transport) {
  transport::BootstrapServer server(*setup.transport, "bench-voter", setup.conn);
  VIGIL_RETURN_IF_ERROR(server.Start("127.0.0.1:0"));
  g.measure = measure != Measure::kNothing;
  g.channel.rpc_listen = "127.0.0.1:0";
  GroupRun run;
  {
    testing::ThreadLauncher launcher(
        replica_transport != nullptr ? *replica_transport : *setup.transport,
        fmt::format("127.0.0.1:{}", server.port()), g.channel, verdict_timeout, factory);
    launcher.set_measure(measure == Measure::kBreakdown);
    if (input_bytes > 0) launcher.set_input_bytes(input_bytes);
    if (pin) {
      const int cores = std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
      g.voter_cpu = 0;
      std::vector<int> cpus;
      for (int c = 1; c < cores; ++c) cpus.push_back(c);
      launcher.set_cpus(cpus);
    }
    voter::Group group(g, *setup.transport, server, launcher, in, out);
    group.set_syscall_executor(syscalls);
    const auto t0 = Clock::now();
    VIGIL_ASSIGN_OR_RETURN(run.report, group.Run());
    run.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    run.replicas = launcher.Join();
  }
  server.Shutdown();
  return run;
}

Result<GroupRun> RunGroup(BenchSetup& setup, channel::Method method, voter::Mode mode,
                          uint32_t max_payload, uint32_t spin_us, bool pin,
                          const testing::ThreadLauncher::ProgramFactory& factory, std::FILE* in,
                          std::FILE* out, voter::SyscallExecutor* syscalls, Measure measure,
                          uint32_t max_lag) {
  voter::GroupOptions g;
  g.mode = mode;
  g.max_lag = max_lag;
  g.deadline = 120s;  // a benchmark measures; it does not fail replicas
  g.channel = {.method = method, .slots = 16, .max_payload = max_payload, .spin_us = spin_us};
  VIGIL_ASSIGN_OR_RETURN(GroupRun run,
                         RunGroupAsIs(setup, g, factory, in, out, syscalls, measure, pin));
  if (!run.report.completed) return Internal("group failed: " + run.report.failure);
  for (const auto& r : run.replicas) {
    if (!r.status.ok()) {
      return Internal(fmt::format("replica {}: {}", r.spec.replica, r.status.ToString()));
    }
  }
  return run;
}

int WriteJson(const std::string& path, const nlohmann::json& doc) {
  std::ofstream f(path);
  f << doc.dump(2) << "\n";
  if (!f) {
    fmt::print(stderr, "error: cannot write JSON results to '{}'\n", path);
    return 1;
  }
  fmt::print("results written to {}\n", path);
  return 0;
}

}  // namespace vigil::bench
