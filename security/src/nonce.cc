#include "vigil/security/nonce.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <array>

namespace vigil::security {

Result<std::string> NewNonce() {
  std::array<unsigned char, kNonceChars / 2> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return Unavailable("no random bytes for a replica nonce (OpenSSL RAND_bytes failed)");
  }
  std::string out;
  out.reserve(kNonceChars);
  for (unsigned char b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

Status CheckNonce(std::string_view what, std::string_view nonce) {
  bool hex = nonce.size() == kNonceChars;
  for (char c : nonce) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (hex) return Status::Ok();
  return InvalidArgument(fmt::format("{}: a nonce must be {} lowercase hex digits (got {} bytes)",
                                     what, kNonceChars, nonce.size()));
}

bool SameNonce(std::string_view expected, std::string_view got) {
  return expected.size() == got.size() && !expected.empty() &&
         CRYPTO_memcmp(expected.data(), got.data(), expected.size()) == 0;
}

}  // namespace vigil::security
