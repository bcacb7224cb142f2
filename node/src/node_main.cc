// vigil-node: the worker-node agent. Serves vigil.node.v1.NodeAgent: the voter starts and stops
// replica processes here; vigilctl inspects them and injects faults. Stops on SIGINT/SIGTERM
// (its replicas are stopped with it). With --server it also supervises restartable servers:
// each is restarted in place (same command line, so the same address) whenever it dies.
#include <fmt/format.h>
#include <unistd.h>

#include <thread>

#include "vigil/common/cli.h"
#include "vigil/common/cpu.h"
#include "vigil/common/logging.h"
#include "vigil/node/agent.h"
#include "vigil/node/supervisor.h"
#include "vigil/security/tls_flags.h"

int main(int argc, char** argv) {
  using namespace vigil;
  CLI::App app{"vigil-node: worker-node agent that runs replicas for vigil-voter"};
  cli::CommonOptions common;
  cli::AddCommonOptions(app, common);
  vigil::security::TlsOptions tls;
  vigil::security::AddTlsOptions(app, tls);
  node::AgentOptions o;
  std::string listen = "127.0.0.1:7720";
  app.add_option("--listen", listen, "host:port to serve on (port 0: any; printed)");
  app.add_option("--name", o.node_name, "this node's name in logs and status")
      ->check(cli::PrintableName(255))
      ->default_str("hostname");
  app.add_option("--replica-binary", o.replica_binary,
                 "vigil-replica to run (default: next to vigil-node)");
  app.add_option("--device", o.device, "RDMA device for replicas (default: first ACTIVE port)");
  app.add_option("--cpus", o.cpus,
                 "CPUs to pin replicas to, one per replica in turn (e.g. 2,3,4; default: none)")
      ->delimiter(',');
  std::vector<std::string> exec_allow;
  app.add_option("--exec-allow", exec_allow,
                 "a program (absolute path) the voter may run here as a vigil-run replica, or "
                 "DIR/ for any program directly in DIR; repeat. Matched after resolving links. "
                 "Default: none (exec refused)");
  app.add_option("--max-replicas", o.max_replicas,
                 "replica processes this node runs at once; one more is refused with "
                 "RESOURCE_EXHAUSTED (0: no cap)")
      ->capture_default_str();
  app.add_option("--replica-log-level", o.replica_log_level, "replicas' --log-level")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  std::vector<std::string> servers;
  std::string servers_file;
  FailurePolicy policy;
  int64_t backoff_ms = policy.initial_backoff.count();
  int64_t max_backoff_ms = policy.max_backoff.count();
  int64_t window_s = policy.window.count() / 1000;
  app.add_option("--server", servers,
                 "supervise a restartable server: NAME[@HOST:PORT]=PROGRAM ARG... (split on "
                 "spaces); repeatable. Its health is probed at HOST:PORT, else at the value of "
                 "the program's --listen argument")
      ->type_name("NAME=CMD");
  app.add_option("--servers-file", servers_file,
                 "supervise the servers listed in this file: one NAME=PROGRAM ARG... per line, "
                 "'#' starts a comment (for systemd units and deploy templates)")
      ->check(CLI::ExistingFile);
  app.add_option("--restart-backoff-ms", backoff_ms, "first restart delay; doubles per failure")
      ->check(CLI::Range(int64_t{1}, int64_t{60000}))
      ->capture_default_str();
  app.add_option("--restart-max-backoff-ms", max_backoff_ms, "longest restart delay")
      ->check(CLI::Range(int64_t{1}, int64_t{600000}))
      ->capture_default_str();
  app.add_option("--restart-max", policy.max_failures,
                 "give up on a server that dies more often than this within the window")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  app.add_option("--restart-window-s", window_s, "the window of --restart-max")
      ->check(CLI::Range(int64_t{1}, int64_t{86400}))
      ->capture_default_str();
  node::ProbePolicy probe;
  int64_t probe_interval_ms = probe.interval.count(), probe_deadline_ms = probe.deadline.count(),
          probe_grace_ms = probe.grace.count(), probe_stuck_ms = probe.stuck.count();
  app.add_option("--probe-interval-ms", probe_interval_ms,
                 "how often a supervised server's health is probed")
      ->check(CLI::Range(int64_t{10}, int64_t{3600000}))
      ->capture_default_str();
  app.add_option("--probe-deadline-ms", probe_deadline_ms, "how long one probe may take")
      ->check(CLI::Range(int64_t{10}, int64_t{3600000}))
      ->capture_default_str();
  app.add_option("--probe-failures", probe.failures,
                 "probes missed in a row after which a server is hung: SIGKILL, restart")
      ->check(CLI::Range(1u, 1000u))
      ->capture_default_str();
  app.add_option("--probe-grace-ms", probe_grace_ms,
                 "after a start, missed probes count only once the server answered one or "
                 "after this long")
      ->check(CLI::Range(int64_t{0}, int64_t{3600000}))
      ->capture_default_str();
  app.add_option("--probe-stuck-ms", probe_stuck_ms,
                 "a server with calls in flight that completes none for this long is hung")
      ->check(CLI::Range(int64_t{100}, int64_t{86400000}))
      ->capture_default_str();
  return cli::Run(app, common, argc, argv, [&]() -> int {
    if (int rc = vigil::security::UseTlsFlags(tls); rc != 0) return rc;
    probe.interval = std::chrono::milliseconds(probe_interval_ms);
    probe.deadline = std::chrono::milliseconds(probe_deadline_ms);
    probe.grace = std::chrono::milliseconds(probe_grace_ms);
    probe.stuck = std::chrono::milliseconds(probe_stuck_ms);
    policy.initial_backoff = std::chrono::milliseconds(backoff_ms);
    policy.max_backoff = std::chrono::milliseconds(std::max(max_backoff_ms, backoff_ms));
    policy.window = std::chrono::seconds(window_s);
    if (!servers_file.empty()) {
      auto listed = node::ReadServersFile(servers_file);
      if (!listed.ok()) {
        fmt::print(stderr, "error: --servers-file: {}\n", listed.status().message());
        return 2;
      }
      servers.insert(servers.end(), listed->begin(), listed->end());
    }
    std::vector<node::SupervisedProgram> programs;
    for (const auto& spec : servers) {
      auto p = node::ParseSupervised(spec);
      if (!p.ok()) {
        fmt::print(stderr, "error: --server {}\n", p.status().message());
        return 2;
      }
      p->policy = policy;
      p->probe_policy = probe;
      programs.push_back(std::move(*p));
    }
    if (o.node_name.empty() || o.node_name == "hostname") {
      char host[256] = {};
      gethostname(host, sizeof(host) - 1);
      o.node_name = host[0] != 0 ? host : "node";
    }
    if (auto allow = node::ExecAllowList::Make(exec_allow); allow.ok()) {
      o.exec_allow = std::move(*allow);
    } else {
      fmt::print(stderr, "error: --exec-allow: {}\n", allow.status().message());
      return 2;
    }
    for (int cpu : o.cpus) {
      if (Status st = CheckCpu(cpu); !st.ok()) {
        fmt::print(stderr, "error: --cpus: {}\n", st.message());
        return 2;
      }
    }
    node::NodeAgent agent(o);
    for (auto& p : programs) {
      if (Status st = agent.Supervise(std::move(p)); !st.ok()) {
        fmt::print(stderr, "error: --server: {}\n", st.ToString());
        return 1;
      }
    }
    if (Status st = agent.Start(listen); !st.ok()) {
      fmt::print(stderr, "error: --listen: {}\n", st.ToString());
      return 2;
    }
    fmt::print("vigil-node '{}' listening on port {}{}\n", o.node_name, agent.port(),
               agent.supervised() == 0
                   ? ""
                   : fmt::format(", supervising {} server(s)", agent.supervised()));
    std::fflush(stdout);
    while (!cli::ShutdownRequested()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log::Get("node")->info("shutting down: stopping replicas and servers");
    agent.Shutdown();
    return 0;
  });
}
