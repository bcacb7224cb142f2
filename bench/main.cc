// vigil-bench: vigil's benchmarks. Each prints an environment header, warms up, reports
// percentiles (never a single mean) and can write JSON.
#include "commands.h"
#include "vigil/common/cli.h"

int main(int argc, char** argv) {
  CLI::App app{"vigil-bench: vigil benchmarks (latency percentiles + JSON)"};
  app.require_subcommand(1);
  vigil::cli::CommonOptions common;
  vigil::cli::AddCommonOptions(app, common);

  vigil::bench::TransportBenchOptions t;
  auto* transport = app.add_subcommand(
      "transport",
      "RDMA WRITE ping-pong round trip through vigil's transport vs perftest ib_write_lat");
  transport
      ->add_option("--transport", t.transport,
                   "verbs, or fake (in-process emulation: smoke tests only)")
      ->check(CLI::IsMember({"verbs", "fake"}))
      ->capture_default_str();
  transport->add_option("--device", t.device, "RDMA device (default: first with an ACTIVE port)");
  transport->add_option("--config", t.config, "YAML config with a 'transport:' section")
      ->check(CLI::ExistingFile);
  transport->add_option("--sizes", t.sizes, "Message sizes in bytes (multiples of 8, 8..65536)")
      ->delimiter(',')
      ->capture_default_str();
  transport->add_option("--iters", t.iterations, "Measured iterations per size")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}))
      ->capture_default_str();
  transport->add_option("--warmup", t.warmup, "Warm-up iterations per size (not measured)")
      ->capture_default_str();
  transport
      ->add_option("--perftest", t.perftest, "Run ib_write_lat as baseline: auto, always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  transport->add_option("--json", t.json, "Write results and environment as JSON to this file");

  return vigil::cli::Run(app, common, argc, argv, [&] {
    if (transport->parsed()) return vigil::bench::RunTransportBench(t);
    return 2;
  });
}
