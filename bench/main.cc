// vigil-bench: vigil's benchmarks. Each prints an environment header, warms up, reports
// percentiles (never a single mean) next to a baseline measured in the same run, and can write
// JSON.
#include <fmt/format.h>

#include "commands.h"
#include "vigil/common/cli.h"
#include "vigil/security/tls_flags.h"

namespace {

void AddCommon(CLI::App* cmd, vigil::bench::CommonBenchOptions& c) {
  cmd->add_option("--transport", c.transport,
                  "verbs, or fake (in-process emulation: smoke tests only)")
      ->check(CLI::IsMember({"verbs", "fake"}))
      ->capture_default_str();
  cmd->add_option("--device", c.device, "RDMA device (default: first with an ACTIVE port)");
  cmd->add_option("--config", c.config, "YAML config with a 'transport:' section")
      ->check(CLI::ExistingFile);
  cmd->add_option("--iters", c.iterations, "Measured iterations per size")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}))
      ->capture_default_str();
  cmd->add_option("--warmup", c.warmup, "Warm-up iterations per size (not measured)")
      ->capture_default_str();
  cmd->add_option("--perftest", c.perftest, "Run ib_write_lat as baseline: auto, always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  cmd->add_option("--pairs", c.pairs,
                  "Rounds per size in which vigil and its baseline alternate (--iters is split "
                  "among them; the ratio is the median of the rounds' ratios)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->add_option("--json", c.json, "Write results and environment as JSON to this file");
}

// A comma-separated option whose every item must be one of `members`.
void AddList(CLI::App* cmd, const std::string& name, std::vector<std::string>& values,
             const std::string& help, const std::vector<std::string>& members) {
  cmd->add_option(name, values, help)
      ->delimiter(',')
      ->check(CLI::IsMember(members))
      ->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "vigil-bench: vigil benchmarks (latency percentiles + JSON, baseline in the same run)"};
  app.require_subcommand(1);
  vigil::cli::CommonOptions common;
  vigil::cli::AddCommonOptions(app, common);

  vigil::bench::TransportBenchOptions t;
  auto* transport = app.add_subcommand(
      "transport",
      "RDMA WRITE ping-pong round trip through vigil's transport vs perftest ib_write_lat");
  AddCommon(transport, t.common);
  transport->add_option("--sizes", t.sizes, "Message sizes in bytes (multiples of 8, 8..65536)")
      ->delimiter(',')
      ->capture_default_str();

  vigil::bench::TlsBenchOptions tls_bench;
  tls_bench.common.iterations = 2000;
  tls_bench.common.warmup = 200;
  auto* tls_cmd = app.add_subcommand(
      "tls",
      "What mutual TLS costs the control plane: bootstrap connects and gRPC round trips, "
      "plaintext vs TLS in turn in the same run (the RDMA data path never passes through TLS)");
  AddCommon(tls_cmd, tls_bench.common);
  tls_cmd->remove_option(tls_cmd->get_option("--perftest"));  // its baseline is plaintext
  tls_cmd->remove_option(tls_cmd->get_option("--pairs"));
  tls_cmd->add_option("--sizes", tls_bench.sizes, "rpc payload sizes in bytes")
      ->delimiter(',')
      ->check(CLI::Range(1u, 65536u))
      ->capture_default_str();
  tls_cmd->add_option("--connects", tls_bench.connects, "bootstrap connects per mode")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();

  vigil::bench::ChannelBenchOptions ch;
  auto* channel = app.add_subcommand(
      "channel",
      "Signalling method event -> verdict round trip (polling | notify | rpc) vs a baseline");
  AddCommon(channel, ch.common);
  channel
      ->add_option("--method", ch.method,
                   "polling (signal rings), notify (SEND + sleep) or rpc (gRPC call)")
      ->check(CLI::IsMember({"polling", "notify", "rpc"}))
      ->capture_default_str();
  channel->add_option("--sizes", ch.sizes, "Event payload sizes in bytes")
      ->delimiter(',')
      ->capture_default_str();
  channel->add_option("--slots", ch.slots, "Ring slots (power of two) or posted receives")
      ->check(CLI::Range(1u, 16384u))
      ->capture_default_str();

  vigil::bench::SignalBenchOptions sig;
  sig.common.iterations = 2000;
  sig.common.warmup = 200;
  auto* signal = app.add_subcommand(
      "signal",
      "Replicated execution through the voter: event -> verdict round trip per method x DMR/TMR "
      "x size, and crc32/susan overhead vs unreplicated");
  AddCommon(signal, sig.common);
  AddList(signal, "--methods", sig.methods, "Signalling methods: polling,notify,rpc",
          {"polling", "notify", "rpc"});
  AddList(signal, "--modes", sig.modes, "simplex,dmr,tmr", {"simplex", "dmr", "tmr"});
  signal->add_option("--sizes", sig.sizes, "Event argument sizes in bytes")
      ->delimiter(',')
      ->capture_default_str();
  signal
      ->add_option("--workloads", sig.workloads,
                   "Workloads for the overhead table: crc32,susan (or 'none')")
      ->delimiter(',')
      ->check(CLI::IsMember({"crc32", "susan", "none"}))
      ->capture_default_str();
  signal->add_option("--crc32-mib", sig.crc32_mib, "crc32 input size in MiB")
      ->check(CLI::Range(1u, 4096u))
      ->capture_default_str();
  signal
      ->add_option("--runs", sig.runs,
                   "Runs per workload overhead row; each column reports the median of the runs")
      ->check(CLI::Range(1u, 100u))
      ->capture_default_str();
  signal
      ->add_option("--spin-us", sig.spin_us,
                   "Polling waits spin this long before yielding (0: spin forever)")
      ->capture_default_str();

  signal
      ->add_option("--max-lag", sig.max_lag,
                   "TMR: agreed events a lagging replica may owe while the first two matching "
                   "ballots decide (0: every round waits for all three)")
      ->capture_default_str();
  signal->add_flag("--pin", sig.pin,
                   "Pin the voter's polling thread to CPU 0 and replica i to CPU 1 + i mod "
                   "(cores - 1)");

  vigil::bench::RunBenchOptions run;
  auto* run_cmd = app.add_subcommand(
      "run",
      "vigil-run: unmodified programs (sha256sum, cksum, sort, gzip) replicated per method x "
      "mode vs the plain program, and system calls per second handled by the voter");
  AddCommon(run_cmd, run.common);
  run_cmd->remove_option(run_cmd->get_option("--iters"));
  run_cmd->remove_option(run_cmd->get_option("--warmup"));
  run_cmd->remove_option(run_cmd->get_option("--perftest"));  // the baseline is the plain run
  run_cmd->remove_option(run_cmd->get_option("--pairs"));
  AddList(run_cmd, "--methods", run.methods, "Signalling methods: polling,notify,rpc",
          {"polling", "notify", "rpc"});
  AddList(run_cmd, "--modes", run.modes, "simplex,dmr,tmr", {"simplex", "dmr", "tmr"});
  AddList(run_cmd, "--programs", run.programs, "sha256sum,cksum,sort,gzip",
          {"sha256sum", "cksum", "sort", "gzip"});
  AddList(run_cmd, "--executors", run.executors,
          "where the agreed calls run: process (vigil-executor, confined, as vigil-run does; "
          "run as root it keeps root's uid here, never its capabilities) and in-process (the "
          "executor in the voter's process: what the separate process costs), interleaved",
          {"process", "in-process"});
  run_cmd->add_option("--input-mib", run.input_mib, "size of the generated text input")
      ->check(CLI::Range(1u, 1024u))
      ->capture_default_str();
  run_cmd->add_option("--repeats", run.repeats, "plain runs per program (the fastest counts)")
      ->check(CLI::Range(1u, 100u))
      ->capture_default_str();
  run_cmd->add_option("--spin-us", run.spin_us, "polling waits spin this long before yielding")
      ->capture_default_str();

  vigil::bench::FaultsBenchOptions faults;
  auto* faults_cmd = app.add_subcommand(
      "faults",
      "Fault-injection campaign: one fault per replicated job (a state bit, a crash, a bit of "
      "data, of a register or anywhere in a program's memory), each classified as masked, "
      "corrected, rolled back, recovered, failed closed or silent data corruption (SDC); exits "
      "1 on any SDC");
  AddCommon(faults_cmd, faults.common);
  faults_cmd->remove_option(faults_cmd->get_option("--iters"));
  faults_cmd->remove_option(faults_cmd->get_option("--warmup"));
  faults_cmd->remove_option(faults_cmd->get_option("--perftest"));
  faults_cmd->remove_option(faults_cmd->get_option("--pairs"));
  faults_cmd->add_option("--injections", faults.injections, "faults to inject (one job each)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}))
      ->capture_default_str();
  faults_cmd->add_option("--seed", faults.seed, "campaign seed: every injection derives from it")
      ->capture_default_str();
  faults_cmd
      ->add_option("--only", faults.only,
                   "run only these injections of the campaign (N[,N...]: to reproduce them)")
      ->delimiter(',');
  AddList(faults_cmd, "--workloads", faults.workloads, "crc32,susan,sha256sum,sort,gzip,kv",
          {"crc32", "susan", "sha256sum", "sort", "gzip", "kv"});
  AddList(faults_cmd, "--modes", faults.modes, "dmr,tmr", {"dmr", "tmr"});
  AddList(faults_cmd, "--methods", faults.methods, "Signalling methods: polling,notify,rpc",
          {"polling", "notify", "rpc"});
  faults_cmd
      ->add_option("--kinds", faults.kinds,
                   "fault kinds (default: all that fit): state, crash, hang (crc32, susan); "
                   "data, result, register, memory (programs); record-corrupt, record-drop "
                   "(replicated workloads; polling and notify); ssr-slot (kv)")
      ->delimiter(',')
      ->check(CLI::IsMember({"state", "crash", "hang", "data", "result", "register", "memory",
                             "record-corrupt", "record-drop", "ssr-slot"}));
  faults_cmd->add_option("--input-kib", faults.input_kib, "crc32's and the programs' input size")
      ->check(CLI::Range(1u, 1048576u))
      ->capture_default_str();
  faults_cmd->add_option("--deadline-ms", faults.deadline_ms, "a replica's deadline per event")
      ->check(CLI::Range(100u, 600000u))
      ->capture_default_str();

  vigil::bench::SsrBenchOptions ssr;
  ssr.common.iterations = 2000;
  ssr.common.warmup = 200;
  auto* ssr_cmd = app.add_subcommand(
      "ssr",
      "Restartable servers: protected call latency with vs without SSR (default), or, with "
      "--kv/--lock, a kill loop counting client-visible errors, lost and duplicated operations "
      "and recovery times");
  AddCommon(ssr_cmd, ssr.common);
  ssr_cmd->remove_option(
      ssr_cmd->get_option("--perftest"));  // its baseline is a server without SSR
  ssr_cmd->remove_option(ssr_cmd->get_option("--pairs"));
  ssr_cmd->add_option("--kv", ssr.kv, "host:port of a supervised kv vigil-server (kill loop)");
  ssr_cmd->add_option("--lock", ssr.lock,
                      "host:port of a supervised lock vigil-server (kill loop)");
  ssr_cmd->add_option("--clients", ssr.clients, "client threads per service")
      ->check(CLI::Range(1u, 256u))
      ->capture_default_str();
  ssr_cmd->add_option("--duration-s", ssr.duration_s, "length of the kill loop")
      ->check(CLI::Range(1u, 86400u))
      ->capture_default_str();
  ssr_cmd->add_option("--kill-min-ms", ssr.kill_min_ms, "shortest time between two kills")
      ->check(CLI::Range(10u, 3600000u))
      ->capture_default_str();
  ssr_cmd->add_option("--kill-max-ms", ssr.kill_max_ms, "longest time between two kills")
      ->check(CLI::Range(10u, 3600000u))
      ->capture_default_str();
  ssr_cmd->add_flag("!--no-kill", ssr.kill, "run the clients without killing servers");
  // The kill loop talks to daemons elsewhere: with TLS, it probes their Health with its own
  // certificate (an operator's) and its client threads call as clients.
  vigil::security::TlsOptions ssr_tls;
  vigil::security::AddTlsOptions(*ssr_cmd, ssr_tls);
  ssr_cmd->add_option("--client-tls-dir", ssr.client_tls_dirs,
                      "kill loop with TLS: a client certificate's directory (ca.pem, cert.pem, "
                      "key.pem; vigil://client/ID) per client thread, the thread acting as ID; "
                      "repeat --clients times (--tls-dir: the bench's own, an operator's, for "
                      "the servers' Health)");
  ssr_cmd
      ->add_option("--call-deadline-ms", ssr.call_deadline_ms,
                   "kill loop: how long a client call may stay suspended before it is an error")
      ->check(CLI::Range(100u, 3600000u))
      ->capture_default_str();
  ssr_cmd
      ->add_option("--kills", ssr.kills,
                   "kill loop: stop after this many strikes (SIGKILL or SIGSTOP), each awaited "
                   "until a new instance answers; 0: strike until --duration-s")
      ->capture_default_str();
  ssr_cmd
      ->add_option("--hang-percent", ssr.hang_percent,
                   "kill loop: the percentage of strikes that SIGSTOP the server (a hang its "
                   "supervisor's health probe must end) instead of SIGKILLing it")
      ->check(CLI::Range(0u, 100u))
      ->capture_default_str();
  ssr_cmd->add_option("--seed", ssr.seed, "random seed (kill times, client operations)")
      ->capture_default_str();
  ssr_cmd
      ->add_option("--spin-us", ssr.spin_us,
                   "latency: the server polls for the store's answers this long before sleeping")
      ->capture_default_str();

  app.footer(
      "Every benchmark but the ssr kill loop runs both of its ends in this process: their gRPC "
      "ports (bootstrap, rpc signalling) listen on 127.0.0.1 only, in plaintext, as with "
      "--insecure (the RDMA data path never passes through them; `tls` measures what TLS adds). "
      "The kill loop (ssr --kv/--lock) talks to daemons: it takes --tls-dir or --insecure.");
  return vigil::cli::Run(app, common, argc, argv, [&] {
    const bool kill_loop = ssr_cmd->parsed() && (!ssr.kv.empty() || !ssr.lock.empty());
    if (!kill_loop) {
      vigil::security::TlsOptions loopback;
      loopback.insecure = true;
      vigil::security::SetProcessTls(loopback);
    }
    if (ssr_cmd->parsed()) {
      if (ssr.kill_max_ms < ssr.kill_min_ms) {
        fmt::print(stderr, "error: --kill-max-ms {} is below --kill-min-ms {}\n", ssr.kill_max_ms,
                   ssr.kill_min_ms);
        return 2;
      }
      if (ssr.kv.empty() && ssr.lock.empty() &&
          (ssr_tls.configured() || !ssr.client_tls_dirs.empty())) {
        fmt::print(stderr, "error: the TLS flags are for the kill loop (--kv/--lock)\n");
        return 2;
      }
      if (kill_loop) {
        if (int rc = vigil::security::UseTlsFlags(ssr_tls); rc != 0) return rc;
      }
      return vigil::bench::RunSsrBench(ssr);
    }
    if (signal->parsed()) {
      std::erase(sig.workloads, "none");
      return vigil::bench::RunSignalBench(sig);
    }
    if (run_cmd->parsed()) return vigil::bench::RunRunBench(run);
    if (faults_cmd->parsed()) return vigil::bench::RunFaultsBench(faults);
    if (transport->parsed()) return vigil::bench::RunTransportBench(t);
    if (tls_cmd->parsed()) return vigil::bench::RunTlsBench(tls_bench);
    if (channel->parsed()) return vigil::bench::RunChannelBench(ch);
    return 2;
  });
}
