// vigil-node: the worker-node agent. Serves vigil.node.v1.NodeAgent: the voter starts and stops
// replica processes here; vigilctl inspects them and injects faults. Stops on SIGINT/SIGTERM
// (its replicas are stopped with it).
#include <fmt/format.h>
#include <unistd.h>

#include <thread>

#include "vigil/common/cli.h"
#include "vigil/common/logging.h"
#include "vigil/node/agent.h"

int main(int argc, char** argv) {
  using namespace vigil;
  CLI::App app{"vigil-node: worker-node agent that runs replicas for vigil-voter"};
  cli::CommonOptions common;
  cli::AddCommonOptions(app, common);
  node::AgentOptions o;
  std::string listen = "127.0.0.1:7720";
  app.add_option("--listen", listen, "host:port to serve on (port 0: any; printed)");
  app.add_option("--name", o.node_name, "this node's name in logs and status")
      ->default_str("hostname");
  app.add_option("--replica-binary", o.replica_binary,
                 "vigil-replica to run (default: next to vigil-node)");
  app.add_option("--device", o.device, "RDMA device for replicas (default: first ACTIVE port)");
  app.add_option("--cpus", o.cpus,
                 "CPUs to pin replicas to, one per replica in turn (e.g. 2,3,4; default: none)")
      ->delimiter(',');
  app.add_option("--replica-log-level", o.replica_log_level, "replicas' --log-level")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  return cli::Run(app, common, argc, argv, [&]() -> int {
    if (o.node_name.empty() || o.node_name == "hostname") {
      char host[256] = {};
      gethostname(host, sizeof(host) - 1);
      o.node_name = host[0] != 0 ? host : "node";
    }
    for (int cpu : o.cpus) {
      if (Status st = node::CheckCpu(cpu); !st.ok()) {
        fmt::print(stderr, "error: --cpus: {}\n", st.message());
        return 2;
      }
    }
    node::NodeAgent agent(o);
    if (Status st = agent.Start(listen); !st.ok()) {
      fmt::print(stderr, "error: --listen: {}\n", st.ToString());
      return 2;
    }
    fmt::print("vigil-node '{}' listening on port {}\n", o.node_name, agent.port());
    std::fflush(stdout);
    while (!cli::ShutdownRequested()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log::Get("node")->info("shutting down: stopping replicas");
    agent.Shutdown();
    return 0;
  });
}
