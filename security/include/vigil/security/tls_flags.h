// The TLS flags in a binary's main, after parsing (AddTlsOptions registered them).
#pragma once

#include "vigil/security/tls.h"

namespace vigil::security {

// UseTlsOptions, as every main does it: 0, or the error on stderr ("error: ...") and exit code 2
// (a usage error, like a bad flag).
int UseTlsFlags(const TlsOptions& options);

}  // namespace vigil::security
