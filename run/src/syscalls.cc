#include "vigil/run/syscalls.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <algorithm>
#include <array>

#include "vigil/run/intercept.h"

namespace vigil::run {
namespace {

using C = SyscallClass;

constexpr SyscallSpec Local(int nr, const char* name, int8_t args) {
  return SyscallSpec{.nr = nr, .name = name, .args = args, .cls = C::kLocal};
}
constexpr SyscallSpec Value(int nr, const char* name, int8_t args, int8_t path = -1,
                            int8_t path2 = -1) {
  return SyscallSpec{
      .nr = nr, .name = name, .args = args, .cls = C::kVoter, .path = path, .path2 = path2};
}
// Result bytes at argument `buf`, bounded by argument `len` or, with len = -1, `size` bytes.
constexpr SyscallSpec Out(int nr, const char* name, int8_t args, int8_t buf, int8_t len,
                          uint32_t size = 0, int8_t path = -1) {
  return SyscallSpec{.nr = nr,
                     .name = name,
                     .args = args,
                     .cls = C::kVoter,
                     .path = path,
                     .out_buf = buf,
                     .out_len = len,
                     .out_size = size};
}
constexpr SyscallSpec In(int nr, const char* name, int8_t args, int8_t buf, int8_t len) {
  return SyscallSpec{
      .nr = nr, .name = name, .args = args, .cls = C::kVoter, .in_buf = buf, .in_len = len};
}
constexpr SyscallSpec No(int nr, const char* name, int8_t args, const char* why) {
  return SyscallSpec{.nr = nr, .name = name, .args = args, .cls = C::kUnsupported, .why = why};
}

constexpr uint32_t kStat = 144, kStatx = 256, kUtsname = 390, kSysinfo = 112, kTimespec = 16,
                   kRlimit = 16;
constexpr const char* kProcesses = "threads and child processes are not replicated";
constexpr const char* kNetwork = "sockets and pipes are not replicated yet";
constexpr const char* kSignals = "signals beyond handler set-up are not replicated";

// Sorted by number (FindSyscall searches it).
constexpr auto kTable = std::to_array<SyscallSpec>({
    Out(SYS_read, "read", 3, 1, 2),
    In(SYS_write, "write", 3, 1, 2),
    Value(SYS_open, "open", 3, 0),
    Value(SYS_close, "close", 1),
    Out(SYS_stat, "stat", 2, 1, -1, kStat, 0),
    Out(SYS_fstat, "fstat", 2, 1, -1, kStat),
    Out(SYS_lstat, "lstat", 2, 1, -1, kStat, 0),
    Value(SYS_lseek, "lseek", 3),
    Local(SYS_mmap, "mmap", 6),
    Local(SYS_mprotect, "mprotect", 3),
    Local(SYS_munmap, "munmap", 2),
    Local(SYS_brk, "brk", 1),
    Local(SYS_rt_sigaction, "rt_sigaction", 4),
    Local(SYS_rt_sigprocmask, "rt_sigprocmask", 4),
    Local(SYS_rt_sigreturn, "rt_sigreturn", 0),
    // ioctl: TCGETS and TIOCGWINSZ only (their result sizes are set per request).
    Out(SYS_ioctl, "ioctl", 3, 2, -1, 0),
    Out(SYS_pread64, "pread64", 4, 1, 2),
    In(SYS_pwrite64, "pwrite64", 4, 1, 2),
    No(SYS_readv, "readv", 3, "vectored reads are not replicated yet"),
    In(SYS_writev, "writev", 3, 1, 2),
    Value(SYS_access, "access", 2, 0),
    No(SYS_pipe, "pipe", 1, kNetwork),
    Local(SYS_sched_yield, "sched_yield", 0),
    Local(SYS_mremap, "mremap", 5),
    Local(SYS_madvise, "madvise", 3),
    Value(SYS_dup, "dup", 1),
    Value(SYS_dup2, "dup2", 2),
    Local(SYS_nanosleep, "nanosleep", 2),
    Value(SYS_getpid, "getpid", 0),
    No(SYS_socket, "socket", 3, kNetwork),
    No(SYS_connect, "connect", 3, kNetwork),
    No(SYS_clone, "clone", 5, kProcesses),
    No(SYS_fork, "fork", 0, kProcesses),
    No(SYS_vfork, "vfork", 0, kProcesses),
    No(SYS_execve, "execve", 3, "a replicated program cannot execute another program"),
    Local(SYS_exit, "exit", 1),
    No(SYS_wait4, "wait4", 4, kProcesses),
    No(SYS_kill, "kill", 2, kSignals),
    Out(SYS_uname, "uname", 1, 0, -1, kUtsname),
    Value(SYS_fcntl, "fcntl", 3),
    Value(SYS_fsync, "fsync", 1),
    Value(SYS_fdatasync, "fdatasync", 1),
    Value(SYS_ftruncate, "ftruncate", 2),
    Out(SYS_getcwd, "getcwd", 2, 0, 1),
    Value(SYS_rename, "rename", 2, 0, 1),
    Value(SYS_mkdir, "mkdir", 2, 0),
    Value(SYS_rmdir, "rmdir", 1, 0),
    Value(SYS_unlink, "unlink", 1, 0),
    Out(SYS_readlink, "readlink", 3, 1, 2, 0, 0),
    Value(SYS_fchmod, "fchmod", 2),
    Value(SYS_fchown, "fchown", 3),
    Value(SYS_umask, "umask", 1),
    Out(SYS_gettimeofday, "gettimeofday", 2, 0, -1, kTimespec),
    Out(SYS_getrlimit, "getrlimit", 2, 1, -1, kRlimit),
    Out(SYS_sysinfo, "sysinfo", 1, 0, -1, kSysinfo),
    Value(SYS_getuid, "getuid", 0),
    Value(SYS_getgid, "getgid", 0),
    Value(SYS_geteuid, "geteuid", 0),
    Value(SYS_getegid, "getegid", 0),
    Value(SYS_getppid, "getppid", 0),
    Local(SYS_sigaltstack, "sigaltstack", 2),
    Local(SYS_arch_prctl, "arch_prctl", 2),
    Value(SYS_gettid, "gettid", 0),
    Out(SYS_time, "time", 1, 0, -1, 8),
    Local(SYS_futex, "futex", 3),
    Out(SYS_sched_getaffinity, "sched_getaffinity", 3, 2, 1),
    Out(SYS_getdents64, "getdents64", 3, 1, 2),
    Local(SYS_set_tid_address, "set_tid_address", 1),
    Value(SYS_fadvise64, "fadvise64", 4),
    Out(SYS_clock_gettime, "clock_gettime", 2, 1, -1, kTimespec),
    Out(SYS_clock_getres, "clock_getres", 2, 1, -1, kTimespec),
    Local(SYS_clock_nanosleep, "clock_nanosleep", 4),
    Local(SYS_exit_group, "exit_group", 1),
    No(SYS_tgkill, "tgkill", 3, kSignals),
    Value(SYS_openat, "openat", 4, 1),
    Value(SYS_mkdirat, "mkdirat", 3, 1),
    Out(SYS_newfstatat, "newfstatat", 4, 2, -1, kStat, 1),
    Value(SYS_unlinkat, "unlinkat", 3, 1),
    Value(SYS_renameat, "renameat", 4, 1, 3),
    Out(SYS_readlinkat, "readlinkat", 4, 2, 3, 0, 1),
    Value(SYS_faccessat, "faccessat", 3, 1),
    Local(SYS_set_robust_list, "set_robust_list", 2),
    No(SYS_utimensat, "utimensat", 4, "setting file times is not replicated yet"),
    Value(SYS_dup3, "dup3", 3),
    No(SYS_pipe2, "pipe2", 2, kNetwork),
    Out(SYS_prlimit64, "prlimit64", 4, 3, -1, kRlimit),
    Out(SYS_getrandom, "getrandom", 3, 0, 1),
    Out(SYS_statx, "statx", 5, 4, -1, kStatx, 1),
    Local(SYS_rseq, "rseq", 4),
    No(SYS_clone3, "clone3", 2, kProcesses),
    Value(SYS_faccessat2, "faccessat2", 4, 1),
});

constexpr bool Sorted() {
  for (size_t i = 1; i < kTable.size(); ++i) {
    if (kTable[i - 1].nr >= kTable[i].nr) return false;
  }
  return true;
}
static_assert(Sorted(), "the syscall table must be sorted by number");

}  // namespace

const SyscallSpec* FindSyscall(int nr) {
  auto it = std::lower_bound(kTable.begin(), kTable.end(), nr,
                             [](const SyscallSpec& s, int n) { return s.nr < n; });
  return it != kTable.end() && it->nr == nr ? &*it : nullptr;
}

void VotedArguments(int nr, const uint64_t (&args)[6], uint64_t (&voted)[6]) {
  const SyscallSpec* s = FindSyscall(nr);
  const int n = s != nullptr ? s->args : 0;
  for (int i = 0; i < 6; ++i) voted[i] = i < n ? args[i] : 0;
  // O_TMPFILE includes O_DIRECTORY's bit: a directory opened is not a file created.
  const auto creates = [](uint64_t flags) {
    return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
  };
  switch (nr) {
    case SYS_open:
      if (!creates(voted[1])) voted[2] = 0;
      break;
    case SYS_openat:
      if (!creates(voted[2])) voted[3] = 0;
      break;
    case SYS_fcntl:
      if (voted[1] == F_GETFD || voted[1] == F_GETFL) voted[2] = 0;
      break;
    case SYS_mremap:
      if ((voted[3] & MREMAP_FIXED) == 0) voted[4] = 0;
      break;
    default:
      break;
  }
}

const SyscallSpec* SyscallTable(size_t* count) {
  *count = kTable.size();
  return kTable.data();
}

size_t IoctlResultBytes(uint64_t request) {
  if (request == TCGETS) return 36;
  if (request == TIOCGWINSZ) return sizeof(winsize);
  return 0;
}

std::string UnsupportedMessage(int nr) {
  const SyscallSpec* s = FindSyscall(nr);
  return fmt::format("the program called {} (system call {}), which vigil-run does not support: {}",
                     SyscallName(nr), nr,
                     s != nullptr && s->why != nullptr ? s->why
                                                       : "not in its table of replicated "
                                                         "calls (docs/vigil-run.md)");
}

}  // namespace vigil::run
