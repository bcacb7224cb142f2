// Private to the verbs implementation.
#pragma once

#include <infiniband/verbs.h>

#include <memory>

#include "vigil/transport/verbs.h"

namespace vigil::transport::detail {
// The ibv_mr behind a registration made by a VerbsTransport, or nullptr for any other kind.
ibv_mr* IbvMrOf(const MemoryRegion& mr);
// Registration and queue-pair creation in a given protection domain (`pd` keeps it alive).
Result<std::unique_ptr<MemoryRegion>> RegisterIn(const VerbsDevice& dev, std::shared_ptr<ibv_pd> pd,
                                                 void* addr, size_t size, uint32_t access);
Result<std::unique_ptr<Connection>> CreateConnectionIn(std::shared_ptr<VerbsDevice> dev,
                                                       std::shared_ptr<ibv_pd> pd,
                                                       const ConnectionOptions& opts);
}  // namespace vigil::transport::detail
