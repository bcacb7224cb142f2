// vigil-run: runs an unmodified Linux program as replicas (DMR or TMR) whose every system call is
// voted on. This process is the voter: it starts the replicas (vigil-replica --workload exec, on
// this host or through vigil-node agents), executes their agreed input/output calls once (its own
// stdin, stdout and stderr are the program's), and exits with the program's exit code.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "vigil/common/cli.h"
#include "vigil/common/logging.h"
#include "vigil/common/registers.h"
#include "vigil/replica/process.h"
#include "vigil/run/executor_process.h"
#include "vigil/run/intercept.h"
#include "vigil/security/tls_flags.h"
#include "vigil/transport/bootstrap.h"
#include "vigil/transport/verbs.h"
#include "vigil/voter/group.h"
#include "vigil/voter/launchers.h"

extern char** environ;

namespace vigil {
namespace {

// Exit codes of vigil-run itself (the program's own are passed through), as env(1) and
// nice(1) do: 125 vigil-run failed, 127 the program was not found.
constexpr int kFailed = 125;
constexpr int kNotFound = 127;

struct RunOptions {
  std::string mode = "tmr", method = "polling", listen = "127.0.0.1:0", device, replica_binary;
  std::string root = ".", executor_user, log_level;
  uint32_t deadline_ms = 30000;
  uint64_t catch_up_mib = 256;
  uint64_t max_region_mib = 1024;
  std::vector<std::string> nodes;
  std::string flip;  // "R:N"
  uint64_t flip_bit = 3;
  std::string flip_target = "data";
  bool report = false;
  std::vector<std::string> argv;
};

// The program's environment: this process's, minus entries a launch cannot carry.
std::vector<std::string> ProgramEnvironment() {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    if (entry.size() > replica::kMaxProgramString || env.size() >= replica::kMaxProgramStrings) {
      log::Get("run")->warn(
          "environment entry '{}...' not passed to the program ({} bytes; at "
          "most {} entries of {} bytes)",
          entry.substr(0, entry.find('=')), entry.size(), replica::kMaxProgramStrings,
          replica::kMaxProgramString);
      continue;
    }
    env.push_back(std::move(entry));
  }
  return env;
}

int RunProgram(const RunOptions& o) {
  if (Result<std::string> path = run::FindProgram(o.argv[0]); !path.ok()) {
    fmt::print(stderr, "vigil-run: {}\n", path.status().message());
    return kNotFound;
  }
  voter::GroupOptions g;
  g.mode = *voter::ParseMode(o.mode);
  g.channel.method = *channel::ParseMethod(o.method);
  g.deadline = std::chrono::milliseconds(o.deadline_ms);
  // An outvoted replica's process cannot be repaired by copying the runtime's state region: it
  // is replaced at once; the replacement restarts the program and catches up from the log.
  g.replace_after = 1;
  g.catch_up_bytes = o.catch_up_mib << 20;
  g.max_region_bytes = o.max_region_mib << 20;
  const auto n = static_cast<uint16_t>(voter::ReplicasOf(g.mode));
  voter::ReplicaProgram program;
  program.signal = o.method;
  program.workload = "exec";
  program.exec_argv = o.argv;
  program.exec_env = ProgramEnvironment();
  if (!o.flip.empty()) {
    unsigned r = 0;
    unsigned long long call = 0;
    char tail = 0;
    if (std::sscanf(o.flip.c_str(), "%u:%llu%c", &r, &call, &tail) != 2 || r >= n || call == 0) {
      fmt::print(stderr,
                 "vigil-run: --inject-flip '{}': expected REPLICA:CALL with REPLICA in 0..{} and "
                 "CALL > 0\n",
                 o.flip, n - 1);
      return 2;
    }
    program.fault = ExecFaultFor(o.flip_target);
    program.fault_replica = static_cast<uint16_t>(r);
    program.fault_step = call;
    program.flip_bit = o.flip_bit;
  }
  auto t = transport::VerbsTransport::Open({.device = o.device});
  if (!t.ok()) {
    fmt::print(stderr, "vigil-run: {}\n", t.status().ToString());
    return kFailed;
  }
  transport::BootstrapServer server(**t, "voter", transport::ConnectionOptions{});
  if (Status st = server.Start(o.listen); !st.ok()) {
    fmt::print(stderr, "vigil-run: --listen: {}\n", st.ToString());
    return 2;
  }
  const std::string host = o.listen.substr(0, o.listen.rfind(':'));
  g.channel.rpc_listen = host + ":0";
  program.voter = fmt::format("{}:{}", host, server.port());
  std::unique_ptr<voter::Launcher> launcher;
  if (o.nodes.empty()) {
    launcher = std::make_unique<voter::LocalLauncher>(
        o.replica_binary.empty() ? replica::DefaultReplicaBinary() : o.replica_binary, program,
        o.device);
  } else {
    if (o.nodes.size() < n) {
      log::Get("run")->warn("{} worker nodes for {} replicas: some replicas share a node",
                            o.nodes.size(), n);
    }
    launcher = std::make_unique<voter::NodeLauncher>(o.nodes, program);
  }
  // The agreed calls run in an unprivileged, confined helper process (executor_process.h).
  Result<std::unique_ptr<run::ExecutorProcess>> started = run::ExecutorProcess::Start(
      {.root = o.root, .user = o.executor_user, .log_level = o.log_level});
  if (!started.ok()) {
    fmt::print(stderr, "vigil-run: {}\n", started.status().ToString());
    return kFailed;
  }
  run::ExecutorProcess& executor = **started;
  log::Get("run")->info("executor process {}: {}", executor.pid(), executor.confinement());
  voter::Group group(g, **t, server, *launcher, stdin, stdout);
  group.set_syscall_executor(&executor);
  double secs = 0;
  Result<voter::GroupReport> r = voter::RunUntilShutdown(group, &secs);
  // Files fail closed: a job that did not complete leaves them as they were before it.
  const bool completed = r.ok() && r->completed;
  const size_t changed = executor.journal_entries();
  if (Status st = executor.Finish(completed); !st.ok()) {
    fmt::print(stderr, "vigil-run: the run failed and {}\n", st.message());
  } else if (!completed && changed > 0) {
    fmt::print(stderr,
               "vigil-run: the run failed: the {} file-system entries it changed are as "
               "they were before it\n",
               changed);
  }
  if (!r.ok()) {
    fmt::print(stderr, "vigil-run: {}\n", r.status().ToString());
    return kFailed;
  }
  if (o.report) {
    fmt::print(stderr,
               "vigil-run: {} {} over {}: {} in {:.2f} s; exit code {}; {} system calls voted "
               "({} rounds), {} mismatches, {} rollbacks, {} replacements, {} caught up ({} "
               "events replayed), {} late ballots, {} crashes, {} missed deadlines, {} rejected "
               "records, {} accesses refused by the sandbox\n",
               o.mode, o.argv[0], o.method, r->completed ? "completed" : "FAILED", secs,
               r->exit_code, executor.calls(), r->rounds, r->mismatches, r->rollbacks,
               r->replacements, r->catch_ups, r->replayed, r->late_ballots, r->crashes,
               r->missed_deadlines, r->rejected_records, executor.refused());
    fmt::print(stderr, "vigil-run: executor process: {}\n", executor.confinement());
  }
  if (!r->completed) {
    fmt::print(stderr, "vigil-run: the run failed: {}\n", r->failure);
    return kFailed;
  }
  return r->exit_code;
}

}  // namespace
}  // namespace vigil

int main(int argc, char** argv) {
  using namespace vigil;
  CLI::App app{
      "vigil-run: run an unmodified Linux program (x86_64, single-threaded) as replicas whose "
      "every system call is voted on. Its stdin, stdout and stderr are vigil-run's; it exits "
      "with the program's exit code (125: vigil-run failed, 127: program not found).\n"
      "Example: vigil-run --mode tmr --signal polling -- sha256sum big.iso"};
  cli::CommonOptions common;
  common.log_level = "warn";
  cli::AddCommonOptions(app, common);
  vigil::security::TlsOptions tls;
  vigil::security::AddTlsOptions(app, tls);
  RunOptions o;
  app.add_option("--mode", o.mode,
                 "tmr (out-vote a faulty replica and replace it), dmr (detect, restart both from "
                 "the program's start) or simplex (one replica: the voter's path, no voting)")
      ->check(CLI::IsMember({"dmr", "tmr", "simplex"}));
  app.add_option("--signal", o.method, "how replicas signal the voter: polling, notify or rpc")
      ->check(CLI::IsMember({"polling", "notify", "rpc"}));
  app.add_option("--nodes", o.nodes,
                 "vigil-node agents (host:port,...) to run the replicas on; default: this host")
      ->delimiter(',');
  app.add_option("--device", o.device, "RDMA device (default: the first with an ACTIVE port)");
  app.add_option("--listen", o.listen, "address the replicas connect to (host:port)");
  app.add_option("--deadline-ms", o.deadline_ms,
                 "a replica's deadline for its next system call (also bounds computing between "
                 "two calls)")
      ->check(CLI::Range(10u, 3600000u));
  app.add_option(
         "--max-region-mib", o.max_region_mib,
         "the largest state, checkpoint or input region a replica may advertise when it connects "
         "(the voter registers a buffer of each size); a larger one is refused")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--catch-up-mib", o.catch_up_mib,
                 "TMR: MiB of agreed calls (with their result bytes) the voter keeps so that a "
                 "replaced replica restarts the program and catches up; 0, or a run past it: "
                 "the replacement joins only at the program's end")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 20));
  app.add_option("--replica-binary", o.replica_binary,
                 "vigil-replica to start without --nodes (default: next to vigil-run)");
  app.add_option("--inject-flip", o.flip,
                 "REPLICA:CALL fault injection: flip a bit (--flip-target) in that replica at "
                 "(or after) its CALL-th system call");
  app.add_option("--flip-bit", o.flip_bit,
                 "which bit --inject-flip flips (modulo the bytes, or 64 for the result)");
  app.add_option("--flip-target", o.flip_target,
                 fmt::format("what --inject-flip flips: data (a bit of the data the replica's "
                             "next read returns, in its memory), result (a bit of the result "
                             "register, rax, of its next call the voter executes), memory (a bit "
                             "anywhere in its writable memory, --flip-bit modulo its size), a "
                             "register at that call, through ptrace: {}; or, instead of a flip, "
                             "crash (the replica kills itself at that call) or hang (it stops "
                             "itself there: --deadline-ms finds it)",
                             fmt::join(kFlippableRegisters, ", ")))
      ->check([](const std::string& t) {
        return IsExecFault(ExecFaultFor(t))
                   ? std::string()
                   : fmt::format(
                         "--flip-target '{}': data, result, memory, a register ({}), crash or "
                         "hang",
                         t, fmt::join(kFlippableRegisters, ", "));
      });
  app.add_option("--root", o.root,
                 "the directory whose files the program may change (and read); elsewhere it may "
                 "only read what every user may read, and never /proc, /sys or /dev (refused "
                 "with EACCES)")
      ->capture_default_str();
  app.add_option("--executor-user", o.executor_user,
                 "vigil-run started as root: the user whose rights the agreed calls run with "
                 "(default: the owner of --root, or nobody when root owns it); never root's "
                 "capabilities");
  app.add_flag("--report", o.report, "print what was voted, detected and done to stderr");
  app.footer("Usage: vigil-run [OPTIONS] -- PROGRAM [ARGS...]");
  o.argv = cli::TakeProgramArguments(argc, argv);
  return cli::Run(app, common, argc, argv, [&]() -> int {
    if (int rc = vigil::security::UseTlsFlags(tls); rc != 0) return rc;
    o.log_level = common.log_level;
    if (o.argv.empty()) {
      fmt::print(stderr, "vigil-run: no program given: vigil-run [OPTIONS] -- PROGRAM [ARGS...]\n");
      return 2;
    }
    return RunProgram(o);
  });
}
