// The undo journal of a vigil-run job's file changes: before the executor performs an agreed call
// that changes a file-system entry (opening a file for writing, creating, truncating, renaming,
// removing, changing its mode or owner), the journal records what the entry was: absent, a
// directory and its mode, a symbolic link and its target, or a regular file, whose bytes, mode
// and owner are copied into a private directory. Only the first change of an entry is recorded:
// that is its state when the job started.
//
// Restore() puts every recorded entry back, newest first, so that the file system is as it was
// at the start of the job: a DMR rollback (the program re-executes from its start) and a job
// that ends in error both call it. A file that still exists is rewritten in place (its inode and
// other hard links keep it). A change the journal cannot undo (renaming a directory, writing to
// a device or a FIFO) marks it irreversible: Restore() then undoes what it can and fails naming
// what it could not, and the group fails closed instead of continuing.
//
// Owned and called by the executor's thread only.
#pragma once

#include <sys/types.h>

#include <string>
#include <unordered_set>
#include <vector>

#include "vigil/common/status.h"

namespace vigil::run {

class FileJournal {
 public:
  // Pre-images are kept in a directory created (mode 0700) under `parent` at the first copy.
  explicit FileJournal(std::string parent = DefaultParent());
  ~FileJournal();  // removes the pre-images (nothing is restored)
  FileJournal(const FileJournal&) = delete;
  FileJournal& operator=(const FileJournal&) = delete;

  // $TMPDIR, or /tmp.
  static std::string DefaultParent();

  enum class Follow { kNo, kYes };  // kYes: the call follows a final symbolic link (open)
  // Records the entry at `path` (relative to the directory descriptor `dir`, or AT_FDCWD) before
  // a call changes it. An error (the pre-image cannot be copied) means the call must not run.
  Status Protect(int dir, const std::string& path, Follow follow = Follow::kNo);
  // A change about to be made that cannot be undone; Restore() will fail naming it.
  void Irreversible(std::string what);

  // Back to the recorded state (newest entry first), then an empty journal.
  Status Restore();
  // The changes are kept: forget the pre-images.
  void Commit();

  size_t entries() const { return entries_.size(); }
  uint64_t copied_bytes() const { return copied_bytes_; }

  // The absolute path of `path` relative to `dir`, without touching the file system except to
  // read the directory's own path.
  static Result<std::string> Absolute(int dir, const std::string& path);
  // The absolute path this process's descriptor `fd` was opened by (/proc/self/fd), as the
  // kernel tells it now; an error when it is not a path of the file system (a pipe, a socket).
  static Result<std::string> PathOf(int fd);

 private:
  enum class Kind { kAbsent, kFile, kDirectory, kSymlink };
  struct Entry {
    std::string path;  // absolute
    Kind kind = Kind::kAbsent;
    mode_t mode = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    std::string copy;  // kFile: the pre-image's bytes; kSymlink: the link's target
  };
  Status CopyOut(const std::string& from, Entry& e);
  Status RestoreOne(const Entry& e);
  void Clear();

  std::string parent_;
  std::string dir_;  // the private directory, once created
  std::vector<Entry> entries_;
  std::unordered_set<std::string> kept_;  // the paths of entries_
  std::vector<std::string> irreversible_;
  uint64_t copied_bytes_ = 0;
  uint64_t next_copy_ = 0;
};

}  // namespace vigil::run
