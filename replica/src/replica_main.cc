// vigil-replica: runs one replica of a workload (started by a launcher with the voter's address
// and this incarnation's service), or the same workload unreplicated as the reference.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "vigil/common/cli.h"
#include "vigil/common/logging.h"
#include "vigil/common/registers.h"
#include "vigil/replica/process.h"
#include "vigil/replica/runner.h"
#include "vigil/run/program.h"
#include "vigil/security/nonce.h"
#include "vigil/security/tls_flags.h"
#include "vigil/transport/verbs.h"
#include "vigil/workloads/workloads.h"

namespace {

// Runtime fault injection (vigil-node's bitflip): SIGUSR1 carries the bit number; the handler
// only XORs one byte of the state region, which is async-signal-safe.
std::atomic<vigil::replica::ChannelContext*> g_context{nullptr};

void OnFlipSignal(int, siginfo_t* info, void*) {
  vigil::replica::ChannelContext* ctx = g_context.load();
  if (ctx != nullptr && info != nullptr) {
    ctx->FlipStateBit(reinterpret_cast<uintptr_t>(info->si_value.sival_ptr));
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace vigil;
  CLI::App app{
      "vigil-replica: one replica of a replicated workload (normally started by "
      "vigil-voter or vigil-node), or the workload unreplicated (--unreplicated)"};
  cli::CommonOptions common;
  cli::AddCommonOptions(app, common);
  vigil::security::TlsOptions tls;
  vigil::security::AddTlsOptions(app, tls);
  replica::ReplicaRunOptions o;
  std::string workload = "crc32", susan_mode = "edges", method = "polling", device;
  bool unreplicated = false;
  std::string fault;
  uint64_t fault_step = 0, flip_bit = 0;
  uint32_t verdict_timeout_ms = 120000;
  std::vector<std::string> exec_argv, exec_env;
  std::string exec_path;
  app.add_option("--workload", workload,
                 "crc32, susan, or exec (vigil-run: the unmodified program given after --)")
      ->check(CLI::IsMember({"crc32", "susan", "exec"}));
  app.add_option("--exec-env", exec_env,
                 "exec: one NAME=value of the program's environment (repeat; the program gets "
                 "exactly these)");
  app.add_option("--exec-path", exec_path,
                 "exec: the file to execute (default: the program's name, looked up in PATH); "
                 "vigil-node passes what its --exec-allow list resolved");
  app.footer(
      "exec: vigil-replica [OPTIONS] --workload exec -- PROGRAM [ARGS...]\n"
      "Environment: VIGIL_REPLICA_NONCE, the voter's nonce for this incarnation (vigil-node and "
      "vigil-voter set it; the replica presents it to the voter and removes it from its "
      "environment).");
  exec_argv = cli::TakeProgramArguments(argc, argv);
  app.add_option("--susan-mode", susan_mode, "susan: smooth, edges or corners")
      ->check(CLI::IsMember({"smooth", "edges", "corners"}));
  app.add_flag("--unreplicated", unreplicated,
               "Run the workload alone: input from stdin, output to stdout");
  app.add_option("--voter", o.voter, "host:port of the voter's bootstrap server");
  app.add_option("--service", o.service, "the voter's service name for this incarnation");
  app.add_option("--group", o.group, "replica group id");
  app.add_option("--replica", o.replica, "replica index in the group");
  app.add_option("--incarnation", o.incarnation, "incarnation (> 0: joins a running group)");
  app.add_option("--signal", method, "polling, notify or rpc")
      ->check(CLI::IsMember({"polling", "notify", "rpc"}));
  app.add_option("--rpc-target", o.rpc_target, "rpc: host:port the voter serves events on");
  app.add_option("--max-payload", o.channel.max_payload, "record payload bytes (as the voter's)");
  app.add_option("--device", device, "RDMA device (default: first with an ACTIVE port)");
  app.add_option("--verdict-timeout-ms", verdict_timeout_ms, "longest wait for one verdict")
      ->check(CLI::Range(1u, 3600000u));
  app.add_option("--fault", fault,
                 "fault injection: flip (a state bit), crash (SIGKILL itself) or hang (SIGSTOP "
                 "itself) before --fault-step; exec: flip (a bit of data read), flip-result (of "
                 "a call's result register), flip-memory (a bit of writable memory), "
                 "flip-REGISTER (rbx, r12, rip...: of that register, through ptrace), crash or "
                 "hang, at that intercepted system call")
      ->check([](const std::string& f) {
        return IsExecFault(f) ? std::string()
                              : fmt::format(
                                    "fault '{}': flip, crash, hang, flip-result, flip-memory or "
                                    "flip-REGISTER "
                                    "with REGISTER one of {}",
                                    f, fmt::join(kFlippableRegisters, ", "));
      });
  app.add_option("--fault-step", fault_step,
                 "fault injection: before this step (>= 1); exec: at this intercepted system "
                 "call")
      ->check(CLI::Range(uint64_t{1}, UINT64_MAX));
  app.add_option("--flip-bit", flip_bit, "fault injection: which bit of the state region");
  return cli::Run(app, common, argc, argv, [&]() -> int {
    if (int rc = vigil::security::UseTlsFlags(tls); rc != 0) return rc;
    if ((workload == "exec") != !exec_argv.empty()) {
      fmt::print(stderr, "error: --workload exec needs the program after --, and only it\n");
      return 2;
    }
    run::ExecOptions exec{.argv = exec_argv,
                          .program = exec_path,
                          .env = exec_env,
                          .fault_at = fault.empty() ? 0 : fault_step,
                          .flip_bit = flip_bit};
    if (workload == "exec" && unreplicated) {
      fmt::print(stderr, "error: --workload exec runs only as a replica (not --unreplicated)\n");
      return 2;
    }
    if (!FaultFits(workload, fault) ||
        (workload == "exec" && !fault.empty() && !run::SetExecFault(fault, exec))) {
      fmt::print(stderr, "error: --fault '{}' does not fit --workload {} ({})\n", fault, workload,
                 kFaultChoices);
      return 2;
    }
    auto program = workload == "exec" ? Result<std::unique_ptr<replica::Program>>(
                                            std::make_unique<run::ExecProgram>(std::move(exec)))
                                      : workloads::MakeWorkload(workload, susan_mode);
    if (!program.ok()) {
      fmt::print(stderr, "error: {}\n", program.status().ToString());
      return 2;
    }
    if (unreplicated) {
      auto ctx = replica::LocalContext::Create((*program)->state_bytes(), stdin, stdout);
      Status st = ctx.ok() ? replica::RunProgram(**program, **ctx) : ctx.status();
      std::fflush(stdout);
      if (!st.ok()) {
        fmt::print(stderr, "error: {}\n", st.ToString());
        return 1;
      }
      return 0;
    }
    if (o.voter.empty() || o.service.empty()) {
      fmt::print(stderr, "error: --voter and --service are required (or --unreplicated)\n");
      return 2;
    }
    // The voter's nonce for this incarnation comes in the environment (not on the command line,
    // which every local user can read), and leaves it at once.
    if (const char* nonce = std::getenv(replica::kNonceEnv); nonce != nullptr) o.nonce = nonce;
    unsetenv(replica::kNonceEnv);
    if (Status st = security::CheckNonce(replica::kNonceEnv, o.nonce); !st.ok()) {
      fmt::print(stderr,
                 "error: {} (vigil-node and vigil-voter set it when they start a replica)\n",
                 st.ToString());
      return 2;
    }
    auto m = channel::ParseMethod(method);
    o.channel.method = *m;
    o.verdict_timeout = std::chrono::milliseconds(verdict_timeout_ms);
    auto t = transport::VerbsTransport::Open({.device = device});
    if (!t.ok()) {
      fmt::print(stderr, "error: {}\n", t.status().ToString());
      return 1;
    }
    // Fault injection wraps the program: before step `fault_step` of this incarnation it flips
    // a bit of the state region the voter compares, or the process kills or stops itself.
    replica::HookedProgram faulty(
        std::move(*program), [&](uint64_t step, replica::ReplicaContext& c) -> Status {
          if (step != fault_step || fault.empty() || workload == "exec") return Status::Ok();
          log::Get("replica")->warn(
              "fault injection: {} before step {}",
              fault == "flip" ? fmt::format("flipping state bit {}", flip_bit) : fault, step);
          log::Get("replica")->flush();
          if (fault == "flip") static_cast<replica::ChannelContext&>(c).FlipStateBit(flip_bit);
          if (fault == "crash") raise(SIGKILL);
          if (fault == "hang") raise(SIGSTOP);
          return Status::Ok();
        });
    struct sigaction sa {};
    sa.sa_sigaction = OnFlipSignal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, nullptr);
    Status st =
        replica::RunReplica(**t, o, faulty, [](replica::ChannelContext& ctx) { g_context = &ctx; });
    g_context = nullptr;
    if (!st.ok()) {
      log::Get("replica")->error("replica {} of group {}: {}", o.replica, o.group, st.ToString());
      return 1;
    }
    return 0;
  });
}
