#include "vigil/security/permissions.h"

#include <fmt/format.h>
#include <grpcpp/server_context.h>

#include <mutex>
#include <set>

#include "vigil/common/logging.h"
#include "vigil/common/text.h"

namespace vigil::security {
namespace {

constexpr Role kVoters[] = {Role::kVoter};
constexpr Role kOperators[] = {Role::kOperator};
constexpr Role kClients[] = {Role::kClient};
// Replicas run on worker nodes with their node's certificate, or as a voter's own children
// (vigil-run and vigil-voter without --nodes) with the voter's; either way they prove their
// incarnation with the nonce their voter gave them. Servers open sessions at their store.
constexpr Role kDialers[] = {Role::kNode, Role::kVoter, Role::kServer};
constexpr Role kReplicas[] = {Role::kNode, Role::kVoter};
// Read-only health and status: besides voters and operators, the daemon's own kind, so a
// deployment checks a node or a store on its host with that host's own certificate.
constexpr Role kNodeWatchers[] = {Role::kVoter, Role::kOperator, Role::kNode};
constexpr Role kStoreWatchers[] = {Role::kOperator, Role::kStore};
constexpr Role kServerWatchers[] = {Role::kNode, Role::kOperator};

constexpr Permission kTable[] = {
    // A replica reaching its voter, a server reaching its store: RDMA connection set-up.
    {"/vigil.bootstrap.v1.Bootstrap/Connect", kDialers},
    // The node agent: voters place replicas; operators inject faults.
    {"/vigil.node.v1.NodeAgent/StartReplica", kVoters},
    {"/vigil.node.v1.NodeAgent/StopReplica", kVoters},
    {"/vigil.node.v1.NodeAgent/InjectFault", kOperators},
    {"/vigil.node.v1.NodeAgent/Health", kNodeWatchers},
    // Restartable servers: clients call; supervisors and operators probe.
    {"/vigil.server.v1.Restartable/Call", kClients},
    {"/vigil.server.v1.Restartable/Bye", kClients},
    {"/vigil.server.v1.Restartable/Health", kServerWatchers},
    // The voter's rpc signalling method: replicas send events.
    {"/vigil.signal.v1.Voter/Signal", kReplicas},
    // The SSR store's status (vigilctl store).
    {"/vigil.ssr.v1.SsrStore/Status", kStoreWatchers},
};

}  // namespace

std::span<const Permission> PermissionTable() { return kTable; }

bool Allowed(Role role, std::string_view method) {
  for (const Permission& p : kTable) {
    if (p.method != method) continue;
    for (Role r : p.roles) {
      if (r == role) return true;
    }
    return false;
  }
  return false;
}

Result<Identity> Authorize(const grpc::ServerContext& context, std::string_view method) {
  VIGIL_ASSIGN_OR_RETURN(Identity who, PeerIdentity(context));
  if (who.unauthenticated || Allowed(who.role, method)) return who;
  return PermissionDenied(
      fmt::format("{} (role {}) may not call {}", who.Uri(), RoleName(who.role), Escaped(method)));
}

grpc::Status AuthorizeCall(const grpc::ServerContext& context, std::string_view method,
                           Identity* caller) {
  auto who = Authorize(context, method);
  if (who.ok()) {
    if (caller != nullptr) *caller = std::move(*who);
    return grpc::Status::OK;
  }
  const Status& st = who.status();
  // Logged once per refusal text: a stranger retrying in a loop does not flood the log.
  static std::mutex mu;
  static std::set<std::string> seen;
  {
    std::lock_guard lock(mu);
    if (seen.size() < 1024 && seen.insert(st.message()).second) {
      log::Get("security")
          ->warn("refused a call from {}: {}", Escaped(context.peer()), st.ToString());
    }
  }
  return grpc::Status(st.code() == StatusCode::kUnauthenticated
                          ? grpc::StatusCode::UNAUTHENTICATED
                          : grpc::StatusCode::PERMISSION_DENIED,
                      st.message());
}

}  // namespace vigil::security
