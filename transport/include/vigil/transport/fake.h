// FAKE transport: an in-process emulation of the transport interface for protocol tests that
// need no NIC. It is not RDMA and is never used outside tests and explicit `--transport fake`
// runs. One-sided writes and reads are memcpy into/out of the peer's registered memory after the
// same checks a NIC makes (rkey, bounds, access rights, protection domain); SEND consumes the
// peer's posted receive. Error semantics follow RC: a remote access error breaks both ends;
// operations towards a destroyed peer complete with kRetryExceeded; a SEND with no receive posted
// waits (RNR retry).
#pragma once

#include <memory>
#include <string>

#include "vigil/transport/transport.h"

namespace vigil::transport {

// The emulated fabric: every FakeTransport attached to one fabric can reach the others.
class FakeFabric {
 public:
  FakeFabric();
  ~FakeFabric();
  FakeFabric(const FakeFabric&) = delete;
  FakeFabric& operator=(const FakeFabric&) = delete;

  struct State;
  State& state() { return *state_; }

 private:
  std::unique_ptr<State> state_;
};

class FakeTransport final : public Transport {
 public:
  FakeTransport(std::shared_ptr<FakeFabric> fabric, std::string node_name);

  std::string_view kind() const override { return "fake"; }
  std::string Describe() const override;
  Result<std::unique_ptr<MemoryRegion>> Register(void* addr, size_t size, uint32_t access) override;
  Result<std::unique_ptr<Connection>> CreateConnection(const ConnectionOptions& opts) override;
  Result<std::unique_ptr<ProtectionDomain>> CreateDomain() override;

 private:
  std::shared_ptr<FakeFabric> fabric_;
  std::string node_name_;
  uint32_t domain_;  // the default protection domain
};

}  // namespace vigil::transport
