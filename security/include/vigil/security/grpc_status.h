// One mapping between vigil's Status codes and gRPC's, both ways, for every gRPC service and
// client: a refusal keeps its meaning across the wire (PERMISSION_DENIED stays that, and is not
// retried as if the peer were merely unavailable).
#pragma once

#include <grpcpp/support/status.h>

#include <string_view>

#include "vigil/common/status.h"

namespace vigil::security {

grpc::Status ToGrpc(const Status& st);
// `context` (e.g. "bootstrap with HOST:PORT") prefixes the message; gRPC codes vigil has no
// name for become UNAVAILABLE.
Status FromGrpc(const grpc::Status& st, std::string_view context);

}  // namespace vigil::security
