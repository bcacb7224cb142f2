// Interception of an unmodified program's system calls (the core of vigil-run, issue #7).
//
// The program is started under a seccomp filter whose listed system calls become user
// notifications: the calling thread stops in the kernel until this supervisor answers, either
// with a result it produced itself (the call is never executed by the program: output written
// once elsewhere, input bytes copied in) or by letting the kernel execute it. Arguments are
// read from the notification; memory the call points to is read and written through
// process_vm_readv/writev, and every answer is refused by the kernel if the program is no longer
// inside that call (a killed program cannot be answered late). Other registers are reached with
// ptrace only, and only for fault injection (FlipRegister): the process is attached for the
// moment of the flip and detached again.
//
// The program starts with only stdin, stdout and stderr open (the same descriptors in every
// replica) and is killed if its supervisor dies. x86_64 only: the filter kills a process that
// makes a system call through another ABI.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/common/find_program.h"
#include "vigil/common/status.h"

namespace vigil::run {

// One intercepted system call, stopped until answered.
struct SyscallStop {
  uint64_t id = 0;  // the kernel's cookie for this notification
  pid_t pid = 0;
  int nr = -1;  // x86_64 system call number
  std::array<uint64_t, 6> args{};
  uint64_t instruction_pointer = 0;
};

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH, unless `program` is given
  std::string program = {};       // the file to execute (empty: argv[0] looked up)
  std::vector<int> intercept;     // system call numbers to stop at (others run freely)
  // Stop at every system call instead (`intercept` is ignored), except the two the start-up
  // makes after the filter is in place: sendmsg on the hand-over socket and the execve of the
  // program itself (both matched by their first argument, so the program cannot use them).
  bool intercept_all = false;
  // The program's environment ("NAME=value"); nullopt: this process's.
  std::optional<std::vector<std::string>> env = std::nullopt;
  // Same address-space layout in every run (personality ADDR_NO_RANDOMIZE): replicas then
  // pass identical pointers and compute identical memory contents.
  bool disable_aslr = false;
  int stdin_fd = -1;  // -1: inherit
  int stdout_fd = -1;
  int stderr_fd = -1;
};

// A child process running an unmodified program under interception.
class InterceptedProcess {
 public:
  // Starts the program. Fails with a clear message when it cannot be executed (not found, not
  // executable), when the kernel lacks seccomp user notification, or when a system call that the
  // start-up itself needs (sendmsg, execve's successors) is asked to be intercepted.
  static Result<InterceptedProcess> Spawn(const SpawnOptions& options);

  InterceptedProcess(InterceptedProcess&& other) noexcept;
  InterceptedProcess& operator=(InterceptedProcess&& other) noexcept;
  InterceptedProcess(const InterceptedProcess&) = delete;
  InterceptedProcess& operator=(const InterceptedProcess&) = delete;
  ~InterceptedProcess();  // kills and reaps a process still running

  pid_t pid() const { return pid_; }

  // The next stopped system call; nullopt once the process has exited (then exit_status()).
  // DeadlineExceeded after timeout_ms (-1: wait forever).
  Result<std::optional<SyscallStop>> Next(int timeout_ms);

  // Answers a stop without executing the call: the program sees `value`, or -1 with errno
  // `error` when error != 0.
  Status Return(const SyscallStop& stop, int64_t value, int error = 0);
  // Lets the kernel execute the call as the program made it.
  Status Execute(const SyscallStop& stop);

  // The program's memory at addr (a stopped call's pointer argument). At most kMaxTransfer
  // bytes; an address the program does not map is an error naming it.
  static constexpr size_t kMaxTransfer = 64 << 20;
  Result<std::vector<uint8_t>> ReadMemory(const SyscallStop& stop, uint64_t addr, size_t len);
  Status WriteMemory(const SyscallStop& stop, uint64_t addr, std::span<const uint8_t> bytes);
  // Installs a copy of this process's descriptor `local_fd` into the program as descriptor
  // `target_fd` (replacing what is there), while it is stopped in `stop`
  // (SECCOMP_IOCTL_NOTIF_ADDFD, Linux >= 5.9).
  Status InstallFd(const SyscallStop& stop, int local_fd, int target_fd, bool cloexec);

  // Fault injection: flips bit `bit` (modulo 64) of register `reg` (common/registers.h) of the
  // program stopped in `stop`. The call is interrupted (PTRACE_SEIZE, PTRACE_INTERRUPT: the
  // seccomp wait ends and the kernel will restart the call), the saved registers are edited
  // (PTRACE_GETREGS/SETREGS) and the process is detached. `stop` is then void: the next Next()
  // returns the same call again, made with the flipped register.
  struct RegisterFlip {
    uint64_t before = 0, after = 0;
  };
  Result<RegisterFlip> FlipRegister(const SyscallStop& stop, std::string_view reg, unsigned bit);

  // After Next() returned nullopt: the wait status (WIFEXITED/WIFSIGNALED...).
  int wait_status() const { return wait_status_; }

 private:
  InterceptedProcess(pid_t pid, int listener) : pid_(pid), listener_(listener) {}
  Status StillStopped(const SyscallStop& stop, const char* what);
  void Close();

  pid_t pid_ = -1;
  int listener_ = -1;
  int wait_status_ = 0;
  bool exited_ = false;
};

using vigil::FindProgram;  // common/find_program.h

// "write", "openat", ... for an x86_64 system call number ("syscall 999" when unknown here).
std::string SyscallName(int nr);

}  // namespace vigil::run
