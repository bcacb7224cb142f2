// `vigil-bench run`: what vigil-run costs. Unmodified Debian programs (sha256sum, cksum, sort,
// gzip) on a generated text file, run plainly and then replicated per signalling method and mode
// (simplex, DMR, TMR) with every system call voted: wall time against the plain run, and the
// system calls the voter handled per second (of wall time, and of the voter's own deciding
// time, which is the voter's capacity). Outputs are compared with the plain run's.
//
// Replicas are threads of this process (testing::ThreadLauncher), each running its own copy of the
// program as a child process under seccomp interception, on the benchmark's transport.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "environment.h"
#include "harness.h"
#include "programs.h"
#include "vigil/replica/protocol.h"
#include "vigil/run/executor.h"
#include "vigil/run/executor_process.h"
#include "vigil/run/program.h"

namespace vigil::bench {
namespace {

using Clock = std::chrono::steady_clock;

// The executor of one row: vigil-executor as vigil-run starts it (run as root, it keeps root's
// uid, not its capabilities: the scratch directory is root's), or a HostExecutor in this process.
Result<std::unique_ptr<voter::SyscallExecutor>> Executor(const std::string& where,
                                                         const std::string& root, int in, int out,
                                                         int err) {
  if (where == "process") {
    VIGIL_ASSIGN_OR_RETURN(std::unique_ptr<run::ExecutorProcess> p,
                           run::ExecutorProcess::Start({.root = root,
                                                        .user = geteuid() == 0 ? "root" : "",
                                                        .stdin_fd = in,
                                                        .stdout_fd = out,
                                                        .stderr_fd = err}));
    return std::unique_ptr<voter::SyscallExecutor>(std::move(p));
  }
  VIGIL_ASSIGN_OR_RETURN(std::unique_ptr<run::Sandbox> sandbox, run::Sandbox::Open(root));
  return std::unique_ptr<voter::SyscallExecutor>(
      std::make_unique<run::HostExecutor>(in, out, err, std::move(sandbox)));
}

uint64_t Calls(voter::SyscallExecutor& e) {
  if (auto* p = dynamic_cast<run::ExecutorProcess*>(&e)) return p->calls();
  return dynamic_cast<run::HostExecutor&>(e).calls();
}

}  // namespace

int RunRunBench(const RunBenchOptions& o) {
  std::optional<BenchSetup> setup = OpenAndDescribe(o.common);
  if (!setup) return 1;
  Result<ScratchDir> dir = ScratchDir::Create("vigil-bench-run");
  if (!dir.ok()) {
    fmt::print(stderr, "error: {}\n", dir.status().ToString());
    return 1;
  }
  const std::string input_path = dir->path() + "/input.txt";
  std::ofstream(input_path, std::ios::binary) << TextInput(size_t{o.input_mib} << 20);
  const std::vector<std::pair<std::string, std::vector<std::string>>> programs = {
      {"sha256sum", {"sha256sum"}},
      {"cksum", {"cksum", input_path}},
      {"sort", {"sort", "--parallel=1", input_path}},
      {"gzip", {"gzip", "-c", "-n", input_path}}};
  fmt::print(
      "# vigil-run overhead: {} MiB of text; plain = the program alone (best of {}); replicas "
      "are threads hosting the program as child processes, every system call voted; calls/s "
      "= voted calls per second of wall time; voter calls/s = per second the voter spent "
      "deciding and executing (its capacity)\n",
      o.input_mib, o.repeats);
  fmt::print("{:>9} {:>8} {:>7} {:>10} | {:>9} {:>8} | {:>6} {:>9} {:>12} | {:>6}\n", "program",
             "method", "mode", "executor", "wall ms", "vs plain", "calls", "calls/s",
             "voter calls/s", "output");
  nlohmann::json rows = nlohmann::json::array();
  int rc = 0;
  for (const auto& [name, argv] : programs) {
    if (std::find(o.programs.begin(), o.programs.end(), name) == o.programs.end()) continue;
    std::string want;
    double plain_ms = 0;
    for (uint32_t i = 0; i < o.repeats; ++i) {
      auto plain = RunPlain(argv, input_path);
      if (!plain.ok()) {
        fmt::print(stderr, "error: {}\n", plain.status().ToString());
        return 1;
      }
      want = plain->first;
      plain_ms = i == 0 ? plain->second : std::min(plain_ms, plain->second);
    }
    fmt::print("{:>9} {:>8} {:>7} {:>10} | {:>9.1f} {:>8} | {:>6} {:>9} {:>12} | {:>6}\n", name,
               "-", "plain", "-", plain_ms, "1.00x", "-", "-", "-", "-");
    rows.push_back({{"program", name}, {"mode", "plain"}, {"wall_ms", plain_ms}});
    for (const std::string& method : o.methods) {
      for (const std::string& mode : o.modes) {
        for (const std::string& where : o.executors) {
          const int in = open(input_path.c_str(), O_RDONLY | O_CLOEXEC), out = TempFd();
          const int err = open("/dev/null", O_WRONLY | O_CLOEXEC);
          Result<std::unique_ptr<voter::SyscallExecutor>> executor =
              Executor(where, dir->path(), in, out, err);
          if (!executor.ok()) {
            fmt::print(stderr, "error: {}\n", executor.status().ToString());
            return 1;
          }
          auto group = RunGroup(
              *setup, *channel::ParseMethod(method), *voter::ParseMode(mode),
              4096 + replica::kEventHeaderBytes, o.spin_us, false,
              [&argv](const voter::LaunchSpec&, std::shared_ptr<std::atomic<bool>> killed)
                  -> Result<std::unique_ptr<replica::Program>> {
                return std::unique_ptr<replica::Program>(std::make_unique<run::ExecProgram>(
                    run::ExecOptions{.argv = argv, .env = ProgramEnvironment(), .killed = killed}));
              },
              nullptr, nullptr, executor->get(), Measure::kVoter);
          const uint64_t executed = Calls(**executor);
          executor->reset();
          const std::string got = ReadFd(out);
          for (int fd : {in, out, err}) close(fd);
          if (!group.ok()) {
            fmt::print(stderr, "error: {} {} {} ({}): {}\n", name, method, mode, where,
                       group.status().ToString());
            return 1;
          }
          const bool same = got == want;
          const double calls = static_cast<double>(executed);
          const double per_s = calls / (group->wall_ms / 1e3);
          const double voter_s = static_cast<double>(group->report.voter_ns) / 1e9;
          const double voter_per_s = voter_s > 0 ? calls / voter_s : 0;
          fmt::print(
              "{:>9} {:>8} {:>7} {:>10} | {:>9.1f} {:>7.2f}x | {:>6.0f} {:>9.0f} {:>12.0f} | "
              "{:>6}\n",
              name, method, mode, where, group->wall_ms, group->wall_ms / plain_ms, calls, per_s,
              voter_per_s, same ? "same" : "DIFFERS");
          rows.push_back({{"program", name},
                          {"method", method},
                          {"mode", mode},
                          {"executor", where},
                          {"wall_ms", group->wall_ms},
                          {"wall_vs_plain", group->wall_ms / plain_ms},
                          {"syscalls", executed},
                          {"syscalls_per_s", per_s},
                          {"voter_syscalls_per_s", voter_per_s},
                          {"output_matches_plain", same}});
          if (!same) rc = 1;
        }
      }
    }
  }
  if (rc != 0) fmt::print(stderr, "error: a replicated output differs from the plain run's\n");
  if (!o.common.json.empty() &&
      WriteJson(o.common.json, {{"benchmark", "run"},
                                {"environment", vigil::bench::Environment(Describe(*setup))},
                                {"input_mib", o.input_mib},
                                {"rows", rows}}) != 0) {
    return 1;
  }
  return rc;
}

}  // namespace vigil::bench
