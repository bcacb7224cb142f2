// `vigil-bench transport`: RDMA WRITE ping-pong round trip through vigil's transport, next to
// perftest's ib_write_lat measured in the same run on the same device.
#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "commands.h"
#include "environment.h"
#include "perftest.h"
#include "pingpong.h"
#include "vigil/common/config.h"
#include "vigil/common/logging.h"
#include "vigil/transport/bootstrap.h"
#include "vigil/transport/config.h"
#include "vigil/transport/fake.h"
#include "vigil/transport/verbs.h"

namespace vigil::bench {
namespace {

constexpr double kTargetRatio = 1.2;

// Pins the calling thread; returns its previous mask so it can be restored. Children started by
// a pinned thread inherit its mask: restore before running perftest, or both of its busy-polling
// processes share one core and every hop costs a scheduler tick.
cpu_set_t PinToCore(unsigned core) {
  cpu_set_t old;
  CPU_ZERO(&old);
  pthread_getaffinity_np(pthread_self(), sizeof(old), &old);
  if (std::thread::hardware_concurrency() < 2) return old;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core % std::thread::hardware_concurrency(), &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  return old;
}

nlohmann::json SummaryJson(const LatencySummary& s) {
  return {{"count", s.count},     {"min_us", s.min_us}, {"p50_us", s.p50_us},  {"p99_us", s.p99_us},
          {"p999_us", s.p999_us}, {"max_us", s.max_us}, {"mean_us", s.mean_us}};
}

struct Setup {
  std::unique_ptr<transport::Transport> transport;
  transport::VerbsOptions verbs;
  transport::ConnectionOptions conn;
  std::string device_name;
  int gid_index = 0;
};

Result<Setup> OpenTransport(const TransportBenchOptions& o) {
  Setup s;
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

}  // namespace

int RunTransportBench(const TransportBenchOptions& o) {
  auto logger = log::Get("bench");
  PingPongOptions pp;
  pp.sizes = o.sizes;
  pp.iterations = o.iterations;
  pp.warmup = o.warmup;
  if (Status st = ValidateSizes(pp.sizes); !st.ok()) {
    fmt::print(stderr, "error: --sizes: {}\n", st.message());
    return 2;
  }
  auto setup = OpenTransport(o);
  if (!setup.ok()) {
    fmt::print(stderr, "error: {}\n", setup.status().ToString());
    return 1;
  }
  auto& t = *setup->transport;
  const nlohmann::json env = Environment(t.Describe());
  PrintEnvironment(env);

  // The server side: the acceptor hands its connection to a pinned thread that echoes.
  auto server_buf = PingPongBuffer::Allocate(t);
  auto client_buf = PingPongBuffer::Allocate(t);
  if (!server_buf.ok() || !client_buf.ok()) {
    fmt::print(stderr, "error: {}\n",
               (server_buf.ok() ? client_buf.status() : server_buf.status()).ToString());
    return 1;
  }
  std::thread server_thread;
  Status server_status;
  transport::BootstrapServer server(t, "bench-server", setup->conn);
  server.AddService(
      "pingpong",
      [&](std::unique_ptr<transport::Connection> c,
          const transport::PeerInfo& peer) -> Result<std::vector<transport::RemoteRegion>> {
        VIGIL_ASSIGN_OR_RETURN(auto landing, peer.Region("pingpong"));
        VIGIL_RETURN_IF_ERROR(PrepareReceive(*c, *server_buf));
        std::shared_ptr<transport::Connection> conn = std::move(c);
        server_thread = std::thread([&, conn, landing] {
          PinToCore(1);
          server_status = Serve(*conn, *server_buf, landing, pp.stall_timeout);
        });
        return std::vector<transport::RemoteRegion>{server_buf->Landing()};
      });
  if (Status st = server.Start("127.0.0.1:0"); !st.ok()) {
    fmt::print(stderr, "error: {}\n", st.ToString());
    return 1;
  }
  transport::DialOptions dial;
  dial.target = fmt::format("127.0.0.1:{}", server.port());
  dial.service = "pingpong";
  dial.node_name = "bench-client";
  dial.connection = setup->conn;
  dial.regions = {client_buf->Landing()};
  dial.before_connect = [&](transport::Connection& c) { return PrepareReceive(c, *client_buf); };
  auto dialed = transport::Dial(t, dial);
  if (!dialed.ok()) {
    fmt::print(stderr, "error: {}\n", dialed.status().ToString());
    if (server_thread.joinable()) server_thread.join();
    return 1;
  }
  const cpu_set_t unpinned = PinToCore(0);
  fmt::print(
      "# vigil RDMA WRITE ping-pong: {} iterations per size after {} warm-up, max_inline {}\n",
      pp.iterations, pp.warmup, dialed->connection->max_inline());
  auto results = RunClient(*dialed->connection, *client_buf, *dialed->peer.Region("pingpong"), pp);
  if (server_thread.joinable()) server_thread.join();
  server.Shutdown();
  pthread_setaffinity_np(pthread_self(), sizeof(unpinned), &unpinned);
  if (!results.ok()) {
    fmt::print(stderr, "error: {}\n", results.status().ToString());
    return 1;
  }
  if (!server_status.ok()) logger->warn("ping-pong server: {}", server_status.ToString());

  const bool want_perftest =
      o.perftest == "always" || (o.perftest == "auto" && o.transport == "verbs");
  nlohmann::json out = {
      {"benchmark", "transport"}, {"environment", env}, {"results", nlohmann::json::array()}};
  fmt::print("\n{:>6} | {:^39} | {:^25} | {:^19}\n", "", "vigil round trip, us",
             "perftest RTT (2x typ.), us", "vigil / perftest");
  fmt::print("{:>6} | {:>9} {:>9} {:>9} {:>9} | {:>12} {:>12} | {:>9} {:>9}\n", "bytes", "p50",
             "p99", "p99.9", "max", "p50", "p99", "p50", "p99");
  int port = 18515 + (static_cast<int>(getpid()) % 1000);
  double cycles_per_us = 0;
  if (want_perftest) {
    auto cal = CalibrateCyclesPerMicrosecond();
    if (cal.ok()) {
      cycles_per_us = *cal;
      fmt::print(
          "# perftest runs with -C; cycles converted at {:.1f} cycles/us (calibrated against "
          "CLOCK_MONOTONIC)\n",
          cycles_per_us);
      out["environment"]["tsc_cycles_per_us"] = cycles_per_us;
    } else {
      logger->warn("no perftest baseline: {}", cal.status().ToString());
    }
  }
  bool all_met = true, any_ratio = false;
  for (const auto& r : *results) {
    nlohmann::json row = {{"bytes", r.bytes}, {"vigil_rtt", SummaryJson(r.rtt)}};
    std::string pt_p50 = "-", pt_p99 = "-", ratio50 = "-", ratio99 = "-";
    if (cycles_per_us > 0) {
      auto pt = RunWriteLat(setup->device_name, setup->gid_index, r.bytes,
                            pp.iterations + pp.warmup, port++, cycles_per_us);
      if (pt.ok()) {
        const double p50 = 2 * pt->t_typical, p99 = 2 * pt->p99;
        pt_p50 = fmt::format("{:.2f}", p50);
        pt_p99 = fmt::format("{:.2f}", p99);
        ratio50 = fmt::format("{:.2f}x", r.rtt.p50_us / p50);
        ratio99 = fmt::format("{:.2f}x", r.rtt.p99_us / p99);
        all_met &= r.rtt.p50_us / p50 <= kTargetRatio;
        any_ratio = true;
        row["perftest"] = {{"tool", "ib_write_lat"},
                           {"iterations", pt->iterations},
                           {"t_typical_half_rtt_us", pt->t_typical},
                           {"p99_half_rtt_us", pt->p99},
                           {"p999_half_rtt_us", pt->p999},
                           {"t_max_half_rtt_us", pt->t_max},
                           {"rtt_p50_us", p50},
                           {"rtt_p99_us", p99}};
        row["ratio_p50"] = r.rtt.p50_us / p50;
        row["ratio_p99"] = r.rtt.p99_us / p99;
      } else {
        logger->warn("perftest baseline for {} bytes unavailable: {}", r.bytes,
                     pt.status().ToString());
        row["perftest_error"] = pt.status().ToString();
      }
    }
    fmt::print("{:>6} | {:>9.2f} {:>9.2f} {:>9.2f} {:>9.2f} | {:>12} {:>12} | {:>9} {:>9}\n",
               r.bytes, r.rtt.p50_us, r.rtt.p99_us, r.rtt.p999_us, r.rtt.max_us, pt_p50, pt_p99,
               ratio50, ratio99);
    out["results"].push_back(row);
  }
  if (any_ratio) {
    fmt::print("\ntarget: vigil p50 round trip <= {:.1f}x perftest: {}\n", kTargetRatio,
               all_met ? "met at every size" : "MISSED at some size (see table)");
  } else if (want_perftest) {
    fmt::print("\nno perftest baseline (install perftest: apt-get install perftest)\n");
  }
  if (!o.json.empty()) {
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

}  // namespace vigil::bench
