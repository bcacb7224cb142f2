// Hostile gRPC callers for tests: every method of a service, called with random bytes and with
// messages of the method's own request type whose every field holds a random value (found
// through protobuf reflection, so a method added later is covered without a change here).
#pragma once

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <random>
#include <string>

namespace vigil::testing {

struct HostileStats {
  int calls = 0, ok = 0;
};

// Calls every method of `service` (a full name, e.g. "vigil.server.v1.Restartable") at `target`
// `rounds` times with random bytes and `rounds` times with randomized requests.
HostileStats SendHostileBytes(const std::string& target, const std::string& service, int rounds,
                              std::mt19937_64& rng,
                              std::chrono::milliseconds deadline = std::chrono::milliseconds(500));

}  // namespace vigil::testing
