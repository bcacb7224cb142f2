// vigil-bench ssr --kv/--lock: the kill loop, and with --kills N the server campaign.
//
// Model-checking clients run against kv and lock servers started elsewhere under a supervisor
// (vigil-node --server) while this process strikes the server processes at random times: a
// SIGKILL, or with --hang-percent a SIGSTOP that only the supervisor's health probe can end.
// Every client predicts each answer from its own model of what the server must hold; the report
// counts client-visible errors, lost and duplicated operations, the answers replayed from a
// recorded reply, the restarts seen (also those the server injects itself, e.g.
// vigil-server --inject-crash-after-save), and the time from each strike until a new instance
// answers the Health probe. One strike per server at a time: the next waits for its recovery.
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "commands.h"
#include "environment.h"
#include "vigil/common/cli.h"
#include "vigil/common/logging.h"
#include "vigil/security/certs.h"
#include "vigil/security/tls.h"
#include "vigil/server/client.h"
#include "vigil/server/v1/restartable.grpc.pb.h"

namespace vigil::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

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
  std::unique_ptr<server::v1::Restartable::Stub> health;
  std::atomic<uint64_t> ops{0}, errors{0}, lost{0}, duplicated{0}, replayed{0};
  // The strikes (touched by the striking thread only).
  uint64_t kills = 0, hangs = 0, unrecovered = 0;
  std::vector<double> recovery_ms;  // strike -> a new instance answers Health
  bool awaiting = false;
  Clock::time_point struck_at{};
  uint64_t instance_struck = 0;
  // What the clients saw.
  std::mutex mu;
  double max_suspended_ms = 0;
  uint64_t first_epoch = 0, last_epoch = 0;  // server epochs that answered
  std::vector<std::string> first_errors;

  void Success(const server::CallInfo& info) {
    ops++;
    if (info.replayed) replayed++;
    std::lock_guard lock(mu);
    max_suspended_ms = std::max(max_suspended_ms, info.suspended.count() / 1000.0);
    if (first_epoch == 0 || info.epoch < first_epoch) first_epoch = info.epoch;
    last_epoch = std::max(last_epoch, info.epoch);
  }
  void Error(const std::string& what) { Violation(errors, what); }
  void Violation(std::atomic<uint64_t>& counter, const std::string& what) {
    counter++;
    std::lock_guard lock(mu);
    if (first_errors.size() < 5) first_errors.push_back(what);
  }
  // Restarts of a server with a store, from the epochs its answers carried (0: no store).
  uint64_t RestartsSeen() {
    std::lock_guard lock(mu);
    return last_epoch - first_epoch;
  }
  // The instance answering Health now, or 0 when none answers within `deadline`.
  uint64_t Instance(std::chrono::milliseconds deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    server::v1::HealthReply reply;
    if (!health->Health(&ctx, server::v1::HealthRequest(), &reply).ok()) return 0;
    return reply.instance();
  }
};

// Who a client thread is: with TLS, the id its certificate names; without, a random id.
struct ClientIdentity {
  security::TlsSetting tls;  // unset: the process's
  uint64_t id = 0;
};

Result<std::unique_ptr<server::Client>> Connect(const std::string& address,
                                                std::chrono::milliseconds deadline,
                                                const ClientIdentity& who) {
  server::ClientOptions o;
  o.server = address;
  o.deadline = deadline;
  o.tls = who.tls;
  o.client_id = who.id;
  return server::Client::Connect(o);
}

// One identity per client thread: from --client-tls-dir (each a distinct vigil://client/ID), or,
// without TLS, random ids. With TLS and too few certificates: an error naming the numbers.
Result<std::vector<ClientIdentity>> ClientIdentities(const SsrBenchOptions& opts) {
  std::vector<ClientIdentity> out(opts.clients);
  if (opts.client_tls_dirs.empty()) {
    if (security::ProcessTls().tls()) {
      return InvalidArgument(fmt::format(
          "with TLS each of the {} client threads needs its own client certificate: give "
          "--client-tls-dir {} times",
          opts.clients, opts.clients));
    }
    return out;
  }
  if (opts.client_tls_dirs.size() != opts.clients) {
    return InvalidArgument(fmt::format("{} --client-tls-dir given for {} client threads",
                                       opts.client_tls_dirs.size(), opts.clients));
  }
  std::set<uint64_t> ids;
  for (size_t i = 0; i < out.size(); ++i) {
    const std::string& dir = opts.client_tls_dirs[i];
    security::TlsOptions tls;
    tls.dir = dir;
    VIGIL_ASSIGN_OR_RETURN(security::TlsMaterial pem, security::LoadTls(tls));
    out[i].tls = tls;
    auto who = security::CertificateIdentity(pem.cert);
    if (!who.ok()) {
      return InvalidArgument(fmt::format("--client-tls-dir '{}': {}", dir, who.status().message()));
    }
    uint64_t id = 0;
    const char* end = who->name.data() + who->name.size();
    if (who->role != security::Role::kClient ||
        std::from_chars(who->name.data(), end, id).ptr != end || id == 0) {
      return InvalidArgument(fmt::format(
          "--client-tls-dir '{}' holds {}, not a client certificate (vigil://client/ID)", dir,
          who->Uri()));
    }
    if (!ids.insert(id).second) {
      return InvalidArgument(fmt::format("--client-tls-dir '{}': client {} twice", dir, id));
    }
    out[i].id = id;
  }
  return out;
}

// One kv client: its own counters and keys; every answer is predicted by the model.
void KvClient(ServiceTally& t, const ClientIdentity& who, uint32_t seed,
              const std::atomic<bool>& stop) {
  auto c = Connect(t.address, t.call_deadline, who);
  if (!c.ok()) return t.Error(c.status().ToString());
  std::mt19937 rng(seed);
  std::map<std::string, int64_t> counters;
  std::map<std::string, std::string> values;
  while (!stop && !cli::ShutdownRequested()) {
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

void LockClient(ServiceTally& t, LockModel& m, const ClientIdentity& who, uint32_t seed,
                const std::atomic<bool>& stop) {
  auto c = Connect(t.address, t.call_deadline, who);
  if (!c.ok()) return t.Error(c.status().ToString());
  const uint64_t me = (*c)->id();
  std::mt19937 rng(seed);
  std::set<std::string> mine;
  auto call = [&](const std::string& req) -> Result<std::string> {
    auto r = (*c)->Call(req);
    if (r.ok()) t.Success((*c)->last());
    return r;
  };
  for (uint64_t n = 0; !stop && !cli::ShutdownRequested(); ++n) {
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

// Strikes the servers in turn until `strikes` were made (0: no limit) or `stop_striking`;
// returns the strikes skipped because no server answered or none was found (restarting).
uint64_t Strike(const SsrBenchOptions& opts, std::vector<std::unique_ptr<ServiceTally>>& tallies,
                Clock::time_point stop_striking) {
  auto log = log::Get("bench");
  std::mt19937 rng(opts.seed);
  const auto recovery_limit = std::chrono::milliseconds(opts.call_deadline_ms);
  // Polls every awaiting server's Health; true when none awaits any more.
  auto poll = [&] {
    bool idle = true;
    for (auto& t : tallies) {
      if (!t->awaiting) continue;
      const uint64_t now_instance = t->Instance(200ms);
      if (now_instance != 0 && now_instance != t->instance_struck) {
        t->recovery_ms.push_back(Ms(Clock::now() - t->struck_at));
        t->awaiting = false;
      } else if (Clock::now() - t->struck_at > recovery_limit) {
        t->unrecovered++;
        t->awaiting = false;
        log->error("{} server did not come back within {} ms", t->name, recovery_limit.count());
      } else {
        idle = false;
      }
    }
    return idle;
  };
  uint64_t missed = 0, made = 0;
  for (size_t k = 0; Clock::now() < stop_striking && !cli::ShutdownRequested(); ++k) {
    if (opts.kills > 0 && made >= opts.kills) break;
    const auto next =
        Clock::now() + std::chrono::milliseconds(opts.kill_min_ms +
                                                 rng() % (opts.kill_max_ms - opts.kill_min_ms + 1));
    while (Clock::now() < std::min(next, stop_striking)) {
      poll();
      std::this_thread::sleep_for(20ms);
    }
    if (Clock::now() >= stop_striking) break;
    ServiceTally& t = *tallies[k % tallies.size()];
    const bool hang = rng() % 100 < opts.hang_percent;
    if (t.awaiting) continue;  // its last strike has not recovered yet
    const uint64_t instance = t.Instance(500ms);
    const pid_t pid = instance == 0 ? 0 : FindServer(t.address);
    if (pid == 0) {
      missed++;  // restarting right now (e.g. a crash the server injected itself)
      continue;
    }
    if (kill(pid, hang ? SIGSTOP : SIGKILL) != 0) continue;
    t.struck_at = Clock::now();
    t.instance_struck = instance;
    t.awaiting = true;
    (hang ? t.hangs : t.kills)++;
    made++;
    log->info("{} {} server (pid {}), strike {}", hang ? "SIGSTOP" : "SIGKILL", t.name, pid, made);
    if (made % 100 == 0) {
      fmt::print(stderr, "{} strikes made\n", made);
    }
  }
  // Every strike's recovery is seen before the clients stop.
  while (!poll()) std::this_thread::sleep_for(20ms);
  return missed;
}

}  // namespace

int RunKillLoop(const SsrBenchOptions& opts) {
  auto identities = ClientIdentities(opts);
  if (!identities.ok()) {
    fmt::print(stderr, "error: {}\n", identities.status().message());
    return 2;
  }
  std::vector<std::unique_ptr<ServiceTally>> tallies;
  for (const auto& [name, address] : {std::pair{"kv", opts.kv}, {"lock", opts.lock}}) {
    if (address.empty()) continue;
    auto t = std::make_unique<ServiceTally>();
    t->name = name;
    t->address = address;
    t->call_deadline = std::chrono::milliseconds(opts.call_deadline_ms);
    auto channel = security::Channel(security::ProcessTls(), address, security::Role::kServer);
    if (!channel.ok()) {
      fmt::print(stderr, "error: {}\n", channel.status().message());
      return 2;
    }
    t->health = server::v1::Restartable::NewStub(*channel);
    tallies.push_back(std::move(t));
  }
  PrintEnvironment(Environment("servers: " + opts.kv + " " + opts.lock));
  fmt::print(
      "\n{} client(s) per service for {} s{}; strike a server every {}..{} ms{} ({}% "
      "SIGSTOP, the rest SIGKILL)\n",
      opts.clients, opts.duration_s,
      opts.kills > 0 ? fmt::format(" or until {} strikes", opts.kills) : "", opts.kill_min_ms,
      opts.kill_max_ms, opts.kill ? "" : " (disabled)", opts.hang_percent);
  const auto end = Clock::now() + std::chrono::seconds(opts.duration_s);
  std::atomic<bool> stop{false};
  LockModel model;
  std::vector<std::thread> threads;
  for (auto& t : tallies) {
    for (uint32_t i = 0; i < opts.clients; ++i) {
      const uint32_t seed = opts.seed + i * 7919 + (t->name == "kv" ? 0 : 104729);
      const ClientIdentity& who = (*identities)[i];
      if (t->name == "kv") {
        threads.emplace_back([&t = *t, &who, seed, &stop] { KvClient(t, who, seed, stop); });
      } else {
        threads.emplace_back(
            [&t = *t, &model, &who, seed, &stop] { LockClient(t, model, who, seed, stop); });
      }
    }
  }
  uint64_t missed = 0;
  if (opts.kill) {
    // Stop striking early enough for the last restart to be seen by the clients.
    missed =
        Strike(opts, tallies,
               end - std::max<Clock::duration>(std::chrono::milliseconds(opts.kill_max_ms), 5s));
    std::this_thread::sleep_for(2s);  // the clients run on the last restarted instances
  } else {
    while (Clock::now() < end && !cli::ShutdownRequested()) std::this_thread::sleep_for(100ms);
  }
  stop = true;
  for (auto& th : threads) th.join();

  fmt::print("\n{:<6} | {:>7} {:>6} {:>5} {:>5} {:>8} | {:>5} {:>5} {:>8} | {:>13} {:>13} {:>14}\n",
             "server", "ops", "errors", "lost", "dup", "replayed", "kills", "hangs", "restarts",
             "recovery p50", "recovery max", "max suspended");
  bool clean = true;
  uint64_t strikes = 0;
  nlohmann::json results = nlohmann::json::array();
  for (auto& t : tallies) {
    std::sort(t->recovery_ms.begin(), t->recovery_ms.end());
    const double p50 = t->recovery_ms.empty() ? 0 : t->recovery_ms[(t->recovery_ms.size() - 1) / 2];
    const double mx = t->recovery_ms.empty() ? 0 : t->recovery_ms.back();
    const uint64_t restarts = t->RestartsSeen();
    fmt::print(
        "{:<6} | {:>7} {:>6} {:>5} {:>5} {:>8} | {:>5} {:>5} {:>8} | {:>10.1f} ms {:>10.1f} ms "
        "{:>11.1f} ms\n",
        t->name, t->ops.load(), t->errors.load(), t->lost.load(), t->duplicated.load(),
        t->replayed.load(), t->kills, t->hangs, restarts, p50, mx, t->max_suspended_ms);
    for (const auto& e : t->first_errors) fmt::print("  {}: {}\n", t->name, e);
    clean &= t->errors == 0 && t->lost == 0 && t->duplicated == 0 && t->ops > 0;
    if (opts.kill) {
      clean &= t->kills + t->hangs > 0 && t->unrecovered == 0 &&
               t->recovery_ms.size() == t->kills + t->hangs;
    }
    strikes += t->kills + t->hangs;
    results.push_back({{"server", t->name},
                       {"ops", t->ops.load()},
                       {"client_visible_errors", t->errors.load()},
                       {"lost", t->lost.load()},
                       {"duplicated", t->duplicated.load()},
                       {"replayed", t->replayed.load()},
                       {"kills", t->kills},
                       {"hangs", t->hangs},
                       {"unrecovered", t->unrecovered},
                       {"restarts_seen", restarts},
                       {"recovery_ms", t->recovery_ms},
                       {"max_suspended_ms", t->max_suspended_ms}});
  }
  fmt::print(
      "{}: {} strike(s) made; {} skipped because the server was restarting then\n",
      clean ? "PASS: no client-visible errors, no lost and no duplicated operations" : "FAIL",
      strikes, missed);
  if (!opts.common.json.empty()) {
    std::ofstream(opts.common.json) << nlohmann::json{{"benchmark", "ssr kill loop"},
                                                      {"seed", opts.seed},
                                                      {"strikes", strikes},
                                                      {"skipped", missed},
                                                      {"results", results}}
                                           .dump(2)
                                    << "\n";
  }
  return clean ? 0 : 1;
}

}  // namespace vigil::bench
