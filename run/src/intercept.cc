#include "vigil/run/intercept.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "vigil/common/registers.h"

namespace vigil::run {
namespace {

// What the child sends when it cannot become the program.
struct ChildFailure {
  int stage;  // kStageSeccomp or kStageExec
  int err;
};
constexpr int kStageSeccomp = 1;
constexpr int kStageExec = 2;

// System calls the start-up itself makes after the filter is installed: intercepting them would
// stop the child before the supervisor holds the listener.
bool NeededForStartUp(int nr) {
  return nr == SYS_sendmsg || nr == SYS_execve || nr == SYS_execveat;
}

// The filter as BPF, built by libseccomp in the parent (the child must not allocate after fork):
// listed calls -> user notification, everything else allowed (or, intercepting all, everything
// a notification except the start-up's sendmsg on `sock` and execve of `program`); any
// non-x86_64 ABI kills.
Result<std::vector<uint8_t>> BuildFilter(const SpawnOptions& o, int sock, const char* program) {
  scmp_filter_ctx ctx = seccomp_init(o.intercept_all ? SCMP_ACT_NOTIFY : SCMP_ACT_ALLOW);
  if (ctx == nullptr) return Internal("seccomp_init failed");
  auto release = [&] { seccomp_release(ctx); };
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (o.intercept_all) {
    if (rc == 0) {
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SYS_sendmsg, 1,
                            SCMP_A0(SCMP_CMP_EQ, static_cast<uint64_t>(sock)));
    }
    if (rc == 0) {
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SYS_execve, 1,
                            SCMP_A0(SCMP_CMP_EQ, reinterpret_cast<uint64_t>(program)));
    }
    if (rc != 0) {
      release();
      return Internal(fmt::format("building the seccomp filter: {}", std::strerror(-rc)));
    }
  }
  for (int nr : o.intercept_all ? std::vector<int>{} : o.intercept) {
    if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, nr, 0);
    if (rc != 0) {
      release();
      return InvalidArgument(
          fmt::format("cannot intercept {}: {}", SyscallName(nr), std::strerror(-rc)));
    }
  }
  int fd = memfd_create("vigil-seccomp-bpf", MFD_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    release();
    return ErrnoStatus(StatusCode::kInternal, "memfd_create", err);
  }
  rc = seccomp_export_bpf(ctx, fd);
  release();
  std::vector<uint8_t> bpf;
  if (rc == 0) {
    off_t size = lseek(fd, 0, SEEK_END);
    bpf.resize(size > 0 ? static_cast<size_t>(size) : 0);
    if (size <= 0 || pread(fd, bpf.data(), bpf.size(), 0) != size) rc = -EIO;
  }
  close(fd);
  if (rc != 0 || bpf.size() % sizeof(sock_filter) != 0) {
    return Internal(fmt::format("exporting the seccomp filter failed: {}", std::strerror(-rc)));
  }
  return bpf;
}

// One message from the child: the listener descriptor, a failure, or end of file (the socket
// is close-on-exec, so EOF after the descriptor means the program is running).
struct ChildMessage {
  int fd = -1;
  bool failed = false;
  ChildFailure failure{};
};

ChildMessage ReceiveFromChild(int sock) {
  ChildMessage m;
  iovec iov{&m.failure, sizeof(m.failure)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (n > 0 && c != nullptr && c->cmsg_type == SCM_RIGHTS) {
    std::memcpy(&m.fd, CMSG_DATA(c), sizeof(int));
  } else if (n == sizeof(ChildFailure)) {
    m.failed = true;
  }
  return m;
}

// Sends `failure` or, when fd >= 0, the descriptor. sendmsg is the only call the child makes
// between installing the filter and exec, and it is never intercepted (NeededForStartUp).
bool SendToParent(int sock, int fd, ChildFailure failure) {
  iovec iov{&failure, sizeof(failure)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  return sendmsg(sock, &msg, 0) == static_cast<ssize_t>(sizeof(failure));
}

// Tells the parent why the child cannot become the program, and ends it.
[[noreturn]] void ChildFails(int sock, int stage) {
  SendToParent(sock, -1, ChildFailure{stage, errno});
  _exit(127);
}

// The child after fork: only system calls from here on, and after the filter only sendmsg and
// execve (any other call might be one the parent intercepts, and it is not listening yet).
[[noreturn]] void RunChild(const SpawnOptions& o, const char* program, char** argv, char** envp,
                           sock_fprog& prog, int sock) {
  if (o.stdin_fd >= 0) dup2(o.stdin_fd, 0);
  if (o.stdout_fd >= 0) dup2(o.stdout_fd, 1);
  if (o.stderr_fd >= 0) dup2(o.stderr_fd, 2);
  // The program starts with stdin, stdout and stderr only: nothing of the supervisor's, and the
  // same descriptor numbers in every replica.
  if (sock > 3) syscall(SYS_close_range, 3u, static_cast<unsigned>(sock - 1), 0u);
  syscall(SYS_close_range, static_cast<unsigned>(sock + 1), ~0u, 0u);
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // a replica never outlives its supervisor
  if (o.disable_aslr && personality(ADDR_NO_RANDOMIZE) < 0) ChildFails(sock, kStageSeccomp);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ChildFails(sock, kStageSeccomp);
  // The listener is created close-on-exec: the program never sees it.
  int listener = static_cast<int>(
      syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog));
  if (listener < 0) ChildFails(sock, kStageSeccomp);
  if (!SendToParent(sock, listener, ChildFailure{})) ChildFails(sock, kStageSeccomp);
  execve(program, argv, envp);
  ChildFails(sock, kStageExec);
}

}  // namespace

Result<InterceptedProcess> InterceptedProcess::Spawn(const SpawnOptions& o) {
  if (o.argv.empty() || o.argv[0].empty()) return InvalidArgument("no program to run (empty argv)");
  for (int nr : o.intercept) {
    if (NeededForStartUp(nr)) {
      return InvalidArgument(
          fmt::format("{} cannot be intercepted: starting the program needs it", SyscallName(nr)));
    }
  }
  VIGIL_ASSIGN_OR_RETURN(const std::string program,
                         o.program.empty() ? FindProgram(o.argv[0]) : FindProgram(o.program));
  std::vector<std::string> args = o.argv;
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = o.env.value_or(std::vector<std::string>{});
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  int socks[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, socks) != 0) {
    return ErrnoStatus(StatusCode::kInternal, "socketpair", errno);
  }
  auto bpf = BuildFilter(o, socks[1], program.c_str());
  if (!bpf.ok()) {
    close(socks[0]);
    close(socks[1]);
    return bpf.status();
  }
  sock_fprog prog{static_cast<unsigned short>(bpf->size() / sizeof(sock_filter)),
                  reinterpret_cast<sock_filter*>(bpf->data())};
  pid_t pid = fork();
  if (pid == 0) {
    close(socks[0]);
    RunChild(o, program.c_str(), argv.data(), o.env ? envp.data() : environ, prog, socks[1]);
  }
  int fork_err = errno;
  close(socks[1]);
  if (pid < 0) {
    close(socks[0]);
    return ErrnoStatus(StatusCode::kResourceExhausted, "fork", fork_err);
  }
  ChildMessage first = ReceiveFromChild(socks[0]);
  ChildMessage second;
  if (first.fd >= 0) second = ReceiveFromChild(socks[0]);
  close(socks[0]);
  InterceptedProcess proc(pid, first.fd);
  const ChildMessage& failed = first.failed ? first : second;
  if (failed.failed) {
    proc.Close();
    if (failed.failure.stage == kStageExec) {
      return ErrnoStatus(StatusCode::kNotFound, fmt::format("cannot execute '{}'", o.argv[0]),
                         failed.failure.err);
    }
    return ErrnoStatus(StatusCode::kFailedPrecondition,
                       "installing the seccomp user-notification filter (needs Linux >= 5.5)",
                       failed.failure.err);
  }
  if (first.fd < 0) {
    proc.Close();
    return Internal(fmt::format("'{}' ended before handing over its seccomp listener", o.argv[0]));
  }
  return proc;
}

InterceptedProcess::InterceptedProcess(InterceptedProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      listener_(std::exchange(other.listener_, -1)),
      wait_status_(other.wait_status_),
      exited_(other.exited_) {}

InterceptedProcess& InterceptedProcess::operator=(InterceptedProcess&& other) noexcept {
  if (this != &other) {
    Close();
    pid_ = std::exchange(other.pid_, -1);
    listener_ = std::exchange(other.listener_, -1);
    wait_status_ = other.wait_status_;
    exited_ = other.exited_;
  }
  return *this;
}

InterceptedProcess::~InterceptedProcess() { Close(); }

void InterceptedProcess::Close() {
  if (pid_ > 0 && !exited_) {
    kill(pid_, SIGKILL);
    while (waitpid(pid_, &wait_status_, 0) < 0 && errno == EINTR) {
    }
    exited_ = true;
  }
  if (listener_ >= 0) close(listener_);
  listener_ = -1;
}

Result<std::optional<SyscallStop>> InterceptedProcess::Next(int timeout_ms) {
  if (exited_) return std::optional<SyscallStop>();
  // A zombie keeps its filter until reaped, so the listener does not report the exit: poll in
  // short slices and look for the exit in between.
  constexpr int kSliceMs = 20;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    pollfd p{listener_, POLLIN, 0};
    int rc = poll(&p, 1, kSliceMs);
    if (rc < 0 && errno != EINTR)
      return ErrnoStatus(StatusCode::kInternal, "poll on the seccomp listener", errno);
    if (rc > 0 && (p.revents & POLLIN)) {
      seccomp_notif req{};
      if (ioctl(listener_, SECCOMP_IOCTL_NOTIF_RECV, &req) == 0) {
        SyscallStop stop;
        stop.id = req.id;
        stop.pid = static_cast<pid_t>(req.pid);
        stop.nr = req.data.nr;
        std::copy(std::begin(req.data.args), std::end(req.data.args), stop.args.begin());
        stop.instruction_pointer = req.data.instruction_pointer;
        return std::optional<SyscallStop>(stop);
      }
      if (errno != ENOENT && errno != EINTR) {
        return ErrnoStatus(StatusCode::kInternal, "receiving a seccomp notification", errno);
      }
      continue;  // the caller died between poll and receive
    }
    pid_t w = waitpid(pid_, &wait_status_, WNOHANG);
    if (w == pid_) {
      exited_ = true;
      return std::optional<SyscallStop>();
    }
    if (timeout_ms >= 0 && std::chrono::steady_clock::now() >= deadline) {
      return DeadlineExceeded(
          fmt::format("no system call from pid {} within {} ms", pid_, timeout_ms));
    }
  }
}

Status InterceptedProcess::Return(const SyscallStop& stop, int64_t value, int error) {
  seccomp_notif_resp resp{};
  resp.id = stop.id;
  resp.val = error != 0 ? 0 : value;
  resp.error = -error;
  if (ioctl(listener_, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0) {
    return ErrnoStatus(
        StatusCode::kAborted,
        fmt::format("answering {} of pid {} (did it die?)", SyscallName(stop.nr), stop.pid), errno);
  }
  return Status::Ok();
}

Status InterceptedProcess::Execute(const SyscallStop& stop) {
  seccomp_notif_resp resp{};
  resp.id = stop.id;
  resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  if (ioctl(listener_, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0) {
    return ErrnoStatus(
        StatusCode::kAborted,
        fmt::format("letting pid {} execute {} (did it die?)", stop.pid, SyscallName(stop.nr)),
        errno);
  }
  return Status::Ok();
}

namespace {

unsigned long long* RegisterSlot(user_regs_struct& r, std::string_view name) {
  const std::pair<std::string_view, unsigned long long*> slots[] = {
      {"rbx", &r.rbx}, {"rbp", &r.rbp}, {"rsp", &r.rsp}, {"r12", &r.r12}, {"r13", &r.r13},
      {"r14", &r.r14}, {"r15", &r.r15}, {"rdi", &r.rdi}, {"rsi", &r.rsi}, {"rdx", &r.rdx},
      {"r10", &r.r10}, {"r8", &r.r8},   {"r9", &r.r9},   {"rip", &r.rip}};
  for (auto& [n, slot] : slots) {
    if (n == name) return slot;
  }
  return nullptr;
}

}  // namespace

Result<InterceptedProcess::RegisterFlip> InterceptedProcess::FlipRegister(const SyscallStop& stop,
                                                                          std::string_view reg,
                                                                          unsigned bit) {
  user_regs_struct regs{};
  if (!IsFlippableRegister(reg) || RegisterSlot(regs, reg) == nullptr) {
    return InvalidArgument(fmt::format("register '{}' cannot be flipped (one of: {})", reg,
                                       fmt::join(kFlippableRegisters, ", ")));
  }
  VIGIL_RETURN_IF_ERROR(StillStopped(stop, "flipping a register"));
  const std::string what =
      fmt::format("flipping {} of pid {} in {}", reg, pid_, SyscallName(stop.nr));
  if (ptrace(PTRACE_SEIZE, pid_, 0, 0) != 0) {
    return ErrnoStatus(StatusCode::kFailedPrecondition, what + ": PTRACE_SEIZE", errno);
  }
  // Attached: detached again on every path below (a detach also resumes the process).
  if (ptrace(PTRACE_INTERRUPT, pid_, 0, 0) != 0) {
    const int e = errno;
    ptrace(PTRACE_DETACH, pid_, 0, 0);
    return ErrnoStatus(StatusCode::kInternal, what + ": PTRACE_INTERRUPT", e);
  }
  int ws = 0;
  pid_t w = -1;
  while ((w = waitpid(pid_, &ws, __WALL)) < 0 && errno == EINTR) {
  }
  if (w != pid_) return ErrnoStatus(StatusCode::kInternal, what + ": waiting for the stop", errno);
  if (WIFEXITED(ws) || WIFSIGNALED(ws)) {
    exited_ = true;
    wait_status_ = ws;
    return Aborted(what + ": the process ended");
  }
  if (!WIFSTOPPED(ws) || (ws >> 16) != PTRACE_EVENT_STOP) {
    // A signal arrived first: hand it back and leave the process as it was.
    ptrace(PTRACE_DETACH, pid_, 0, WIFSTOPPED(ws) ? WSTOPSIG(ws) : 0);
    return Aborted(fmt::format("{}: it stopped for signal {} instead", what, WSTOPSIG(ws)));
  }
  RegisterFlip flip;
  Status st = Status::Ok();
  if (ptrace(PTRACE_GETREGS, pid_, 0, &regs) != 0) {
    st = ErrnoStatus(StatusCode::kInternal, what + ": PTRACE_GETREGS", errno);
  } else {
    unsigned long long* slot = RegisterSlot(regs, reg);
    flip.before = *slot;
    *slot ^= 1ull << (bit % 64);
    flip.after = *slot;
    if (ptrace(PTRACE_SETREGS, pid_, 0, &regs) != 0) {
      st = ErrnoStatus(StatusCode::kInternal, what + ": PTRACE_SETREGS", errno);
    }
  }
  if (ptrace(PTRACE_DETACH, pid_, 0, 0) != 0 && st.ok()) {
    st = ErrnoStatus(StatusCode::kInternal, what + ": PTRACE_DETACH", errno);
  }
  if (!st.ok()) return st;
  return flip;
}

Status InterceptedProcess::StillStopped(const SyscallStop& stop, const char* what) {
  uint64_t id = stop.id;
  if (ioctl(listener_, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0) {
    return Aborted(fmt::format("{} of pid {}: it is no longer stopped in {}", what, stop.pid,
                               SyscallName(stop.nr)));
  }
  return Status::Ok();
}

Result<std::vector<uint8_t>> InterceptedProcess::ReadMemory(const SyscallStop& stop, uint64_t addr,
                                                            size_t len) {
  if (len > kMaxTransfer) {
    return OutOfRange(fmt::format("reading {} bytes of pid {} at {:#x}: more than the {} allowed",
                                  len, stop.pid, addr, kMaxTransfer));
  }
  std::vector<uint8_t> bytes(len);
  if (len > 0) {
    iovec local{bytes.data(), len};
    iovec remote{reinterpret_cast<void*>(addr), len};
    ssize_t n = process_vm_readv(stop.pid, &local, 1, &remote, 1, 0);
    if (n != static_cast<ssize_t>(len)) {
      int err = n < 0 ? errno : EFAULT;
      return ErrnoStatus(StatusCode::kOutOfRange,
                         fmt::format("reading {} bytes of pid {} at {:#x} ({})", len, stop.pid,
                                     addr, SyscallName(stop.nr)),
                         err);
    }
  }
  // The pid may have died and been reused while we read: only a still-stopped call counts.
  VIGIL_RETURN_IF_ERROR(StillStopped(stop, "reading memory"));
  return bytes;
}

Status InterceptedProcess::WriteMemory(const SyscallStop& stop, uint64_t addr,
                                       std::span<const uint8_t> bytes) {
  if (bytes.size() > kMaxTransfer) {
    return OutOfRange(fmt::format("writing {} bytes into pid {}: more than the {} allowed",
                                  bytes.size(), stop.pid, kMaxTransfer));
  }
  VIGIL_RETURN_IF_ERROR(StillStopped(stop, "writing memory"));
  if (bytes.empty()) return Status::Ok();
  iovec local{const_cast<uint8_t*>(bytes.data()), bytes.size()};
  iovec remote{reinterpret_cast<void*>(addr), bytes.size()};
  ssize_t n = process_vm_writev(stop.pid, &local, 1, &remote, 1, 0);
  if (n != static_cast<ssize_t>(bytes.size())) {
    int err = n < 0 ? errno : EFAULT;
    return ErrnoStatus(StatusCode::kOutOfRange,
                       fmt::format("writing {} bytes into pid {} at {:#x} ({})", bytes.size(),
                                   stop.pid, addr, SyscallName(stop.nr)),
                       err);
  }
  return Status::Ok();
}

Status InterceptedProcess::InstallFd(const SyscallStop& stop, int local_fd, int target_fd,
                                     bool cloexec) {
  seccomp_notif_addfd add{};
  add.id = stop.id;
  add.flags = SECCOMP_ADDFD_FLAG_SETFD;
  add.srcfd = static_cast<uint32_t>(local_fd);
  add.newfd = static_cast<uint32_t>(target_fd);
  add.newfd_flags = cloexec ? O_CLOEXEC : 0;
  if (ioctl(listener_, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0) {
    return ErrnoStatus(StatusCode::kAborted,
                       fmt::format("installing descriptor {} into pid {} ({})", target_fd, stop.pid,
                                   SyscallName(stop.nr)),
                       errno);
  }
  return Status::Ok();
}

std::string SyscallName(int nr) {
  char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr);
  if (name == nullptr) return fmt::format("syscall {}", nr);
  std::string s(name);
  free(name);  // NOLINT: libseccomp allocates with malloc
  return s;
}

}  // namespace vigil::run
