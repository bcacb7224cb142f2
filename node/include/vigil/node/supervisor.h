// Restart in place: runs one program (a restartable server) and starts it again with the same
// command line whenever it exits or is killed, after a backoff that doubles with each failure
// inside the policy's window; gives up (and says so) when the window holds more than
// max_failures. A clean exit (status 0) while stopping is not a failure.
//
// Exit status 75 (EX_TEMPFAIL: the SSR store is unavailable) is not the server's fault: it is
// restarted with a capped backoff for as long as it takes, never counted against the budget.
//
// Liveness: a server with a probe address is asked for its Health (gRPC, with a deadline) every
// probe interval. It is hung, and SIGKILLed to be restarted (a failure like any other), when it
// missed `failures` probes in a row (counted once it answered one, or after the start-up
// grace), or when it had calls in flight and completed none for `stuck`.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "vigil/common/failure_budget.h"
#include "vigil/common/status.h"

namespace vigil::node {

struct ProbePolicy {
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds deadline{1000};  // per probe
  uint32_t failures = 3;                     // missed in a row: hung
  std::chrono::milliseconds grace{30000};    // after a start, misses count only after this...
  std::chrono::milliseconds stuck{30000};    // calls in flight, none completed: hung
};

struct SupervisedProgram {
  std::string name;               // for logs and status
  std::vector<std::string> argv;  // argv[0]: an absolute or relative path (no PATH search)
  std::string probe;              // host:port answering Restartable/Health; empty: not probed
  FailurePolicy policy;
  ProbePolicy probe_policy;
};

// Parses "NAME[@HOST:PORT]=PROGRAM ARG..." (split on spaces; no quoting) as given to vigil-node
// --server. The probe address is HOST:PORT, else the value of the program's --listen argument;
// without either the server is not probed.
Result<SupervisedProgram> ParseSupervised(std::string_view spec);
// The specs in a file, one per line; blank lines and lines starting with '#' are skipped.
Result<std::vector<std::string>> ReadServersFile(const std::string& path);

class Supervisor {
 public:
  static Result<std::unique_ptr<Supervisor>> Start(SupervisedProgram program);
  // Stops the program: SIGTERM, then SIGKILL after 3 s.
  ~Supervisor();

  const std::string& name() const { return program_.name; }
  pid_t pid() const { return pid_.load(); }  // 0 while not running
  uint64_t restarts() const { return restarts_.load(); }
  uint64_t hangs() const { return hangs_.load(); }  // incarnations killed as hung
  bool gave_up() const { return gave_up_.load(); }

 private:
  explicit Supervisor(SupervisedProgram program, FailureBudget budget)
      : program_(std::move(program)), budget_(std::move(budget)) {}
  Result<pid_t> Spawn();
  void Run();
  // Waits for the incarnation `pid` to end, probing it meanwhile. False: stopping, it still runs.
  bool WaitForEnd(pid_t pid, int& status);
  // Blocks until the supervisor is being stopped, `pidfd` (if >= 0) is readable (the program
  // ended), or `timeout_ms` (-1: no limit) passed.
  void Sleep(int pidfd, int timeout_ms);

  SupervisedProgram program_;
  FailureBudget budget_;
  std::atomic<pid_t> pid_{0};
  std::atomic<uint64_t> restarts_{0};
  std::atomic<uint64_t> hangs_{0};
  std::chrono::milliseconds store_backoff_{0};  // while the server exits 75
  std::atomic<bool> gave_up_{false};
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;  // an eventfd: written to stop the supervisor's thread
  std::thread thread_;
};

}  // namespace vigil::node
