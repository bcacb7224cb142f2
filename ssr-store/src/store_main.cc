// vigil-ssr-store: the SSR store daemon (runs on a resilient node). Holds the arena of Server
// State Regions and grants servers access to one client's SSR at a time over RDMA. Stops on
// SIGINT/SIGTERM, revoking every grant; with --arena-file the SSRs survive a restart.
#include <fmt/format.h>

#include <thread>

#include "vigil/common/cli.h"
#include "vigil/common/logging.h"
#include "vigil/security/tls_flags.h"
#include "vigil/ssr/store.h"
#include "vigil/transport/bootstrap.h"
#include "vigil/transport/verbs.h"

int main(int argc, char** argv) {
  using namespace vigil;
  CLI::App app{"vigil-ssr-store: remote Server State Regions for restartable servers, over RDMA"};
  cli::CommonOptions common;
  cli::AddCommonOptions(app, common);
  vigil::security::TlsOptions tls;
  vigil::security::AddTlsOptions(app, tls);
  ssr::StoreOptions o;
  std::string listen = "127.0.0.1:7740";
  std::string device;
  size_t arena_mib = o.arena_bytes >> 20;
  app.add_option("--listen", listen, "host:port servers connect to (port 0: any; printed)")
      ->capture_default_str();
  app.add_option("--device", device, "RDMA device (default: the first with an ACTIVE port)");
  app.add_option("--arena-mib", arena_mib, "size of the SSR arena in MiB")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--capacity", o.capacity,
                 "payload bytes per SSR slot (every SSR holds two slots of this size)")
      ->check(CLI::Range(1u, 64u << 20))
      ->capture_default_str();
  app.add_option("--max-services", o.max_services, "services the arena can hold")
      ->check(CLI::Range(1u, 4096u))
      ->capture_default_str();
  app.add_option("--max-ssrs-per-service", o.max_ssrs_per_service,
                 "SSRs one service may hold; more is refused with RESOURCE_EXHAUSTED (0: no quota "
                 "but the arena's size)")
      ->capture_default_str();
  app.add_option("--max-sessions", o.max_sessions,
                 "server sessions open at once (each a queue pair and a thread); more are refused "
                 "with RESOURCE_EXHAUSTED")
      ->check(CLI::Range(1u, 65536u))
      ->capture_default_str();
  app.add_option("--probe-idle-ms", o.probe_idle_ms,
                 "probe a session silent this long (a zero-length RDMA WRITE its server's NIC "
                 "acknowledges); one whose server is gone ends and its grants are revoked (0: "
                 "never probe)")
      ->capture_default_str();
  app.add_option("--arena-file", o.arena_file,
                 "keep the arena in this file (mapped shared) so SSRs survive a store restart; "
                 "default: anonymous memory");
  app.add_option("--name", o.node_name, "this store's name in logs and to the servers it serves")
      ->check(cli::PrintableName(transport::kMaxNodeNameLength))
      ->capture_default_str();
  return cli::Run(app, common, argc, argv, [&]() -> int {
    if (int rc = vigil::security::UseTlsFlags(tls); rc != 0) return rc;
    o.arena_bytes = arena_mib << 20;
    auto t = transport::VerbsTransport::Open({.device = device});
    if (!t.ok()) {
      fmt::print(stderr, "error: {}\n", t.status().ToString());
      return 1;
    }
    auto store = ssr::Store::Create(**t, o);
    if (!store.ok()) {
      fmt::print(stderr, "error: {}\n", store.status().ToString());
      return 1;
    }
    transport::BootstrapServer server(**t, o.node_name, transport::ConnectionOptions{});
    (*store)->Attach(server);
    if (Status st = server.Start(listen); !st.ok()) {
      fmt::print(stderr, "error: --listen: {}\n", st.ToString());
      return 2;
    }
    const auto s = (*store)->Stats();
    fmt::print(
        "vigil-ssr-store '{}' on {} listening on port {}: {} SSRs of {} bytes ({} bytes of "
        "overhead per client)\n",
        o.node_name, (*t)->Describe(), server.port(), s.entries, o.capacity, s.overhead_bytes);
    std::fflush(stdout);
    while (!cli::ShutdownRequested()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server.Shutdown();
    (*store)->Shutdown();
    const auto f = (*store)->Stats();
    log::Get("ssr-store")
        ->info(
            "stopped: {} SSRs in use, {} grants made, {} revoked by a later grant, {} "
            "sessions broken, {} malformed requests",
            f.used, f.grants_total, f.revoked_by_steal, f.sessions_broken, f.bad_requests);
    return 0;
  });
}
