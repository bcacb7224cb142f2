// The voter's side of vigil-run: executes the agreed system calls of a replicated program once,
// on this host, on the replicas' behalf (the kVoter class of syscalls.h), and decides the others
// (kLocal: nothing to do here; unsupported: the run stops with a message naming the call).
//
// Descriptors: the program's descriptor numbers are virtual; this executor maps them to its own
// descriptors. 0, 1 and 2 are the job's stdin, stdout and stderr: stdin is read once and kept,
// so that after a rollback the re-executed program reads the same bytes again; what was already
// written to stdout and stderr is not written twice. Files the program opens are opened here;
// a rollback closes them and the re-executed program opens them again (a file opened with
// O_APPEND would then receive its bytes twice: documented in docs/vigil-run.md).
//
// Paths: every path the program names is admitted by the Sandbox first (changes only beneath
// the root, reads elsewhere only of what every user may read, never /proc, /sys or /dev) and the
// call then acts through the descriptors the sandbox resolved.
//
// Never trusts the record: every length, descriptor, path and request is checked against the
// call and the room for results.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "vigil/run/file_journal.h"
#include "vigil/run/sandbox.h"
#include "vigil/voter/syscall_executor.h"

namespace vigil::run {

class HostExecutor final : public voter::SyscallExecutor {
 public:
  // The job's standard descriptors (not owned, not closed), where its paths may reach, and where
  // the undo journal keeps its pre-images (FileJournal).
  HostExecutor(int stdin_fd, int stdout_fd, int stderr_fd, std::unique_ptr<Sandbox> sandbox,
               std::string journal_parent = FileJournal::DefaultParent());
  ~HostExecutor() override;
  HostExecutor(const HostExecutor&) = delete;
  HostExecutor& operator=(const HostExecutor&) = delete;

  Result<std::optional<Aside>> BytesAside(std::span<const std::byte> record) override {
    return ParseAside(record);
  }
  // What BytesAside answers, from the record alone.
  static Result<std::optional<Aside>> ParseAside(std::span<const std::byte> record);
  Result<Outcome> Execute(uint64_t nr, uint64_t piece, std::span<const std::byte> record,
                          std::span<const std::byte> aside, std::span<std::byte> result) override;
  Status Checkpoint() override;
  Status Rollback() override;

  // The decision on a call that every replica executes itself (kLocal in syscalls.h): its
  // outcome, or nullopt when the call is this executor's to carry out; errors as Execute's. From
  // the record alone: ExecutorProcess decides these calls without a round trip to its process,
  // and reports them with CountDecided.
  static Result<std::optional<Outcome>> DecideLocal(uint64_t nr, uint64_t piece,
                                                    std::span<const std::byte> record,
                                                    std::span<const std::byte> aside);
  // `n` calls decided by DecideLocal count as executed here (calls(), and a rollback's check that
  // nothing ran since the checkpoint).
  void CountDecided(uint64_t n) {
    calls_ += n;
    total_calls_ += n;
  }

  // The job is over: a completed job keeps its file changes; any other has them undone (the file
  // system as before the job), and an error names what could not be.
  Status Finish(bool completed);

  // Calls executed (or decided) in all executions of the program (a rollback re-executes it).
  uint64_t calls() const { return total_calls_; }
  const FileJournal& journal() const { return journal_; }
  const Sandbox& sandbox() const { return *sandbox_; }

 private:
  enum class Std { kNone, kIn, kOut, kErr };
  struct Fd {
    int real = -1;  // this process's descriptor
    Std std = Std::kNone;
    bool cloexec = false;
    bool beneath = false;  // opened beneath the sandbox's root: may be changed (fchmod, fchown)
  };
  // -errno; a system call's return value, or -errno when it failed (both files of the executor).
  static int64_t Errno();
  static int64_t Value(int64_t rc);
  Result<Outcome> Dispatch(int nr, const uint64_t* a, std::span<const std::byte> blob,
                           std::span<std::byte> result);
  // The calls that name paths (executor_paths.cc).
  Result<Outcome> DispatchPath(int nr, const uint64_t* a, const std::vector<std::string>& paths,
                               std::span<std::byte> result);
  Result<int> Real(uint64_t vfd) const;  // EBADF as -1 value is handled by callers
  // A directory argument: AT_FDCWD, this process's descriptor, or INT_MIN when there is none.
  int DirFd(uint64_t vfd) const;
  int Lowest(int from) const;  // the lowest free virtual descriptor >= from
  int64_t Install(int real, Std std, bool cloexec, int at, bool beneath = false);
  int64_t CloseVirtual(int vfd);
  Result<Outcome> ReadStdin(std::span<std::byte> dst);
  Result<Outcome> WriteStd(Std which, int real, std::span<const std::byte> bytes);
  void Reset();

  int std_real_[3];
  std::unique_ptr<Sandbox> sandbox_;
  mode_t umask_at_start_ = 0;
  FileJournal journal_;
  std::map<int, Fd> fds_;
  std::vector<std::byte> stdin_kept_;  // every stdin byte read so far
  bool stdin_eof_ = false;
  uint64_t stdin_offset_ = 0;     // this execution's position in stdin_kept_
  uint64_t written_[2] = {0, 0};  // stdout/stderr bytes this execution wrote
  uint64_t emitted_[2] = {0, 0};  // ... and the most any execution wrote
  uint64_t calls_ = 0;            // in this execution
  uint64_t calls_at_checkpoint_ = 0;
  uint64_t total_calls_ = 0;
};

}  // namespace vigil::run
