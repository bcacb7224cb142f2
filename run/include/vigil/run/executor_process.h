// vigil-run's executor in a separate, unprivileged process. The agreed system calls of a
// replicated program are carried out by a HostExecutor that runs in `vigil-executor`, a helper
// started here with nothing but the job's stdin, stdout and stderr and one socket to this process
// (executor_wire.h). Before it executes anything it gives up what it does not need (confine.h):
// root's identity (it becomes the sandbox root's owner or nobody), every capability, new
// privileges, file-system changes outside the root (Landlock), and every system call it does not
// make (seccomp). So a call the replicas agreed on — or a bug in the executor — acts with far less
// than vigil-run's privileges: no memory, keys or RDMA resources of the voter, no network.
//
// Each call the executor carries out is one request and one reply on the socket; the calls every
// replica executes itself (memory management, signal masks...) are decided here, from the record,
// and counted with the next request. A reply is checked before anything it
// announces is read. When the executor dies (killed, or a call outside its allow-list), every
// later call fails with how it ended, and the job fails closed.
//
// Called from one thread at a time (the group's, then vigil-run's main thread for Finish).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vigil/run/executor_wire.h"
#include "vigil/voter/syscall_executor.h"

namespace vigil::run {

struct ExecutorProcessOptions {
  std::string binary = {};  // vigil-executor; empty: DefaultExecutorBinary()
  std::string root = ".";
  std::string user = {};  // when vigil-run is root: the executor's user (empty: see confine.h)
  int stdin_fd = 0, stdout_fd = 1, stderr_fd = 2;  // the job's (not owned, not closed)
  std::string log_level = "warn";
};

// vigil-executor next to this program, in ../libexec/vigil/, or in the build tree's run/.
std::string DefaultExecutorBinary();

class ExecutorProcess final : public voter::SyscallExecutor {
 public:
  // Starts the executor and waits for its hello (10 s): an error says why it could not start
  // or confine itself (e.g. its user may not use the root directory).
  static Result<std::unique_ptr<ExecutorProcess>> Start(const ExecutorProcessOptions& o);
  // Closes the socket (the executor then exits without restoring anything) and reaps it.
  ~ExecutorProcess() override;
  ExecutorProcess(const ExecutorProcess&) = delete;
  ExecutorProcess& operator=(const ExecutorProcess&) = delete;

  Result<std::optional<Aside>> BytesAside(std::span<const std::byte> record) override;
  Result<Outcome> Execute(uint64_t nr, uint64_t piece, std::span<const std::byte> record,
                          std::span<const std::byte> aside, std::span<std::byte> result) override;
  Status Checkpoint() override;
  Status Rollback() override;
  // As HostExecutor::Finish.
  Status Finish(bool completed);

  // As of the last reply (calls: and those decided here since).
  uint64_t calls() const { return last_.calls + local_calls_; }
  uint64_t refused() const { return last_.refused; }
  uint64_t journal_entries() const { return last_.journal_entries; }
  // What the executor gave up (its hello), e.g. "uid 65534 (nobody) gid 65534, no capabilities...".
  const std::string& confinement() const { return confinement_; }
  pid_t pid() const { return pid_; }

 private:
  ExecutorProcess(pid_t pid, int sock) : pid_(pid), sock_(sock) {}
  // One request and its reply: `q`'s operation and call fields (its sizes and the calls decided
  // here are filled in); result bytes land in `result`.
  Result<Outcome> Call(wire::Request q, std::span<const std::byte> record = {},
                       std::span<const std::byte> aside = {}, std::span<std::byte> result = {});
  // The reply to the last request (the hello when none was sent): its message; its value and
  // result bytes in `outcome` when given.
  Result<std::string> ReadReply(std::span<std::byte> result, int timeout_ms,
                                Outcome* outcome = nullptr);
  // The executor is gone or broke the protocol: how it ended (it is reaped), and every later
  // call fails with the same Status.
  Status Lost(Status why);

  pid_t pid_ = -1;
  int sock_ = -1;
  Status lost_;
  uint64_t local_calls_ = 0;  // decided here (DecideLocal) since the last request
  std::string confinement_;
  struct Counters {
    uint64_t calls = 0, refused = 0, journal_entries = 0;
  } last_;
};

}  // namespace vigil::run
