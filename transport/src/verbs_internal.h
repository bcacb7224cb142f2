// Private to the verbs implementation.
#pragma once

#include <infiniband/verbs.h>

#include "vigil/transport/transport.h"

namespace vigil::transport::detail {
// The ibv_mr behind a registration made by a VerbsTransport, or nullptr for any other kind.
ibv_mr* IbvMrOf(const MemoryRegion& mr);
}  // namespace vigil::transport::detail
