// System call interception of unmodified Debian programs (vigil-run's core): calls answered by
// the supervisor never run in the program, executed calls do, input bytes written by the
// supervisor are what the program reads, injected errors reach it, and bad requests, missing
// programs and dying programs give clear errors.
#include "vigil/run/intercept.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <string>

namespace vigil::run {
namespace {

// A pipe whose read end never blocks, to see what a program really wrote.
struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() {
    EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
  }
  ~Pipe() {
    for (int fd : fds)
      if (fd >= 0) close(fd);
  }
  std::string Drain() {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }
};

// Runs the program to its end, handing every stop to `on_stop`; returns the wait status.
int RunToEnd(InterceptedProcess& p, const std::function<void(const SyscallStop&)>& on_stop) {
  for (;;) {
    auto next = p.Next(10000);
    EXPECT_TRUE(next.ok()) << next.status().ToString();
    if (!next.ok() || !next->has_value()) break;
    on_stop(**next);
  }
  return p.wait_status();
}

TEST(InterceptTest, AnsweredWriteNeverRunsInTheProgram) {
  Pipe out;
  auto p = InterceptedProcess::Spawn(
      {.argv = {"echo", "hello", "vigil"}, .intercept = {SYS_write}, .stdout_fd = out.fds[1]});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  std::string captured;
  int writes = 0;
  int status = RunToEnd(*p, [&](const SyscallStop& s) {
    ASSERT_EQ(s.nr, SYS_write);
    ++writes;
    EXPECT_EQ(s.args[0], 1u);
    auto bytes = p->ReadMemory(s, s.args[1], s.args[2]);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    captured.append(bytes->begin(), bytes->end());
    ASSERT_TRUE(p->Return(s, static_cast<int64_t>(s.args[2])).ok());
  });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_GE(writes, 1);
  EXPECT_EQ(captured, "hello vigil\n");
  EXPECT_EQ(out.Drain(), "")
      << "the write was answered by the supervisor: nothing may reach stdout";
}

TEST(InterceptTest, ExecutedWriteRunsInTheProgram) {
  Pipe out;
  auto p = InterceptedProcess::Spawn(
      {.argv = {"echo", "hello", "vigil"}, .intercept = {SYS_write}, .stdout_fd = out.fds[1]});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  int status = RunToEnd(*p, [&](const SyscallStop& s) { ASSERT_TRUE(p->Execute(s).ok()); });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(out.Drain(), "hello vigil\n");
}

TEST(InterceptTest, InputBytesWrittenIntoTheProgramAreWhatItReads) {
  Pipe out;
  // stdin is /dev/null: whatever the program reads from fd 0 comes from the supervisor.
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(devnull, 0);
  auto p = InterceptedProcess::Spawn(
      {.argv = {"cat"}, .intercept = {SYS_read}, .stdin_fd = devnull, .stdout_fd = out.fds[1]});
  close(devnull);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const std::string input = "bytes from the voter\n";
  bool delivered = false;
  int status = RunToEnd(*p, [&](const SyscallStop& s) {
    if (s.args[0] != 0) {  // the loader reading libraries: not ours
      ASSERT_TRUE(p->Execute(s).ok());
      return;
    }
    if (delivered) {
      ASSERT_TRUE(p->Return(s, 0).ok());  // end of input
      return;
    }
    ASSERT_GE(s.args[2], input.size());
    std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(input.data()), input.size());
    ASSERT_TRUE(p->WriteMemory(s, s.args[1], bytes).ok());
    ASSERT_TRUE(p->Return(s, static_cast<int64_t>(input.size())).ok());
    delivered = true;
  });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(delivered);
  EXPECT_EQ(out.Drain(), input);
}

TEST(InterceptTest, InjectedErrorReachesTheProgram) {
  char path[] = "/tmp/vigil-intercept-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "secret\n", 7), 7);
  close(fd);
  Pipe out, err;
  auto p = InterceptedProcess::Spawn({.argv = {"cat", path},
                                      .intercept = {SYS_openat},
                                      .stdout_fd = out.fds[1],
                                      .stderr_fd = err.fds[1]});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  int refused = 0;
  int status = RunToEnd(*p, [&](const SyscallStop& s) {
    // The path argument, read up to the end of its page (the next page may be unmapped).
    uint64_t addr = s.args[1];
    size_t len = 4096 - addr % 4096;
    auto bytes = p->ReadMemory(s, addr, len);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    std::string name(reinterpret_cast<const char*>(bytes->data()),
                     strnlen(reinterpret_cast<const char*>(bytes->data()), len));
    if (name == path) {
      ++refused;
      ASSERT_TRUE(p->Return(s, 0, EACCES).ok());
    } else {
      ASSERT_TRUE(p->Execute(s).ok());
    }
  });
  unlink(path);
  EXPECT_EQ(refused, 1);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_EQ(out.Drain(), "");
  EXPECT_NE(err.Drain().find("Permission denied"), std::string::npos);
}

TEST(InterceptTest, AProgramKilledWhileStoppedCannotBeAnswered) {
  Pipe out;
  auto p = InterceptedProcess::Spawn(
      {.argv = {"echo", "x"}, .intercept = {SYS_write}, .stdout_fd = out.fds[1]});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto stop = p->Next(10000);
  ASSERT_TRUE(stop.ok() && stop->has_value()) << stop.status().ToString();
  ASSERT_EQ(kill(p->pid(), SIGKILL), 0);
  // Reaping is what the supervisor sees; afterwards the stop is gone.
  auto next = p->Next(10000);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_FALSE(next->has_value());
  EXPECT_TRUE(WIFSIGNALED(p->wait_status()));
  Status answered = p->Return(**stop, 2);
  EXPECT_FALSE(answered.ok());
  EXPECT_NE(answered.ToString().find("write"), std::string::npos) << answered.ToString();
  auto read = p->ReadMemory(**stop, (*stop)->args[1], 2);
  EXPECT_FALSE(read.ok());
  EXPECT_EQ(out.Drain(), "");
}

TEST(InterceptTest, BadRequestsAreRefusedWithTheirReason) {
  auto missing = InterceptedProcess::Spawn(
      {.argv = {"/nonexistent/vigil-test-program"}, .intercept = {SYS_write}});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().ToString().find("cannot execute '/nonexistent/vigil-test-program'"),
            std::string::npos)
      << missing.status().ToString();
  EXPECT_NE(missing.status().ToString().find("No such file"), std::string::npos)
      << missing.status().ToString();

  auto exec = InterceptedProcess::Spawn({.argv = {"true"}, .intercept = {SYS_execve}});
  ASSERT_FALSE(exec.ok());
  EXPECT_NE(exec.status().ToString().find("execve cannot be intercepted"), std::string::npos)
      << exec.status().ToString();

  auto empty = InterceptedProcess::Spawn({.argv = {}, .intercept = {}});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().ToString().find("empty argv"), std::string::npos);

  auto huge = InterceptedProcess::Spawn({.argv = {"echo", "y"}, .intercept = {SYS_write}});
  ASSERT_TRUE(huge.ok());
  auto stop = huge->Next(10000);
  ASSERT_TRUE(stop.ok() && stop->has_value());
  auto read = huge->ReadMemory(**stop, (*stop)->args[1], InterceptedProcess::kMaxTransfer + 1);
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.status().ToString().find("more than the"), std::string::npos)
      << read.status().ToString();
  auto unmapped = huge->ReadMemory(**stop, 8, 16);  // page 0 is never mapped
  ASSERT_FALSE(unmapped.ok());
  EXPECT_NE(unmapped.status().ToString().find("at 0x8"), std::string::npos)
      << unmapped.status().ToString();
}

TEST(InterceptTest, TheProgramInheritsNoSupervisorDescriptor) {
  Pipe out;
  auto p = InterceptedProcess::Spawn(
      {.argv = {"ls", "/proc/self/fd"}, .intercept = {SYS_write}, .stdout_fd = out.fds[1]});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  int status = RunToEnd(*p, [&](const SyscallStop& s) { ASSERT_TRUE(p->Execute(s).ok()); });
  ASSERT_TRUE(WIFEXITED(status));
  // stdin, stdout, stderr and the directory ls itself opened: no listener, no socket.
  EXPECT_EQ(out.Drain(), "0\n1\n2\n3\n");
}

TEST(InterceptTest, SyscallNames) {
  EXPECT_EQ(SyscallName(SYS_write), "write");
  EXPECT_EQ(SyscallName(SYS_openat), "openat");
  EXPECT_EQ(SyscallName(99999), "syscall 99999");
}

}  // namespace
}  // namespace vigil::run
