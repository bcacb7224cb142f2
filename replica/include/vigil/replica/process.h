// Replica processes on one host: vigil-node starts them for the voter, and vigil-voter starts
// them itself when it runs a job without worker nodes. One process per replica incarnation.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "vigil/common/status.h"
#include "vigil/common/thread_annotations.h"
#include "vigil/security/tls.h"

namespace vigil::replica {

struct ReplicaKey {
  uint32_t group = 0;
  uint32_t replica = 0;
  uint32_t incarnation = 0;
  auto operator<=>(const ReplicaKey&) const = default;
};

// Bounds on a vigil-run program's arguments and environment entries (count, bytes each).
inline constexpr size_t kMaxProgramStrings = 1024;
inline constexpr size_t kMaxProgramString = 4096;

// Everything vigil-replica needs to join its voter. Validated by Check().
struct ReplicaLaunch {
  ReplicaKey key;
  std::string voter, service, rpc_target;
  // The incarnation's nonce from the voter: handed to vigil-replica in its environment
  // (kNonceEnv), never on its command line, which every local user can read.
  std::string nonce;
  std::string signal = "polling", workload = "crc32", susan_mode = "edges";
  std::string device;  // empty: first ACTIVE port
  std::string log_level = "warn";
  security::TlsOptions tls;  // the node's: the replica dials its voter with them
  int cpu = -1;              // pin the process to this CPU (-1: not pinned)
  // Fault armed at start-up: "flip" (state bit flip_bit), "crash" (SIGKILL) or "hang"
  // (SIGSTOP) before step fault_step; "" = none. Workload exec: any of IsExecFault's
  // (common/registers.h) at intercepted call fault_step.
  std::string fault;
  uint64_t fault_step = 0, flip_bit = 0;
  // workload "exec" (vigil-run): the unmodified program and its environment ("NAME=value"),
  // and the file to execute (the node's allow-list resolved argv[0] to it).
  std::vector<std::string> exec_argv, exec_env;
  std::string exec_path;
  Status Check() const;  // names the field and value that is wrong
};

// The variable that carries ReplicaLaunch::nonce to vigil-replica (which unsets it).
inline constexpr const char* kNonceEnv = "VIGIL_REPLICA_NONCE";

// The vigil-replica command line for `launch`.
std::vector<std::string> ReplicaArgv(const std::string& binary, const ReplicaLaunch& launch);

// Where vigil-replica is when it is not given (HelperProgram: next to the running executable,
// ../libexec/vigil/, or the build tree's replica/).
std::string DefaultReplicaBinary();

struct ProcessStatus {
  ReplicaKey key;
  pid_t pid = 0;
  std::string state;  // "running", "stopped", "exited 0", "killed by signal 9"
};

class ProcessTable {
 public:
  // At most `max_live` replicas run at once (0: no cap): one more is RESOURCE_EXHAUSTED.
  explicit ProcessTable(std::string binary, size_t max_live = 0)
      : binary_(std::move(binary)), max_live_(max_live) {}
  // Waits up to 5 s for the children to exit on their own, then SIGKILLs what is left.
  ~ProcessTable();

  Result<pid_t> Start(const ReplicaLaunch& launch) VIGIL_EXCLUDES(mu_);
  // SIGKILL and reap. No-op for an unknown or finished process.
  void Kill(const ReplicaKey& key) VIGIL_EXCLUDES(mu_);
  // Sends `sig` (SIGSTOP, SIGCONT, ...). kNotFound for an unknown or finished process.
  Status Signal(const ReplicaKey& key, int sig) VIGIL_EXCLUDES(mu_);
  // Asks the replica to flip bit `bit` of its state region (SIGUSR1 carrying the bit number;
  // vigil-replica's handler does the flip).
  Status FlipBit(const ReplicaKey& key, uint64_t bit) VIGIL_EXCLUDES(mu_);
  std::vector<ProcessStatus> List() VIGIL_EXCLUDES(mu_);
  // True while the process has not exited (a stopped process is alive).
  bool Alive(const ReplicaKey& key) VIGIL_EXCLUDES(mu_);
  // SIGKILLs and reaps every running process (a node shutting down).
  void KillAll() VIGIL_EXCLUDES(mu_);

 private:
  struct Entry {
    pid_t pid = 0;
    bool exited = false;
    bool stopped = false;
    int status = 0;
    uint64_t started = 0;  // order of Start calls: the oldest exited entries are forgotten first
  };
  // Exited entries kept for List() (their exit status); older ones are forgotten.
  static constexpr size_t kKeptExited = 256;
  Entry* Find(const ReplicaKey& key) VIGIL_REQUIRES(mu_);  // reaps first
  // kill(), or sigqueue() carrying *value.
  Status Send(const ReplicaKey& key, int sig, const uint64_t* value) VIGIL_EXCLUDES(mu_);
  void ReapLocked() VIGIL_REQUIRES(mu_);
  void PruneLocked() VIGIL_REQUIRES(mu_);  // forgets the oldest exited entries beyond kKeptExited

  std::string binary_;
  size_t max_live_ = 0;
  Mutex mu_;
  std::map<ReplicaKey, Entry> procs_ VIGIL_GUARDED_BY(mu_);
  uint64_t next_start_ VIGIL_GUARDED_BY(mu_) = 1;
};

}  // namespace vigil::replica
