// Restart in place: runs one program (a restartable server) and starts it again with the same
// command line whenever it exits or is killed, after a backoff that doubles with each failure
// inside the policy's window; gives up (and says so) when the window holds more than
// max_failures. A clean exit (status 0) while stopping is not a failure.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "vigil/common/status.h"
#include "vigil/node/failure_budget.h"

namespace vigil::node {

struct SupervisedProgram {
  std::string name;               // for logs and status
  std::vector<std::string> argv;  // argv[0]: an absolute or relative path (no PATH search)
  FailurePolicy policy;
};

// Parses "NAME=PROGRAM ARG..." (split on spaces; no quoting) as given to vigil-node --server.
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
  bool gave_up() const { return gave_up_.load(); }

 private:
  explicit Supervisor(SupervisedProgram program, FailureBudget budget)
      : program_(std::move(program)), budget_(std::move(budget)) {}
  Result<pid_t> Spawn();
  void Run();
  // Blocks until the supervisor is being stopped, `pidfd` (if >= 0) is readable (the program
  // ended), or `timeout_ms` (-1: no limit) passed.
  void Sleep(int pidfd, int timeout_ms);

  SupervisedProgram program_;
  FailureBudget budget_;
  std::atomic<pid_t> pid_{0};
  std::atomic<uint64_t> restarts_{0};
  std::atomic<bool> gave_up_{false};
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;  // an eventfd: written to stop the supervisor's thread
  std::thread thread_;
};

}  // namespace vigil::node
