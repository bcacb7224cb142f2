// The transport conformance suite: the same tests run against the fake transport (unit tier)
// and the verbs transport over soft-RoCE (rxe tier). Each binary instantiates it with a factory.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rdma_env.h"
#include "vigil/transport/fault_injection.h"
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

// Base fixture of the per-transport suites: SetUp makes the transport pair into t_, or skips
// (fails under VIGIL_REQUIRE_RDMA=1) when this transport cannot run here.
class TransportFixture : public ::testing::TestWithParam<TransportFactory> {
 protected:
  void SetUp() override {
    auto pair = GetParam().make();
    if (!pair.ok()) {
      VIGIL_SKIP_WITHOUT_RDMA(pair.status());
    }
    t_ = *pair;
  }
  TransportPair t_;
};

// Names a parameterized instance after its transport ("Fake", "Verbs").
inline std::string FactoryName(const ::testing::TestParamInfo<TransportFactory>& info) {
  return info.param.name;
}

// A replica-side and a voter-side connection (not yet connected to each other). With `faults`,
// the replica side goes through a FaultInjectingConnection driven by it.
struct ConnectionPair {
  std::unique_ptr<transport::Connection> replica;
  std::unique_ptr<transport::Connection> voter;
};
Result<ConnectionPair> MakeConnections(const TransportPair& t,
                                       std::shared_ptr<transport::FaultInjector> faults = nullptr);
// Moves both connections to RTS towards each other.
Status ConnectBoth(ConnectionPair& pair);

}  // namespace vigil::testing
