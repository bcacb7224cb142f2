// vigil-bench ssr: restartable servers with Server State Regions.
//
// Without --kv/--lock (latency): an SSR store, a kv server using it and the same kv server
// WITHOUT a store run in this process; one client measures the protected call round trip through
// each (the second is the baseline: same gRPC path and service code, state in server memory).
//
// With --kv and/or --lock: the kill loop (ssr_kill_loop.cc).
#include <fmt/format.h>

#include <fstream>

#include "commands.h"
#include "environment.h"
#include "harness.h"
#include "vigil/common/logging.h"
#include "vigil/server/client.h"
#include "vigil/server/framework.h"
#include "vigil/server/services.h"
#include "vigil/ssr/store.h"

namespace vigil::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The mean, in microseconds, of `n` intervals that add up to `total` (0 when there were none).
double MeanUs(std::chrono::nanoseconds total, uint64_t n) {
  return n == 0 ? 0.0 : static_cast<double>(total.count()) / 1000.0 / static_cast<double>(n);
}

// ---- latency -----------------------------------------------------------------------------------

// Round trips of kv "incr" calls to the servers on `ports`, measured in interleaved rounds of 50
// calls per server so that drift in the machine's state (emulation, other load) hits every
// server alike. One summary per port.
Result<std::vector<LatencySummary>> MeasureCalls(const std::vector<int>& ports, uint64_t warmup,
                                                 uint64_t iterations) {
  struct Target {
    std::unique_ptr<server::Client> client;
    LatencySamples samples;
    uint64_t done = 0;
  };
  std::vector<Target> targets;
  for (int port : ports) {
    server::ClientOptions o;
    o.server = "127.0.0.1:" + std::to_string(port);
    VIGIL_ASSIGN_OR_RETURN(auto client, server::Client::Connect(o));
    targets.push_back(Target{std::move(client), LatencySamples(iterations), 0});
  }
  constexpr uint64_t kRound = 50;
  for (uint64_t base = 0; base < warmup + iterations; base += kRound) {
    for (auto& t : targets) {
      for (uint64_t i = base; i < std::min(base + kRound, warmup + iterations); ++i) {
        const auto t0 = Clock::now();
        auto r = t.client->Call("incr counter");
        const auto t1 = Clock::now();
        if (!r.ok()) return r.status().WithContext("kv call");
        if (*r != std::to_string(++t.done)) {
          return DataLoss(fmt::format("incr returned {} at call {}", *r, t.done));
        }
        if (i >= warmup) {
          t.samples.Record(static_cast<uint64_t>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
        }
      }
    }
  }
  std::vector<LatencySummary> out;
  for (auto& t : targets) out.push_back(t.samples.Summarize());
  return out;
}

constexpr size_t kRecoveryClients = 16;

struct RecoveryNumbers {
  LatencySummary first_call;
  double load_us = 0;
  double startup_us = 0;
};

Result<RecoveryNumbers> MeasureRecovery(BenchSetup& setup, int store_port,
                                        std::unique_ptr<server::RestartableServer> kv) {
  server::ServerOptions o;
  o.store.store = "127.0.0.1:" + std::to_string(store_port);
  o.store.connection = setup.conn;
  o.listen = "127.0.0.1:" + std::to_string(kv->port());
  o.store.instance = "kv-ssr";
  std::vector<std::unique_ptr<server::Client>> clients;
  for (size_t i = 0; i < kRecoveryClients; ++i) {
    server::ClientOptions co;
    co.server = o.listen;
    VIGIL_ASSIGN_OR_RETURN(auto c, server::Client::Connect(co));
    for (int k = 0; k < 8; ++k) {
      VIGIL_RETURN_IF_ERROR(c->Call(fmt::format("put key{} value-{}-{}", k, i, k)).status());
    }
    clients.push_back(std::move(c));
  }
  kv->Shutdown();
  kv.reset();
  VIGIL_ASSIGN_OR_RETURN(
      kv, server::RestartableServer::Start(setup.transport.get(), server::MakeKvService(), o));
  RecoveryNumbers out;
  LatencySamples first(kRecoveryClients);
  for (auto& c : clients) {
    const auto t0 = Clock::now();
    auto r = c->Call("get key7");
    const auto t1 = Clock::now();
    if (!r.ok()) return r.status().WithContext("first call after the restart");
    first.Record(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
  }
  out.first_call = first.Summarize();
  const auto ks = kv->Stats();
  out.load_us = MeanUs(ks.load_time, ks.loads);
  kv->Shutdown();

  // All-clients: the same number of lock clients, each holding a lock; restart; time the read.
  server::ServerOptions lo = o;
  lo.listen = "127.0.0.1:0";
  lo.store.instance = "lock-ssr";
  VIGIL_ASSIGN_OR_RETURN(auto lock, server::RestartableServer::Start(
                                        setup.transport.get(), server::MakeLockService(), lo));
  lo.listen = "127.0.0.1:" + std::to_string(lock->port());
  for (size_t i = 0; i < kRecoveryClients; ++i) {
    server::ClientOptions co;
    co.server = lo.listen;
    VIGIL_ASSIGN_OR_RETURN(auto c, server::Client::Connect(co));
    VIGIL_RETURN_IF_ERROR(c->Call(fmt::format("acquire lock{}", i)).status());
  }
  lock->Shutdown();
  lock.reset();
  VIGIL_ASSIGN_OR_RETURN(
      lock, server::RestartableServer::Start(setup.transport.get(), server::MakeLockService(), lo));
  out.startup_us = static_cast<double>(lock->Stats().startup_recovery.count());
  lock->Shutdown();
  return out;
}

int RunLatency(const SsrBenchOptions& opts) {
  auto setup = OpenAndDescribe(opts.common);
  if (!setup) return 1;
  ssr::StoreOptions so;
  so.arena_bytes = 16 << 20;
  auto store = ssr::Store::Create(*setup->transport, so);
  if (!store.ok()) {
    fmt::print(stderr, "error: {}\n", store.status().ToString());
    return 1;
  }
  transport::BootstrapServer bootstrap(*setup->transport, "ssr-store", setup->conn);
  (*store)->Attach(bootstrap);
  if (Status st = bootstrap.Start("127.0.0.1:0"); !st.ok()) {
    fmt::print(stderr, "error: {}\n", st.ToString());
    return 1;
  }
  auto start_kv = [&](bool with_store) {
    server::ServerOptions o;
    o.store.instance = with_store ? "kv-ssr" : "kv-volatile";
    if (with_store) o.store.store = "127.0.0.1:" + std::to_string(bootstrap.port());
    o.store.connection = setup->conn;
    o.store.spin_us = opts.spin_us;
    return server::RestartableServer::Start(setup->transport.get(), server::MakeKvService(), o);
  };
  auto with = start_kv(true);
  auto without = start_kv(false);
  if (!with.ok() || !without.ok()) {
    fmt::print(stderr, "error: {}\n", (!with.ok() ? with.status() : without.status()).ToString());
    return 1;
  }
  auto measured = MeasureCalls({(*with)->port(), (*without)->port()}, opts.common.warmup,
                               opts.common.iterations);
  if (!measured.ok()) {
    fmt::print(stderr, "error: {}\n", measured.status().ToString());
    return 1;
  }
  const LatencySummary* a = &(*measured)[0];
  const LatencySummary* b = &(*measured)[1];
  const auto stats = (*store)->Stats();
  fmt::print("\nprotected call round trip (kv 'incr', client -> gRPC -> server), {} calls\n",
             opts.common.iterations);
  fmt::print("{:<28} | {:>9} {:>9} {:>9} {:>9}\n", "", "p50 us", "p99 us", "p99.9 us", "max us");
  auto row = [](const char* what, const LatencySummary& s) {
    fmt::print("{:<28} | {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f}\n", what, s.p50_us, s.p99_us,
               s.p999_us, s.max_us);
  };
  row("with SSR", *a);
  row("without SSR (baseline)", *b);
  const double r50 = a->p50_us / b->p50_us, r99 = a->p99_us / b->p99_us;
  const auto ss = (*with)->Stats();
  fmt::print(
      "with SSR, mean per call inside the server: grant {:.1f} us (SEND round trip to the "
      "store + registration), load {:.1f} us (RDMA READ of the SSR + validation: the server "
      "keeps no client's state between calls), save {:.1f} us (RDMA WRITE)\n",
      MeanUs(ss.grant_time, ss.calls), MeanUs(ss.load_time, ss.loads),
      MeanUs(ss.save_time, ss.calls));
  fmt::print(
      "in the store, mean per grant {:.1f} us (find + ibv_reg_mr), per release {:.1f} us "
      "(ibv_dereg_mr)\n",
      MeanUs(stats.grant_time, stats.grants_total),
      MeanUs(stats.release_time, stats.releases_total));
  fmt::print(
      "ratio with/without: p50 {:.2f}x, p99 {:.2f}x (target p50 <= 1.3x: {}; CuriOS "
      "reported 1.94x)\n",
      r50, r99, r50 <= 1.3 ? "met" : "NOT met");
  const size_t row_bytes = stats.overhead_bytes + so.capacity - stats.ssr_bytes;
  fmt::print(
      "arena bytes per client: {} = 2 slots x ({} B header + {} B payload) + {} B table "
      "row: {} B of metadata, the rest is the second (A/B) copy; {} grants made\n",
      stats.ssr_bytes + row_bytes, ssr::kSlotHeaderBytes, so.capacity, row_bytes,
      2 * ssr::kSlotHeaderBytes + row_bytes, stats.grants_total);
  // Recovery: kRecoveryClients clients with state; then the kv server is replaced by a new
  // instance (per-client: each client's first call reads and validates its SSR) and a lock
  // server is restarted (all-clients: every SSR is read before serving).
  auto recovery = MeasureRecovery(*setup, bootstrap.port(), std::move(*with));
  if (!recovery.ok()) {
    fmt::print(stderr, "error: {}\n", recovery.status().ToString());
    return 1;
  }
  fmt::print(
      "recovery after a restart, {} clients: per-client (kv) first call p50 {:.1f} us vs "
      "{:.1f} us steady, of which RDMA READ + validation {:.1f} us per client; all-clients "
      "(lock) start-up read of every SSR {:.1f} us ({:.1f} us per client)\n",
      kRecoveryClients, recovery->first_call.p50_us, a->p50_us, recovery->load_us,
      recovery->startup_us, recovery->startup_us / kRecoveryClients);
  if (!opts.common.json.empty()) {
    nlohmann::json out = {{"benchmark", "ssr latency"},
                          {"environment", Environment(Describe(*setup))},
                          {"with_ssr",
                           {{"p50_us", a->p50_us},
                            {"p99_us", a->p99_us},
                            {"p999_us", a->p999_us},
                            {"max_us", a->max_us}}},
                          {"without_ssr",
                           {{"p50_us", b->p50_us},
                            {"p99_us", b->p99_us},
                            {"p999_us", b->p999_us},
                            {"max_us", b->max_us}}},
                          {"ratio_p50", r50},
                          {"mean_grant_us", MeanUs(ss.grant_time, ss.calls)},
                          {"mean_load_us", MeanUs(ss.load_time, ss.loads)},
                          {"mean_save_us", MeanUs(ss.save_time, ss.calls)},
                          {"ratio_p99", r99},
                          {"overhead_bytes_per_client", stats.overhead_bytes},
                          {"recovery",
                           {{"clients", kRecoveryClients},
                            {"per_client_first_call_p50_us", recovery->first_call.p50_us},
                            {"per_client_load_us", recovery->load_us},
                            {"all_clients_startup_us", recovery->startup_us}}}};
    std::ofstream(opts.common.json) << out.dump(2) << "\n";
  }
  (*without)->Shutdown();
  bootstrap.Shutdown();
  return 0;
}

}  // namespace

int RunSsrBench(const SsrBenchOptions& options) {
  if (options.kv.empty() && options.lock.empty()) return RunLatency(options);
  return RunKillLoop(options);
}

}  // namespace vigil::bench
