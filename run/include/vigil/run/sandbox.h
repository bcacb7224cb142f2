// Where a replicated program's agreed file-system calls may reach. The voter executes them on the
// program's behalf with its own privileges, so without a boundary a program (or a fault every
// replica agreed on) could read /proc/self/mem, the voter's own memory, or change any file
// vigil-run's user may change. Every path the executor acts on is admitted here first:
//
//   - beneath the root (vigil-run --root, default the working directory): read and change, as
//     vigil-run's user; neither `..` nor a symbolic link may lead out of it;
//   - anywhere else: read only, and only what every user of the host may read: the entry's
//     directories searchable by others and, to read its contents, the entry readable by others
//     (so the loader and the program can read /usr and /etc/ld.so.cache, not /etc/shadow);
//   - never /proc, /sys, /dev, another kernel file system, a device, a FIFO or a socket (the
//     program's stdin, stdout and stderr are not opened by path).
//
// A refusal is EACCES, the answer the program would get from a kernel that denied it; each is
// counted and logged once per path. Paths resolve with openat2(2) (RESOLVE_BENEATH beneath the
// root, RESOLVE_NO_MAGICLINKS everywhere), and the calls then act through the descriptors
// resolved here (an entry's directory and its last component), not on the path again.
//
// Owned and called by the executor's thread only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>

#include "vigil/common/status.h"

namespace vigil::run {

class Sandbox {
 public:
  // `root`: an existing directory. Relative paths start from this process's working directory
  // (which may lie outside the root: its entries are then read-only).
  static Result<std::unique_ptr<Sandbox>> Open(const std::string& root);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  enum class Use { kRead, kChange };
  // The use an open(2) with these flags makes of its file.
  static Use OpenUse(int flags);

  // A path the program named, admitted.
  struct Entry {
    Entry() = default;
    ~Entry();
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    std::string path;      // absolute, as named (not resolved): for the journal and messages
    bool beneath = false;  // beneath the root: may be changed
    int base = -1;         // the root's or "/"'s descriptor (the sandbox's, not owned)
    std::string rel;       // the path relative to `base`
    uint64_t resolve = 0;  // openat2 RESOLVE_* flags for `rel` from `base`
    int parent = -1;       // the entry's directory, opened O_PATH (owned)
    std::string name;      // the entry's last component in `parent` ("." for one named by . or ..)
  };

  // 0, or the errno the call fails with: EACCES when the sandbox refuses, otherwise resolving's
  // own (ENOENT, ENOTDIR, ELOOP...). `dir` is AT_FDCWD or a descriptor of this process that the
  // relative `path` starts from. `follow`: the call follows a final symbolic link, whose target
  // is then checked too (a change through a link may not leave the root).
  int Admit(int dir, const std::string& path, Use use, bool follow, Entry& e);
  // Opens an admitted entry with the program's flags (O_CLOEXEC added): a descriptor or -errno.
  // What is opened is checked again (a device, FIFO or socket, or outside the root a file others
  // may not read, is closed and refused).
  int64_t OpenAt(const Entry& e, int flags, mode_t mode);
  // The object an admitted entry names, opened O_PATH with its final link followed: a
  // descriptor or -errno (a followed link's target is checked as the entry was).
  int64_t Object(const Entry& e);

  // EACCES, counted and logged (once per `what`): for refusals the executor decides itself.
  int Refuse(const std::string& what, const char* why);

  const std::string& root() const { return root_; }
  uint64_t refused() const { return refused_; }

 private:
  Sandbox() = default;
  // What the call needs of the object open at `fd`: to name it, to look up entries in it (a
  // directory), or to open its contents.
  enum class Need { kPath, kSearch, kContents };
  // 0, or EACCES (refused, counted and logged), or the errno of looking at `fd`.
  int Check(int fd, const Entry& e, Need need);
  // The entry opened with `flags` and checked: a descriptor or -errno.
  int64_t OpenChecked(const Entry& e, uint64_t flags, mode_t mode, Need need);

  std::string root_;  // real path, no trailing slash (except "/")
  std::string cwd_;   // this process's working directory at the start
  int root_fd_ = -1;
  int slash_fd_ = -1;
  uint64_t refused_ = 0;
  std::unordered_set<std::string> logged_;
};

}  // namespace vigil::run
