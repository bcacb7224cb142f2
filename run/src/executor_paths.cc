// The executor's calls that name paths: each path is admitted by the sandbox (which resolves
// it), the journal keeps what a change will touch, and the call acts through the descriptors
// the sandbox resolved.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

#include "vigil/run/executor.h"

namespace vigil::run {

Result<HostExecutor::Outcome> HostExecutor::DispatchPath(int nr, const uint64_t* a,
                                                         const std::vector<std::string>& paths,
                                                         std::span<std::byte> result) {
  using Use = Sandbox::Use;
  using F = FileJournal::Follow;
  const auto value = [](int64_t v) { return Outcome{v, 0}; };
  const auto bytes = [](int64_t v, size_t n) { return Outcome{v, v < 0 ? 0 : n}; };
  const size_t room = result.size();
  // The directory a call's path starts from: its first argument for the *at calls.
  const bool at = nr == SYS_openat || nr == SYS_newfstatat || nr == SYS_statx ||
                  nr == SYS_faccessat || nr == SYS_faccessat2 || nr == SYS_readlinkat ||
                  nr == SYS_mkdirat || nr == SYS_unlinkat || nr == SYS_renameat;
  const int dir = at ? DirFd(a[0]) : AT_FDCWD;
  if (dir == INT_MIN) return value(-EBADF);
  // The path a call names, admitted; 0 or the errno the call fails with.
  Sandbox::Entry e;
  const auto admit = [&](Use use, bool follow) {
    return sandbox_->Admit(dir, paths[0], use, follow, e);
  };
  // The object itself (a final link followed), for the calls that look at it.
  const auto object = [&](Use use) -> int64_t {
    if (int err = admit(use, false); err != 0) return -err;
    return sandbox_->Object(e);
  };
  switch (nr) {
    case SYS_open:
    case SYS_openat: {
      const int flags = static_cast<int>(a[at ? 2 : 1]);
      const auto mode = static_cast<mode_t>(a[at ? 3 : 2]);
      const Use use = Sandbox::OpenUse(flags);
      const bool follow = (flags & O_NOFOLLOW) == 0;
      if (int err = admit(use, follow); err != 0) return value(-err);
      if (use == Use::kChange) {
        VIGIL_RETURN_IF_ERROR(journal_.Protect(AT_FDCWD, e.path, follow ? F::kYes : F::kNo));
      }
      const int64_t real = sandbox_->OpenAt(e, flags, mode);
      if (real < 0) return value(real);
      return value(Install(static_cast<int>(real), Std::kNone, (flags & O_CLOEXEC) != 0, Lowest(0),
                           e.beneath));
    }
    case SYS_stat:
    case SYS_lstat:
    case SYS_newfstatat:
    case SYS_statx: {
      const bool x = nr == SYS_statx;
      auto* st = reinterpret_cast<struct stat*>(result.data());
      const size_t n = x ? 256 : sizeof(struct stat);
      const int flags = nr == SYS_lstat  ? AT_SYMLINK_NOFOLLOW
                        : nr == SYS_stat ? 0
                                         : static_cast<int>(a[x ? 2 : 3]);
      const auto mask = static_cast<unsigned>(x ? a[3] : 0);
      const auto stat_at = [&](int d, const char* name, int f) {
        return x ? Value(syscall(SYS_statx, d, name, f, mask, result.data()))
                 : Value(fstatat(d, name, st, f));
      };
      if (paths[0].empty() && (flags & AT_EMPTY_PATH) != 0 && dir != AT_FDCWD) {
        return bytes(stat_at(dir, "", flags), n);  // the descriptor's own file
      }
      if ((flags & AT_SYMLINK_NOFOLLOW) != 0) {
        if (int err = admit(Use::kRead, false); err != 0) return value(-err);
        return bytes(stat_at(e.parent, e.name.c_str(), flags & ~AT_EMPTY_PATH), n);
      }
      const int64_t fd = object(Use::kRead);
      if (fd < 0) return value(fd);
      const int64_t v = stat_at(static_cast<int>(fd), "", (flags & ~AT_EMPTY_PATH) | AT_EMPTY_PATH);
      close(static_cast<int>(fd));
      return bytes(v, n);
    }
    case SYS_access:
    case SYS_faccessat:
    case SYS_faccessat2: {
      const int mode = static_cast<int>(a[at ? 2 : 1]);
      const int flags = nr == SYS_faccessat2 ? static_cast<int>(a[3]) : 0;
      // Asking whether a file may be written: outside the root it may not.
      const Use use = (mode & W_OK) != 0 ? Use::kChange : Use::kRead;
      if ((flags & AT_SYMLINK_NOFOLLOW) != 0) {
        if (int err = admit(use, false); err != 0) return value(-err);
        return value(Value(syscall(SYS_faccessat2, e.parent, e.name.c_str(), mode, flags)));
      }
      const int64_t fd = object(use);
      if (fd < 0) return value(fd);
      const int64_t v =
          Value(syscall(SYS_faccessat2, static_cast<int>(fd), "", mode, flags | AT_EMPTY_PATH));
      close(static_cast<int>(fd));
      return value(v);
    }
    case SYS_readlink:
    case SYS_readlinkat: {
      if (int err = admit(Use::kRead, false); err != 0) return value(-err);
      const size_t n = static_cast<size_t>(std::min<uint64_t>(a[at ? 3 : 2], room));
      const int64_t v =
          Value(readlinkat(e.parent, e.name.c_str(), reinterpret_cast<char*>(result.data()), n));
      return bytes(v, static_cast<size_t>(std::max<int64_t>(v, 0)));
    }
    case SYS_mkdir:
    case SYS_mkdirat: {
      if (int err = admit(Use::kChange, false); err != 0) return value(-err);
      VIGIL_RETURN_IF_ERROR(journal_.Protect(AT_FDCWD, e.path));
      return value(Value(mkdirat(e.parent, e.name.c_str(), static_cast<mode_t>(a[at ? 2 : 1]))));
    }
    case SYS_rmdir:
    case SYS_unlink:
    case SYS_unlinkat: {
      if (int err = admit(Use::kChange, false); err != 0) return value(-err);
      VIGIL_RETURN_IF_ERROR(journal_.Protect(AT_FDCWD, e.path));
      const int flags = nr == SYS_unlinkat ? static_cast<int>(a[2])
                        : nr == SYS_rmdir  ? AT_REMOVEDIR
                                           : 0;
      return value(Value(unlinkat(e.parent, e.name.c_str(), flags)));
    }
    case SYS_rename:
    case SYS_renameat: {
      Sandbox::Entry to;
      const int to_dir = nr == SYS_renameat ? DirFd(a[2]) : AT_FDCWD;
      if (to_dir == INT_MIN) return value(-EBADF);
      if (int err = admit(Use::kChange, false); err != 0) return value(-err);
      if (int err = sandbox_->Admit(to_dir, paths[1], Use::kChange, false, to); err != 0) {
        return value(-err);
      }
      // A directory renamed takes its contents along: the journal keeps entries, not trees.
      struct stat st;
      if (fstatat(e.parent, e.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
        journal_.Irreversible(
            fmt::format("the directory '{}' was renamed to '{}'", paths[0], paths[1]));
      }
      VIGIL_RETURN_IF_ERROR(journal_.Protect(AT_FDCWD, e.path));
      VIGIL_RETURN_IF_ERROR(journal_.Protect(AT_FDCWD, to.path));
      return value(Value(renameat(e.parent, e.name.c_str(), to.parent, to.name.c_str())));
    }
    default:
      break;
  }
  return Internal(fmt::format("system call {} names a path but has no executor", nr));
}

}  // namespace vigil::run
