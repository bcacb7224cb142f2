// vigil-executor: vigil-run's helper that carries out a replicated program's agreed system calls
// (executor_process.h). Internal: vigil-run starts it with the job's stdin, stdout and stderr as
// 0-2 and its socket as --socket; it confines itself (confine.h), says so in its hello, then
// answers requests (executor_wire.h) until vigil-run closes the socket or dies.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <vector>

#include "vigil/common/cli.h"
#include "vigil/run/confine.h"
#include "vigil/run/executor.h"
#include "vigil/run/executor_wire.h"
#include "vigil/run/sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
// LeakSanitizer checks at exit by ptrace-attaching a helper, which the executor (not dumpable,
// behind seccomp) refuses; its leaks are checked where HostExecutor runs in-process (unit tests).
extern "C" const char* __lsan_default_options() { return "detect_leaks=0"; }
extern "C" const char* __asan_default_options() { return "detect_leaks=0"; }
#endif

namespace vigil::run {
namespace {

class Server {
 public:
  explicit Server(int sock) : sock_(sock) {}

  // A reply carrying `st` (or `message` when OK) and `result_bytes` of result_.
  bool Reply(const Status& st, const std::string& message = {}, int64_t value = 0,
             size_t result_bytes = 0) {
    std::string text = st.ok() ? message : st.message();
    if (!st.ok() && text.empty()) text = std::string(StatusCodeName(st.code()));
    if (text.size() > wire::kMaxMessageBytes) text.resize(wire::kMaxMessageBytes);
    wire::Reply r;
    r.code = static_cast<int32_t>(st.code());
    r.message_bytes = text.size();
    r.value = value;
    r.result_bytes = st.ok() ? result_bytes : 0;
    if (executor_ != nullptr) {
      r.calls = executor_->calls();
      r.refused = executor_->sandbox().refused();
      r.journal_entries = executor_->journal().entries();
    }
    return wire::SendAll(sock_, {std::as_bytes(std::span(&r, 1)), std::as_bytes(std::span(text)),
                                 std::span<const std::byte>(result_.get(), r.result_bytes)})
        .ok();
  }

  void Serve(HostExecutor& executor) {
    executor_ = &executor;
    std::array<std::byte, sizeof(wire::Request)> header;
    while (wire::ReadAll(sock_, header).ok()) {
      Result<wire::Request> q = wire::DecodeRequest(header);
      if (!q.ok()) {  // vigil-run would never send it: answer once and stop
        Reply(q.status());
        return;
      }
      if (!Handle(*q)) return;
    }
  }

 private:
  bool Handle(const wire::Request& q) {
    executor_->CountDecided(q.local_calls);
    switch (static_cast<wire::Op>(q.op)) {
      case wire::Op::kExecute: {
        record_.resize(q.record_bytes);
        aside_.resize(q.aside_bytes);
        if (!wire::ReadAll(sock_, record_).ok() || !wire::ReadAll(sock_, aside_).ok()) {
          return false;
        }
        if (q.result_room > room_) {
          result_ = std::make_unique_for_overwrite<std::byte[]>(q.result_room);
          room_ = q.result_room;
        }
        Result<voter::SyscallExecutor::Outcome> o = executor_->Execute(
            q.nr, q.piece, record_, aside_, std::span(result_.get(), q.result_room));
        if (!o.ok()) return Reply(o.status());
        return Reply(Status::Ok(), {}, o->value, o->bytes);
      }
      case wire::Op::kCheckpoint:
        return Reply(executor_->Checkpoint());
      case wire::Op::kRollback:
        return Reply(executor_->Rollback());
      case wire::Op::kFinish:
        return Reply(executor_->Finish(q.completed == 1));
    }
    return false;
  }

  int sock_;
  HostExecutor* executor_ = nullptr;
  std::vector<std::byte> record_, aside_;
  std::unique_ptr<std::byte[]> result_;
  uint64_t room_ = 0;
};

struct Options {
  int socket = -1;
  pid_t parent = 0;
  std::string root, user;
};

int Main(const Options& o) {
  Server server(o.socket);
  // Dies with vigil-run; ignores ^C and a closed pipe (vigil-run decides when the job ends, and
  // a write to a closed stdout is an EPIPE for the program).
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != o.parent) return 1;
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  auto fail = [&](const Status& st) {
    server.Reply(st);
    return 2;
  };
  Result<std::string> who = DropPrivileges(o.root, o.user);
  if (!who.ok()) return fail(who.status());
  // The undo journal's pre-images: a private directory of the executor's user.
  const char* tmp = std::getenv("TMPDIR");
  std::string journal = fmt::format("{}/vigil-executor-XXXXXX", tmp != nullptr ? tmp : "/tmp");
  if (mkdtemp(journal.data()) == nullptr) {
    return fail(ErrnoStatus(StatusCode::kFailedPrecondition,
                            "creating the undo journal's directory " + journal, errno));
  }
  int rc = 2;
  {
    Result<std::unique_ptr<Sandbox>> sandbox = Sandbox::Open(o.root);
    if (!sandbox.ok()) {
      rmdir(journal.c_str());
      return fail(sandbox.status().WithContext(
          fmt::format("--root: the executor ({}) cannot use it; choose a root directory that "
                      "user may use, or --executor-user",
                      *who)));
    }
    const std::string root = (*sandbox)->root();
    Result<std::string> fs = RestrictFileSystem({root, journal});
    Result<std::string> calls = fs.ok() ? RestrictSystemCalls() : fs.status();
    if (!calls.ok()) {
      rmdir(journal.c_str());
      return fail(calls.status());
    }
    HostExecutor executor(STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, std::move(*sandbox), journal);
    if (server.Reply(Status::Ok(), fmt::format("{}; {}; {}", *who, *fs, *calls))) {
      server.Serve(executor);
      rc = 0;
    }
  }
  rmdir(journal.c_str());
  return rc;
}

}  // namespace
}  // namespace vigil::run

int main(int argc, char** argv) {
  using namespace vigil;
  CLI::App app{
      "vigil-executor: vigil-run's helper that carries out a replicated program's agreed system "
      "calls in an unprivileged, confined process. Internal: started by vigil-run only."};
  cli::CommonOptions common;
  common.log_level = "warn";
  cli::AddCommonOptions(app, common);
  run::Options o;
  app.add_option("--socket", o.socket, "descriptor of the socket to vigil-run")->required();
  app.add_option("--parent", o.parent, "vigil-run's process id (the executor dies with it)")
      ->required();
  app.add_option("--root", o.root, "the sandbox's root directory")->required();
  app.add_option("--user", o.user, "started as root: the user to become");
  return cli::Run(app, common, argc, argv, [&] { return run::Main(o); });
}
