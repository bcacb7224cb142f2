// The one table of who may call what: every gRPC method of vigil, and the roles allowed to call
// it. Every handler starts with Authorize(); a method missing from the table is refused to all.
#pragma once

#include <grpcpp/support/status.h>

#include <span>
#include <string_view>

#include "vigil/security/identity.h"

namespace vigil::security {

struct Permission {
  std::string_view method;  // "/package.Service/Method", as gRPC names it
  std::span<const Role> roles;
};

// Every method of every vigil service, and who may call it.
std::span<const Permission> PermissionTable();

// Whether `role` may call `method` (false for a method not in the table).
bool Allowed(Role role, std::string_view method);

// The caller's identity if it may call `method`; else UNAUTHENTICATED (no identity) or
// PERMISSION_DENIED naming the caller and the method. A server without TLS allows every call.
Result<Identity> Authorize(const grpc::ServerContext& context, std::string_view method);

// The same as a gRPC status, for handlers: OK, or the refusal (also logged, once per caller and
// method).
grpc::Status AuthorizeCall(const grpc::ServerContext& context, std::string_view method,
                           Identity* caller = nullptr);

}  // namespace vigil::security
