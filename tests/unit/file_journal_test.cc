// The undo journal of vigil-run's file changes: every kind of change the executor performs is
// put back exactly (bytes, mode, kind, symbolic links, hard links), only the state at the start
// counts, and what cannot be undone fails the restore naming it.
#include "vigil/run/file_journal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace vigil::run {
namespace {

namespace fs = std::filesystem;

struct Dir {
  fs::path path;
  Dir() {
    char t[] = "/tmp/vigil-journal-test-XXXXXX";
    path = mkdtemp(t);
  }
  ~Dir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void Put(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string Get(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

mode_t Mode(const std::string& path) {
  struct stat st;
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st.st_mode;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

TEST(FileJournal, RestoresEveryKindOfChangeAsAtTheStart) {
  Dir d, keep;
  Put(d / "a", "the original bytes of a\n");
  chmod((d / "a").c_str(), 0640);
  ASSERT_EQ(link((d / "a").c_str(), (d / "hard").c_str()), 0);
  Put(d / "b", "bbb");
  ASSERT_EQ(symlink("a", (d / "link").c_str()), 0);
  ASSERT_EQ(mkdir((d / "empty").c_str(), 0750), 0);
  FileJournal j(keep.path.string());
  using F = FileJournal::Follow;

  // Opened through the link with O_TRUNC and rewritten, then made 0600.
  ASSERT_TRUE(j.Protect(AT_FDCWD, d / "link", F::kYes).ok());
  Put(d / "link", "short");
  ASSERT_TRUE(j.Protect(AT_FDCWD, d / "a").ok());  // already kept (through the link)
  chmod((d / "a").c_str(), 0600);
  // b renamed over a new name, a file created, a directory made and one removed, the link
  // itself removed: all relative to a directory descriptor.
  const int dir = open(d.path.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dir, 0);
  for (const char* name : {"b", "c", "new", "sub", "empty", "link"}) {
    ASSERT_TRUE(j.Protect(dir, name).ok()) << name;
  }
  close(dir);
  ASSERT_EQ(rename((d / "b").c_str(), (d / "c").c_str()), 0);
  Put(d / "new", "created");
  ASSERT_EQ(mkdir((d / "sub").c_str(), 0700), 0);
  ASSERT_EQ(rmdir((d / "empty").c_str()), 0);
  ASSERT_EQ(unlink((d / "link").c_str()), 0);
  EXPECT_EQ(j.entries(), 7u);
  EXPECT_EQ(j.copied_bytes(), 24u + 3u);

  ASSERT_TRUE(j.Restore().ok());
  EXPECT_EQ(Get(d / "a"), "the original bytes of a\n");
  EXPECT_EQ(Mode(d / "a") & 07777, 0640u);
  EXPECT_EQ(Get(d / "hard"), "the original bytes of a\n") << "restored in place: hard links too";
  EXPECT_EQ(Get(d / "b"), "bbb");
  EXPECT_FALSE(Exists(d / "c"));
  EXPECT_FALSE(Exists(d / "new"));
  EXPECT_FALSE(Exists(d / "sub"));
  EXPECT_TRUE(S_ISDIR(Mode(d / "empty")));
  EXPECT_EQ(Mode(d / "empty") & 07777, 0750u);
  ASSERT_TRUE(S_ISLNK(Mode(d / "link")));
  EXPECT_EQ(fs::read_symlink(d / "link"), "a");
  EXPECT_EQ(j.entries(), 0u);
  EXPECT_TRUE(fs::is_empty(keep.path)) << "the pre-images are removed once restored";
}

TEST(FileJournal, OnlyTheStateAtTheStartIsKept) {
  Dir d, keep;
  Put(d / "f", "start");
  FileJournal j(keep.path.string());
  ASSERT_TRUE(j.Protect(AT_FDCWD, d / "f").ok());
  Put(d / "f", "first change");
  ASSERT_TRUE(j.Protect(AT_FDCWD, d / "f").ok());
  Put(d / "f", "second change");
  EXPECT_EQ(j.entries(), 1u);
  ASSERT_TRUE(j.Restore().ok());
  EXPECT_EQ(Get(d / "f"), "start");
  // After a restore the journal starts again: the next execution's first change is kept anew.
  ASSERT_TRUE(j.Protect(AT_FDCWD, d / "f").ok());
  Put(d / "f", "third");
  ASSERT_TRUE(j.Restore().ok());
  EXPECT_EQ(Get(d / "f"), "start");
}

TEST(FileJournal, CommitKeepsTheChangesAndDropsTheCopies) {
  Dir d, keep;
  Put(d / "f", "start");
  {
    FileJournal j(keep.path.string());
    ASSERT_TRUE(j.Protect(AT_FDCWD, d / "f").ok());
    EXPECT_FALSE(fs::is_empty(keep.path));
    Put(d / "f", "agreed");
    j.Commit();
    EXPECT_TRUE(fs::is_empty(keep.path));
    ASSERT_TRUE(j.Restore().ok());  // nothing left to restore
  }
  EXPECT_EQ(Get(d / "f"), "agreed");
}

TEST(FileJournal, WhatCannotBeUndoneFailsTheRestoreNamingIt) {
  Dir d, keep;
  ASSERT_EQ(mkfifo((d / "fifo").c_str(), 0600), 0);
  Put(d / "f", "start");
  FileJournal j(keep.path.string());
  ASSERT_TRUE(j.Protect(AT_FDCWD, "/dev/null").ok());  // writes to it have nothing to undo
  ASSERT_TRUE(j.Protect(AT_FDCWD, d / "fifo").ok());
  ASSERT_TRUE(j.Protect(AT_FDCWD, d / "f").ok());
  Put(d / "f", "changed");
  Status st = j.Restore();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find(d / "fifo"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find("/dev/null"), std::string::npos) << st.message();
  EXPECT_EQ(Get(d / "f"), "start") << "what can be undone still is";
  // A dangling link opened for writing would create a file out of sight.
  ASSERT_EQ(symlink("nowhere/x", (d / "dangling").c_str()), 0);
  ASSERT_TRUE(j.Protect(AT_FDCWD, d / "dangling", FileJournal::Follow::kYes).ok());
  st = j.Restore();
  EXPECT_NE(st.message().find("dangling"), std::string::npos) << st.message();
}

TEST(FileJournal, AFileThatCannotBeCopiedIsRefusedBeforeItChanges) {
  Dir d;
  Put(d / "f", "start");
  FileJournal j("/nonexistent/vigil-journal");
  Status st = j.Protect(AT_FDCWD, d / "f");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(d / "f"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("/nonexistent/vigil-journal"), std::string::npos) << st.message();
}

TEST(FileJournal, RelativePathsAreTakenFromTheDirectoryDescriptor) {
  Dir d;
  const int dir = open(d.path.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dir, 0);
  auto abs = FileJournal::Absolute(dir, "x/y");
  close(dir);
  ASSERT_TRUE(abs.ok()) << abs.status().ToString();
  EXPECT_EQ(*abs, d / "x/y");
  EXPECT_EQ(*FileJournal::Absolute(AT_FDCWD, "/abs"), "/abs");
  EXPECT_EQ(*FileJournal::Absolute(AT_FDCWD, "rel"), (fs::current_path() / "rel").string());
}

}  // namespace
}  // namespace vigil::run
