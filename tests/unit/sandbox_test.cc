// vigil-run's sandbox (run::Sandbox), through the executor as the voter uses it: agreed calls
// given as records. Beneath the root a program reads and changes; elsewhere it reads only what
// every user may read; /proc, /sys, /dev, devices and FIFOs never; neither `..` nor a symbolic
// link leads out of the root; every refusal is EACCES, counted, and changes nothing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "vigil/run/executor.h"
#include "vigil/run/syscalls.h"

namespace vigil::run {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

std::string Read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

class SandboxTest : public ::testing::Test {
 protected:
  // top/ (0755)
  //   root/          the sandbox's root (0755): in.txt, link-out -> ../public.txt,
  //                  abs-link -> /etc/passwd, fifo
  //   public.txt     0644: outside the root, readable by every user
  //   private.txt    0600
  void SetUp() override {
    char t[] = "/tmp/vigil-sandbox-test-XXXXXX";
    ASSERT_NE(mkdtemp(t), nullptr);
    top_ = t;
    root_ = top_ + "/root";
    ASSERT_EQ(chmod(top_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    Write(root_ + "/in.txt", "inside\n", 0644);
    Write(top_ + "/public.txt", "public\n", 0644);
    Write(top_ + "/private.txt", "private\n", 0600);
    ASSERT_EQ(symlink("../public.txt", (root_ + "/link-out").c_str()), 0);
    ASSERT_EQ(symlink("/etc/passwd", (root_ + "/abs-link").c_str()), 0);
    ASSERT_EQ(mkfifo((root_ + "/fifo").c_str(), 0644), 0);
    Open(root_);
  }
  void TearDown() override {
    e_.reset();
    ASSERT_EQ(std::system(("rm -rf " + top_).c_str()), 0);
  }
  void Open(const std::string& root) {
    e_.reset();
    auto sandbox = Sandbox::Open(root);
    ASSERT_TRUE(sandbox.ok()) << sandbox.status().ToString();
    e_ = std::make_unique<HostExecutor>(-1, -1, -1, std::move(*sandbox));
  }
  static void Write(const std::string& path, const std::string& bytes, mode_t mode) {
    std::ofstream(path, std::ios::binary) << bytes;
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
  }

  // An agreed call: its arguments and path arguments; the value it returns.
  int64_t Call(int nr, std::initializer_list<uint64_t> args,
               std::initializer_list<std::string> paths = {}) {
    SyscallRecord r;
    size_t i = 0;
    for (uint64_t a : args) r.args[i++] = a;
    std::string blob;
    for (const std::string& p : paths) blob += p + '\0';
    r.blob_bytes = static_cast<uint32_t>(blob.size());
    std::vector<std::byte> rec(kSyscallRecordBytes + blob.size());
    std::memcpy(rec.data(), &r, sizeof(r));
    std::memcpy(rec.data() + kSyscallRecordBytes, blob.data(), blob.size());
    auto o = e_->Execute(static_cast<uint64_t>(nr), 0, rec, {}, result_);
    EXPECT_TRUE(o.ok()) << o.status().ToString();
    return o.ok() ? o->value : INT64_MIN;
  }
  int64_t OpenAt(const std::string& path, int flags, int dir = AT_FDCWD) {
    return Call(SYS_openat, {static_cast<uint64_t>(dir), 0, static_cast<uint64_t>(flags), 0644},
                {path});
  }
  uint64_t refused() const { return e_->sandbox().refused(); }

  std::string top_, root_;
  std::unique_ptr<HostExecutor> e_;
  std::byte result_[512];
};

TEST_F(SandboxTest, BeneathTheRootTheProgramReadsAndChanges) {
  EXPECT_GE(OpenAt(root_ + "/in.txt", O_RDONLY), 3);
  const int64_t fd = OpenAt(root_ + "/new.txt", O_WRONLY | O_CREAT | O_TRUNC);
  ASSERT_GE(fd, 3);
  EXPECT_EQ(Call(SYS_fchmod, {static_cast<uint64_t>(fd), 0600}), 0);
  EXPECT_EQ(Call(SYS_mkdir, {0, 0755}, {root_ + "/d"}), 0);
  EXPECT_EQ(Call(SYS_rename, {}, {root_ + "/new.txt", root_ + "/d/moved.txt"}), 0);
  EXPECT_TRUE(Exists(root_ + "/d/moved.txt"));
  EXPECT_EQ(Call(SYS_unlink, {}, {root_ + "/d/moved.txt"}), 0);
  EXPECT_EQ(Call(SYS_rmdir, {}, {root_ + "/d/"}), 0);
  EXPECT_EQ(Call(SYS_stat, {}, {root_ + "/missing"}), -ENOENT);  // the kernel's answer
  // A directory descriptor beneath the root, and a path relative to it.
  const int64_t dir = OpenAt(root_, O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dir, 3);
  EXPECT_GE(OpenAt("in.txt", O_RDONLY, static_cast<int>(dir)), 3);
  EXPECT_EQ(refused(), 0u);
}

TEST_F(SandboxTest, OutsideTheRootNothingChanges) {
  const std::string pub = top_ + "/public.txt";
  EXPECT_GE(OpenAt(pub, O_RDONLY), 3);  // every user may read it
  EXPECT_EQ(OpenAt(pub, O_WRONLY), -EACCES);
  EXPECT_EQ(OpenAt(pub, O_RDONLY | O_TRUNC), -EACCES);
  EXPECT_EQ(OpenAt(top_ + "/created.txt", O_WRONLY | O_CREAT), -EACCES);
  EXPECT_EQ(Call(SYS_unlink, {}, {pub}), -EACCES);
  EXPECT_EQ(Call(SYS_mkdir, {0, 0755}, {top_ + "/d"}), -EACCES);
  EXPECT_EQ(Call(SYS_rename, {}, {root_ + "/in.txt", top_ + "/stolen.txt"}), -EACCES);
  EXPECT_EQ(Call(SYS_rename, {}, {pub, root_ + "/pub.txt"}), -EACCES);
  EXPECT_EQ(Call(SYS_access, {0, W_OK}, {pub}), -EACCES);
  // Read-only descriptors of files outside cannot change them either.
  const int64_t fd = OpenAt(pub, O_RDONLY);
  ASSERT_GE(fd, 3);
  EXPECT_EQ(Call(SYS_fchmod, {static_cast<uint64_t>(fd), 0666}), -EACCES);
  EXPECT_EQ(Read(pub), "public\n");
  EXPECT_FALSE(Exists(top_ + "/created.txt"));
  EXPECT_FALSE(Exists(top_ + "/stolen.txt"));
  EXPECT_FALSE(Exists(top_ + "/d"));
  EXPECT_TRUE(Exists(root_ + "/in.txt"));
  struct stat st;
  ASSERT_EQ(stat(pub.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(refused(), 9u);
}

TEST_F(SandboxTest, OutsideTheRootOnlyWhatEveryUserMayRead) {
  EXPECT_EQ(OpenAt(top_ + "/private.txt", O_RDONLY), -EACCES);  // this process may; others not
  EXPECT_GE(OpenAt("/etc/passwd", O_RDONLY), 3);
  EXPECT_EQ(Call(SYS_stat, {}, {"/usr/bin/env"}), 0);
  uint64_t want = 1;
  if (Exists("/etc/shadow")) {
    EXPECT_EQ(OpenAt("/etc/shadow", O_RDONLY), -EACCES);
    ++want;
  }
  EXPECT_EQ(refused(), want);
}

TEST_F(SandboxTest, ProcSysAndDevAreNeverReached) {
  for (const char* path : {"/proc/self/mem", "/proc/self/status", "/proc/1/environ",
                           "/sys/kernel/mm", "/dev/null", "/dev/zero"}) {
    SCOPED_TRACE(path);
    EXPECT_EQ(OpenAt(path, O_RDONLY), -EACCES);
  }
  EXPECT_EQ(Call(SYS_stat, {}, {"/proc/self/exe"}), -EACCES);
  EXPECT_EQ(Call(SYS_readlink, {0, 1, 64}, {"/proc/self/exe"}), -EACCES);
  EXPECT_EQ(Call(SYS_access, {0, R_OK}, {"/dev/null"}), -EACCES);
  // Not even with the whole file system as the root.
  Open("/");
  EXPECT_EQ(OpenAt("/proc/self/mem", O_RDWR), -EACCES);
  EXPECT_EQ(OpenAt("/dev/null", O_WRONLY), -EACCES);
  EXPECT_GE(OpenAt(root_ + "/in.txt", O_RDONLY), 3);
  // A root inside them is refused outright.
  EXPECT_FALSE(Sandbox::Open("/proc/self").ok());
}

TEST_F(SandboxTest, NeitherDotDotNorALinkLeadsOutOfTheRoot) {
  const std::string pub = top_ + "/public.txt";
  // The same readable file: by its own path (outside: read only) it is served...
  EXPECT_GE(OpenAt(pub, O_RDONLY), 3);
  // ...but not as a path beneath the root that climbs out, nor through a link in the root.
  EXPECT_EQ(OpenAt(root_ + "/../public.txt", O_RDONLY), -EACCES);
  EXPECT_EQ(OpenAt(root_ + "/link-out", O_RDONLY), -EACCES);
  EXPECT_EQ(OpenAt(root_ + "/link-out", O_WRONLY | O_TRUNC), -EACCES);
  EXPECT_EQ(OpenAt(root_ + "/abs-link", O_RDONLY), -EACCES);
  EXPECT_EQ(Call(SYS_stat, {}, {root_ + "/link-out"}), -EACCES);
  EXPECT_EQ(Call(SYS_lstat, {}, {root_ + "/link-out"}), 0);  // the link itself is in the root
  const int64_t dir = OpenAt(root_, O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dir, 3);
  EXPECT_EQ(OpenAt("../public.txt", O_RDONLY, static_cast<int>(dir)), -EACCES);
  EXPECT_EQ(Call(SYS_renameat, {static_cast<uint64_t>(dir), 0, static_cast<uint64_t>(dir)},
                 {"in.txt", "../moved.txt"}),
            -EACCES);
  EXPECT_EQ(Call(SYS_unlinkat, {static_cast<uint64_t>(dir), 0, 0}, {"../public.txt"}), -EACCES);
  EXPECT_EQ(Read(pub), "public\n");
  EXPECT_TRUE(Exists(pub));
  EXPECT_TRUE(Exists(root_ + "/in.txt"));
  EXPECT_EQ(refused(), 8u);
}

TEST_F(SandboxTest, AFifoIsRefusedNotWaitedOn) {
  EXPECT_EQ(OpenAt(root_ + "/fifo", O_RDONLY), -EACCES);
  EXPECT_EQ(OpenAt(root_ + "/fifo", O_WRONLY), -EACCES);  // would block without a reader
  EXPECT_EQ(Call(SYS_stat, {}, {root_ + "/fifo"}), 0);    // its metadata is the root's
}

}  // namespace
}  // namespace vigil::run
