// The transport conformance suite: the same tests run against the fake transport (unit tier)
// and the verbs transport over soft-RoCE (rxe tier). Each binary instantiates it with a factory.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vigil/transport/transport.h"

namespace vigil::testing {

// Two transports that can reach each other (they may be the same object).
struct TransportPair {
  std::shared_ptr<transport::Transport> a;
  std::shared_ptr<transport::Transport> b;
};

struct TransportFactory {
  std::string name;
  // Returns the pair, or a Status explaining why this kind cannot run here.
  std::function<Result<TransportPair>()> make;
};

// Defined by each test binary: the transports the suite runs against there.
std::vector<TransportFactory> ConformanceFactories();

}  // namespace vigil::testing
