// vigil-voter: runs a replicated job. `vigil-voter run` starts the group's replicas as
// vigil-replica processes on this host (a local launcher; worker-node agents are the other
// launcher), votes on every externalization point, writes the output once and reports what was
// detected and done.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>

#include "vigil/common/cli.h"
#include "vigil/common/cpu.h"
#include "vigil/common/logging.h"
#include "vigil/common/output_file.h"
#include "vigil/replica/context.h"
#include "vigil/replica/process.h"
#include "vigil/security/tls_flags.h"
#include "vigil/transport/bootstrap.h"
#include "vigil/transport/verbs.h"
#include "vigil/voter/group.h"
#include "vigil/voter/launchers.h"

namespace vigil {
namespace {

struct JobOptions {
  std::string mode = "tmr", method = "polling", workload = "crc32", susan_mode = "edges";
  std::string input, output, listen = "127.0.0.1:0", device, replica_binary;
  uint32_t deadline_ms = 20000;
  uint64_t max_region_mib = 1024;
  std::vector<std::string> nodes;  // vigil-node addresses; empty: replicas on this host
  std::vector<int> replica_cpus;   // local replicas: pin replica r to replica_cpus[r % n]
  int voter_cpu = -1;
  std::string flip, crash, hang;  // "R:STEP"
  std::string kill;               // "R:MS"
  std::string stop;               // "R:MS"
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
  g.mode = *voter::ParseMode(j.mode);
  g.channel.method = *channel::ParseMethod(j.method);
  g.deadline = std::chrono::milliseconds(j.deadline_ms);
  g.max_region_bytes = j.max_region_mib << 20;
  g.voter_cpu = j.voter_cpu;
  for (int cpu : j.replica_cpus) {
    if (Status st = CheckCpu(cpu); !st.ok()) {
      fmt::print(stderr, "error: --replica-cpus: {}\n", st.message());
      return 2;
    }
  }
  if (Status st = j.voter_cpu < 0 ? Status::Ok() : CheckCpu(j.voter_cpu); !st.ok()) {
    fmt::print(stderr, "error: --voter-cpu: {}\n", st.message());
    return 2;
  }
  const auto n = static_cast<uint16_t>(voter::ReplicasOf(g.mode));
  std::pair<uint16_t, uint64_t> flip{0, 0}, crash{0, 0}, hang{0, 0}, kill{0, 0}, stop{0, 0};
  for (auto [flag, value, out] :
       {std::tuple{"--inject-bitflip", &j.flip, &flip},
        std::tuple{"--inject-crash", &j.crash, &crash}, std::tuple{"--inject-hang", &j.hang, &hang},
        std::tuple{"--inject-kill", &j.kill, &kill}, std::tuple{"--inject-stop", &j.stop, &stop}}) {
    if (value->empty()) continue;
    auto f = ParseFault(flag, *value, n);
    if (!f.ok()) {
      fmt::print(stderr, "error: {}\n", f.status().message());
      return 2;
    }
    *out = *f;
  }
  // Killing or stopping a replica on a node is InjectFault, which a node with TLS grants only to
  // operators: say so now rather than fail in the middle of the job.
  if (!j.nodes.empty() && (kill.second != 0 || stop.second != 0) && security::ProcessTls().tls()) {
    fmt::print(stderr,
               "error: --inject-kill and --inject-stop on worker nodes need an operator's "
               "certificate, not this voter's: inject with `vigilctl --tls-dir OPERATOR_DIR --node "
               "HOST:PORT inject kill|stop ...` instead\n");
    return 2;
  }
  // One fault armed at start-up (at a step); kill/stop are sent from outside at a time.
  std::string armed;
  std::pair<uint16_t, uint64_t> armed_at{0, 0};
  for (auto [name, f] : {std::pair{"flip", flip}, {"crash", crash}, {"hang", hang}}) {
    if (f.second == 0) continue;
    if (!armed.empty()) {
      fmt::print(stderr,
                 "error: --inject-bitflip, --inject-crash and --inject-hang: one at a time\n");
      return 2;
    }
    armed = name;
    armed_at = f;
  }
  std::FILE* in = std::fopen(j.input.c_str(), "rb");
  if (in == nullptr) {
    fmt::print(stderr, "error: --input '{}': {}\n", j.input, std::strerror(errno));
    return 2;
  }
  // The output appears whole when the job completes; a failed job leaves what was there.
  Result<OutputFile> output = OutputFile::Open(j.output);
  if (!output.ok()) {
    fmt::print(stderr, "error: --output '{}': {}\n", j.output, output.status().message());
    return 2;
  }
  std::FILE* out = output->get();
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
  g.channel.rpc_listen = host + ":0";
  voter::ReplicaProgram program{.signal = j.method,
                                .workload = j.workload,
                                .susan_mode = j.susan_mode,
                                .voter = fmt::format("{}:{}", host, server.port()),
                                .fault = armed,
                                .fault_replica = armed_at.first,
                                .fault_step = armed_at.second,
                                .flip_bit = replica::kStateMetaBytes * 8 + 3};
  std::unique_ptr<voter::Launcher> launcher;
  if (j.nodes.empty()) {
    launcher = std::make_unique<voter::LocalLauncher>(
        j.replica_binary.empty() ? replica::DefaultReplicaBinary() : j.replica_binary, program,
        j.device, j.replica_cpus);
  } else {
    if (j.nodes.size() < n) {
      log::Get("voter")->warn("{} worker nodes for {} replicas: some replicas share a node",
                              j.nodes.size(), n);
    }
    launcher = std::make_unique<voter::NodeLauncher>(j.nodes, program);
  }
  voter::Group group(g, **t, server, *launcher, in, out);
  std::atomic<bool> finished{false};
  std::thread faults([&] {
    const auto at = std::chrono::steady_clock::now();
    for (auto [fault, f] : {std::pair{voter::Fault::kKill, kill}, {voter::Fault::kStop, stop}}) {
      if (f.second == 0) continue;
      while (!finished &&
             std::chrono::steady_clock::now() < at + std::chrono::milliseconds(f.second)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (finished) return;
      if (Status st = group.InjectFault(f.first, fault); !st.ok()) {
        log::Get("voter")->error("fault injection failed: {}", st.ToString());
      }
    }
  });
  double secs = 0;
  Result<voter::GroupReport> r = voter::RunUntilShutdown(group, &secs);
  finished = true;
  faults.join();
  std::fclose(in);
  if (r.ok() && r->completed) {
    if (Status st = output->Commit(); !st.ok()) {
      fmt::print(stderr, "error: --output: {}\n", st.ToString());
      return 1;
    }
  }
  if (!r.ok()) {
    fmt::print(stderr, "error: {}\n", r.status().ToString());
    return 1;
  }
  fmt::print(stderr,
             "job: {} {} over {}: {} in {:.2f} s; {} rounds, {} mismatches, {} repairs, {} "
             "rollbacks, {} replacements, {} caught up ({} events replayed), {} late ballots, {} "
             "crashes, {} missed deadlines, {} rejected records, {} output bytes ({} read from a "
             "replica by RDMA "
             "READ)\n",
             j.mode, j.workload, j.method, r->completed ? "completed" : "FAILED", secs, r->rounds,
             r->mismatches, r->repairs, r->rollbacks, r->replacements, r->catch_ups, r->replayed,
             r->late_ballots, r->crashes, r->missed_deadlines, r->rejected_records, r->output_bytes,
             r->aside_bytes);
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
  vigil::security::TlsOptions tls;
  vigil::security::AddTlsOptions(app, tls);
  JobOptions j;
  auto* run = app.add_subcommand("run", "Run one replicated job with replicas on this host");
  run->add_option("--mode", j.mode,
                  "dmr (detect, roll back), tmr (out-vote, repair) or simplex (one replica, "
                  "nothing compared: a baseline)")
      ->check(CLI::IsMember({"dmr", "tmr", "simplex"}));
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
  run->add_option(
         "--max-region-mib", j.max_region_mib,
         "the largest state, checkpoint or input region a replica may advertise when it connects "
         "(the voter registers a buffer of each size); a larger one is refused")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 20))
      ->capture_default_str();
  run->add_option("--replica-binary", j.replica_binary,
                  "vigil-replica to start without --nodes (default: next to vigil-voter)");
  run->add_option("--nodes", j.nodes,
                  "vigil-node agents (host:port,...) to place replicas on; default: start them "
                  "on this host")
      ->delimiter(',');
  run->add_option("--replica-cpus", j.replica_cpus,
                  "without --nodes: pin replica r to the r-th of these CPUs (e.g. 1,2,3)")
      ->delimiter(',');
  run->add_option("--voter-cpu", j.voter_cpu, "pin the voter's polling thread to this CPU");
  run->add_option("--inject-bitflip", j.flip, "REPLICA:STEP flip a state bit before that step");
  run->add_option("--inject-crash", j.crash, "REPLICA:STEP the replica SIGKILLs itself then");
  run->add_option("--inject-hang", j.hang, "REPLICA:STEP the replica SIGSTOPs itself then");
  run->add_option("--inject-kill", j.kill, "REPLICA:MS SIGKILL the replica after MS ms");
  run->add_option("--inject-stop", j.stop, "REPLICA:MS SIGSTOP (hang) the replica after MS ms");
  return cli::Run(app, common, argc, argv, [&]() -> int {
    if (int rc = vigil::security::UseTlsFlags(tls); rc != 0) return rc;
    return RunJob(j);
  });
}
