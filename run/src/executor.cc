#include "vigil/run/executor.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <ctime>

#include "vigil/run/intercept.h"
#include "vigil/run/syscalls.h"

namespace vigil::run {
namespace {

static_assert(sizeof(struct stat) == 144 && sizeof(struct utsname) == 390 &&
                  sizeof(struct sysinfo) == 112 && sizeof(struct timespec) == 16 &&
                  sizeof(struct rlimit) == 16 && sizeof(struct winsize) == 8,
              "the syscall table's result sizes are x86_64's");

// The path arguments: NUL-terminated strings, one after the other, filling the blob.
Result<std::vector<std::string>> Paths(const SyscallSpec& s, std::span<const std::byte> blob) {
  std::vector<std::string> paths;
  const int want = (s.path >= 0) + (s.path2 >= 0);
  const char* p = reinterpret_cast<const char*>(blob.data());
  size_t left = blob.size();
  for (int i = 0; i < want; ++i) {
    const void* nul = std::memchr(p, 0, left);
    if (nul == nullptr) {
      return DataLoss(
          fmt::format("{}: path argument {} is not NUL-terminated in the record", s.name, i + 1));
    }
    const size_t n = static_cast<size_t>(static_cast<const char*>(nul) - p);
    if (n >= PATH_MAX) {
      return DataLoss(fmt::format("{}: path of {} bytes (PATH_MAX {})", s.name, n, PATH_MAX));
    }
    paths.emplace_back(p, n);
    p += n + 1;
    left -= n + 1;
  }
  if (left != 0) {
    return DataLoss(fmt::format("{}: {} bytes after the path arguments", s.name, left));
  }
  return paths;
}

}  // namespace

int64_t HostExecutor::Errno() { return -static_cast<int64_t>(errno); }
int64_t HostExecutor::Value(int64_t rc) { return rc < 0 ? Errno() : rc; }

HostExecutor::HostExecutor(int stdin_fd, int stdout_fd, int stderr_fd,
                           std::unique_ptr<Sandbox> sandbox, std::string journal_parent)
    : std_real_{stdin_fd, stdout_fd, stderr_fd},
      sandbox_(std::move(sandbox)),
      journal_(std::move(journal_parent)) {
  umask_at_start_ = umask(022);
  umask(umask_at_start_);
  Reset();
}

HostExecutor::~HostExecutor() {
  for (auto& [vfd, f] : fds_) {
    if (f.std == Std::kNone) close(f.real);
  }
}

void HostExecutor::Reset() {
  for (auto& [vfd, f] : fds_) {
    if (f.std == Std::kNone) close(f.real);
  }
  fds_.clear();
  fds_[0] = Fd{std_real_[0], Std::kIn, false};
  fds_[1] = Fd{std_real_[1], Std::kOut, false};
  fds_[2] = Fd{std_real_[2], Std::kErr, false};
  stdin_offset_ = 0;
  written_[0] = written_[1] = 0;
  calls_ = 0;
  umask(umask_at_start_);  // the program may have changed the process's (it runs here)
}

Status HostExecutor::Checkpoint() {
  calls_at_checkpoint_ = calls_;
  return Status::Ok();
}

Status HostExecutor::Rollback() {
  if (calls_ == calls_at_checkpoint_) return Status::Ok();  // nothing executed since
  if (calls_at_checkpoint_ != 0) {
    return FailedPrecondition(fmt::format(
        "{} system calls were executed since the checkpoint, which was taken after {}; only a "
        "checkpoint at the program's start can be returned to",
        calls_ - calls_at_checkpoint_, calls_at_checkpoint_));
  }
  // Back to the start: the program runs again from its first instruction. Its stdin is replayed
  // from what was kept, what it already wrote to stdout/stderr is not written again, and every
  // file it changed is as it was (its descriptors are closed first).
  Reset();
  return journal_.Restore();
}

Status HostExecutor::Finish(bool completed) {
  if (completed) {
    journal_.Commit();
    return Status::Ok();
  }
  Reset();
  return journal_.Restore();
}

Result<int> HostExecutor::Real(uint64_t vfd) const {
  auto it = vfd <= INT_MAX ? fds_.find(static_cast<int>(vfd)) : fds_.end();
  if (it == fds_.end()) return NotFound("no such descriptor");
  return it->second.real;
}

int HostExecutor::DirFd(uint64_t vfd) const {
  if (static_cast<int>(vfd) == AT_FDCWD) return AT_FDCWD;
  auto real = Real(vfd);
  return real.ok() ? *real : INT_MIN;
}

int HostExecutor::Lowest(int from) const {
  int v = std::max(from, 0);
  while (fds_.count(v) != 0) ++v;
  return v;
}

int64_t HostExecutor::Install(int real, Std std, bool cloexec, int at, bool beneath) {
  fds_[at] = Fd{real, std, cloexec, beneath};
  return at;
}

int64_t HostExecutor::CloseVirtual(int vfd) {
  auto it = fds_.find(vfd);
  if (it == fds_.end()) return -EBADF;
  int64_t rc = 0;
  if (it->second.std == Std::kNone) rc = Value(close(it->second.real));
  fds_.erase(it);
  return rc == -EINTR ? 0 : rc;  // Linux closes the descriptor even then
}

Result<HostExecutor::Outcome> HostExecutor::ReadStdin(std::span<std::byte> dst) {
  if (stdin_offset_ == stdin_kept_.size() && !stdin_eof_ && !dst.empty()) {
    const size_t before = stdin_kept_.size();
    stdin_kept_.resize(before + dst.size());
    ssize_t n;
    do n = read(std_real_[0], stdin_kept_.data() + before, dst.size());
    while (n < 0 && errno == EINTR);
    const int64_t err = Errno();
    stdin_kept_.resize(before + static_cast<size_t>(std::max<ssize_t>(n, 0)));
    if (n < 0) return Outcome{err, 0};
    if (n == 0) stdin_eof_ = true;
  }
  const size_t n = std::min<size_t>(dst.size(), stdin_kept_.size() - stdin_offset_);
  // A read of 0 bytes may come with no buffer at all (found by fuzz/syscall_fuzz: memcpy from
  // a null pointer is undefined even for 0 bytes).
  if (n > 0) std::memcpy(dst.data(), stdin_kept_.data() + stdin_offset_, n);
  stdin_offset_ += n;
  return Outcome{static_cast<int64_t>(n), n};
}

Result<HostExecutor::Outcome> HostExecutor::WriteStd(Std which, int real,
                                                     std::span<const std::byte> bytes) {
  const int i = which == Std::kOut ? 0 : 1;
  // Bytes an earlier execution (before a rollback) already wrote are not written again.
  size_t skip = 0;
  if (emitted_[i] > written_[i]) {
    skip = static_cast<size_t>(std::min<uint64_t>(emitted_[i] - written_[i], bytes.size()));
  }
  for (size_t done = skip; done < bytes.size();) {
    ssize_t n = write(real, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Outcome{Errno(), 0};
    done += static_cast<size_t>(n);
  }
  written_[i] += bytes.size();
  emitted_[i] = std::max(emitted_[i], written_[i]);
  return Outcome{static_cast<int64_t>(bytes.size()), 0};
}

namespace {

// The record's fixed part and its blob, checked against each other.
Result<std::span<const std::byte>> SplitRecord(uint64_t nr, std::span<const std::byte> record,
                                               SyscallRecord& r) {
  if (record.size() < kSyscallRecordBytes) {
    return DataLoss(fmt::format("system call {} record of {} bytes, shorter than {}", nr,
                                record.size(), kSyscallRecordBytes));
  }
  std::memcpy(&r, record.data(), sizeof(r));
  const auto blob = record.subspan(kSyscallRecordBytes);
  if (r.blob_bytes != blob.size()) {
    return DataLoss(fmt::format("system call {} record announces {} bytes, carries {}", nr,
                                r.blob_bytes, blob.size()));
  }
  if ((r.flags & kRecordBytesAside) != 0 && blob.size() != sizeof(BytesAside)) {
    return DataLoss(
        fmt::format("system call {} record leaves bytes aside but its blob has {} "
                    "bytes, not {}",
                    nr, blob.size(), sizeof(BytesAside)));
  }
  return blob;
}

}  // namespace

Result<std::optional<voter::SyscallExecutor::Aside>> HostExecutor::ParseAside(
    std::span<const std::byte> record) {
  SyscallRecord r;
  VIGIL_ASSIGN_OR_RETURN(std::span<const std::byte> blob, SplitRecord(0, record, r));
  if ((r.flags & kRecordBytesAside) == 0) return std::optional<Aside>();
  run::BytesAside a;
  std::memcpy(&a, blob.data(), sizeof(a));
  return std::optional<Aside>(Aside{a.bytes, a.digest});
}

namespace {

// An agreed call, checked: its spec, arguments and the bytes it works on (the blob, or the bytes
// delivered aside).
struct Checked {
  SyscallRecord r;
  const SyscallSpec* s = nullptr;
  std::span<const std::byte> blob;
};

Result<Checked> Check(uint64_t nr, uint64_t piece, std::span<const std::byte> record,
                      std::span<const std::byte> aside) {
  Checked c;
  VIGIL_ASSIGN_OR_RETURN(c.blob, SplitRecord(nr, record, c.r));
  if (nr > INT_MAX) return DataLoss(fmt::format("system call number {}", nr));
  c.s = FindSyscall(static_cast<int>(nr));
  if (c.s == nullptr || c.s->cls == SyscallClass::kUnsupported) {
    return FailedPrecondition(UnsupportedMessage(static_cast<int>(nr)));
  }
  if ((c.r.flags & kRecordBytesAside) != 0) {
    run::BytesAside a;
    std::memcpy(&a, c.blob.data(), sizeof(a));
    if (c.s->in_buf < 0 || aside.size() != a.bytes) {
      return DataLoss(fmt::format("{} leaves {} bytes aside ({} delivered); only writes may",
                                  c.s->name, a.bytes, aside.size()));
    }
    c.blob = aside;  // the bytes the call writes
  } else if (!aside.empty()) {
    return Internal(
        fmt::format("{}: bytes delivered aside, but its record carries them", c.s->name));
  }
  if (piece > 0 && c.s->in_buf < 0) {
    return DataLoss(fmt::format("{} sent in pieces (piece {})", c.s->name, piece));
  }
  return c;
}

// A call every replica executes itself: nothing to do here, or an error for what replicas may
// not do themselves.
Result<voter::SyscallExecutor::Outcome> Local(uint64_t nr, const SyscallRecord& r) {
  if (nr == SYS_mmap && (r.args[3] & MAP_ANONYMOUS) == 0) {
    const int fd = static_cast<int>(r.args[4]);
    if ((r.args[3] & MAP_SHARED) != 0 && (r.args[2] & PROT_WRITE) != 0) {
      return FailedPrecondition(fmt::format(
          "the program maps descriptor {} shared and writable: its writes would bypass the "
          "voter (not supported)",
          fd));
    }
    if ((r.flags & kRecordLocalFd) == 0) {
      return FailedPrecondition(fmt::format(
          "the program maps descriptor {}, which replicas do not hold (only files opened "
          "read-only are mapped in replicas)",
          fd));
    }
  }
  return voter::SyscallExecutor::Outcome{0, 0};
}

}  // namespace

Result<std::optional<HostExecutor::Outcome>> HostExecutor::DecideLocal(
    uint64_t nr, uint64_t piece, std::span<const std::byte> record,
    std::span<const std::byte> aside) {
  VIGIL_ASSIGN_OR_RETURN(Checked c, Check(nr, piece, record, aside));
  if (c.s->cls != SyscallClass::kLocal) return std::optional<Outcome>();
  VIGIL_ASSIGN_OR_RETURN(Outcome o, Local(nr, c.r));
  return std::optional<Outcome>(o);
}

Result<HostExecutor::Outcome> HostExecutor::Execute(uint64_t nr, uint64_t piece,
                                                    std::span<const std::byte> record,
                                                    std::span<const std::byte> aside,
                                                    std::span<std::byte> result) {
  VIGIL_ASSIGN_OR_RETURN(Checked c, Check(nr, piece, record, aside));
  ++calls_;
  ++total_calls_;
  if (c.s->cls == SyscallClass::kLocal) return Local(nr, c.r);
  VIGIL_ASSIGN_OR_RETURN(Outcome o, Dispatch(static_cast<int>(nr), c.r.args, c.blob, result));
  // A NULL result pointer receives nothing.
  if (c.s->out_buf >= 0 && c.r.args[c.s->out_buf] == 0) o.bytes = 0;
  return o;
}

Result<HostExecutor::Outcome> HostExecutor::Dispatch(int nr, const uint64_t* a,
                                                     std::span<const std::byte> blob,
                                                     std::span<std::byte> result) {
  const SyscallSpec& s = *FindSyscall(nr);
  const auto value = [](int64_t v) { return Outcome{v, 0}; };
  // The result bytes of a call that returns them: the first `n` of `result`.
  const auto bytes = [](int64_t v, size_t n) { return Outcome{v, v < 0 ? 0 : n}; };
  if (s.in_buf < 0) {
    // The blob holds the path arguments and nothing else (none: it must be empty).
    VIGIL_ASSIGN_OR_RETURN(std::vector<std::string> paths, Paths(s, blob));
    if (s.path >= 0) return DispatchPath(nr, a, paths, result);
  }
  // The descriptor, for the calls whose first argument is one.
  auto fd_it = a[0] <= INT_MAX ? fds_.find(static_cast<int>(a[0])) : fds_.end();
  Fd* fd = fd_it != fds_.end() ? &fd_it->second : nullptr;
  const size_t room = result.size();
  switch (nr) {
    case SYS_read:
    case SYS_pread64: {
      if (fd == nullptr) return value(-EBADF);
      const size_t n = static_cast<size_t>(std::min<uint64_t>(a[2], room));
      if (fd->std == Std::kIn && nr == SYS_read) return ReadStdin(result.first(n));
      if (fd->std != Std::kNone && fd->std != Std::kIn) return value(-EBADF);
      if (fd->std == Std::kIn) return value(-ESPIPE);
      const ssize_t got = nr == SYS_read
                              ? read(fd->real, result.data(), n)
                              : pread(fd->real, result.data(), n, static_cast<off_t>(a[3]));
      return bytes(Value(got), static_cast<size_t>(std::max<ssize_t>(got, 0)));
    }
    case SYS_write:
    case SYS_writev:
    case SYS_pwrite64: {
      if (fd == nullptr || fd->std == Std::kIn) return value(-EBADF);
      if (fd->std != Std::kNone) {
        if (nr == SYS_pwrite64) return value(-ESPIPE);
        return WriteStd(fd->std, fd->real, blob);
      }
      const ssize_t n = nr == SYS_pwrite64
                            ? pwrite(fd->real, blob.data(), blob.size(), static_cast<off_t>(a[3]))
                            : write(fd->real, blob.data(), blob.size());
      return value(Value(n));
    }
    case SYS_close:
      return value(a[0] <= INT_MAX ? CloseVirtual(static_cast<int>(a[0])) : -EBADF);
    case SYS_fstat:
      if (fd == nullptr) return value(-EBADF);
      return bytes(Value(fstat(fd->real, reinterpret_cast<struct stat*>(result.data()))),
                   sizeof(struct stat));
    case SYS_lseek:
      if (fd == nullptr) return value(-EBADF);
      if (fd->std != Std::kNone) return value(-ESPIPE);
      return value(Value(lseek(fd->real, static_cast<off_t>(a[1]), static_cast<int>(a[2]))));
    case SYS_dup:
    case SYS_dup2:
    case SYS_dup3:
    case SYS_fcntl: {
      if (fd == nullptr) return value(-EBADF);
      int target = -1;
      bool cloexec = false;
      if (nr == SYS_fcntl) {
        switch (static_cast<int>(a[1])) {
          case F_GETFD:
            return value(fd->cloexec ? FD_CLOEXEC : 0);
          case F_SETFD:
            fd->cloexec = (a[2] & FD_CLOEXEC) != 0;
            return value(0);
          case F_GETFL:
            return value(Value(fcntl(fd->real, F_GETFL)));
          case F_SETFL:
            // The job's own stdio keeps its flags; the program's files get what it asks.
            if (fd->std != Std::kNone) return value(0);
            return value(Value(fcntl(fd->real, F_SETFL, static_cast<int>(a[2]))));
          case F_DUPFD:
          case F_DUPFD_CLOEXEC:
            if (a[2] > INT_MAX) return value(-EINVAL);
            target = Lowest(static_cast<int>(a[2]));
            cloexec = static_cast<int>(a[1]) == F_DUPFD_CLOEXEC;
            break;
          default:
            return FailedPrecondition(fmt::format(
                "the program called fcntl command {} on descriptor {}, which vigil-run does not "
                "support",
                a[1], a[0]));
        }
      } else if (nr == SYS_dup) {
        target = Lowest(0);
      } else {
        if (a[1] > INT_MAX) return value(-EBADF);
        if (a[0] == a[1]) return value(nr == SYS_dup3 ? -EINVAL : static_cast<int64_t>(a[1]));
        if (nr == SYS_dup3 && (a[2] & ~static_cast<uint64_t>(O_CLOEXEC)) != 0) {
          return value(-EINVAL);
        }
        target = static_cast<int>(a[1]);
        cloexec = nr == SYS_dup3 && (a[2] & O_CLOEXEC) != 0;
      }
      const Fd src = *fd;
      int real = src.real;
      if (src.std == Std::kNone) {
        real = fcntl(src.real, F_DUPFD_CLOEXEC, 0);
        if (real < 0) return value(Errno());
      }
      if (fds_.count(target) != 0) CloseVirtual(target);
      return value(Install(real, src.std, cloexec, target, src.beneath));
    }
    case SYS_ioctl: {
      if (fd == nullptr) return value(-EBADF);
      const auto req = static_cast<unsigned long>(a[1]);
      const size_t n = IoctlResultBytes(req);
      if (req == TCGETS) {
        std::byte buf[sizeof(termios) + 64] = {};
        const int64_t v = Value(ioctl(fd->real, TCGETS, buf));
        std::memcpy(result.data(), buf, std::min(n, room));
        return bytes(v, n);
      }
      if (req == TIOCGWINSZ) return bytes(Value(ioctl(fd->real, TIOCGWINSZ, result.data())), n);
      return FailedPrecondition(fmt::format(
          "the program called ioctl request {:#x} on descriptor {}, which vigil-run does not "
          "support (only TCGETS and TIOCGWINSZ)",
          req, a[0]));
    }
    case SYS_getdents64: {
      if (fd == nullptr) return value(-EBADF);
      const size_t n = static_cast<size_t>(std::min<uint64_t>(a[2], room));
      const int64_t v = Value(syscall(SYS_getdents64, fd->real, result.data(), n));
      return bytes(v, static_cast<size_t>(std::max<int64_t>(v, 0)));
    }
    case SYS_getcwd: {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(a[1], room));
      const int64_t v = Value(syscall(SYS_getcwd, result.data(), n));
      return bytes(v, static_cast<size_t>(std::max<int64_t>(v, 0)));
    }
    case SYS_fchmod:
    case SYS_fchown:
    case SYS_ftruncate:
    case SYS_fsync:
    case SYS_fdatasync:
    case SYS_fadvise64:
      if (fd == nullptr) return value(-EBADF);
      if ((nr == SYS_fchmod || nr == SYS_fchown) && (fd->std != Std::kNone || !fd->beneath)) {
        return value(-sandbox_->Refuse(fmt::format("descriptor {}", a[0]),
                                       "changing the mode or owner of a file that is not "
                                       "beneath the root (or is the job's stdio)"));
      }
      if (nr == SYS_fchmod || nr == SYS_fchown) {
        // The file's path now (it may have been renamed since it was opened).
        Result<std::string> p = FileJournal::PathOf(fd->real);
        if (p.ok() && !p->ends_with(" (deleted)"))
          VIGIL_RETURN_IF_ERROR(journal_.Protect(AT_FDCWD, *p));
      }
      switch (nr) {
        case SYS_fchmod:
          return value(Value(fchmod(fd->real, static_cast<mode_t>(a[1]))));
        case SYS_fchown:
          return value(Value(fchown(fd->real, static_cast<uid_t>(a[1]), static_cast<gid_t>(a[2]))));
        case SYS_ftruncate:
          return value(Value(ftruncate(fd->real, static_cast<off_t>(a[1]))));
        case SYS_fsync:
          return value(Value(fsync(fd->real)));
        case SYS_fdatasync:
          return value(Value(fdatasync(fd->real)));
        default:
          return value(-posix_fadvise(fd->real, static_cast<off_t>(a[1]), static_cast<off_t>(a[2]),
                                      static_cast<int>(a[3])));
      }
    case SYS_umask:
      return value(umask(static_cast<mode_t>(a[0])));
    case SYS_getpid:
    case SYS_gettid:  // single-threaded: the thread is the process
      return value(getpid());
    case SYS_getppid:
      return value(getppid());
    case SYS_getuid:
      return value(getuid());
    case SYS_geteuid:
      return value(geteuid());
    case SYS_getgid:
      return value(getgid());
    case SYS_getegid:
      return value(getegid());
    case SYS_uname:
      return bytes(Value(uname(reinterpret_cast<utsname*>(result.data()))), sizeof(utsname));
    case SYS_sysinfo:
      return bytes(Value(sysinfo(reinterpret_cast<struct sysinfo*>(result.data()))),
                   sizeof(struct sysinfo));
    case SYS_gettimeofday:
      return bytes(Value(gettimeofday(reinterpret_cast<timeval*>(result.data()), nullptr)),
                   sizeof(timeval));
    case SYS_time: {
      const time_t t = time(nullptr);
      std::memcpy(result.data(), &t, sizeof(t));
      return bytes(t, sizeof(t));
    }
    case SYS_clock_gettime:
    case SYS_clock_getres: {
      auto* ts = reinterpret_cast<timespec*>(result.data());
      const auto clk = static_cast<clockid_t>(a[0]);
      return bytes(Value(nr == SYS_clock_gettime ? clock_gettime(clk, ts) : clock_getres(clk, ts)),
                   sizeof(timespec));
    }
    case SYS_getrlimit:
    case SYS_prlimit64: {
      const bool pr = nr == SYS_prlimit64;
      if (pr && a[2] != 0) {
        return FailedPrecondition(
            "the program called prlimit64 to set a resource limit, which vigil-run does not "
            "support");
      }
      if (pr && a[0] != 0 && a[0] != static_cast<uint64_t>(getpid())) return value(-ESRCH);
      const auto resource = static_cast<__rlimit_resource>(a[pr ? 1 : 0]);
      return bytes(Value(getrlimit(resource, reinterpret_cast<rlimit*>(result.data()))),
                   sizeof(rlimit));
    }
    case SYS_getrandom: {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(a[1], room));
      const int64_t v = Value(getrandom(result.data(), n, static_cast<unsigned>(a[2])));
      return bytes(v, static_cast<size_t>(std::max<int64_t>(v, 0)));
    }
    case SYS_sched_getaffinity: {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(a[1], room));
      const int64_t v = Value(syscall(SYS_sched_getaffinity, 0, n, result.data()));
      return bytes(v, static_cast<size_t>(std::max<int64_t>(v, 0)));
    }
    default:
      break;
  }
  return Internal(fmt::format("{} is in the voter's class but has no executor", s.name));
}

}  // namespace vigil::run
