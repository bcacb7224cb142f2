// Runs the transport conformance suite against the FAKE in-process transport.
#include "transport_conformance.h"
#include "vigil/transport/fake.h"

namespace vigil::testing {

std::vector<TransportFactory> ConformanceFactories() {
  return {{"Fake", []() -> Result<TransportPair> {
             auto fabric = std::make_shared<transport::FakeFabric>();
             return TransportPair{std::make_shared<transport::FakeTransport>(fabric, "a"),
                                  std::make_shared<transport::FakeTransport>(fabric, "b")};
           }}};
}

}  // namespace vigil::testing
