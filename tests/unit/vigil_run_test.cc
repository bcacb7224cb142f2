// vigil-run end to end on the fake transport: unmodified Debian programs (sha256sum, cksum, sort,
// gzip) run as replicas (threads of this process hosting real child processes under seccomp
// interception) whose every system call is voted on by a Group whose agreed calls a HostExecutor
// carries out in vigil-executor, the confined helper process vigil-run starts. Their
// stdout and output files must be byte-identical to a plain run of the same program, for every
// mode and signalling method; injected memory bit flips must be detected (DMR, rolled back) or
// out-voted (TMR, replaced); an unsupported call must stop the run with a message naming it.
// The same over real verbs (vigil-run processes on rxe) is tests/rxe/vigil_run_rxe_test.sh.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "replication_params.h"
#include "vigil/run/executor.h"
#include "vigil/run/executor_process.h"
#include "vigil/run/program.h"
#include "vigil/run/syscalls.h"
#include "vigil/testing/thread_launcher.h"
#include "vigil/transport/bootstrap.h"
#include "vigil/transport/fake.h"

extern char** environ;

namespace vigil::run {
namespace {

using namespace std::chrono_literals;

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/vigil-run-test-XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() { std::system(("rm -rf " + path).c_str()); }
  std::string Write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path + "/" + name, std::ios::binary) << bytes;
    return path + "/" + name;
  }
};

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string ReadFd(int fd) {
  std::string s;
  char buf[65536];
  ssize_t n;
  lseek(fd, 0, SEEK_SET);
  while ((n = read(fd, buf, sizeof(buf))) > 0) s.append(buf, static_cast<size_t>(n));
  return s;
}

int TempFd(const std::string& bytes = "") {
  FILE* f = std::tmpfile();
  int fd = dup(fileno(f));
  std::fclose(f);
  if (!bytes.empty()) {
    EXPECT_EQ(write(fd, bytes.data(), bytes.size()), ssize_t(bytes.size()));
  }
  lseek(fd, 0, SEEK_SET);
  return fd;
}

// The environment every run gets (native and replicated): this one, in the C locale.
std::vector<std::string> TestEnv() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string(*e).rfind("LC_ALL=", 0) != 0) env.emplace_back(*e);
  }
  env.emplace_back("LC_ALL=C");
  return env;
}

struct Native {
  int exit_code = -1;
  std::string out, err;
};

// The program run plainly, as the reference.
Native RunNative(const std::vector<std::string>& argv, const std::string& input) {
  const int in = TempFd(input), out = TempFd(), err = TempFd();
  std::vector<std::string> env = TestEnv();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> a, e;
    for (auto& s : const_cast<std::vector<std::string>&>(argv)) a.push_back(s.data());
    for (auto& s : env) e.push_back(s.data());
    a.push_back(nullptr);
    e.push_back(nullptr);
    execvpe(a[0], a.data(), e.data());
    _exit(127);
  }
  int ws = 0;
  waitpid(pid, &ws, 0);
  Native n{WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws), ReadFd(out), ReadFd(err)};
  for (int fd : {in, out, err}) close(fd);
  return n;
}

struct Job {
  voter::Mode mode = voter::Mode::kTmr;
  channel::Method method = channel::Method::kPolling;
  std::vector<std::string> argv = {};
  std::string input = {};
  int flip_replica = -1;  // replica whose first incarnation gets the fault
  uint64_t fault_at = 0;
  ExecOptions::Fault fault = ExecOptions::Fault::kData;
  std::string flip_register = {};
  // When set: each call the voter executed, as (system call number, first argument).
  std::vector<std::pair<uint64_t, uint64_t>>* calls_seen = nullptr;
  // The sandbox's root: the tests' files are in TempDirs under /tmp.
  std::string root = "/tmp";
  // The executor's user when the tests run as root (--executor-user): root's uid without its
  // capabilities, as the tests' files are root's; "" is vigil-run's default (ExecutorProcessTest
  // checks it: the root's owner, or nobody).
  std::string executor_user = geteuid() == 0 ? "root" : "";
  // How long the voter waits for a replica's next event (a hung one is replaced after it).
  std::chrono::milliseconds deadline = 20s;
};

// Passes every call on to the executor and notes which it was.
class RecordingExecutor final : public voter::SyscallExecutor {
 public:
  RecordingExecutor(voter::SyscallExecutor& e, std::vector<std::pair<uint64_t, uint64_t>>* seen)
      : e_(e), seen_(seen) {}
  Result<std::optional<Aside>> BytesAside(std::span<const std::byte> record) override {
    return e_.BytesAside(record);
  }
  Result<Outcome> Execute(uint64_t nr, uint64_t piece, std::span<const std::byte> record,
                          std::span<const std::byte> aside, std::span<std::byte> result) override {
    if (seen_ != nullptr && piece == 0 && record.size() >= kSyscallRecordBytes) {
      SyscallRecord r;
      std::memcpy(&r, record.data(), sizeof(r));
      seen_->emplace_back(nr, r.args[0]);
    }
    return e_.Execute(nr, piece, record, aside, result);
  }
  Status Checkpoint() override { return e_.Checkpoint(); }
  Status Rollback() override { return e_.Rollback(); }

 private:
  voter::SyscallExecutor& e_;
  std::vector<std::pair<uint64_t, uint64_t>>* seen_;
};

struct Outcome {
  voter::GroupReport report;
  std::string out, err;
  uint64_t calls = 0;
  Status finish;         // ExecutorProcess::Finish, as vigil-run calls it when the job ends
  uint64_t refused = 0;  // accesses the sandbox refused
};

Result<Outcome> RunReplicated(const Job& j) {
  auto fabric = std::make_shared<transport::FakeFabric>();
  transport::FakeTransport voter_t(fabric, "voter"), replica_t(fabric, "worker");
  transport::BootstrapServer server(voter_t, "voter", transport::ConnectionOptions{});
  VIGIL_RETURN_IF_ERROR(server.Start("127.0.0.1:0"));
  voter::GroupOptions g;
  g.mode = j.mode;
  g.channel.method = j.method;
  g.deadline = j.deadline;
  g.replace_after = 1;  // as vigil-run: an outvoted process is replaced
  const int in = TempFd(j.input), out = TempFd(), err = TempFd();
  Outcome o;
  {
    testing::ThreadLauncher launcher(
        replica_t, fmt::format("127.0.0.1:{}", server.port()), g.channel, 5s,
        [&j](const voter::LaunchSpec& s, std::shared_ptr<std::atomic<bool>> killed)
            -> Result<std::unique_ptr<replica::Program>> {
          const bool flip = s.replica == j.flip_replica && s.incarnation == 0;
          return std::unique_ptr<replica::Program>(
              std::make_unique<ExecProgram>(ExecOptions{.argv = j.argv,
                                                        .env = TestEnv(),
                                                        .fault_at = flip ? j.fault_at : 0,
                                                        .flip_bit = 5,
                                                        .fault = j.fault,
                                                        .flip_register = j.flip_register,
                                                        .killed = killed}));
        });
    Result<std::unique_ptr<ExecutorProcess>> started =
        ExecutorProcess::Start({.root = j.root,
                                .user = j.executor_user,
                                .stdin_fd = in,
                                .stdout_fd = out,
                                .stderr_fd = err});
    if (!started.ok()) return started.status();
    ExecutorProcess& executor = **started;
    RecordingExecutor recording(executor, j.calls_seen);
    voter::Group group(g, voter_t, server, launcher, nullptr, nullptr);
    group.set_syscall_executor(&recording);
    Result<voter::GroupReport> r = group.Run();
    o.finish = executor.Finish(r.ok() && r->completed);
    if (!r.ok()) return r.status();
    o.report = *r;
    o.calls = executor.calls();
    o.refused = executor.refused();
  }
  o.out = ReadFd(out);
  o.err = ReadFd(err);
  for (int fd : {in, out, err}) close(fd);
  server.Shutdown();
  return o;
}

// Deterministic text: 20000 lines of pseudo-random words (sort has something to do, gzip
// something to compress).
std::string TestText() {
  std::string s;
  uint64_t x = 0x9e3779b97f4a7c15;
  for (int i = 0; i < 20000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s += fmt::format("{:x} line {} {}\n", x % 100000, i, x % 7 == 0 ? "seven" : "other");
  }
  return s;
}

class EveryModeAndMethod : public ::testing::TestWithParam<testing::ModeAndMethod> {};

TEST_P(EveryModeAndMethod, ProgramsGiveTheOutputOfAPlainRun) {
  const auto [mode, method] = GetParam();
  TempDir dir;
  const std::string text = TestText();
  const std::string file = dir.Write("input.txt", text);
  const std::vector<std::pair<std::vector<std::string>, std::string>> jobs = {
      {{"sha256sum"}, text},                  // stdin
      {{"cksum", file}, ""},                  // a file opened by the program
      {{"sort", "--parallel=1", file}, ""},   // reads it all, writes it sorted
      {{"gzip", "-c", "-n", "-6", file}, ""}  // binary output in large writes
  };
  for (const auto& [argv, input] : jobs) {
    SCOPED_TRACE(argv[0]);
    Native want = RunNative(argv, input);
    ASSERT_EQ(want.exit_code, 0) << want.err;
    ASSERT_FALSE(want.out.empty());
    auto got = RunReplicated({.mode = mode, .method = method, .argv = argv, .input = input});
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(got->report.completed) << got->report.failure;
    EXPECT_EQ(got->report.exit_code, 0);
    EXPECT_EQ(got->out.size(), want.out.size());
    EXPECT_TRUE(got->out == want.out) << "replicated stdout differs from the plain run's";
    EXPECT_EQ(got->err, want.err);
    EXPECT_EQ(got->report.mismatches, 0u);
    EXPECT_EQ(got->report.replacements, 0u);
    EXPECT_GT(got->calls, 20u);  // the loader's calls and the program's were voted
  }
}

INSTANTIATE_TEST_SUITE_P(Fake, EveryModeAndMethod, testing::EveryModeAndMethod(),
                         testing::ModeAndMethodName);

TEST(VigilRunTest, OutputFilesAreWrittenOnceAndEqualAPlainRun) {
  TempDir dir;
  const std::string file = dir.Write("input.txt", TestText());
  Native want = RunNative({"sort", "--parallel=1", "-o", dir.path + "/native.txt", file}, "");
  ASSERT_EQ(want.exit_code, 0) << want.err;
  auto got =
      RunReplicated({.argv = {"sort", "--parallel=1", "-o", dir.path + "/replicated.txt", file}});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  const std::string a = ReadFile(dir.path + "/native.txt"),
                    b = ReadFile(dir.path + "/replicated.txt");
  EXPECT_GT(a.size(), 100000u);
  EXPECT_TRUE(a == b) << "output file differs: " << a.size() << " vs " << b.size() << " bytes";
  EXPECT_TRUE(got->out.empty());
}

// The 1-based number (as the replica counts its calls) of the n-th call `nr` after call `after`
// whose first argument is at least `min_arg0`; 0 when there are fewer.
uint64_t NthCall(const std::vector<std::pair<uint64_t, uint64_t>>& seen, uint64_t nr, int n,
                 uint64_t after = 0, uint64_t min_arg0 = 0) {
  for (size_t i = after; i < seen.size(); ++i) {
    if (seen[i].first == nr && seen[i].second >= min_arg0 && --n == 0) return i + 1;
  }
  return 0;
}

TEST(VigilRunTest, DmrRollbackAfterATruncatingRewriteRestoresTheFileFirst) {
  TempDir dir;
  const std::string text = TestText();
  const std::string f = dir.Write("f.txt", text);
  ASSERT_EQ(RunNative({"sort", "--parallel=1", "-o", dir.path + "/want.txt", f}, "").exit_code, 0);
  const std::string want = ReadFile(dir.path + "/want.txt");
  const std::vector<std::string> argv = {"sort", "--parallel=1", "-o", f, f};
  // A run without faults says where sort truncates f (it opened f as its stdout) and then
  // writes it, 4 KiB at a time.
  std::vector<std::pair<uint64_t, uint64_t>> seen;
  auto clean = RunReplicated({.mode = voter::Mode::kDmr, .argv = argv, .calls_seen = &seen});
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  ASSERT_TRUE(ReadFile(f) == want);
  const uint64_t write = NthCall(seen, SYS_write, 2, NthCall(seen, SYS_ftruncate, 1));
  ASSERT_GT(write, 0u) << "no truncation followed by two writes";
  // Again on the unsorted file, with rdi flipped in replica 1 at the second write: by then f has
  // been truncated and holds the first 4 KiB of the output. The vote on the write sees the flip,
  // and the program is rolled back and runs again from its start: it must read f as it was.
  dir.Write("f.txt", text);
  auto got = RunReplicated({.mode = voter::Mode::kDmr,
                            .method = channel::Method::kNotify,
                            .argv = argv,
                            .flip_replica = 1,
                            .fault_at = write,
                            .fault = ExecOptions::Fault::kRegister,
                            .flip_register = "rdi"});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  EXPECT_EQ(got->report.mismatches, 1u);
  EXPECT_EQ(got->report.rollbacks, 1u);
  EXPECT_TRUE(got->finish.ok()) << got->finish.ToString();
  const std::string out = ReadFile(f);
  EXPECT_EQ(out.size(), want.size());
  EXPECT_TRUE(out == want) << "the rewritten file differs from a plain run's";
}

TEST(VigilRunTest, DmrRollbackAfterAPartialAppendAppendsOnce) {
  TempDir dir;
  const std::string text = TestText();
  const std::string f = dir.Write("log.txt", "the line that was there\n");
  const std::vector<std::string> argv = {"tee", "-a", f};
  std::vector<std::pair<uint64_t, uint64_t>> seen;
  auto clean =
      RunReplicated({.mode = voter::Mode::kDmr, .argv = argv, .input = text, .calls_seen = &seen});
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  ASSERT_TRUE(ReadFile(f) == "the line that was there\n" + text);
  const uint64_t first_write = NthCall(seen, SYS_write, 1, 0, 3);  // into the file (fd 3)
  ASSERT_GT(first_write, 0u);
  // The flip lands in the bytes of the first read after the first append: the next writes
  // differ, the vote sees it, and the program appends again from its start.
  dir.Write("log.txt", "the line that was there\n");
  auto got = RunReplicated({.mode = voter::Mode::kDmr,
                            .method = channel::Method::kPolling,
                            .argv = argv,
                            .input = text,
                            .flip_replica = 0,
                            .fault_at = first_write});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  EXPECT_EQ(got->report.mismatches, 1u);
  EXPECT_EQ(got->report.rollbacks, 1u);
  EXPECT_TRUE(got->out == text) << "stdout differs";
  const std::string log = ReadFile(f);
  EXPECT_EQ(log.size(), text.size() + 24);
  EXPECT_TRUE(log == "the line that was there\n" + text) << "the append is not there exactly once";
}

TEST(VigilRunTest, AFailedRunLeavesFilesAsTheyWereBeforeIt) {
  TempDir dir;
  const std::string f = dir.Write("f.txt", "before\n");
  // Changes two entries (shell built-ins), then makes a call vigil-run does not support.
  const std::string script =
      fmt::format("echo after > {0}/f.txt; echo new > {0}/g.txt; true | true", dir.path);
  auto got = RunReplicated({.mode = voter::Mode::kTmr, .argv = {"sh", "-c", script}});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_FALSE(got->report.completed);
  EXPECT_NE(got->report.failure.find("pipe"), std::string::npos) << got->report.failure;
  EXPECT_TRUE(got->finish.ok()) << got->finish.ToString();
  EXPECT_EQ(ReadFile(f), "before\n");
  EXPECT_NE(access((dir.path + "/g.txt").c_str(), F_OK), 0) << "a file it created is left";
}

TEST(VigilRunTest, ExitCodesAndErrorsPassThrough) {
  auto got = RunReplicated({.mode = voter::Mode::kDmr, .argv = {"cat", "/nonexistent/vigil"}});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  EXPECT_EQ(got->report.exit_code, 1);
  EXPECT_EQ(got->err, RunNative({"cat", "/nonexistent/vigil"}, "").err);
  EXPECT_NE(got->err.find("No such file"), std::string::npos) << got->err;
}

TEST(VigilRunTest, DmrDetectsAMemoryFlipAndReExecutesFromTheStart) {
  const std::string text = TestText();
  Native want = RunNative({"sha256sum"}, text);
  // The flip lands in the bytes of the first read after call 30: sha256sum hashes them, so the
  // digest it writes differs and the vote at that write detects it.
  auto got = RunReplicated({.mode = voter::Mode::kDmr,
                            .method = channel::Method::kNotify,
                            .argv = {"sha256sum"},
                            .input = text,
                            .flip_replica = 1,
                            .fault_at = 30});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  EXPECT_EQ(got->out, want.out);
  EXPECT_EQ(got->report.mismatches, 1u);
  EXPECT_EQ(got->report.rollbacks, 1u);
}

TEST(VigilRunTest, DmrDetectsAResultRegisterFlip) {
  const std::string text = TestText();
  Native want = RunNative({"sha256sum"}, text);
  // Bit 5 of the rax a call returns (a count, a descriptor, 0 for success) after call 34: the
  // program goes another way, and the vote at its next call sees it.
  auto got = RunReplicated({.mode = voter::Mode::kDmr,
                            .method = channel::Method::kRpc,
                            .argv = {"sha256sum"},
                            .input = text,
                            .flip_replica = 0,
                            .fault_at = 34,
                            .fault = ExecOptions::Fault::kResult});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  EXPECT_EQ(got->out, want.out);
  EXPECT_EQ(got->report.mismatches, 1u);
  EXPECT_EQ(got->report.rollbacks, 1u);
}

TEST(VigilRunTest, DmrDetectsAnArgumentRegisterFlipMadeThroughPtrace) {
  const std::string text = TestText();
  Native want = RunNative({"sha256sum"}, text);
  // Bit 5 of rdi at call 40 (through ptrace): the call is made again with its first argument
  // changed (a descriptor, a pointer), which the vote on that very call sees.
  auto got = RunReplicated({.mode = voter::Mode::kDmr,
                            .method = channel::Method::kPolling,
                            .argv = {"sha256sum"},
                            .input = text,
                            .flip_replica = 1,
                            .fault_at = 40,
                            .fault = ExecOptions::Fault::kRegister,
                            .flip_register = "rdi"});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  EXPECT_EQ(got->out, want.out);
  EXPECT_EQ(got->report.mismatches, 1u);
  EXPECT_EQ(got->report.rollbacks, 1u);
}

TEST(VigilRunTest, TmrOutvotesAnInstructionPointerFlip) {
  TempDir dir;
  const std::string file = dir.Write("input.txt", TestText());
  const std::vector<std::string> argv = {"dd", "if=" + file, "bs=128", "status=none"};
  Native want = RunNative(argv, "");
  // Bit 5 of rip at call 50: the program resumes 32 bytes away from where it was; whatever it
  // then does (a crash, another call) differs from the other two.
  auto got = RunReplicated({.mode = voter::Mode::kTmr,
                            .method = channel::Method::kNotify,
                            .argv = argv,
                            .flip_replica = 2,
                            .fault_at = 50,
                            .fault = ExecOptions::Fault::kRegister,
                            .flip_register = "rip"});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  EXPECT_TRUE(got->out == want.out) << "copied output differs";
  EXPECT_EQ(got->report.mismatches + got->report.crashes + got->report.missed_deadlines, 1u);
  EXPECT_EQ(got->report.replacements, 1u);
  EXPECT_EQ(got->report.rollbacks, 0u);
}

// A replica that dies, or stops sending, at a system call: the voter replaces it (TMR: the two
// others carry on and the replacement catches up; DMR: the survivor waits for the replacement)
// and the output is the plain run's.
TEST(VigilRunTest, ACrashedOrHungReplicaIsReplacedAndTheOutputIsRight) {
  const std::string text = TestText();
  Native want = RunNative({"sha256sum"}, text);
  struct Case {
    voter::Mode mode;
    ExecOptions::Fault fault;
  };
  for (Case c : {Case{voter::Mode::kTmr, ExecOptions::Fault::kCrash},
                 Case{voter::Mode::kTmr, ExecOptions::Fault::kHang},
                 Case{voter::Mode::kDmr, ExecOptions::Fault::kHang}}) {
    const bool hang = c.fault == ExecOptions::Fault::kHang;
    SCOPED_TRACE(fmt::format("{} {}", voter::ModeName(c.mode), hang ? "hang" : "crash"));
    auto got = RunReplicated({.mode = c.mode,
                              .argv = {"sha256sum"},
                              .input = text,
                              .flip_replica = 1,
                              .fault_at = 40,
                              .fault = c.fault,
                              .deadline = 1s});
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(got->report.completed) << got->report.failure;
    EXPECT_EQ(got->out, want.out);
    EXPECT_EQ(got->report.mismatches, 0u);
    EXPECT_EQ(hang ? got->report.missed_deadlines : got->report.crashes, 1u);
    EXPECT_EQ(got->report.replacements, 1u);
    // DMR's survivor restarts from the program's start with the replacement (its one
    // checkpoint).
    EXPECT_EQ(got->report.rollbacks, c.mode == voter::Mode::kDmr ? 1u : 0u);
  }
}

TEST(VigilRunTest, ExecFaultNamesAreParsed) {
  ExecOptions o;
  EXPECT_TRUE(SetExecFault("flip", o));
  EXPECT_EQ(o.fault, ExecOptions::Fault::kData);
  EXPECT_TRUE(SetExecFault("flip-result", o));
  EXPECT_EQ(o.fault, ExecOptions::Fault::kResult);
  EXPECT_TRUE(SetExecFault("flip-memory", o));
  EXPECT_EQ(o.fault, ExecOptions::Fault::kMemory);
  EXPECT_TRUE(SetExecFault("flip-r12", o));
  EXPECT_EQ(o.fault, ExecOptions::Fault::kRegister);
  EXPECT_EQ(o.flip_register, "r12");
  EXPECT_TRUE(SetExecFault("crash", o));
  EXPECT_EQ(o.fault, ExecOptions::Fault::kCrash);
  EXPECT_TRUE(SetExecFault("hang", o));
  EXPECT_EQ(o.fault, ExecOptions::Fault::kHang);
  for (const char* bad :
       {"", "flip-", "flip-rax", "flip-orig_rax", "flip-rcx", "crash-", "stop", "flip-xmm0"}) {
    EXPECT_FALSE(SetExecFault(bad, o)) << bad;
  }
}

TEST(VigilRunTest, TmrOutvotesAMemoryFlipAndReplacesTheReplica) {
  TempDir dir;
  const std::string file = dir.Write("input.txt", TestText());
  Native want = RunNative({"gzip", "-c", "-n", file}, "");
  auto got = RunReplicated({.mode = voter::Mode::kTmr,
                            .method = channel::Method::kPolling,
                            .argv = {"gzip", "-c", "-n", file},
                            .flip_replica = 2,
                            .fault_at = 30});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  EXPECT_TRUE(got->out == want.out) << "compressed output differs";
  EXPECT_EQ(got->report.mismatches, 1u);
  EXPECT_EQ(got->report.replacements, 1u);
  EXPECT_EQ(got->report.rollbacks, 0u);
}

TEST(VigilRunTest, TmrReplacementCatchesUpAndVotesAgain) {
  TempDir dir;
  const std::string text = TestText();
  const std::string file = dir.Write("input.txt", text);
  // dd with 128-byte blocks: thousands of calls, so the replacement of the replica outvoted
  // early restarts the program and is answered from the voter's log well before the end.
  const std::vector<std::string> argv = {"dd", "if=" + file, "bs=128", "status=none"};
  Native want = RunNative(argv, "");
  ASSERT_EQ(want.exit_code, 0) << want.err;
  ASSERT_TRUE(want.out == text);
  auto got = RunReplicated({.mode = voter::Mode::kTmr,
                            .method = channel::Method::kNotify,
                            .argv = argv,
                            .flip_replica = 0,
                            .fault_at = 40});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  EXPECT_TRUE(got->out == want.out) << "copied output differs";
  EXPECT_GT(got->calls, 5000u);
  EXPECT_EQ(got->report.mismatches, 1u);
  EXPECT_EQ(got->report.replacements, 1u);
  EXPECT_EQ(got->report.catch_ups, 1u);
  EXPECT_EQ(got->report.rollbacks, 0u);
}

TEST(VigilRunTest, LargeWritesAreVotedByDigestAndReadFromAHealthyReplica) {
  TempDir dir;
  const std::string text = TestText();
  const std::string file = dir.Write("input.txt", text);
  // dd bs=64k writes 64 KiB at a time: each write is one event carrying the digest of its bytes,
  // which the voter then RDMA-READs from a replica that voted for them. A flip in the data
  // replica 1 reads changes its digest: out-voted, and its bytes are never read.
  for (int flip : {-1, 1}) {
    SCOPED_TRACE(flip);
    auto got = RunReplicated({.mode = voter::Mode::kTmr,
                              .method = channel::Method::kPolling,
                              .argv = {"dd", "if=" + file, "bs=64k", "status=none"},
                              .flip_replica = flip,
                              .fault_at = 35});
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(got->report.completed) << got->report.failure;
    EXPECT_TRUE(got->out == text) << "dd's output differs";
    // In 4 KiB pieces, the writes alone would be more than 100 calls.
    EXPECT_LT(got->calls, 100u);
    EXPECT_EQ(got->report.mismatches, flip < 0 ? 0u : 1u);
  }
}

TEST(VigilRunTest, AnUnsupportedCallStopsTheRunNamingIt) {
  auto got = RunReplicated({.mode = voter::Mode::kDmr, .argv = {"sh", "-c", "true | true"}});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_FALSE(got->report.completed);
  EXPECT_NE(got->report.failure.find("which vigil-run does not support"), std::string::npos)
      << got->report.failure;
  EXPECT_NE(got->report.failure.find("pipe"), std::string::npos) << got->report.failure;
}

TEST(VigilRunTest, AProgramReachesOnlyWhatItsSandboxAllows) {
  // head goes on after an error: each refused file is a "Permission denied" line, the one file
  // beneath the root is printed, and the exit code says something failed. (cat would copy with
  // copy_file_range, which vigil-run does not replicate.)
  TempDir dir;
  ASSERT_EQ(mkdir((dir.path + "/root").c_str(), 0755), 0);
  const std::string inside = dir.Write("root/in.txt", "inside the root\n");
  dir.Write("secret.txt", "outside the root\n");
  chmod(dir.path.c_str(), 0755);
  chmod((dir.path + "/secret.txt").c_str(), 0644);
  const std::vector<std::string> refused = {"/proc/self/mem", "/etc/shadow", "/dev/null",
                                            dir.path + "/root/../secret.txt"};
  std::vector<std::string> argv = {"head", "-q", "-n", "5"};
  argv.insert(argv.end(), refused.begin(), refused.end());
  argv.push_back(inside);
  // vigil-run's default executor user (nobody, when the tests run as root: the root is root's).
  auto got = RunReplicated({.argv = argv, .root = dir.path + "/root", .executor_user = ""});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  EXPECT_EQ(got->report.exit_code, 1);
  EXPECT_EQ(got->out, "inside the root\n");
  for (const std::string& f : refused) {
    EXPECT_NE(got->err.find("head: cannot open '" + f + "' for reading: Permission denied"),
              std::string::npos)
        << f << "\n"
        << got->err;
  }
  // The executor's user (not root) may not open /etc/shadow: the kernel refuses it before the
  // sandbox would (SandboxTest has the sandbox's own refusal of it).
  EXPECT_EQ(got->refused, refused.size() - 1) << got->err;
}

TEST(VigilRunTest, MalformedRecordsAreRefusedByName) {
  auto sandbox = Sandbox::Open("/tmp");
  ASSERT_TRUE(sandbox.ok()) << sandbox.status().ToString();
  HostExecutor e(-1, -1, -1, std::move(*sandbox));
  std::byte result[64];
  std::vector<std::byte> rec(kSyscallRecordBytes);
  EXPECT_NE(e.Execute(SYS_write, 0, std::span(rec).first(10), {}, result)
                .status()
                .message()
                .find("shorter than 64"),
            std::string::npos);
  SyscallRecord r;
  r.blob_bytes = 5;  // announces bytes it does not carry
  std::memcpy(rec.data(), &r, sizeof(r));
  EXPECT_NE(e.Execute(SYS_write, 0, rec, {}, result).status().message().find("announces 5 bytes"),
            std::string::npos);
  r.blob_bytes = 3;  // a path without its NUL
  rec.resize(kSyscallRecordBytes + 3);
  std::memcpy(rec.data(), &r, sizeof(r));
  std::memcpy(rec.data() + kSyscallRecordBytes, "abc", 3);
  EXPECT_NE(e.Execute(SYS_openat, 0, rec, {}, result).status().message().find("not NUL-terminated"),
            std::string::npos);
  EXPECT_NE(e.Execute(SYS_read, 2, rec, {}, result).status().message().find("in pieces"),
            std::string::npos);
  // A call that names no path carries no bytes.
  EXPECT_NE(e.Execute(SYS_getpid, 0, rec, {}, result).status().message().find("3 bytes after"),
            std::string::npos);
  EXPECT_NE(e.Execute(99999, 0, rec, {}, result).status().message().find("does not support"),
            std::string::npos);
  // A descriptor the program never opened.
  r = SyscallRecord{};
  r.args[0] = 77;
  rec.assign(kSyscallRecordBytes, std::byte{0});
  std::memcpy(rec.data(), &r, sizeof(r));
  auto bad = e.Execute(SYS_close, 0, rec, {}, result);
  ASSERT_TRUE(bad.ok()) << bad.status().ToString();
  EXPECT_EQ(bad->value, -EBADF);
  // Bytes left aside: only a write may, with a blob of exactly their length and digest, and
  // the voter must deliver exactly that many.
  r = SyscallRecord{};
  r.args[0] = 1;
  r.flags = kRecordBytesAside;
  r.blob_bytes = 3;
  rec.assign(kSyscallRecordBytes + 3, std::byte{0});
  std::memcpy(rec.data(), &r, sizeof(r));
  EXPECT_NE(e.BytesAside(rec).status().message().find("leaves bytes aside but its blob has 3"),
            std::string::npos);
  const BytesAside a{100, 42};
  r.blob_bytes = sizeof(a);
  rec.assign(kSyscallRecordBytes + sizeof(a), std::byte{0});
  std::memcpy(rec.data(), &r, sizeof(r));
  std::memcpy(rec.data() + kSyscallRecordBytes, &a, sizeof(a));
  auto aside = e.BytesAside(rec);
  ASSERT_TRUE(aside.ok() && aside->has_value()) << aside.status().ToString();
  EXPECT_EQ((*aside)->bytes, 100u);
  EXPECT_EQ((*aside)->digest, 42u);
  std::vector<std::byte> delivered(99);
  EXPECT_NE(
      e.Execute(SYS_write, 0, rec, delivered, result).status().message().find("100 bytes aside"),
      std::string::npos);
  EXPECT_NE(e.Execute(SYS_close, 0, rec, delivered, result).status().message().find("only writes"),
            std::string::npos);
  r.flags = 0;
  std::memcpy(rec.data(), &r, sizeof(r));
  EXPECT_NE(e.Execute(SYS_write, 0, rec, delivered, result)
                .status()
                .message()
                .find("delivered "
                      "aside"),
            std::string::npos);
}

TEST(VigilRunTest, TheTableIsSortedAndEveryCallHasAName) {
  size_t n = 0;
  const SyscallSpec* t = SyscallTable(&n);
  ASSERT_GT(n, 50u);
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(SyscallName(t[i].nr), t[i].name);
    EXPECT_EQ(FindSyscall(t[i].nr), &t[i]);
    if (t[i].cls == SyscallClass::kUnsupported) {
      EXPECT_NE(t[i].why, nullptr) << t[i].name;
    }
  }
  EXPECT_EQ(FindSyscall(99999), nullptr);
  // docs/vigil-run.md names every call of the table.
  const std::string doc = ReadFile(std::string(VIGIL_SOURCE_DIR) + "/docs/vigil-run.md");
  ASSERT_FALSE(doc.empty());
  for (size_t i = 0; i < n; ++i) {
    EXPECT_NE(doc.find(fmt::format("`{}`", t[i].name)), std::string::npos)
        << t[i].name << " is not in docs/vigil-run.md";
  }
}

}  // namespace
}  // namespace vigil::run
