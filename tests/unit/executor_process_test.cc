// vigil-run's executor process (ExecutorProcess starting vigil-executor; confine.h): the agreed
// calls run in a separate process that gave up root's identity, every capability, new privileges,
// file-system changes outside its root (Landlock) and every system call it does not make
// (seccomp); its calls act as in-process ones do; a dead executor fails every later call with
// how it ended; the headers on its socket are checked before anything they announce is read.
#include "vigil/run/executor_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "vigil/run/confine.h"
#include "vigil/run/executor_wire.h"
#include "vigil/run/syscalls.h"

namespace vigil::run {
namespace {

std::string Read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// The "Key:\tvalue" lines of /proc/PID/status.
std::map<std::string, std::string> ProcStatus(pid_t pid) {
  std::map<std::string, std::string> m;
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const size_t value = line.find_first_not_of(" \t", colon + 1);
    m[line.substr(0, colon)] = value == std::string::npos ? "" : line.substr(value);
  }
  return m;
}

bool HaveLandlock() {
  return syscall(SYS_landlock_create_ruleset, nullptr, 0, 1U /* VERSION */) >= 1;
}

uid_t Nobody() {
  const passwd* pw = getpwnam("nobody");
  return pw != nullptr ? pw->pw_uid : 65534;
}

class ExecutorProcessTest : public ::testing::Test {
 protected:
  // top/ (0755): root/ (0755, the sandbox's root; when the test runs as root, owned by root, so
  // the executor runs as nobody, who may not create files in it: root/shared/ is nobody's).
  void SetUp() override {
    char t[] = "/tmp/vigil-executor-test-XXXXXX";
    ASSERT_NE(mkdtemp(t), nullptr);
    top_ = t;
    root_ = top_ + "/root";
    work_ = root_ + "/shared";
    ASSERT_EQ(chmod(top_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(work_.c_str(), 0755), 0);
    if (geteuid() == 0) {
      ASSERT_EQ(chown(work_.c_str(), Nobody(), Nobody()), 0);
    }
  }
  void TearDown() override {
    p_.reset();
    ASSERT_EQ(std::system(("rm -rf " + top_).c_str()), 0);
  }
  Status Start(const std::string& root, const std::string& user = "") {
    p_.reset();
    auto p = ExecutorProcess::Start({.root = root, .user = user});
    if (!p.ok()) return p.status();
    p_ = std::move(*p);
    return Status::Ok();
  }
  // An agreed call with its arguments and blob (paths NUL-terminated, or a write's bytes).
  Result<int64_t> Call(int nr, std::initializer_list<uint64_t> args, const std::string& blob = "") {
    SyscallRecord r;
    size_t i = 0;
    for (uint64_t a : args) r.args[i++] = a;
    r.blob_bytes = static_cast<uint32_t>(blob.size());
    std::vector<std::byte> rec(kSyscallRecordBytes + blob.size());
    std::memcpy(rec.data(), &r, sizeof(r));
    std::memcpy(rec.data() + kSyscallRecordBytes, blob.data(), blob.size());
    VIGIL_ASSIGN_OR_RETURN(auto o, p_->Execute(static_cast<uint64_t>(nr), 0, rec, {}, result_));
    result_bytes_ = o.bytes;
    return o.value;
  }
  Result<int64_t> Open(const std::string& path, int flags) {
    return Call(SYS_openat,
                {static_cast<uint64_t>(AT_FDCWD), 0, static_cast<uint64_t>(flags), 0644},
                path + '\0');
  }

  std::string top_, root_, work_;
  std::unique_ptr<ExecutorProcess> p_;
  std::byte result_[256];
  size_t result_bytes_ = 0;
};

TEST_F(ExecutorProcessTest, TheExecutorGivesUpWhatItDoesNotNeed) {
  ASSERT_TRUE(Start(root_).ok());
  const std::string& c = p_->confinement();
  EXPECT_NE(c.find("no capabilities, no new privileges, not dumpable"), std::string::npos) << c;
  EXPECT_NE(c.find("seccomp allow-list"), std::string::npos) << c;
  if (HaveLandlock()) {
    EXPECT_NE(c.find("changes only beneath " + root_), std::string::npos) << c;
  }
  auto st = ProcStatus(p_->pid());
  EXPECT_EQ(st["NoNewPrivs"], "1");
  EXPECT_EQ(st["Seccomp"], "2");  // a filter
  for (const char* caps : {"CapInh", "CapPrm", "CapEff", "CapAmb"}) {
    EXPECT_EQ(st[caps], "0000000000000000") << caps;
  }
  if (geteuid() == 0) {
    // The root directory is root's: nobody, in every uid and gid, and no bounding set left.
    const std::string n = std::to_string(Nobody());
    EXPECT_EQ(st["Uid"], n + "\t" + n + "\t" + n + "\t" + n);
    EXPECT_EQ(st["Groups"], "");
    EXPECT_EQ(st["CapBnd"], "0000000000000000");
    EXPECT_NE(c.find("(nobody)"), std::string::npos) << c;
    // Open in it: the job's stdin, stdout and stderr, its socket, and the sandbox's root and /
    // (O_PATH). Nothing of the test's (or vigil-run's) own.
    std::multiset<std::string> fds;
    for (auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(p_->pid()) + "/fd")) {
      const int fd = std::stoi(e.path().filename().string());
      const std::string target = std::filesystem::read_symlink(e.path()).string();
      fds.insert(fd <= 2 ? "std" : target.rfind("socket:", 0) == 0 ? "socket" : target);
    }
    EXPECT_EQ(fds, (std::multiset<std::string>{"std", "std", "std", "socket", "/", root_}));
    // A root directory owned by a user: that user.
    ASSERT_TRUE(Start(work_).ok());
    EXPECT_EQ(ProcStatus(p_->pid())["Uid"], n + "\t" + n + "\t" + n + "\t" + n);
  } else {
    EXPECT_EQ(ProcStatus(p_->pid())["Uid"].substr(0, std::to_string(getuid()).size() + 1),
              std::to_string(getuid()) + "\t");
  }
}

TEST_F(ExecutorProcessTest, CallsActAsInProcessAndAsTheExecutorsUser) {
  ASSERT_TRUE(Start(root_).ok());
  const std::string f = work_ + "/out.txt";
  auto fd = Open(f, O_WRONLY | O_CREAT | O_TRUNC);
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  ASSERT_GE(*fd, 3);
  EXPECT_EQ(*Call(SYS_write, {static_cast<uint64_t>(*fd), 0, 6}, "hello\n"), 6);
  EXPECT_EQ(*Call(SYS_close, {static_cast<uint64_t>(*fd)}), 0);
  EXPECT_EQ(Read(f), "hello\n");
  struct stat st {};
  ASSERT_EQ(stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, geteuid() == 0 ? Nobody() : geteuid());
  // Read back: the result bytes travel back over the socket.
  auto rfd = Open(f, O_RDONLY);
  ASSERT_TRUE(rfd.ok());
  EXPECT_EQ(*Call(SYS_read, {static_cast<uint64_t>(*rfd), 0x1000, sizeof(result_)}), 6);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(result_), result_bytes_), "hello\n");
  // Refusals are the sandbox's, counted over there and reported here.
  EXPECT_EQ(*Open("/proc/self/mem", O_RDONLY), -EACCES);
  EXPECT_EQ(*Open(top_ + "/outside.txt", O_WRONLY | O_CREAT), -EACCES);
  EXPECT_EQ(p_->refused(), 2u);
  EXPECT_EQ(p_->calls(), 7u);
  EXPECT_EQ(p_->journal_entries(), 1u);
  // The job failed: its file changes are undone.
  EXPECT_TRUE(p_->Finish(false).ok());
  EXPECT_FALSE(std::filesystem::exists(f));
}

TEST_F(ExecutorProcessTest, ADeadExecutorFailsEveryLaterCallWithHowItEnded) {
  ASSERT_TRUE(Start(root_).ok());
  ASSERT_TRUE(Call(SYS_getpid, {}).ok());
  ASSERT_EQ(kill(p_->pid(), SIGKILL), 0);
  auto r = Call(SYS_getpid, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("killed by signal 9"), std::string::npos)
      << r.status().ToString();
  EXPECT_EQ(p_->Finish(true), r.status());  // and the same from then on
  EXPECT_EQ(p_->Rollback(), r.status());
}

TEST_F(ExecutorProcessTest, OnlyRootChoosesTheUserAndTheUserMustBeAbleToUseTheRoot) {
  if (geteuid() != 0) {
    Status st = Start(root_, "nobody");
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
    EXPECT_NE(st.message().find("only a vigil-run started as root"), std::string::npos) << st;
    return;
  }
  Status st = Start(root_, "no-such-user-of-vigil");
  EXPECT_EQ(st.code(), StatusCode::kNotFound) << st.ToString();
  EXPECT_NE(st.message().find("--executor-user 'no-such-user-of-vigil'"), std::string::npos) << st;
  ASSERT_EQ(chmod(root_.c_str(), 0700), 0);  // root's own: nobody may not enter it
  st = Start(root_);
  EXPECT_NE(st.message().find("--root: the executor (uid " + std::to_string(Nobody())),
            std::string::npos)
      << st;
  EXPECT_NE(st.message().find("--executor-user"), std::string::npos) << st;
  // Named explicitly, root keeps its uid, not its capabilities.
  ASSERT_TRUE(Start(root_, "root").ok());
  EXPECT_EQ(ProcStatus(p_->pid())["CapEff"], "0000000000000000");
}

// Runs `body` in a child process and returns its exit status (or 128 + signal).
int InChild(const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid == 0) _exit(body());
  int ws = 0;
  waitpid(pid, &ws, 0);
  return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

TEST_F(ExecutorProcessTest, SystemCallsOutsideTheAllowListEndTheExecutor) {
  EXPECT_EQ(InChild([] {
              if (!RestrictSystemCalls().ok()) return 1;
              socket(AF_INET, SOCK_STREAM, 0);  // never returns
              return 0;
            }),
            128 + SIGSYS);
  EXPECT_EQ(InChild([] {
              if (!RestrictSystemCalls().ok()) return 1;
              int pending = 0;
              ioctl(0, FIONREAD, &pending);  // an ioctl request it does not answer
              return 0;
            }),
            128 + SIGSYS);
  EXPECT_EQ(InChild([] {
              if (!RestrictSystemCalls().ok()) return 1;
              struct termios t {};
              ioctl(0, TCGETS, &t);                                 // allowed, whatever stdin is
              return getpid() > 0 && write(-1, "", 0) < 0 ? 0 : 2;  // allowed calls work
            }),
            0);
}

TEST_F(ExecutorProcessTest, LandlockConfinesChangesToTheRoot) {
  if (!HaveLandlock()) GTEST_SKIP() << "this kernel has no Landlock";
  const std::string inside = work_ + "/in.txt", outside = top_ + "/out.txt";
  EXPECT_EQ(InChild([&] {
              if (!RestrictFileSystem({work_}).ok()) return 1;
              const int in = open(inside.c_str(), O_WRONLY | O_CREAT, 0644);
              const int out = open(outside.c_str(), O_WRONLY | O_CREAT, 0644);
              const int read_only = open("/etc/hostname", O_RDONLY);
              return in >= 0 && out < 0 && errno == EACCES && read_only >= 0 ? 0 : 2;
            }),
            0);
  EXPECT_TRUE(std::filesystem::exists(inside));
  EXPECT_FALSE(std::filesystem::exists(outside));
}

TEST(ExecutorWireTest, HeadersAreCheckedBeforeWhatTheyAnnounce) {
  auto bytes = [](const auto& h) { return std::as_bytes(std::span(&h, 1)); };
  wire::Reply r;
  r.result_bytes = 100;
  EXPECT_TRUE(wire::DecodeReply(bytes(r), 100).ok());
  EXPECT_NE(wire::DecodeReply(bytes(r), 99).status().message().find("result_bytes 100"),
            std::string::npos);
  r.code = 3;  // an error carries a message and no result bytes
  EXPECT_EQ(wire::DecodeReply(bytes(r), 100).status().code(), StatusCode::kDataLoss);
  r = wire::Reply{};
  r.message_bytes = wire::kMaxMessageBytes + 1;
  EXPECT_EQ(wire::DecodeReply(bytes(r), 0).status().code(), StatusCode::kDataLoss);
  r = wire::Reply{};
  r.code = 99;
  EXPECT_EQ(wire::DecodeReply(bytes(r), 0).status().code(), StatusCode::kDataLoss);
  r = wire::Reply{};
  r.magic = 1;
  EXPECT_NE(wire::DecodeReply(bytes(r), 0).status().message().find("magic"), std::string::npos);
  EXPECT_FALSE(wire::DecodeReply(bytes(r).first(10), 0).ok());

  wire::Request q;
  q.op = static_cast<uint32_t>(wire::Op::kExecute);
  q.record_bytes = wire::kMaxRecordBytes + 1;
  EXPECT_NE(wire::DecodeRequest(bytes(q)).status().message().find("record_bytes"),
            std::string::npos);
  q = wire::Request{};
  q.op = static_cast<uint32_t>(wire::Op::kRollback);
  EXPECT_TRUE(wire::DecodeRequest(bytes(q)).ok());
  q.nr = 1;  // an operation that carries no call
  EXPECT_FALSE(wire::DecodeRequest(bytes(q)).ok());
  q = wire::Request{};
  q.op = 77;
  EXPECT_NE(wire::DecodeRequest(bytes(q)).status().message().find("unknown operation 77"),
            std::string::npos);
}

}  // namespace
}  // namespace vigil::run
