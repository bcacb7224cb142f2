// `vigil-bench tls`: what mutual TLS costs vigil's control plane, plaintext and TLS measured in
// the same run, sample by sample in turn, on loopback:
//   - bootstrap connect: a replica's Connect to its voter's bootstrap service, each a fresh gRPC
//     channel (with TLS: the handshake, both certificates verified, the caller's role checked),
//     the hello exchange and the queue pair set-up on the benchmark's transport;
//   - rpc round trip: a unary call on an established channel (the rpc method's gRPC echo).
// The RDMA data path (polling and notify signalling, SSR reads and writes) never passes through
// gRPC, so TLS cannot change it: `vigil-bench transport` and `signal` measure it.
#include <fmt/format.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <vector>

#include "environment.h"
#include "grpc_echo.h"
#include "harness.h"
#include "vigil/security/certs.h"
#include "vigil/security/tls.h"

namespace vigil::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

uint64_t NsSince(Clock::time_point t0) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
}

// A throw-away CA and one node certificate (a replica's identity: allowed to Connect and to
// Signal), removed with the object.
class TempCerts {
 public:
  static Result<std::unique_ptr<TempCerts>> Make() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "vigil-bench-tls-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      return ErrnoStatus(StatusCode::kInternal, "mkdtemp for the benchmark's certificates", errno);
    }
    auto c = std::unique_ptr<TempCerts>(new TempCerts(tmpl));
    VIGIL_RETURN_IF_ERROR(security::InitCa(tmpl + "/ca"));
    security::IssueOptions o;
    o.identity = {security::Role::kNode, "bench"};
    VIGIL_RETURN_IF_ERROR(security::IssueCertificate(tmpl + "/ca", o, tmpl + "/node"));
    c->tls.dir = tmpl + "/node";
    return c;
  }
  ~TempCerts() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  security::TlsOptions tls;

 private:
  explicit TempCerts(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

// One mode's ends: a bootstrap server and an echo server, with the same credentials.
struct Ends {
  std::string name;
  security::TlsOptions tls;
  std::unique_ptr<transport::BootstrapServer> bootstrap;
  std::unique_ptr<EchoServer> echo;
  std::mutex mu;
  std::vector<std::unique_ptr<transport::Connection>> accepted;

  Status Start(BenchSetup& setup) {
    bootstrap =
        std::make_unique<transport::BootstrapServer>(*setup.transport, "bench-voter", setup.conn);
    bootstrap->set_tls(tls);
    // The accepted end lives until its dialer has connected (then both are dropped).
    bootstrap->AddService(
        "bench",
        [this](std::unique_ptr<transport::Connection> c,
               const transport::PeerInfo&) -> Result<std::vector<transport::RemoteRegion>> {
          std::lock_guard lock(mu);
          accepted.push_back(std::move(c));
          return std::vector<transport::RemoteRegion>{};
        });
    VIGIL_RETURN_IF_ERROR(bootstrap->Start("127.0.0.1:0"));
    VIGIL_ASSIGN_OR_RETURN(echo, EchoServer::Start(tls));
    return Status::Ok();
  }
  void Stop() {
    echo.reset();
    if (bootstrap) bootstrap->Shutdown();
  }

  Result<uint64_t> Connect(BenchSetup& setup) {
    transport::DialOptions dial;
    dial.target = fmt::format("127.0.0.1:{}", bootstrap->port());
    dial.service = "bench";
    dial.node_name = "bench-replica";
    dial.connection = setup.conn;
    dial.tls = tls;
    const auto t0 = Clock::now();
    VIGIL_ASSIGN_OR_RETURN(auto dialed, transport::Dial(*setup.transport, dial));
    const uint64_t ns = NsSince(t0);
    std::lock_guard lock(mu);
    accepted.clear();
    return ns;
  }

  Result<uint64_t> Call(const vigil::signal::v1::EventRecord& req) {
    auto ns = echo->Call(req);
    if (!ns.ok()) return Unavailable(fmt::format("{}: {}", name, ns.status().message()));
    return ns;
  }
};

struct Measured {
  std::string what;
  uint32_t bytes = 0;
  LatencySummary plain, tls;
};

void PrintRow(const Measured& m) {
  fmt::print("{:<18} {:>6} | {:>8.1f} {:>8.1f} {:>8.1f} | {:>8.1f} {:>8.1f} {:>8.1f} | {:>6.2f}x\n",
             m.what, m.bytes, m.plain.p50_us, m.plain.p99_us, m.plain.max_us, m.tls.p50_us,
             m.tls.p99_us, m.tls.max_us, m.tls.p50_us / m.plain.p50_us);
}

}  // namespace

int RunTlsBench(const TlsBenchOptions& o) {
  auto setup = OpenAndDescribe(o.common);
  if (!setup) return 1;
  auto certs = TempCerts::Make();
  if (!certs.ok()) {
    fmt::print(stderr, "error: {}\n", certs.status().ToString());
    return 1;
  }
  Ends modes[2];
  modes[0].name = "plaintext";
  modes[0].tls.insecure = true;
  modes[1].name = "mutual TLS";
  modes[1].tls = (*certs)->tls;
  for (Ends& e : modes) {
    if (Status st = e.Start(*setup); !st.ok()) {
      fmt::print(stderr, "error: {}: {}\n", e.name, st.ToString());
      return 1;
    }
  }
  auto fail = [&](const Status& st) {
    fmt::print(stderr, "error: {}\n", st.ToString());
    for (Ends& e : modes) e.Stop();
    return 1;
  };
  fmt::print(
      "# plaintext and mutual TLS (EC P-256, a throw-away CA), sample by sample in turn on "
      "loopback; {} bootstrap connects and {} rpc round trips per size after {} warm-up\n",
      o.connects, o.common.iterations, o.common.warmup);
  std::vector<Measured> rows;
  {
    LatencySamples s[2] = {LatencySamples(o.connects), LatencySamples(o.connects)};
    for (uint32_t i = 0; i < o.connects + 5; ++i) {  // 5 unrecorded: first channel set-ups
      for (int m = 0; m < 2; ++m) {
        auto ns = modes[(i + m) % 2].Connect(*setup);  // alternate which mode goes first
        if (!ns.ok()) return fail(ns.status());
        if (i >= 5) s[(i + m) % 2].Record(*ns);
      }
    }
    rows.push_back({"bootstrap connect", 0, s[0].Summarize(), s[1].Summarize()});
  }
  for (uint32_t bytes : o.sizes) {
    vigil::signal::v1::EventRecord req;
    req.set_kind(1);
    req.set_payload(std::string(bytes, 'Z'));
    LatencySamples s[2] = {LatencySamples(o.common.iterations),
                           LatencySamples(o.common.iterations)};
    for (uint64_t i = 0; i < o.common.warmup + o.common.iterations; ++i) {
      req.set_seq(i + 1);
      for (int m = 0; m < 2; ++m) {
        const int mode = static_cast<int>((i + static_cast<uint64_t>(m)) % 2);
        auto ns = modes[mode].Call(req);
        if (!ns.ok()) return fail(ns.status());
        if (i >= o.common.warmup) s[mode].Record(*ns);
      }
    }
    rows.push_back({"rpc round trip", bytes, s[0].Summarize(), s[1].Summarize()});
  }
  for (Ends& e : modes) e.Stop();

  fmt::print("\n{:<18} {:>6} | {:^26} | {:^26} | {:>7}\n", "", "bytes", "plaintext, us",
             "mutual TLS, us", "TLS/");
  fmt::print("{:<18} {:>6} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} | {:>7}\n", "", "", "p50", "p99",
             "max", "p50", "p99", "max", "plain");
  nlohmann::json out = {{"benchmark", "tls"},
                        {"environment", Environment(Describe(*setup))},
                        {"results", nlohmann::json::array()}};
  for (const Measured& m : rows) {
    PrintRow(m);
    out["results"].push_back({{"what", m.what},
                              {"bytes", m.bytes},
                              {"plaintext", SummaryJson(m.plain)},
                              {"tls", SummaryJson(m.tls)},
                              {"tls_over_plaintext_p50", m.tls.p50_us / m.plain.p50_us}});
  }
  fmt::print(
      "(bootstrap connect: a fresh channel each time, so TLS adds its handshake; the RDMA data "
      "path never passes through TLS)\n");
  return o.common.json.empty() ? 0 : WriteJson(o.common.json, out);
}

}  // namespace vigil::bench
