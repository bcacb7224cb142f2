#include "vigil/run/sandbox.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>

#include "vigil/common/logging.h"
#include "vigil/common/text.h"
#include "vigil/run/file_journal.h"

namespace vigil::run {
namespace {

// The file systems the kernel makes of its own state: never reachable from a program.
constexpr std::array<unsigned long, 14> kKernelFs = {
    PROC_SUPER_MAGIC, SYSFS_MAGIC,        DEVPTS_SUPER_MAGIC,  DEBUGFS_MAGIC, SECURITYFS_MAGIC,
    TRACEFS_MAGIC,    CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, BPF_FS_MAGIC,  SELINUX_MAGIC,
    PSTOREFS_MAGIC,   EFIVARFS_MAGIC,     BINFMTFS_MAGIC,      NSFS_MAGIC};
constexpr std::array<std::string_view, 3> kKernelPaths = {"/proc", "/sys", "/dev"};

Status Errno(const std::string& what, int err) {
  return ErrnoStatus(StatusCode::kInvalidArgument, what, err);
}

// What a program may open: a regular file or a directory (never a device, FIFO or socket).
bool Openable(mode_t mode) { return S_ISREG(mode) || S_ISDIR(mode); }
constexpr char kNotOpenable[] = "not a regular file or a directory (a device, FIFO or socket)";

bool Under(std::string_view path, std::string_view dir) {
  if (dir == "/") return !path.empty() && path[0] == '/';
  return path == dir || (path.starts_with(dir) && path[dir.size()] == '/');
}

int OpenAt2(int dir, const std::string& rel, uint64_t flags, mode_t mode, uint64_t resolve) {
  open_how how{};
  how.flags = flags;
  how.mode = (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE ? mode & 07777 : 0;
  how.resolve = resolve;
  return static_cast<int>(syscall(SYS_openat2, dir, rel.c_str(), &how, sizeof(how)));
}

}  // namespace

Sandbox::Entry::~Entry() {
  if (parent >= 0) close(parent);
}

Sandbox::~Sandbox() {
  if (root_fd_ >= 0) close(root_fd_);
  if (slash_fd_ >= 0 && slash_fd_ != root_fd_) close(slash_fd_);
}

Sandbox::Use Sandbox::OpenUse(int flags) {
  // (O_TMPFILE includes O_DIRECTORY's bit: only both make it.)
  return (flags & O_ACCMODE) == O_RDONLY && (flags & (O_CREAT | O_TRUNC)) == 0 &&
                 (flags & O_TMPFILE) != O_TMPFILE
             ? Use::kRead
             : Use::kChange;
}

Result<std::unique_ptr<Sandbox>> Sandbox::Open(const std::string& root) {
  std::unique_ptr<Sandbox> s(new Sandbox());
  char* real = realpath(root.c_str(), nullptr);
  if (real == nullptr) return Errno(fmt::format("the sandbox's root '{}'", root), errno);
  s->root_ = real;
  std::free(real);
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) return Errno("getcwd", errno);
  s->cwd_ = cwd;
  s->slash_fd_ = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (s->slash_fd_ < 0) return Errno("open /", errno);
  s->root_fd_ =
      s->root_ == "/" ? s->slash_fd_ : open(s->root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (s->root_fd_ < 0) return Errno(fmt::format("the sandbox's root '{}'", s->root_), errno);
  // Opening it O_PATH needs no permission on it: the user must also be able to list and enter it.
  if (faccessat(AT_FDCWD, s->root_.c_str(), R_OK | X_OK, AT_EACCESS) != 0) {
    return Errno(fmt::format("the sandbox's root '{}' (uid {} may not list and enter it)", s->root_,
                             geteuid()),
                 errno);
  }
  for (std::string_view k : kKernelPaths) {
    if (Under(s->root_, k)) {
      return InvalidArgument(fmt::format(
          "the sandbox's root '{}' lies in {}, which programs may never reach", s->root_, k));
    }
  }
  return s;
}

int Sandbox::Refuse(const std::string& path, const char* why) {
  ++refused_;
  if (logged_.size() < 1024 && logged_.insert(path).second) {
    log::Get("run")->warn("sandbox: refused the program's access to '{}': {} (EACCES)",
                          Escaped(path), why);
  }
  return EACCES;
}

int Sandbox::Admit(int dir, const std::string& path, Use use, bool follow, Entry& e) {
  if (path.empty()) return ENOENT;
  if (path[0] == '/') {
    e.path = path;
  } else {
    std::string from = cwd_;
    if (dir != AT_FDCWD) {
      Result<std::string> p = FileJournal::PathOf(dir);
      if (!p.ok() || p->ends_with(" (deleted)")) return ENOTDIR;
      from = *p;
    }
    e.path = from == "/" ? "/" + path : from + "/" + path;
  }
  e.beneath = Under(e.path, root_);
  if (!e.beneath && use == Use::kChange) return Refuse(e.path, "outside the root, read only");
  e.base = e.beneath ? root_fd_ : slash_fd_;
  e.rel = e.path.substr(e.beneath && root_ != "/" ? root_.size() : 0);
  e.rel.erase(0, e.rel.find_first_not_of('/'));
  // (assign(1, '.'), not = ".", here and below: GCC 12 at -O3 reports a false -Wrestrict.)
  if (e.rel.empty()) e.rel.assign(1, '.');
  // Beneath the root nothing may lead out of it (RESOLVE_BENEATH also refuses absolute links);
  // elsewhere links are followed as usual (/usr/bin/awk -> /etc/alternatives/awk -> ...).
  e.resolve = RESOLVE_NO_MAGICLINKS | (e.beneath && root_ != "/" ? RESOLVE_BENEATH : 0);

  // The entry's directory and last component ("a/b/" names b; "a/.." names a's parent itself).
  std::string parent_rel = ".";
  std::string rel = e.rel;
  while (rel.size() > 1 && rel.back() == '/') rel.pop_back();
  const size_t slash = rel.rfind('/');
  e.name = slash == std::string::npos ? rel : rel.substr(slash + 1);
  if (slash != std::string::npos) parent_rel = rel.substr(0, slash);
  if (e.name == "." || e.name == "..") {
    parent_rel = rel;
    e.name.assign(1, '.');
  }
  if (e.parent >= 0) close(e.parent);
  e.parent = OpenAt2(e.base, parent_rel, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, e.resolve);
  if (e.parent < 0) {
    const int err = errno;
    if (err == EXDEV) return Refuse(e.path, "it leads out of the root");
    if (err == ELOOP && (e.resolve & RESOLVE_NO_MAGICLINKS) != 0) {
      // A "magic" link (/proc/PID/fd/N and the like) or a real loop: neither is followed.
      return Refuse(e.path, "it passes through a link of the kernel's (or loops)");
    }
    return err;
  }
  if (int err = Check(e.parent, e, Need::kSearch); err != 0) return err;
  if (follow) {
    // What a change through a final link would reach: checked before the journal keeps it.
    const int64_t object = Object(e);
    if (object >= 0) {
      close(static_cast<int>(object));
    } else if (object == -EACCES) {
      return EACCES;
    }
  }
  return 0;
}

int64_t Sandbox::OpenChecked(const Entry& e, uint64_t flags, mode_t mode, Need need) {
  const int fd = OpenAt2(e.base, e.rel, flags, mode, e.resolve);
  if (fd < 0) {
    const int err = errno;
    if (err == EXDEV) return -Refuse(e.path, "it leads out of the root");
    return -err;
  }
  if (int err = Check(fd, e, need); err != 0) {
    close(fd);
    return -err;
  }
  return fd;
}

int64_t Sandbox::Object(const Entry& e) {
  return OpenChecked(e, O_PATH | O_CLOEXEC, 0, Need::kPath);
}

int64_t Sandbox::OpenAt(const Entry& e, int flags, mode_t mode) {
  if (!e.beneath && OpenUse(flags) == Use::kChange) {
    return -Refuse(e.path, "outside the root, read only");
  }
  // A device, FIFO or socket is refused before it is opened (opening one may block or act).
  const int pre = OpenAt2(e.base, e.rel, O_PATH | O_CLOEXEC | (flags & O_NOFOLLOW), 0, e.resolve);
  if (pre >= 0) {
    struct stat st;
    // (A final link itself, with O_NOFOLLOW: the open fails with ELOOP.)
    const bool special = fstat(pre, &st) == 0 && !Openable(st.st_mode) && !S_ISLNK(st.st_mode);
    close(pre);
    if (special) return -Refuse(e.path, kNotOpenable);
  }
  // Non-blocking while it is checked: what changed since must be refused, not waited on.
  const int64_t opened = OpenChecked(
      e, static_cast<uint64_t>(flags) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, mode, Need::kContents);
  if (opened < 0) return opened;
  const int fd = static_cast<int>(opened);
  if ((flags & O_NONBLOCK) == 0 && (flags & O_PATH) == 0) {
    const int now = fcntl(fd, F_GETFL);
    if (now < 0 || fcntl(fd, F_SETFL, now & ~O_NONBLOCK) != 0) {
      const int err = errno;
      close(fd);
      return -err;
    }
  }
  return fd;
}

int Sandbox::Check(int fd, const Entry& e, Need need) {
  const bool contents = need == Need::kContents;
  struct statfs fs;
  if (fstatfs(fd, &fs) != 0) return errno;
  for (unsigned long magic : kKernelFs) {
    if (static_cast<unsigned long>(fs.f_type) == magic) {
      return Refuse(e.path, "a file system of the kernel's state");
    }
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return errno;
  if (contents && !Openable(st.st_mode)) return Refuse(e.path, kNotOpenable);
  // Judged on where it really is.
  Result<std::string> real = FileJournal::PathOf(fd);
  if (!real.ok()) return Refuse(e.path, "not a file of the file system");
  for (std::string_view k : kKernelPaths) {
    if (Under(*real, k)) return Refuse(e.path, "in /proc, /sys or /dev");
  }
  if (e.beneath) return 0;
  // Outside the root: only what every user may read.
  if (contents && (st.st_mode & S_IROTH) == 0) {
    return Refuse(e.path, "outside the root, and not readable by every user");
  }
  if (need == Need::kSearch && (st.st_mode & S_IXOTH) == 0) {
    return Refuse(e.path, "outside the root, in a directory not every user may search");
  }
  // Every directory on the way there searchable by every user.
  for (size_t at = real->find('/', 1); at != std::string::npos; at = real->find('/', at + 1)) {
    struct stat d;
    const std::string dir = real->substr(1, at - 1);
    if (fstatat(slash_fd_, dir.c_str(), &d, AT_SYMLINK_NOFOLLOW) != 0) return errno;
    if ((d.st_mode & S_IXOTH) == 0) {
      return Refuse(e.path, "outside the root, in a directory not every user may search");
    }
  }
  return 0;
}

}  // namespace vigil::run
