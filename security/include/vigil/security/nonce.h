// Replica incarnation nonces: the voter gives every replica incarnation it launches 128 random
// bits, and accepts that incarnation's bootstrap hello and rpc events only when they carry them,
// so a process that merely reaches the voter's ports cannot take a replica's place.
#pragma once

#include <string>
#include <string_view>

#include "vigil/common/status.h"

namespace vigil::security {

inline constexpr size_t kNonceChars = 32;  // 128 bits as lowercase hex

// A fresh nonce from the kernel's random source (OpenSSL's RAND_bytes).
Result<std::string> NewNonce();
// kNonceChars lowercase hex digits; else INVALID_ARGUMENT naming `what` (never the value).
Status CheckNonce(std::string_view what, std::string_view nonce);
// Whether `got` equals `expected`, in time independent of where they differ.
bool SameNonce(std::string_view expected, std::string_view got);

}  // namespace vigil::security
