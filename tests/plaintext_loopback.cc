// Linked into every gtest binary: its processes speak plaintext on loopback, explicitly (what
// --insecure sets), unless a test gives a component TLS options of its own. Tests listen and dial
// on 127.0.0.1 only; the trust tests (security_test, trust_test, tls_binaries) use certificates.
#include <gtest/gtest.h>

#include "vigil/security/tls.h"

namespace {

class PlaintextOnLoopback : public ::testing::Environment {
 public:
  void SetUp() override {
    vigil::security::TlsOptions plain;
    plain.insecure = true;
    vigil::security::SetProcessTls(plain);
  }
};

// Set when the tests start (RUN_ALL_TESTS), not during static initialisation.
[[maybe_unused]] ::testing::Environment* const kPlaintextOnLoopback =
    ::testing::AddGlobalTestEnvironment(new PlaintextOnLoopback);

}  // namespace
