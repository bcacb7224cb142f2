// Who a peer is: a role and a name, carried in its certificate as the URI subject alternative
// name vigil://ROLE/NAME (e.g. vigil://voter/v1, vigil://server/kv, vigil://client/42).
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "vigil/common/status.h"

namespace grpc {
class ServerContext;
}

namespace vigil::security {

enum class Role { kVoter, kNode, kStore, kServer, kOperator, kClient };
inline constexpr Role kAllRoles[] = {Role::kVoter,  Role::kNode,     Role::kStore,
                                     Role::kServer, Role::kOperator, Role::kClient};

std::string_view RoleName(Role role);
Result<Role> ParseRole(std::string_view name);

struct Identity {
  Role role = Role::kClient;
  std::string name;
  // True only for a server started with --insecure (plaintext on loopback): nobody is
  // authenticated, and every call is allowed.
  bool unauthenticated = false;

  std::string Uri() const;  // vigil://role/name
  bool operator==(const Identity&) const = default;
};

// Names: 1..64 characters of [A-Za-z0-9._-].
Status CheckIdentityName(std::string_view name);
// "vigil://ROLE/NAME" -> identity; anything else is an error naming the text (escaped).
Result<Identity> ParseIdentityUri(std::string_view uri);

// The caller of a call, from its TLS client certificate: the one vigil:// URI among its
// subject alternative names. UNAUTHENTICATED when there is none or more than one; on a server
// without TLS (--insecure), an identity with `unauthenticated` set.
Result<Identity> PeerIdentity(const grpc::ServerContext& context);

// The one vigil:// URI among a certificate's URI names (`whose` names the certificate in errors).
Result<Identity> OneIdentity(std::span<const std::string_view> uris, std::string_view whose);

}  // namespace vigil::security
