#include "vigil/run/file_journal.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace vigil::run {
namespace {

Status Errno(const std::string& what, int err) {
  return ErrnoStatus(StatusCode::kFailedPrecondition, what, err);
}

// Copies everything from `in` (at its start) to `out`.
Status CopyAll(int in, int out, const std::string& what, uint64_t* copied) {
  for (;;) {
    ssize_t n = copy_file_range(in, nullptr, out, nullptr, size_t{1} << 30, 0);
    if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
      // Not on this pair of file systems: plain reads and writes.
      char buf[1 << 16];
      n = read(in, buf, sizeof(buf));
      for (ssize_t done = 0; n > 0 && done < n;) {
        const ssize_t w = write(out, buf + done, static_cast<size_t>(n - done));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return Errno(what, errno);
        done += w;
      }
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno(what, errno);
    if (n == 0) return Status::Ok();
    if (copied != nullptr) *copied += static_cast<uint64_t>(n);
  }
}

bool IsDevNull(const struct stat& st) {
  return S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3;
}

}  // namespace

FileJournal::FileJournal(std::string parent) : parent_(std::move(parent)) {}

FileJournal::~FileJournal() { Clear(); }

std::string FileJournal::DefaultParent() {
  const char* t = std::getenv("TMPDIR");
  return t != nullptr && t[0] == '/' ? t : "/tmp";
}

Result<std::string> FileJournal::PathOf(int fd) {
  char link[PATH_MAX];
  const std::string proc = fmt::format("/proc/self/fd/{}", fd);
  const ssize_t n = readlink(proc.c_str(), link, sizeof(link));
  if (n < 0) return Errno("readlink " + proc, errno);
  std::string path(link, static_cast<size_t>(n));
  if (path.empty() || path[0] != '/') {
    return FailedPrecondition(
        fmt::format("descriptor {} is not a file of the file system ('{}')", fd, path));
  }
  return path;
}

Result<std::string> FileJournal::Absolute(int dir, const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  std::string base;
  if (dir == AT_FDCWD) {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == nullptr) return Errno("getcwd", errno);
    base = cwd;
  } else {
    VIGIL_ASSIGN_OR_RETURN(base, PathOf(dir));
  }
  return base == "/" ? "/" + path : base + "/" + path;
}

Status FileJournal::Protect(int dir, const std::string& path, Follow follow) {
  VIGIL_ASSIGN_OR_RETURN(std::string abs, Absolute(dir, path));
  struct stat st;
  // 0, or the errno of looking the entry up.
  int missing = lstat(abs.c_str(), &st) == 0 ? 0 : errno;
  if (missing == 0 && S_ISLNK(st.st_mode) && follow == Follow::kYes) {
    // The call acts on the link's target: that is the entry to keep.
    char* real = realpath(abs.c_str(), nullptr);
    if (real == nullptr) {
      Irreversible(
          fmt::format("'{}' is a symbolic link whose target does not resolve ({}), "
                      "opened for writing",
                      abs, std::strerror(errno)));
      return Status::Ok();
    }
    abs = real;
    std::free(real);
    missing = lstat(abs.c_str(), &st) == 0 ? 0 : errno;  // the target's
  }
  if (kept_.count(abs) != 0) return Status::Ok();  // its state at the start is already kept
  Entry e;
  e.path = abs;
  if (missing != 0) {
    // Absent: undone by removing what the call creates. Any other error (a component is not a
    // directory, no permission to search it) fails the call itself the same way.
    if (missing != ENOENT) return Status::Ok();
    kept_.insert(abs);
    entries_.push_back(std::move(e));
    return Status::Ok();
  }
  e.mode = st.st_mode & 07777;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  if (S_ISREG(st.st_mode)) {
    e.kind = Kind::kFile;
    VIGIL_RETURN_IF_ERROR(CopyOut(abs, e));
  } else if (S_ISDIR(st.st_mode)) {
    e.kind = Kind::kDirectory;
  } else if (S_ISLNK(st.st_mode)) {
    e.kind = Kind::kSymlink;
    std::string target(PATH_MAX, '\0');
    const ssize_t n = readlink(abs.c_str(), target.data(), target.size());
    if (n < 0) return Errno(fmt::format("readlink '{}'", abs), errno);
    target.resize(static_cast<size_t>(n));
    e.copy = std::move(target);
  } else if (IsDevNull(st)) {
    return Status::Ok();  // what is written to it has no effect to undo
  } else {
    Irreversible(
        fmt::format("'{}' is a device, FIFO or socket (mode {:o}): what is written to "
                    "it cannot be taken back",
                    abs, st.st_mode));
    return Status::Ok();
  }
  kept_.insert(abs);
  entries_.push_back(std::move(e));
  return Status::Ok();
}

Status FileJournal::CopyOut(const std::string& from, Entry& e) {
  const auto what = [&](const char* op) {
    return fmt::format("keeping a copy of '{}' before the program changes it: {}", from, op);
  };
  if (dir_.empty()) {
    std::string t = parent_ + "/vigil-run-journal-XXXXXX";
    if (mkdtemp(t.data()) == nullptr) return Errno(what(("mkdtemp in " + parent_).c_str()), errno);
    dir_ = t;
  }
  const int in = open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (in < 0) return Errno(what("open"), errno);
  e.copy = fmt::format("{}/{}", dir_, next_copy_++);
  const int out = open(e.copy.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) {
    const int err = errno;
    close(in);
    return Errno(what(("create " + e.copy).c_str()), err);
  }
  Status st = CopyAll(in, out, what("copy"), &copied_bytes_);
  close(in);
  if (close(out) != 0 && st.ok()) st = Errno(what("close"), errno);
  return st;
}

void FileJournal::Irreversible(std::string what) {
  if (std::find(irreversible_.begin(), irreversible_.end(), what) == irreversible_.end()) {
    irreversible_.push_back(std::move(what));
  }
}

Status FileJournal::RestoreOne(const Entry& e) {
  const char* p = e.path.c_str();
  struct stat st;
  const bool exists = lstat(p, &st) == 0;
  // Clears the entry unless it is already of the kind to restore.
  const auto clear = [&](bool keep) -> Status {
    if (!exists || keep) return Status::Ok();
    if ((S_ISDIR(st.st_mode) ? rmdir(p) : unlink(p)) != 0) {
      return Errno(fmt::format("removing '{}'", e.path), errno);
    }
    return Status::Ok();
  };
  switch (e.kind) {
    case Kind::kAbsent:
      return clear(false);
    case Kind::kDirectory:
      VIGIL_RETURN_IF_ERROR(clear(exists && S_ISDIR(st.st_mode)));
      if (!(exists && S_ISDIR(st.st_mode)) && mkdir(p, e.mode) != 0) {
        return Errno(fmt::format("creating directory '{}'", e.path), errno);
      }
      if (chmod(p, e.mode) != 0) return Errno(fmt::format("chmod '{}'", e.path), errno);
      return Status::Ok();
    case Kind::kSymlink:
      VIGIL_RETURN_IF_ERROR(clear(false));
      if (symlink(e.copy.c_str(), p) != 0) {
        return Errno(fmt::format("creating symbolic link '{}'", e.path), errno);
      }
      return Status::Ok();
    case Kind::kFile:
      break;
  }
  const bool in_place = exists && S_ISREG(st.st_mode);
  VIGIL_RETURN_IF_ERROR(clear(in_place));
  // In place, the inode (and any other hard link to it) gets the bytes back.
  const int out =
      open(p, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | (in_place ? O_TRUNC : O_CREAT | O_EXCL), e.mode);
  if (out < 0) return Errno(fmt::format("reopening '{}'", e.path), errno);
  const int in = open(e.copy.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    const int err = errno;
    close(out);
    return Errno(fmt::format("opening the copy {} of '{}'", e.copy, e.path), err);
  }
  Status s = CopyAll(in, out, fmt::format("writing '{}' back", e.path), nullptr);
  close(in);
  if (s.ok() && fchmod(out, e.mode) != 0) s = Errno(fmt::format("chmod '{}'", e.path), errno);
  struct stat now;
  if (s.ok() && fstat(out, &now) == 0 && (now.st_uid != e.uid || now.st_gid != e.gid) &&
      fchown(out, e.uid, e.gid) != 0) {
    s = Errno(fmt::format("chown '{}' back to {}:{}", e.path, e.uid, e.gid), errno);
  }
  if (close(out) != 0 && s.ok()) s = Errno(fmt::format("closing '{}'", e.path), errno);
  return s;
}

Status FileJournal::Restore() {
  std::vector<std::string> failed;
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (Status st = RestoreOne(*it); !st.ok()) failed.push_back(st.message());
  }
  for (const std::string& what : irreversible_) failed.push_back("cannot be undone: " + what);
  const size_t n = entries_.size();
  Clear();
  if (failed.empty()) return Status::Ok();
  std::string msg = fmt::format(
      "{} of the program's file changes could not be undone (of {} "
      "entries changed): ",
      failed.size(), n);
  for (size_t i = 0; i < failed.size(); ++i) msg += (i == 0 ? "" : "; ") + failed[i];
  return DataLoss(std::move(msg));
}

void FileJournal::Commit() { Clear(); }

void FileJournal::Clear() {
  for (const Entry& e : entries_) {
    if (e.kind == Kind::kFile) unlink(e.copy.c_str());
  }
  entries_.clear();
  kept_.clear();
  irreversible_.clear();
  if (!dir_.empty()) {
    rmdir(dir_.c_str());
    dir_.clear();
  }
}

}  // namespace vigil::run
