// Network addresses as the trust boundary sees them: the host of "host:port", loopback, and
// whether an address a caller hands over is the caller's own.
#pragma once

#include <string>
#include <string_view>

#include "vigil/common/status.h"

namespace vigil::security {

// The host part of "host:port", "[v6]:port", "host", "ipv4:a.b.c.d:port" (gRPC's peer form) or
// "unix:path" (returned whole).
std::string_view HostOf(std::string_view address);

// True for 127.0.0.0/8 (also v4-mapped, ::ffff:127.0.0.1), ::1 and localhost (with a port or
// without), and unix: sockets.
bool IsLoopback(std::string_view address);

// Whether `address` ("host:port" that the caller asks this daemon to hand to others, e.g. the
// voter address a node's replicas dial) is on the caller's own host: its host, resolved, must
// include the caller's IP address as gRPC reports it (`peer`: ServerContext::peer(),
// "ipv4:198.18.1.10:51234" or "ipv6:[::1]:51234"). A caller on a unix socket or loopback matches
// loopback addresses only. Else PERMISSION_DENIED naming `what`, the address and the caller.
Status CheckCallersAddress(std::string_view what, const std::string& address,
                           std::string_view peer);

}  // namespace vigil::security
