// vigil-bench ssr: restartable servers with Server State Regions.
//
// Without --kv/--lock (latency): an SSR store, a kv server using it and the same kv server
// WITHOUT a store run in this process; one client measures the protected call round trip through
// each (the second is the baseline: same gRPC path and service code, state in server memory).
//
// With --kv and/or --lock (kill loop): clients run against those servers (started elsewhere
// under a supervisor such as vigil-node --server) while this process SIGKILLs the server
// processes at random points. Every client checks each answer against its own model of what
// the server must hold; the report counts client-visible errors, lost and duplicated operations,
// and the time from each kill to the first successful reply.
#include <fmt/format.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "commands.h"
#include "environment.h"
#include "harness.h"
#include "vigil/common/cli.h"
#include "vigil/common/logging.h"
#include "vigil/server/client.h"
#include "vigil/server/framework.h"
#include "vigil/server/services.h"
#include "vigil/ssr/store.h"

namespace vigil::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

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

// ---- kill loop ---------------------------------------------------------------------------------

// The pid of the vigil-server process serving `listen`, or 0.
pid_t FindServer(const std::string& listen) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream f(entry.path() / "cmdline");
    std::string raw((std::istreambuf_iterator<char>(f)), {});
    std::vector<std::string> args;
    for (size_t p = 0; p < raw.size();) {
      const size_t e = raw.find('\0', p);
      args.push_back(raw.substr(p, e - p));
      if (e == std::string::npos) break;
      p = e + 1;
    }
    if (args.empty() || std::filesystem::path(args[0]).filename() != "vigil-server") continue;
    for (size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == "--listen" && args[i + 1] == listen) return std::stoi(name);
    }
  }
  return 0;
}

struct ServiceTally {
  std::string name, address;
  std::chrono::milliseconds call_deadline{60000};  // a call may be suspended this long
  std::atomic<uint64_t> ops{0}, errors{0}, lost{0}, duplicated{0}, kills{0};
  std::mutex mu;
  std::vector<double> recovery_ms;  // kill -> first successful reply
  double max_suspended_ms = 0;
  Clock::time_point killed_at{};
  bool awaiting = false;
  uint64_t last_epoch = 0;  // the newest server epoch a reply came from
  uint64_t epoch_at_kill = 0;
  std::vector<std::string> first_errors;

  void Success(const server::CallInfo& info) {
    ops++;
    std::lock_guard lock(mu);
    max_suspended_ms = std::max(max_suspended_ms, info.suspended.count() / 1000.0);
    last_epoch = std::max(last_epoch, info.epoch);
    if (awaiting && info.epoch > epoch_at_kill) {  // answered by the restarted instance
      recovery_ms.push_back(Ms(Clock::now() - killed_at));
      awaiting = false;
    }
  }
  void Error(const std::string& what) {
    errors++;
    std::lock_guard lock(mu);
    if (first_errors.size() < 5) first_errors.push_back(what);
  }
  void Violation(std::atomic<uint64_t>& counter, const std::string& what) {
    counter++;
    std::lock_guard lock(mu);
    if (first_errors.size() < 5) first_errors.push_back(what);
  }
};

Result<std::unique_ptr<server::Client>> Connect(const std::string& address,
                                                std::chrono::milliseconds deadline) {
  server::ClientOptions o;
  o.server = address;
  o.deadline = deadline;
  return server::Client::Connect(o);
}

// One kv client: its own counters and keys; every answer is predicted by the model.
void KvClient(ServiceTally& t, uint32_t seed, Clock::time_point end) {
  auto c = Connect(t.address, t.call_deadline);
  if (!c.ok()) return t.Error(c.status().ToString());
  std::mt19937 rng(seed);
  std::map<std::string, int64_t> counters;
  std::map<std::string, std::string> values;
  while (Clock::now() < end && !cli::ShutdownRequested()) {
    const uint32_t dice = rng() % 10;
    std::string req, expect;
    if (dice < 6) {
      const std::string k = fmt::format("c{}", rng() % 4);
      req = "incr " + k;
      expect = std::to_string(counters[k] + 1);
    } else if (dice < 8) {
      const std::string k = fmt::format("p{}", rng() % 8);
      const std::string v = std::to_string(rng());
      req = fmt::format("put {} {}", k, v);
      expect = "ok";
      values[k] = v;
    } else if (!values.empty()) {
      auto it = values.begin();
      std::advance(it, rng() % values.size());
      req = "get " + it->first;
      expect = it->second;
    } else {
      continue;
    }
    auto r = (*c)->Call(req);
    if (!r.ok()) {
      t.Error(fmt::format("client {} '{}': {}", (*c)->id(), req, r.status().ToString()));
      if (req.rfind("put", 0) == 0) values.erase(req.substr(4, req.find(' ', 4) - 4));
      continue;
    }
    t.Success((*c)->last());
    if (*r == expect) {
      if (req.rfind("incr", 0) == 0) counters[req.substr(5)]++;
      continue;
    }
    if (req.rfind("incr", 0) == 0) {
      const int64_t got = std::stoll(*r);
      const int64_t want = counters[req.substr(5)] + 1;
      t.Violation(
          got > want ? t.duplicated : t.lost,
          fmt::format("client {} '{}' returned {}, model says {}", (*c)->id(), req, got, want));
      counters[req.substr(5)] = got;  // resynchronise so one fault is counted once
    } else {
      t.Violation(t.lost, fmt::format("client {} '{}' returned '{}', model says '{}'", (*c)->id(),
                                      req, *r, expect));
    }
  }
  static_cast<void>((*c)->Bye());
}

// Lock clients contend on a few shared names; the model knows who holds what.
struct LockModel {
  std::mutex mu;
  std::map<std::string, uint64_t> owner;
};

void LockClient(ServiceTally& t, LockModel& m, uint32_t seed, Clock::time_point end) {
  auto c = Connect(t.address, t.call_deadline);
  if (!c.ok()) return t.Error(c.status().ToString());
  const uint64_t me = (*c)->id();
  std::mt19937 rng(seed);
  std::set<std::string> mine;
  auto call = [&](const std::string& req) -> Result<std::string> {
    auto r = (*c)->Call(req);
    if (r.ok()) t.Success((*c)->last());
    return r;
  };
  for (uint64_t n = 0; Clock::now() < end && !cli::ShutdownRequested(); ++n) {
    if (n % 8 == 7) {
      auto r = call("held");
      if (!r.ok()) {
        t.Error(fmt::format("client {} 'held': {}", me, r.status().ToString()));
        continue;
      }
      std::string want;
      for (const auto& l : mine) want += (want.empty() ? "" : " ") + l;
      if (*r != want) {
        t.Violation(t.lost, fmt::format("client {} holds '{}', model says '{}'", me, *r, want));
      }
      continue;
    }
    if (!mine.empty() && rng() % 2 == 0) {
      const std::string l = *mine.begin();
      {
        std::lock_guard lock(m.mu);  // give it up in the model before the server frees it
        m.owner.erase(l);
      }
      mine.erase(l);
      auto r = call("release " + l);
      if (!r.ok()) {
        if (r.status().code() == StatusCode::kNotFound) {
          t.Violation(t.lost, fmt::format("client {} lost lock {}", me, l));
        } else {
          t.Error(fmt::format("client {} 'release {}': {}", me, l, r.status().ToString()));
        }
      }
      continue;
    }
    const std::string l = fmt::format("L{}", rng() % 4);
    if (mine.count(l)) continue;
    auto r = call("acquire " + l);
    if (r.ok()) {
      std::lock_guard lock(m.mu);
      auto [it, fresh] = m.owner.emplace(l, me);
      if (!fresh && it->second != me) {
        t.Violation(t.duplicated, fmt::format("lock {} granted to client {} while client {} "
                                              "holds it",
                                              l, me, it->second));
      }
      it->second = me;
      mine.insert(l);
    } else if (r.status().code() != StatusCode::kFailedPrecondition) {
      t.Error(fmt::format("client {} 'acquire {}': {}", me, l, r.status().ToString()));
    }
  }
  for (const auto& l : mine) {
    {
      std::lock_guard lock(m.mu);
      m.owner.erase(l);
    }
    static_cast<void>(call("release " + l));
  }
  static_cast<void>((*c)->Bye());
}

int RunKillLoop(const SsrBenchOptions& opts) {
  std::vector<std::unique_ptr<ServiceTally>> tallies;
  if (!opts.kv.empty()) {
    tallies.push_back(std::make_unique<ServiceTally>());
    tallies.back()->name = "kv";
    tallies.back()->address = opts.kv;
  }
  if (!opts.lock.empty()) {
    tallies.push_back(std::make_unique<ServiceTally>());
    tallies.back()->name = "lock";
    tallies.back()->address = opts.lock;
  }
  for (auto& t : tallies) t->call_deadline = std::chrono::milliseconds(opts.call_deadline_ms);
  PrintEnvironment(Environment("servers: " + opts.kv + " " + opts.lock));
  fmt::print("\n{} client(s) per service for {} s; SIGKILL a server every {}..{} ms{}\n",
             opts.clients, opts.duration_s, opts.kill_min_ms, opts.kill_max_ms,
             opts.kill ? "" : " (disabled)");
  const auto end = Clock::now() + std::chrono::seconds(opts.duration_s);
  LockModel model;
  std::vector<std::thread> threads;
  for (auto& t : tallies) {
    for (uint32_t i = 0; i < opts.clients; ++i) {
      const uint32_t seed = opts.seed + i * 7919 + (t->name == "kv" ? 0 : 104729);
      if (t->name == "kv") {
        threads.emplace_back([&t = *t, seed, end] { KvClient(t, seed, end); });
      } else {
        threads.emplace_back([&t = *t, &model, seed, end] { LockClient(t, model, seed, end); });
      }
    }
  }
  uint64_t missed = 0;
  if (opts.kill) {
    std::mt19937 rng(opts.seed);
    // Stop killing early enough for the last restart to be seen by the clients.
    const auto stop_killing =
        end - std::max<Clock::duration>(std::chrono::milliseconds(opts.kill_max_ms), 5s);
    for (size_t k = 0; Clock::now() < stop_killing && !cli::ShutdownRequested(); ++k) {
      const auto wait = std::chrono::milliseconds(
          opts.kill_min_ms + rng() % (opts.kill_max_ms - opts.kill_min_ms + 1));
      std::this_thread::sleep_for(std::min<Clock::duration>(wait, stop_killing - Clock::now()));
      if (Clock::now() >= stop_killing) break;
      ServiceTally& t = *tallies[k % tallies.size()];
      const pid_t pid = FindServer(t.address);
      if (pid == 0) {
        missed++;  // restarting right now
        continue;
      }
      {
        std::lock_guard lock(t.mu);
        if (kill(pid, SIGKILL) != 0) continue;
        t.killed_at = Clock::now();
        t.awaiting = true;
        t.epoch_at_kill = t.last_epoch;
      }
      t.kills++;
      log::Get("bench")->info("SIGKILL {} server (pid {})", t.name, pid);
    }
  }
  for (auto& th : threads) th.join();

  fmt::print("\n{:<6} | {:>7} {:>6} {:>5} {:>5} {:>5} | {:>13} {:>13} {:>14}\n", "server", "ops",
             "errors", "lost", "dup", "kills", "recovery p50", "recovery max", "max suspended");
  bool clean = true;
  nlohmann::json results = nlohmann::json::array();
  for (auto& t : tallies) {
    std::sort(t->recovery_ms.begin(), t->recovery_ms.end());
    const double p50 = t->recovery_ms.empty() ? 0 : t->recovery_ms[(t->recovery_ms.size() - 1) / 2];
    const double mx = t->recovery_ms.empty() ? 0 : t->recovery_ms.back();
    fmt::print("{:<6} | {:>7} {:>6} {:>5} {:>5} {:>5} | {:>10.1f} ms {:>10.1f} ms {:>11.1f} ms\n",
               t->name, t->ops.load(), t->errors.load(), t->lost.load(), t->duplicated.load(),
               t->kills.load(), p50, mx, t->max_suspended_ms);
    for (const auto& e : t->first_errors) fmt::print("  {}: {}\n", t->name, e);
    clean &= t->errors == 0 && t->lost == 0 && t->duplicated == 0 && t->ops > 0;
    if (opts.kill) clean &= t->kills > 0 && t->recovery_ms.size() == t->kills;
    results.push_back({{"server", t->name},
                       {"ops", t->ops.load()},
                       {"client_visible_errors", t->errors.load()},
                       {"lost", t->lost.load()},
                       {"duplicated", t->duplicated.load()},
                       {"kills", t->kills.load()},
                       {"recovery_ms", t->recovery_ms},
                       {"max_suspended_ms", t->max_suspended_ms}});
  }
  fmt::print(
      "{}: {} kill(s) skipped because the server was restarting at that moment\n",
      clean ? "PASS: no client-visible errors, no lost and no duplicated operations" : "FAIL",
      missed);
  if (!opts.common.json.empty()) {
    std::ofstream(opts.common.json)
        << nlohmann::json{{"benchmark", "ssr kill loop"}, {"results", results}}.dump(2) << "\n";
  }
  return clean ? 0 : 1;
}

}  // namespace

int RunSsrBench(const SsrBenchOptions& options) {
  if (options.kv.empty() && options.lock.empty()) return RunLatency(options);
  return RunKillLoop(options);
}

}  // namespace vigil::bench
