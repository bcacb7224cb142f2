#include "vigil/run/confine.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <pwd.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <memory>
#include <vector>

namespace vigil::run {
namespace {

// Landlock's ABI (include/uapi/linux/landlock.h): rights and fields newer than Debian 12's
// header, used only when landlock_create_ruleset reports an ABI that has them.
constexpr uint64_t kFsTruncate = 1ULL << 14;        // ABI 3
constexpr uint64_t kNetBindTcp = 1ULL << 0;         // ABI 4
constexpr uint64_t kNetConnectTcp = 1ULL << 1;      // ABI 4
constexpr uint64_t kScopeAbstractUnix = 1ULL << 0;  // ABI 6
constexpr uint64_t kScopeSignal = 1ULL << 1;        // ABI 6
struct RulesetAttr {
  uint64_t handled_access_fs = 0;
  uint64_t handled_access_net = 0;  // ABI 4
  uint64_t scoped = 0;              // ABI 6
};

Status Sys(int err, std::string_view what) {
  return ErrnoStatus(err == EPERM || err == EACCES ? StatusCode::kPermissionDenied
                                                   : StatusCode::kFailedPrecondition,
                     what, err);
}

struct Ids {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
};

// A user named on the command line: by name, else by a numeric uid (without a passwd entry,
// its group is nogroup's 65534).
Result<Ids> NamedUser(const std::string& name) {
  if (const passwd* pw = getpwnam(name.c_str())) return Ids{pw->pw_uid, pw->pw_gid, pw->pw_name};
  uid_t uid = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), uid);
  if (name.empty() || ec != std::errc() || end != name.data() + name.size()) {
    return NotFound(fmt::format("--executor-user '{}': no such user", name));
  }
  if (const passwd* pw = getpwuid(uid)) return Ids{pw->pw_uid, pw->pw_gid, pw->pw_name};
  return Ids{uid, gid_t{65534}, name};
}

// The user to become: named, or the root directory's owner, or nobody when root owns it.
Result<Ids> TargetUser(const std::string& root, const std::string& user) {
  if (!user.empty()) return NamedUser(user);
  struct stat st {};
  if (stat(root.c_str(), &st) != 0) return Sys(errno, "stat " + root);
  if (st.st_uid == 0) return NamedUser("nobody");
  if (const passwd* pw = getpwuid(st.st_uid)) return Ids{pw->pw_uid, pw->pw_gid, pw->pw_name};
  return Ids{st.st_uid, st.st_gid, std::to_string(st.st_uid)};  // an owner without an entry
}

Status DropCapabilities() {
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return Sys(errno, "clearing the ambient capabilities");
  }
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capset, &h, d) != 0) return Sys(errno, "dropping the capabilities");
  if (syscall(SYS_capget, &h, d) != 0) return Sys(errno, "reading the capabilities");
  for (const auto& c : d) {
    if (c.effective != 0 || c.permitted != 0 || c.inheritable != 0) {
      return Internal("capabilities remain after dropping them");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> DropPrivileges(const std::string& root, const std::string& user) {
  std::string who;
  if (geteuid() == 0) {
    Result<Ids> ids = TargetUser(root, user);
    if (!ids.ok()) return ids.status();
    // The bounding set first: dropping it needs CAP_SETPCAP, which becoming the user takes away.
    for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; ++cap) {
      if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
        return Sys(errno, fmt::format("dropping capability {} from the bounding set", cap));
      }
    }
    if (setgroups(0, nullptr) != 0) return Sys(errno, "setgroups");
    if (setresgid(ids->gid, ids->gid, ids->gid) != 0) {
      return Sys(errno, fmt::format("becoming group {}", ids->gid));
    }
    if (setresuid(ids->uid, ids->uid, ids->uid) != 0) {
      return Sys(errno, fmt::format("becoming user {} ({})", ids->name, ids->uid));
    }
    if (ids->uid != 0 && setresuid(0, 0, 0) == 0) {
      return Internal("the executor could become root again after dropping it");
    }
    who = fmt::format("uid {} ({}) gid {}", ids->uid, ids->name, ids->gid);
  } else {
    if (!user.empty()) {
      return InvalidArgument(fmt::format(
          "--executor-user '{}': only a vigil-run started as root changes its executor's user",
          user));
    }
    who = fmt::format("uid {} gid {} (vigil-run's)", getuid(), getgid());
  }
  VIGIL_RETURN_IF_ERROR(DropCapabilities());
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Sys(errno, "no_new_privs");
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return Sys(errno, "not dumpable");
  return who + ", no capabilities, no new privileges, not dumpable";
}

Result<std::string> RestrictFileSystem(const std::vector<std::string>& writable) {
  const long abi =
      syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi < 0) {
    return fmt::format("no Landlock ({}): file-system changes confined by the sandbox only",
                       strerrorname_np(errno) != nullptr ? strerrorname_np(errno) : "?");
  }
  RulesetAttr attr;
  attr.handled_access_fs = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
                           LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
                           LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
                           LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
                           LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
  size_t attr_size = sizeof(attr.handled_access_fs);
  if (abi >= 2) attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) attr.handled_access_fs |= kFsTruncate;
  if (abi >= 4) {
    attr.handled_access_net = kNetBindTcp | kNetConnectTcp;  // and no rule allows either
    attr_size = offsetof(RulesetAttr, scoped);
  }
  if (abi >= 6) {
    attr.scoped = kScopeAbstractUnix | kScopeSignal;
    attr_size = sizeof(attr);
  }
  const int ruleset = static_cast<int>(syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0));
  if (ruleset < 0) return Sys(errno, "landlock_create_ruleset");
  const std::unique_ptr<int, void (*)(int*)> closer(new int(ruleset), [](int* fd) {
    close(*fd);
    delete fd;
  });
  for (const std::string& dir : writable) {
    landlock_path_beneath_attr rule{};
    rule.allowed_access = attr.handled_access_fs;
    rule.parent_fd = open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rule.parent_fd < 0) return Sys(errno, "opening " + dir + " for Landlock");
    const long rc = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
    const int err = errno;
    close(rule.parent_fd);
    if (rc != 0) return Sys(err, "landlock_add_rule " + dir);
  }
  if (syscall(SYS_landlock_restrict_self, ruleset, 0) != 0) {
    return Sys(errno, "landlock_restrict_self");
  }
  return fmt::format("Landlock ABI {}: file-system changes only beneath {}{}{}", abi,
                     fmt::join(writable, " and "), abi >= 4 ? ", no TCP" : "",
                     abi >= 6 ? ", no signals out" : "");
}

namespace {

// The calls the executor makes: for the program (executor.cc, executor_paths.cc, sandbox.cc,
// file_journal.cc), to talk to vigil-run, and to run (allocator, logging, abort).
constexpr const char* kAllowed[] = {
    // descriptors and file I/O
    "read", "write", "readv", "writev", "pread64", "pwrite64", "lseek", "close", "close_range",
    "dup", "dup2", "dup3", "fcntl", "fstat", "newfstatat", "statx", "fstatfs", "statfs",
    "getdents64", "ftruncate", "fsync", "fdatasync", "fadvise64", "copy_file_range", "sendfile",
    // paths (resolved beneath the sandbox's descriptors)
    "openat", "openat2", "readlinkat", "faccessat", "faccessat2", "mkdirat", "unlinkat", "renameat",
    "renameat2", "symlinkat", "linkat", "fchmod", "fchmodat", "fchown", "fchownat", "utimensat",
    "getcwd", "umask",
    // the same by path alone (glibc's readlink, stat, mkdir... as the journal uses them)
    "open", "stat", "lstat", "access", "readlink", "mkdir", "rmdir", "unlink", "rename", "symlink",
    "link", "chmod", "chown", "lchown", "truncate",
    // the constant and clock queries it answers
    "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "uname", "sysinfo",
    "gettimeofday", "time", "clock_gettime", "clock_getres", "getrlimit", "prlimit64", "getrandom",
    "sched_getaffinity",
    // its socket to vigil-run
    "sendmsg", "recvmsg", "sendto", "recvfrom", "poll", "ppoll",
    // running: memory, threads' futexes, its own signals, sleeping, exiting
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "futex", "rt_sigaction",
    "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "nanosleep", "clock_nanosleep", "sched_yield",
    "exit", "exit_group"};

#if defined(__SANITIZE_ADDRESS__)
// Sanitizer builds only: UBSan's vptr checks probe memory through a pipe, and the runtime calls
// prctl as the process exits (IsAccessibleMemoryRange, its exit path).
constexpr std::array<const char*, 3> kSanitizerRuntime = {"pipe", "pipe2", "prctl"};
#else
constexpr std::array<const char*, 0> kSanitizerRuntime = {};
#endif

// A call outside the list: say which, then die (vigil-run reports how the executor ended).
void OnForbidden(int, siginfo_t* info, void*) {
  char msg[96] = "vigil-executor: system call ";
  size_t n = std::strlen(msg);
  char digits[12];
  int d = 0;
  unsigned v = static_cast<unsigned>(info->si_syscall);
  do {
    digits[d++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && d < 11);
  while (d > 0) msg[n++] = digits[--d];
  const char tail[] = " is outside the executor's allow-list\n";
  std::memcpy(msg + n, tail, sizeof(tail) - 1);
  n += sizeof(tail) - 1;
  [[maybe_unused]] ssize_t w = write(STDERR_FILENO, msg, n);
  _exit(128 + SIGSYS);
}

}  // namespace

Result<std::string> RestrictSystemCalls() {
  struct sigaction sa {};
  sa.sa_sigaction = OnForbidden;
  sa.sa_flags = SA_SIGINFO;
  if (sigaction(SIGSYS, &sa, nullptr) != 0) return Sys(errno, "sigaction SIGSYS");
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
  if (ctx == nullptr) return Internal("seccomp_init failed");
  const std::unique_ptr<void, void (*)(void*)> release(ctx, seccomp_release);
  std::vector<const char*> names(std::begin(kAllowed), std::end(kAllowed));
  names.insert(names.end(), std::begin(kSanitizerRuntime), std::end(kSanitizerRuntime));
  for (const char* name : names) {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return Internal(fmt::format("seccomp: unknown call {}", name));
    if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0); rc != 0) {
      return Sys(-rc, fmt::format("seccomp: allowing {}", name));
    }
  }
  // With their arguments checked: ioctl only for the two requests the executor answers (so not,
  // say, TIOCSTI on a terminal), and signals only to this process (abort).
  const auto allow = [&](const char* name, int nr, scmp_arg_cmp cmp) {
    const int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, cmp);
    return rc == 0 ? Status::Ok() : Sys(-rc, fmt::format("seccomp: allowing {}", name));
  };
  VIGIL_RETURN_IF_ERROR(allow("ioctl TCGETS", SCMP_SYS(ioctl), SCMP_A1(SCMP_CMP_EQ, TCGETS)));
  VIGIL_RETURN_IF_ERROR(
      allow("ioctl TIOCGWINSZ", SCMP_SYS(ioctl), SCMP_A1(SCMP_CMP_EQ, TIOCGWINSZ)));
  VIGIL_RETURN_IF_ERROR(
      allow("tgkill", SCMP_SYS(tgkill), SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(getpid()))));
  if (int rc = seccomp_load(ctx); rc != 0) return Sys(-rc, "seccomp_load");
  return fmt::format(
      "seccomp allow-list of {} system calls, ioctl (TCGETS, TIOCGWINSZ) and tgkill (itself)",
      std::size(kAllowed));
}

}  // namespace vigil::run
