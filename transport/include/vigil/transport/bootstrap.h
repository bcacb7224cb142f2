// Connection setup over gRPC: the client sends its queue-pair endpoint and exposed regions, the
// server creates a connection for it, connects it, hands it to the acceptor registered for the
// requested service and answers with its own endpoint and regions; the client then connects.
// Everything that arrives is validated (version, ranges, sizes) before it is used.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vigil/common/thread_annotations.h"
#include "vigil/security/identity.h"
#include "vigil/security/tls.h"
#include "vigil/transport/transport.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc
namespace vigil::bootstrap::v1 {
class Hello;
}

namespace vigil::transport {

// What peers connected through the bootstrap speak, its data plane included: 2 since the polling
// ring's records are sized to their content with a mixed trailer and implicit credits
// (docs/polling-ring.md); a peer from an older build is refused by name instead of stalling.
inline constexpr uint32_t kBootstrapProtocolVersion = 2;
inline constexpr size_t kMaxAdvertisedRegions = 64;
inline constexpr size_t kMaxPurposeLength = 64;
inline constexpr size_t kMaxNodeNameLength = 255;
inline constexpr size_t kMaxTokenLength = 64;

struct PeerInfo {
  // Who called, from its TLS certificate: set by the BootstrapServer, never taken from the wire
  // (`unauthenticated` on a server without TLS). Empty on the dialing side.
  security::Identity caller;
  std::string node_name;
  Endpoint endpoint;
  std::vector<RemoteRegion> regions;

  // The region advertised with `purpose`, or kNotFound naming what the peer did advertise.
  Result<RemoteRegion> Region(std::string_view purpose) const;
};

// Conversion and validation of the wire messages (public for tests).
void ToProto(const std::string& node_name, std::string_view transport_kind, const Endpoint& ep,
             const std::vector<RemoteRegion>& regions, bootstrap::v1::Hello& out);
// Validates everything a peer sent. `expected_kind` is this side's transport kind.
Result<PeerInfo> FromProto(const bootstrap::v1::Hello& hello, std::string_view expected_kind);

// Receives a connected Connection and the peer's description; returns the regions to advertise
// back. Post receives before returning: the peer may send as soon as it has the answer.
using AcceptFn =
    std::function<Result<std::vector<RemoteRegion>>(std::unique_ptr<Connection>, const PeerInfo&)>;

// Like AcceptFn, for services whose every connection gets its own protection domain (created by
// the server before the queue pair; handed over with the connection).
using DomainAcceptFn = std::function<Result<std::vector<RemoteRegion>>(
    std::unique_ptr<ProtectionDomain>, std::unique_ptr<Connection>, const PeerInfo&)>;

class BootstrapServer {
 public:
  BootstrapServer(Transport& transport, std::string node_name, ConnectionOptions options);
  // The port's TLS (default: the process's). Before Start.
  void set_tls(security::TlsOptions tls) { tls_ = std::move(tls); }
  ~BootstrapServer();

  // Registers the acceptor for connections that ask for `service` (before or after Start; a
  // later registration of the same name replaces the earlier one). With a `token`, a dialer must
  // present exactly it (DialOptions::token): any other is refused with PERMISSION_DENIED before
  // a queue pair is made, and the service stays registered for the rightful dialer.
  void AddService(const std::string& service, AcceptFn accept, std::string token = {});
  void AddService(const std::string& service, DomainAcceptFn accept);
  // Refuses further connections for `service` (kNotFound to the dialer).
  void RemoveService(const std::string& service);
  // Serves another gRPC service on the same port (before Start; not owned).
  void AddGrpcService(grpc::Service* service) { extra_services_.push_back(service); }
  // Listens on `address` ("host:port"; port 0 picks a free one, see port()).
  Status Start(const std::string& address);
  int port() const { return port_; }
  // Stops accepting and waits for in-flight calls (bounded by `grace`).
  void Shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(500));

 private:
  class Service;
  Transport& transport_;
  std::string node_name_;
  ConnectionOptions options_;
  struct Acceptor {
    AcceptFn plain;
    DomainAcceptFn with_domain;
    std::string token;  // empty: none required
  };
  Acceptor FindService(const std::string& service) const;

  mutable Mutex services_mu_;
  std::map<std::string, Acceptor> services_ VIGIL_GUARDED_BY(services_mu_);
  std::unique_ptr<Service> service_;
  std::vector<grpc::Service*> extra_services_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  security::TlsSetting tls_;  // unset: the process's
};

struct DialOptions {
  std::string target;  // "host:port" of the BootstrapServer
  std::string service;
  std::string node_name = "client";
  ConnectionOptions connection;
  std::vector<RemoteRegion> regions;  // what this side exposes to the peer
  // Called on the new connection before the request goes out: post receives here.
  std::function<Status(Connection&)> before_connect;
  std::string token = {};  // what the service requires (BootstrapServer::AddService), if anything
  std::chrono::milliseconds timeout{10000};
  security::TlsSetting tls;  // unset: the process's
  // With TLS: the role the server's certificate must have (a replica dials its voter, a server its
  // store); unset: any certificate of the cluster's CA.
  std::optional<security::Role> server_role = std::nullopt;
};

struct Dialed {
  std::unique_ptr<Connection> connection;
  PeerInfo peer;
};

Result<Dialed> Dial(Transport& transport, const DialOptions& options);

}  // namespace vigil::transport
