// vigil-server: runs one restartable service (kv or lock) whose per-client state lives in the SSR
// store. Meant to run under a supervisor that restarts it in place (vigil-node --server): a
// restarted instance keeps its --instance name and recovers its clients from their SSRs.
#include <fmt/format.h>
#include <sysexits.h>

#include <thread>

#include "vigil/common/cli.h"
#include "vigil/common/logging.h"
#include "vigil/security/tls_flags.h"
#include "vigil/server/framework.h"
#include "vigil/server/services.h"
#include "vigil/transport/verbs.h"

int main(int argc, char** argv) {
  using namespace vigil;
  CLI::App app{"vigil-server: a restartable server (kv or lock) with state in the SSR store"};
  cli::CommonOptions common;
  cli::AddCommonOptions(app, common);
  vigil::security::TlsOptions tls;
  vigil::security::AddTlsOptions(app, tls);
  std::string service_name = "kv";
  std::string device;
  server::ServerOptions o;
  o.listen = "127.0.0.1:7750";
  o.store.store = "127.0.0.1:7740";
  app.add_option("--service", service_name, "which service to run")
      ->check(CLI::IsMember({"kv", "lock"}))
      ->capture_default_str();
  app.add_option("--listen", o.listen, "host:port clients call (keep it across restarts)")
      ->capture_default_str();
  app.add_option("--store", o.store.store,
                 "host:port of vigil-ssr-store, or 'none': client state only in this process's "
                 "memory, lost when it restarts (a baseline, not a restartable server)")
      ->capture_default_str();
  app.add_option("--instance", o.store.instance,
                 "this server's instance name at the store; a restart must reuse it "
                 "(default: SERVICE-PORT)");
  app.add_option("--device", device, "RDMA device (default: the first with an ACTIVE port)");
  double crash_percent = 0;
  app.add_option("--inject-crash-after-save", crash_percent,
                 "FAULT INJECTION for campaigns: the percentage of executed calls after which the "
                 "server SIGKILLs itself between writing the client's SSR and replying")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  return cli::Run(app, common, argc, argv, [&]() -> int {
    if (int rc = vigil::security::UseTlsFlags(tls); rc != 0) return rc;
    auto service = server::MakeService(service_name);
    if (!service.ok()) {
      fmt::print(stderr, "error: --service: {}\n", service.status().message());
      return 2;
    }
    if (o.store.instance.empty()) {
      o.store.instance =
          fmt::format("{}-{}", service_name, o.listen.substr(o.listen.rfind(':') + 1));
    }
    if (o.store.store == "none") o.store.store.clear();
    o.crash_after_save = crash_percent / 100.0;
    if (crash_percent > 0) {
      log::Get("server")->warn("fault injection: SIGKILL after {}% of SSR writes", crash_percent);
    }
    // Without a store (a baseline) no RDMA is needed.
    std::unique_ptr<transport::Transport> transport;
    if (!o.store.store.empty()) {
      auto t = transport::VerbsTransport::Open({.device = device});
      if (!t.ok()) {
        fmt::print(stderr, "error: {}\n", t.status().ToString());
        return 1;
      }
      transport = std::move(*t);
    }
    auto s = server::RestartableServer::Start(transport.get(), std::move(*service), o);
    if (!s.ok()) {
      fmt::print(stderr, "error: {}\n", s.status().ToString());
      // The store cannot be reached: a temporary failure its supervisor retries for as long as
      // it takes (EX_TEMPFAIL), not one that counts against its restart budget.
      const StatusCode c = s.status().code();
      return c == StatusCode::kUnavailable || c == StatusCode::kDeadlineExceeded ? EX_TEMPFAIL : 1;
    }
    fmt::print("vigil-server {} '{}' listening on port {} (epoch {})\n", service_name,
               o.store.instance, (*s)->port(), (*s)->epoch());
    std::fflush(stdout);
    while (!cli::ShutdownRequested()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (*s)->Shutdown();
    const auto st = (*s)->Stats();
    log::Get("server")->info("stopped: {} calls, {} executed, {} replayed, {} sessions reset",
                             st.calls, st.executed, st.replayed, st.resets);
    return 0;
  });
}
