// vigilctl: operator's tool. Talks to vigil-node agents (list their replicas, inject faults) and
// to the SSR store (its arena, services and server sessions).
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include "vigil/common/cli.h"
#include "vigil/node/v1/node.grpc.pb.h"
#include "vigil/ssr/v1/store.grpc.pb.h"

namespace pb = vigil::node::v1;

int main(int argc, char** argv) {
  using namespace vigil;
  CLI::App app{"vigilctl: inspect vigil-node agents and inject faults into replicas"};
  app.require_subcommand(1);
  cli::CommonOptions common;
  cli::AddCommonOptions(app, common);
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
  return cli::Run(app, common, argc, argv, [&]() -> int {
    if (*store_cmd) {
      auto s = vigil::ssr::v1::SsrStore::NewStub(
          grpc::CreateChannel(store, grpc::InsecureChannelCredentials()));
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
    auto stub =
        pb::NodeAgent::NewStub(grpc::CreateChannel(node, grpc::InsecureChannelCredentials()));
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
