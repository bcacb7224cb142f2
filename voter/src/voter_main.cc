// vigil-voter: runs a replicated job. `vigil-voter run` starts the group's replicas as
// vigil-replica processes on this host (a local launcher; worker-node agents are the other
// launcher), votes on every externalization point, writes the output once and reports what was
// detected and done.
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "vigil/common/cli.h"
#include "vigil/common/logging.h"
#include "vigil/replica/context.h"
#include "vigil/transport/bootstrap.h"
#include "vigil/transport/verbs.h"
#include "vigil/voter/group.h"

namespace vigil {
namespace {

struct JobOptions {
  std::string mode = "tmr", method = "polling", workload = "crc32", susan_mode = "edges";
  std::string input, output, listen = "127.0.0.1:0", device, replica_binary;
  uint32_t deadline_ms = 20000;
  std::string flip;  // "R:STEP"
  std::string kill;  // "R:MS"
  std::string stop;  // "R:MS"
};

// Starts replicas as child processes of the voter (replica `r` incarnation `i` = one process).
class ProcessLauncher final : public voter::Launcher {
 public:
  ProcessLauncher(std::string binary, std::vector<std::string> common, std::string voter,
                  uint16_t flip_replica, uint64_t flip_step)
      : binary_(std::move(binary)),
        common_(std::move(common)),
        voter_(std::move(voter)),
        flip_replica_(flip_replica),
        flip_step_(flip_step) {}
  ~ProcessLauncher() override {
    // Replicas exit after the job's last verdict; anything left after 5 s is killed.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    std::lock_guard lock(mu_);
    for (auto& [key, pid] : pids_) {
      while (waitpid(pid, nullptr, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          ::kill(pid, SIGKILL);
          waitpid(pid, nullptr, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }

  Status Start(const voter::LaunchSpec& s) override {
    std::vector<std::string> args = {binary_,
                                     "--voter",
                                     voter_,
                                     "--service",
                                     s.service,
                                     "--group",
                                     std::to_string(s.group),
                                     "--replica",
                                     std::to_string(s.replica),
                                     "--incarnation",
                                     std::to_string(s.incarnation)};
    if (!s.rpc_target.empty()) args.insert(args.end(), {"--rpc-target", s.rpc_target});
    if (flip_step_ > 0 && s.replica == flip_replica_ && s.incarnation == 0) {
      args.insert(args.end(), {"--flip-bit-at-step", std::to_string(flip_step_), "--flip-bit",
                               std::to_string(replica::kStateMetaBytes * 8 + 3)});
    }
    args.insert(args.end(), common_.begin(), common_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid < 0) return ErrnoStatus(StatusCode::kUnavailable, "fork for a replica", errno);
    if (pid == 0) {
      execv(argv[0], argv.data());
      std::fprintf(stderr, "vigil-voter: cannot run %s: %s\n", argv[0], std::strerror(errno));
      _exit(127);
    }
    std::lock_guard lock(mu_);
    pids_[{s.replica, s.incarnation}] = pid;
    return Status::Ok();
  }

  void Stop(uint16_t replica, uint32_t incarnation) override {
    Signal(replica, incarnation, SIGKILL);
  }

  // Sends `sig` to the current process of `replica` (fault injection).
  void Signal(uint16_t replica, uint32_t incarnation, int sig) {
    std::lock_guard lock(mu_);
    auto it = pids_.find({replica, incarnation});
    if (it == pids_.end()) return;
    ::kill(it->second, sig);
    if (sig == SIGKILL) {
      waitpid(it->second, nullptr, 0);
      pids_.erase(it);
    }
  }

 private:
  std::string binary_;
  std::vector<std::string> common_;
  std::string voter_;
  uint16_t flip_replica_;
  uint64_t flip_step_;
  std::mutex mu_;
  std::map<std::pair<uint16_t, uint32_t>, pid_t> pids_;
};

// "R:N" -> (R, N); R must name a replica of the group.
Result<std::pair<uint16_t, uint64_t>> ParseFault(const std::string& flag, const std::string& v,
                                                 uint16_t replicas) {
  unsigned r = 0;
  unsigned long long n = 0;
  char tail = 0;
  if (std::sscanf(v.c_str(), "%u:%llu%c", &r, &n, &tail) != 2 || r >= replicas || n == 0) {
    return InvalidArgument(
        fmt::format("{} '{}': expected REPLICA:N with REPLICA in 0..{} and "
                    "N > 0",
                    flag, v, replicas - 1));
  }
  return std::pair<uint16_t, uint64_t>{static_cast<uint16_t>(r), n};
}

int RunJob(const JobOptions& j) {
  voter::GroupOptions g;
  g.mode = j.mode == "dmr" ? voter::Mode::kDmr : voter::Mode::kTmr;
  g.channel.method = *channel::ParseMethod(j.method);
  g.deadline = std::chrono::milliseconds(j.deadline_ms);
  const uint16_t n = g.mode == voter::Mode::kTmr ? 3 : 2;
  std::pair<uint16_t, uint64_t> flip{0, 0}, kill{0, 0}, stop{0, 0};
  for (auto [flag, value, out] :
       {std::tuple{"--inject-bitflip", &j.flip, &flip}, std::tuple{"--inject-kill", &j.kill, &kill},
        std::tuple{"--inject-stop", &j.stop, &stop}}) {
    if (value->empty()) continue;
    auto f = ParseFault(flag, *value, n);
    if (!f.ok()) {
      fmt::print(stderr, "error: {}\n", f.status().message());
      return 2;
    }
    *out = *f;
  }
  std::string binary = j.replica_binary;
  if (binary.empty()) {
    binary = (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "vigil-replica");
    if (!std::filesystem::exists(binary)) {
      // Build tree layout: voter/vigil-voter and node/vigil-replica.
      binary = (std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path() /
                "node" / "vigil-replica");
    }
  }
  std::FILE* in = std::fopen(j.input.c_str(), "rb");
  if (in == nullptr) {
    fmt::print(stderr, "error: --input '{}': {}\n", j.input, std::strerror(errno));
    return 2;
  }
  std::FILE* out = j.output == "-" ? stdout : std::fopen(j.output.c_str(), "wb");
  if (out == nullptr) {
    fmt::print(stderr, "error: --output '{}': {}\n", j.output, std::strerror(errno));
    return 2;
  }
  auto t = transport::VerbsTransport::Open({.device = j.device});
  if (!t.ok()) {
    fmt::print(stderr, "error: {}\n", t.status().ToString());
    return 1;
  }
  transport::BootstrapServer server(**t, "voter", transport::ConnectionOptions{});
  if (Status st = server.Start(j.listen); !st.ok()) {
    fmt::print(stderr, "error: --listen: {}\n", st.ToString());
    return 2;
  }
  const std::string host = j.listen.substr(0, j.listen.rfind(':'));
  std::vector<std::string> common = {"--workload", j.workload, "--susan-mode", j.susan_mode,
                                     "--signal",   j.method,   "--log-level",  "warn"};
  if (!j.device.empty()) common.insert(common.end(), {"--device", j.device});
  g.channel.rpc_listen = host + ":0";
  ProcessLauncher launcher(binary, common, fmt::format("{}:{}", host, server.port()), flip.first,
                           flip.second);
  voter::Group group(g, **t, server, launcher, in, out);
  std::thread faults([&] {
    auto at = std::chrono::steady_clock::now();
    if (kill.second > 0) {
      std::this_thread::sleep_until(at + std::chrono::milliseconds(kill.second));
      log::Get("voter")->warn("fault injection: SIGKILL to replica {}", kill.first);
      group.KillReplica(kill.first);
    }
    if (stop.second > 0) {
      std::this_thread::sleep_until(at + std::chrono::milliseconds(stop.second));
      log::Get("voter")->warn("fault injection: SIGSTOP to replica {}", stop.first);
      launcher.Signal(stop.first, 0, SIGSTOP);
    }
  });
  std::atomic<bool> finished{false};
  std::thread watch([&] {
    while (!finished && !cli::ShutdownRequested()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!finished) group.Cancel();
  });
  const auto t0 = std::chrono::steady_clock::now();
  Result<voter::GroupReport> r = group.Run();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  finished = true;
  faults.join();
  watch.join();
  if (out != stdout) std::fclose(out);
  std::fclose(in);
  if (!r.ok()) {
    fmt::print(stderr, "error: {}\n", r.status().ToString());
    return 1;
  }
  fmt::print(stderr,
             "job: {} {} over {}: {} in {:.2f} s; {} rounds, {} mismatches, {} repairs, {} "
             "rollbacks, {} replacements, {} missed deadlines, {} rejected records, {} output "
             "bytes\n",
             j.mode, j.workload, j.method, r->completed ? "completed" : "FAILED", secs, r->rounds,
             r->mismatches, r->repairs, r->rollbacks, r->replacements, r->missed_deadlines,
             r->rejected_records, r->output_bytes);
  if (!r->completed) {
    fmt::print(stderr, "job failed: {}\n", r->failure);
    return 1;
  }
  return r->exit_code;
}

}  // namespace
}  // namespace vigil

int main(int argc, char** argv) {
  using namespace vigil;
  CLI::App app{"vigil-voter: the voter of replicated jobs"};
  app.require_subcommand(1);
  cli::CommonOptions common;
  cli::AddCommonOptions(app, common);
  JobOptions j;
  auto* run = app.add_subcommand("run", "Run one replicated job with replicas on this host");
  run->add_option("--mode", j.mode, "dmr (detect, roll back) or tmr (out-vote, repair)")
      ->check(CLI::IsMember({"dmr", "tmr"}));
  run->add_option("--signal", j.method, "polling, notify or rpc")
      ->check(CLI::IsMember({"polling", "notify", "rpc"}));
  run->add_option("--workload", j.workload, "crc32 or susan")
      ->check(CLI::IsMember({"crc32", "susan"}));
  run->add_option("--susan-mode", j.susan_mode, "susan: smooth, edges or corners")
      ->check(CLI::IsMember({"smooth", "edges", "corners"}));
  run->add_option("--input", j.input, "job input file")->required();
  run->add_option("--output", j.output, "job output file ('-' = stdout)")->required();
  run->add_option("--listen", j.listen, "bootstrap address replicas connect to (host:port)");
  run->add_option("--device", j.device, "RDMA device (default: first with an ACTIVE port)");
  run->add_option("--deadline-ms", j.deadline_ms, "a replica's deadline for its next event")
      ->check(CLI::Range(10u, 3600000u));
  run->add_option("--replica-binary", j.replica_binary,
                  "vigil-replica to start (default: next "
                  "to vigil-voter)");
  run->add_option("--inject-bitflip", j.flip, "REPLICA:STEP flip a state bit before that step");
  run->add_option("--inject-kill", j.kill, "REPLICA:MS SIGKILL the replica after MS ms");
  run->add_option("--inject-stop", j.stop, "REPLICA:MS SIGSTOP (hang) the replica after MS ms");
  return cli::Run(app, common, argc, argv, [&]() -> int { return RunJob(j); });
}
