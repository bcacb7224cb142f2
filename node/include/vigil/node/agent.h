// vigil-node's service (vigil.node.v1.NodeAgent): starts, stops and inspects the replica
// processes of this worker node on the voter's command, and injects faults into them.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "vigil/common/status.h"
#include "vigil/node/exec_allow.h"
#include "vigil/node/supervisor.h"
#include "vigil/replica/process.h"

namespace grpc {
class Server;
}

namespace vigil::node {

struct AgentOptions {
  std::string node_name = "node";
  std::string replica_binary;  // empty: replica::DefaultReplicaBinary()
  std::string device;          // RDMA device handed to replicas (empty: first ACTIVE port)
  std::string replica_log_level = "warn";
  // CPUs to pin replica processes to, one per replica in turn (empty: not pinned).
  std::vector<int> cpus;
  security::TlsSetting tls;  // the port's, and the replicas' (unset: the process's)
  ExecAllowList exec_allow;  // programs replicas may execute (empty: exec refused)
  size_t max_replicas = 64;  // replica processes running at once (0: no cap)
};

class NodeAgent {
 public:
  explicit NodeAgent(AgentOptions options);
  ~NodeAgent();
  // Listens on `address` ("host:port", port 0 picks one: see port()).
  Status Start(const std::string& address);
  int port() const { return port_; }
  // Starts `program` and keeps restarting it in place; reported by Health.
  Status Supervise(SupervisedProgram program);
  size_t supervised() const { return servers_.size(); }
  void Shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(500));

 private:
  class Service;
  AgentOptions options_;
  std::unique_ptr<replica::ProcessTable> processes_;
  std::vector<std::unique_ptr<Supervisor>> servers_;  // fixed after start-up
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<size_t> next_cpu_{0};
};

}  // namespace vigil::node
