#include "vigil/run/executor_process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <thread>

#include "vigil/common/find_program.h"
#include "vigil/common/logging.h"
#include "vigil/common/wait_status.h"
#include "vigil/run/executor.h"
#include "vigil/run/executor_wire.h"

namespace vigil::run {
namespace {

// The executor's descriptor for its socket (0-2 are the job's).
constexpr int kChildSocket = 3;

// A descriptor numbered 10 or above (so that the spawn's dup2 onto 0-3 never overwrites a source).
Result<int> High(int fd) {
  const int h = fcntl(fd, F_DUPFD_CLOEXEC, 10);
  if (h < 0) return ErrnoStatus(StatusCode::kFailedPrecondition, fmt::format("dup {}", fd), errno);
  return h;
}

}  // namespace

std::string DefaultExecutorBinary() { return HelperProgram("vigil-executor", "run"); }

Result<std::unique_ptr<ExecutorProcess>> ExecutorProcess::Start(const ExecutorProcessOptions& o) {
  const std::string binary = o.binary.empty() ? DefaultExecutorBinary() : o.binary;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return ErrnoStatus(StatusCode::kFailedPrecondition, "socketpair", errno);
  }
  // Every descriptor the spawn reads from, numbered apart from 0-3.
  std::vector<int> high;
  auto close_all = [&] {
    for (int fd : high) close(fd);
    close(sv[1]);
  };
  for (int fd : {o.stdin_fd, o.stdout_fd, o.stderr_fd, sv[1]}) {
    Result<int> h = High(fd);
    if (!h.ok()) {
      close_all();
      close(sv[0]);
      return h.status();
    }
    high.push_back(*h);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  for (int i = 0; i < 4; ++i) posix_spawn_file_actions_adddup2(&fa, high[i], i);
  posix_spawn_file_actions_addclosefrom_np(&fa, kChildSocket + 1);
  // Its own process group (a terminal's ^C reaches vigil-run, which then fails the job and asks
  // the executor to restore the files), default signal dispositions, nothing blocked.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  std::vector<std::string> args = {binary,      "--socket", std::to_string(kChildSocket),
                                   "--root",    o.root,     "--log-level",
                                   o.log_level, "--parent", std::to_string(getpid())};
  if (!o.user.empty()) {
    args.push_back("--user");
    args.push_back(o.user);
  }
  // Its environment: only what says where temporary files go and how UBSan reports (not ASan's or
  // LSan's options: a leak check at its exit would clone a tracer, which its seccomp filter
  // forbids; vigil-executor turns it off itself).
  std::vector<std::string> env;
  for (const char* k : {"TMPDIR", "UBSAN_OPTIONS"}) {
    if (const char* v = std::getenv(k)) env.push_back(fmt::format("{}={}", k, v));
  }
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  for (auto& e : env) envp.push_back(e.data());
  argv.push_back(nullptr);
  envp.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, binary.c_str(), &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close_all();
  if (rc != 0) {
    close(sv[0]);
    return ErrnoStatus(StatusCode::kNotFound, fmt::format("starting the executor {}", binary), rc);
  }
  std::unique_ptr<ExecutorProcess> p(new ExecutorProcess(pid, sv[0]));
  Result<std::string> hello = p->ReadReply({}, 10000);
  if (!hello.ok()) return hello.status().WithContext("the executor " + binary);
  p->confinement_ = *hello;
  return p;
}

ExecutorProcess::~ExecutorProcess() {
  if (sock_ >= 0) close(sock_);
  if (pid_ <= 0) return;
  // It exits when it reads the end of its socket; one that does not within 5 s is killed. An end
  // other than a clean exit is logged (e.g. a call outside its allow-list on its way out).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int ws = 0;
  pid_t r = 0;
  while ((r = waitpid(pid_, &ws, WNOHANG)) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &ws, 0);
      log::Get("run")->warn("the executor process {} did not exit within 5 s: killed", pid_);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // (One that failed to start has said why: Start returned it.)
  if (r == pid_ && !confinement_.empty() && !(WIFEXITED(ws) && WEXITSTATUS(ws) == 0)) {
    log::Get("run")->warn("the executor process {} {} after its last call", pid_,
                          DescribeWaitStatus(ws));
  }
}

Status ExecutorProcess::Lost(Status why) {
  if (!lost_.ok()) return lost_;
  std::string how = "it is still running (killed now)";
  int ws = 0;
  pid_t r = waitpid(pid_, &ws, WNOHANG);
  for (int i = 0; r == 0 && i < 100; ++i) {  // a dying executor: up to 1 s to see how it ended
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    r = waitpid(pid_, &ws, WNOHANG);
  }
  if (r == 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &ws, 0);
  } else if (r == pid_) {
    how = WIFEXITED(ws) && WEXITSTATUS(ws) == 128 + SIGSYS
              ? "it made a system call outside its allow-list (named on stderr)"
              : "it " + DescribeWaitStatus(ws);
  }
  pid_ = -1;
  lost_ = Status(why.code() == StatusCode::kDataLoss ? StatusCode::kDataLoss : StatusCode::kAborted,
                 fmt::format("the executor process is lost ({}): {}", why.message(), how));
  return lost_;
}

Result<std::string> ExecutorProcess::ReadReply(std::span<std::byte> result, int timeout_ms,
                                               Outcome* outcome) {
  std::array<std::byte, sizeof(wire::Reply)> header;
  if (Status st = wire::ReadAll(sock_, header, timeout_ms); !st.ok()) return Lost(st);
  Result<wire::Reply> r = wire::DecodeReply(header, result.size());
  if (!r.ok()) return Lost(r.status());
  std::string message(r->message_bytes, '\0');
  if (Status st = wire::ReadAll(sock_, std::as_writable_bytes(std::span(message)), timeout_ms);
      !st.ok()) {
    return Lost(st);
  }
  if (Status st = wire::ReadAll(sock_, result.first(r->result_bytes), timeout_ms); !st.ok()) {
    return Lost(st);
  }
  last_ = {r->calls, r->refused, r->journal_entries};
  if (outcome != nullptr) *outcome = {r->value, static_cast<size_t>(r->result_bytes)};
  if (Status st = wire::ReplyStatus(*r, message); !st.ok()) return st;
  return message;
}

Result<voter::SyscallExecutor::Outcome> ExecutorProcess::Call(wire::Request q,
                                                              std::span<const std::byte> record,
                                                              std::span<const std::byte> aside,
                                                              std::span<std::byte> result) {
  if (!lost_.ok()) return lost_;
  q.record_bytes = record.size();
  q.aside_bytes = aside.size();
  q.result_room = result.size();
  q.local_calls = local_calls_;
  if (Status st = wire::SendAll(sock_, {std::as_bytes(std::span(&q, 1)), record, aside});
      !st.ok()) {
    return Lost(st);
  }
  local_calls_ = 0;
  Outcome o;
  Result<std::string> r = ReadReply(result, -1, &o);
  if (!r.ok()) return r.status();
  return o;
}

Result<std::optional<voter::SyscallExecutor::Aside>> ExecutorProcess::BytesAside(
    std::span<const std::byte> record) {
  return HostExecutor::ParseAside(record);  // parsing only: nothing to execute
}

Result<voter::SyscallExecutor::Outcome> ExecutorProcess::Execute(uint64_t nr, uint64_t piece,
                                                                 std::span<const std::byte> record,
                                                                 std::span<const std::byte> aside,
                                                                 std::span<std::byte> result) {
  if (record.size() > wire::kMaxRecordBytes || aside.size() > wire::kMaxDataBytes) {
    return DataLoss(fmt::format("system call {}: a {}-byte record with {} bytes aside", nr,
                                record.size(), aside.size()));
  }
  if (!lost_.ok()) return lost_;
  VIGIL_ASSIGN_OR_RETURN(std::optional<Outcome> local,
                         HostExecutor::DecideLocal(nr, piece, record, aside));
  if (local) {
    ++local_calls_;
    return *local;
  }
  const std::span<std::byte> room =
      result.first(std::min<size_t>(result.size(), wire::kMaxDataBytes));
  return Call({.op = static_cast<uint32_t>(wire::Op::kExecute), .nr = nr, .piece = piece}, record,
              aside, room);
}

Status ExecutorProcess::Checkpoint() {
  return Call({.op = static_cast<uint32_t>(wire::Op::kCheckpoint)}).status();
}

Status ExecutorProcess::Rollback() {
  return Call({.op = static_cast<uint32_t>(wire::Op::kRollback)}).status();
}

Status ExecutorProcess::Finish(bool completed) {
  return Call({.op = static_cast<uint32_t>(wire::Op::kFinish), .completed = completed ? 1u : 0u})
      .status();
}

}  // namespace vigil::run
