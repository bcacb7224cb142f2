// vigil-client: calls a restartable server (kv or lock) from the command line, one request per
// argument, in order; a restart of the server while it runs shows up as a delay, not an error.
#include <fmt/format.h>

#include "vigil/common/cli.h"
#include "vigil/security/tls_flags.h"
#include "vigil/server/client.h"

int main(int argc, char** argv) {
  using namespace vigil;
  CLI::App app{"vigil-client: send requests to a restartable vigil server"};
  cli::CommonOptions common;
  cli::AddCommonOptions(app, common);
  vigil::security::TlsOptions tls;
  vigil::security::AddTlsOptions(app, tls);
  server::ClientOptions o;
  o.server = "127.0.0.1:7750";
  std::vector<std::string> requests;
  int64_t deadline_ms = o.deadline.count();
  bool bye = false;
  app.add_option("--server", o.server, "host:port of vigil-server")->capture_default_str();
  app.add_option("--client-id", o.client_id,
                 "this client's id; reuse it to continue a session (default: random)");
  app.add_option("--deadline-ms", deadline_ms, "give up on a request after this long")
      ->check(CLI::Range(int64_t{1}, int64_t{3600000}))
      ->capture_default_str();
  app.add_flag("--bye", bye, "end the session afterwards (the server frees its state)");
  app.add_option("requests", requests, "requests, e.g. 'put k v' 'get k' or 'acquire L'")
      ->required();
  return cli::Run(app, common, argc, argv, [&]() -> int {
    if (int rc = vigil::security::UseTlsFlags(tls); rc != 0) return rc;
    o.deadline = std::chrono::milliseconds(deadline_ms);
    auto c = server::Client::Connect(o);
    if (!c.ok()) {
      fmt::print(stderr, "error: {}\n", c.status().ToString());
      return 2;
    }
    int failed = 0;
    for (const auto& r : requests) {
      auto reply = (*c)->Call(r);
      const auto& info = (*c)->last();
      const std::string note = info.attempts > 1
                                   ? fmt::format(" (after {} attempts, {} ms suspended)",
                                                 info.attempts, info.suspended.count() / 1000)
                                   : "";
      if (reply.ok()) {
        fmt::print("{} -> {}{}\n", r, *reply, note);
      } else {
        fmt::print("{} -> error {}{}\n", r, reply.status().ToString(), note);
        failed++;
      }
    }
    if (bye) {
      if (Status st = (*c)->Bye(); !st.ok()) fmt::print(stderr, "error: {}\n", st.ToString());
    }
    fmt::print("client {}\n", (*c)->id());
    return failed == 0 ? 0 : 1;
  });
}
