// What the transport tests need from their environment: the device named by scripts/with-rxe,
// and whether an unusable transport is a failure (VIGIL_REQUIRE_RDMA=1, set by the test command
// for the rxe tier) or a skip.
#pragma once

#include <cstdlib>
#include <string>

namespace vigil::testing {

inline std::string RdmaDevice() {
  const char* d = std::getenv("VIGIL_RDMA_DEVICE");
  return d ? d : "";
}

inline bool RdmaRequired() {
  const char* r = std::getenv("VIGIL_REQUIRE_RDMA");
  return r != nullptr && std::string(r) == "1";
}

}  // namespace vigil::testing

// Skips (or fails, when a device is required) the current test because of `status`.
#define VIGIL_SKIP_WITHOUT_RDMA(status)                                                   \
  do {                                                                                    \
    if (::vigil::testing::RdmaRequired()) {                                               \
      FAIL() << "VIGIL_REQUIRE_RDMA=1 but the device is unusable: " << (status);          \
    }                                                                                     \
    GTEST_SKIP() << "no usable RDMA device (run through scripts/with-rxe): " << (status); \
  } while (0)
