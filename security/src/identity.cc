#include "vigil/security/identity.h"

#include <fmt/format.h>
#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/server_context.h>

#include <optional>
#include <vector>

#include "vigil/common/text.h"

namespace vigil::security {
namespace {

constexpr std::string_view kScheme = "vigil://";
constexpr std::string_view kRoleNames[] = {"voter",  "node",     "store",
                                           "server", "operator", "client"};

}  // namespace

std::string_view RoleName(Role role) { return kRoleNames[static_cast<int>(role)]; }

Result<Role> ParseRole(std::string_view name) {
  for (Role r : kAllRoles) {
    if (RoleName(r) == name) return r;
  }
  return InvalidArgument(
      fmt::format("unknown role '{}' (roles: voter, node, store, server, "
                  "operator, client)",
                  Escaped(name)));
}

std::string Identity::Uri() const { return fmt::format("{}{}/{}", kScheme, RoleName(role), name); }

Status CheckIdentityName(std::string_view name) {
  const bool ok = !name.empty() && name.size() <= 64 &&
                  name.find_first_not_of(
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789._-") == std::string_view::npos;
  if (ok) return Status::Ok();
  return InvalidArgument(fmt::format(
      "identity name '{}' must be 1 to 64 characters of letters, digits, '.', '_' and '-'",
      Escaped(name)));
}

Result<Identity> ParseIdentityUri(std::string_view uri) {
  if (!uri.starts_with(kScheme)) {
    return InvalidArgument(
        fmt::format("'{}' is not a vigil identity (vigil://ROLE/NAME)", Escaped(uri)));
  }
  const std::string_view rest = uri.substr(kScheme.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    return InvalidArgument(
        fmt::format("identity '{}' has no name (vigil://ROLE/NAME)", Escaped(uri)));
  }
  Identity id;
  VIGIL_ASSIGN_OR_RETURN(id.role, ParseRole(rest.substr(0, slash)));
  VIGIL_RETURN_IF_ERROR(CheckIdentityName(rest.substr(slash + 1)));
  id.name = std::string(rest.substr(slash + 1));
  return id;
}

Result<Identity> PeerIdentity(const grpc::ServerContext& context) {
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) {
    const bool tls =
        auth != nullptr &&
        !auth->FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME).empty() &&
        auth->FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME)[0] ==
            GRPC_SSL_TRANSPORT_SECURITY_TYPE;
    if (!tls) {
      Identity anyone;
      anyone.unauthenticated = true;
      anyone.name = "insecure";
      return anyone;
    }
    return Unauthenticated("the caller presented no client certificate");
  }
  std::vector<std::string_view> uris;
  for (const grpc::string_ref& v : auth->FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
    uris.emplace_back(v.data(), v.size());
  }
  auto id = OneIdentity(uris, "the caller's certificate");
  if (!id.ok()) return Unauthenticated(id.status().message());
  return id;
}

Result<Identity> OneIdentity(std::span<const std::string_view> uris, std::string_view whose) {
  std::optional<Identity> found;
  for (std::string_view uri : uris) {
    if (!uri.starts_with(kScheme)) continue;
    VIGIL_ASSIGN_OR_RETURN(Identity id, ParseIdentityUri(uri));
    if (found) return InvalidArgument(fmt::format("{} names more than one vigil identity", whose));
    found = std::move(id);
  }
  if (!found) return InvalidArgument(fmt::format("{} has no vigil://ROLE/NAME identity", whose));
  return *found;
}

}  // namespace vigil::security
