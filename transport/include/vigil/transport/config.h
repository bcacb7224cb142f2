// The `transport:` section of a vigil YAML config (every key optional; defaults as documented in
// docs/configuration.md):
//
//   transport:
//     device: rxe0          # empty: first device with an ACTIVE port
//     port: 1               # 0: first ACTIVE port
//     gid_index: -1         # -1: RoCEv2 IPv4-mapped GID, else any RoCEv2
//     sq_depth: 256
//     rq_depth: 256
//     max_inline: 256
//     signal_every: 32
//     ack_timeout: 14       # 4.096 us * 2^14 = 67 ms
//     retry_count: 7
//     rnr_retry: 7          # 7 = infinite
//     peer_timeout_ms: 0    # 0 = automatic
#pragma once

#include "vigil/common/config.h"
#include "vigil/transport/transport.h"
#include "vigil/transport/verbs.h"

namespace vigil::transport {

Status LoadTransportConfig(const ConfigReader& root, VerbsOptions& verbs, ConnectionOptions& conn);

}  // namespace vigil::transport
