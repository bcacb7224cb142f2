// The two ways vigil-voter starts replicas:
//   LocalLauncher  child processes on the voter's own host (no worker nodes needed);
//   NodeLauncher   vigil-node agents on worker nodes (gRPC). Replica r's incarnation i goes to
//                  node (r + i) mod N: the replicas of a group land on distinct nodes when
//                  there are at least as many nodes as replicas, and a replacement lands on a
//                  different node than the incarnation it replaces when there are more.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vigil/common/thread_annotations.h"
#include "vigil/replica/process.h"
#include "vigil/voter/group.h"

namespace vigil::voter {

// What every replica of the job runs (the per-incarnation fields come from the LaunchSpec).
struct ReplicaProgram {
  std::string signal = "polling", workload = "crc32", susan_mode = "edges";
  std::string voter;  // host:port of the voter's bootstrap server
  // Fault injection at start-up: replica `fault_replica`'s first incarnation flips a state bit
  // ("flip"), crashes ("crash") or hangs ("hang") before step `fault_step`; "" = none.
  std::string fault;
  uint16_t fault_replica = 0;
  uint64_t fault_step = 0;
  uint64_t flip_bit = 0;
  // workload "exec" (vigil-run): the unmodified program and its environment.
  std::vector<std::string> exec_argv = {}, exec_env = {};
};

class LocalLauncher final : public Launcher {
 public:
  // `cpus`: pin replica r to cpus[r % size] (empty: not pinned).
  LocalLauncher(std::string replica_binary, ReplicaProgram program, std::string device,
                std::vector<int> cpus = {});
  Status Start(const LaunchSpec& spec) override;
  void Stop(uint16_t replica, uint32_t incarnation) override;
  Status Inject(uint16_t replica, uint32_t incarnation, Fault fault, uint64_t bit) override;
  bool Alive(uint16_t replica, uint32_t incarnation) override;

 private:
  ReplicaProgram program_;
  std::string device_;
  std::vector<int> cpus_;
  uint32_t group_ = 0;
  replica::ProcessTable table_;
};

class NodeLauncher final : public Launcher {
 public:
  // `nodes`: host:port of each vigil-node.
  NodeLauncher(std::vector<std::string> nodes, ReplicaProgram program);
  ~NodeLauncher() override;
  Status Start(const LaunchSpec& spec) override;
  void Stop(uint16_t replica, uint32_t incarnation) override;
  Status Inject(uint16_t replica, uint32_t incarnation, Fault fault, uint64_t bit) override;
  // Asks the node; a node that does not answer counts as lost with its replicas.
  bool Alive(uint16_t replica, uint32_t incarnation) override;
  // Which node runs (replica, incarnation), or "".
  std::string NodeOf(uint16_t replica, uint32_t incarnation);

 private:
  struct Stub;
  ReplicaProgram program_;
  std::vector<std::unique_ptr<Stub>> nodes_;
  Mutex mu_;
  std::map<std::pair<uint16_t, uint32_t>, size_t> placement_ VIGIL_GUARDED_BY(mu_);
  uint32_t group_ = 0;
};

// replica::ReplicaLaunch for `spec` running `program`.
replica::ReplicaLaunch MakeLaunch(const LaunchSpec& spec, const ReplicaProgram& program);

}  // namespace vigil::voter
