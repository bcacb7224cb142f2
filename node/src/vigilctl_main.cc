// vigilctl: operator's tool. Talks to vigil-node agents (list their replicas, inject faults) and
// to the SSR store (its arena, services and server sessions), and makes the cluster's
// certificates (certs init, certs issue).
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include "vigil/common/cli.h"
#include "vigil/node/v1/node.grpc.pb.h"
#include "vigil/security/certs.h"
#include "vigil/security/tls_flags.h"
#include "vigil/ssr/v1/store.grpc.pb.h"

namespace pb = vigil::node::v1;

int main(int argc, char** argv) {
  using namespace vigil;
  CLI::App app{
      "vigilctl: inspect vigil-node agents, inject faults into replicas, make certificates"};
  app.require_subcommand(1);
  cli::CommonOptions common;
  cli::AddCommonOptions(app, common);
  security::TlsOptions tls;
  security::AddTlsOptions(app, tls);
  std::string node = "127.0.0.1:7720", fault;
  uint32_t group = 1, replica = 0, incarnation = 0;
  uint64_t bit = 0;
  uint32_t timeout_ms = 5000;
  app.add_option("--node", node, "vigil-node address (host:port)");
  app.add_option("--timeout-ms", timeout_ms, "RPC deadline")->check(CLI::Range(1u, 600000u));
  std::string store = "127.0.0.1:7740";
  app.add_option("--store", store, "vigil-ssr-store address (host:port), for 'store'");
  auto* status = app.add_subcommand("status", "List the node's replica processes");
  auto* store_cmd =
      app.add_subcommand("store", "Show the SSR store's arena, services and server sessions");
  auto* inject = app.add_subcommand("inject", "Inject a fault into one replica process");
  inject
      ->add_option("fault", fault,
                   "kill (SIGKILL), stop (SIGSTOP: hang), cont (SIGCONT), "
                   "bitflip (flip a state bit)")
      ->required()
      ->check(CLI::IsMember({"kill", "stop", "cont", "bitflip"}));
  inject->add_option("--group", group, "replica group");
  inject->add_option("--replica", replica, "replica index")->check(CLI::Range(0u, 2u));
  inject->add_option("--incarnation", incarnation, "incarnation (see 'status')");
  inject->add_option("--bit", bit, "bitflip: which bit of the state region (modulo its size)");
  auto* certs = app.add_subcommand("certs", "Make the cluster's certificates for mutual TLS");
  certs->require_subcommand(1);
  std::string ca_dir, out_dir, role_name, identity_name;
  int days = 0;
  std::vector<std::string> hosts;
  auto* certs_init = certs->add_subcommand(
      "init", "Create the cluster CA in DIR (ca.pem, and ca-key.pem: keep it off the cluster)");
  certs_init->add_option("dir", ca_dir, "Directory for the CA")->required();
  certs_init->add_option("--days", days, "Validity in days (default 3650)")
      ->check(CLI::Range(1, 36500));
  auto* certs_issue = certs->add_subcommand(
      "issue", "Issue a certificate for vigil://ROLE/NAME into --out (cert.pem, key.pem, ca.pem)");
  certs_issue->add_option("ca-dir", ca_dir, "The CA's directory (from certs init)")->required();
  certs_issue->add_option("role", role_name, "voter, node, store, server, operator or client")
      ->required()
      ->check(CLI::IsMember({"voter", "node", "store", "server", "operator", "client"}));
  certs_issue->add_option("name", identity_name, "The holder's name (a server: its service)")
      ->required();
  certs_issue->add_option("--out", out_dir, "Directory to write (used as --tls-dir)")->required();
  certs_issue->add_option("--host", hosts, "A host name or IP address the holder serves on");
  certs_issue->add_option("--days", days, "Validity in days (default 365)")
      ->check(CLI::Range(1, 36500));
  return cli::Run(app, common, argc, argv, [&]() -> int {
    if (*certs) {
      Status st;
      if (*certs_init) {
        st = security::InitCa(ca_dir, days > 0 ? days : 3650);
        if (st.ok()) fmt::print("CA created in {}\n", ca_dir);
      } else {
        security::IssueOptions o;
        o.identity.role = *security::ParseRole(role_name);
        o.identity.name = identity_name;
        o.hosts = hosts;
        if (days > 0) o.days = days;
        st = security::IssueCertificate(ca_dir, o, out_dir);
        if (st.ok()) fmt::print("{} issued into {}\n", o.identity.Uri(), out_dir);
      }
      if (!st.ok()) {
        fmt::print(stderr, "error: {}\n", st.message());
        return st.code() == StatusCode::kInvalidArgument ? 2 : 1;
      }
      return 0;
    }
    if (int rc = security::UseTlsFlags(tls); rc != 0) return rc;
    // The store's or the node's certificate, as each command expects.
    const auto channel = [&](const std::string& target,
                             security::Role role) -> std::shared_ptr<grpc::Channel> {
      auto ch = security::Channel(tls, target, role);
      if (!ch.ok()) {
        fmt::print(stderr, "error: {}\n", ch.status().message());
        return nullptr;
      }
      return *ch;
    };
    if (*store_cmd) {
      auto ch = channel(store, security::Role::kStore);
      if (!ch) return 2;
      auto s = vigil::ssr::v1::SsrStore::NewStub(ch);
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
      vigil::ssr::v1::StatusResponse r;
      grpc::Status st = s->Status(&ctx, vigil::ssr::v1::StatusRequest{}, &r);
      if (!st.ok()) {
        fmt::print(stderr, "error: SSR store {}: {}\n", store, st.error_message());
        return 1;
      }
      fmt::print(
          "SSR store '{}' ({}): {} of {} SSRs in use, {} bytes each ({} payload bytes per slot, "
          "{} bytes of overhead per client){}\n",
          r.name(), store, r.used(), r.entries(), r.ssr_bytes(), r.capacity(),
          r.overhead_bytes_per_client(), r.restored() ? "; restored from its file" : "");
      fmt::print(
          "grants made {}, revoked by a later grant {}, sessions broken {}, malformed "
          "requests {}\n",
          r.grants_total(), r.revoked_by_steal(), r.sessions_broken(), r.bad_requests());
      fmt::print("{:>4} {:<24} {:>8} {:>8}\n", "id", "service", "epoch", "clients");
      for (const auto& v : r.services()) {
        fmt::print("{:>4} {:<24} {:>8} {:>8}\n", v.id(), v.name(), v.epoch(), v.clients());
      }
      fmt::print("{:>8} {:<28} {:<12} {:<20} {:>6}\n", "session", "peer", "service", "instance",
                 "grants");
      for (const auto& v : r.sessions()) {
        fmt::print("{:>8} {:<28} {:<12} {:<20} {:>6}\n", v.id(), v.peer(), v.service(),
                   v.instance(), v.grants());
      }
      return 0;
    }
    auto node_channel = channel(node, security::Role::kNode);
    if (!node_channel) return 2;
    auto stub = pb::NodeAgent::NewStub(node_channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
    if (*status) {
      pb::HealthResponse resp;
      grpc::Status st = stub->Health(&ctx, pb::HealthRequest{}, &resp);
      if (!st.ok()) {
        fmt::print(stderr, "error: node {}: {}\n", node, st.error_message());
        return 1;
      }
      fmt::print("node {} ({}): {} replica processes\n", resp.node(), node, resp.replicas_size());
      fmt::print("{:>6} {:>8} {:>12} {:>8}  {}\n", "group", "replica", "incarnation", "pid",
                 "state");
      for (const auto& r : resp.replicas()) {
        fmt::print("{:>6} {:>8} {:>12} {:>8}  {}\n", r.id().group(), r.id().replica(),
                   r.id().incarnation(), r.pid(), r.state());
      }
      if (resp.servers_size() > 0) {
        fmt::print("{} supervised server(s)\n{:<16} {:>8} {:>9}  {}\n", resp.servers_size(), "name",
                   "pid", "restarts", "state");
        for (const auto& s : resp.servers()) {
          fmt::print("{:<16} {:>8} {:>9}  {}\n", s.name(), s.pid(), s.restarts(),
                     s.gave_up()    ? "gave up (restart budget exhausted)"
                     : s.pid() == 0 ? "restarting"
                                    : "running");
        }
      }
      return 0;
    }
    pb::InjectFaultRequest req;
    req.mutable_id()->set_group(group);
    req.mutable_id()->set_replica(replica);
    req.mutable_id()->set_incarnation(incarnation);
    req.set_kind(fault == "kill"   ? pb::FAULT_KILL
                 : fault == "stop" ? pb::FAULT_STOP
                 : fault == "cont" ? pb::FAULT_CONT
                                   : pb::FAULT_BITFLIP);
    req.set_bit(bit);
    pb::InjectFaultResponse resp;
    grpc::Status st = stub->InjectFault(&ctx, req, &resp);
    if (!st.ok()) {
      fmt::print(stderr, "error: node {}: {}\n", node, st.error_message());
      return 1;
    }
    fmt::print("{}\n", resp.done());
    return 0;
  });
}
