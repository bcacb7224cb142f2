// Runs the transport conformance suite against libibverbs on a real (or soft-RoCE) device, both
// ends in this process on the same device.
#include "rdma_env.h"
#include "transport_conformance.h"
#include "vigil/transport/verbs.h"

namespace vigil::testing {

std::vector<TransportFactory> ConformanceFactories() {
  return {{"Verbs", []() -> Result<TransportPair> {
             VIGIL_ASSIGN_OR_RETURN(auto t, transport::VerbsTransport::Open({.device = RdmaDevice()}));
             std::shared_ptr<transport::Transport> shared = std::move(t);
             return TransportPair{shared, shared};
           }}};
}

}  // namespace vigil::testing
