#include "vigil/transport/bootstrap.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <cstring>

#include "vigil/bootstrap/v1/bootstrap.grpc.pb.h"
#include "vigil/common/logging.h"
#include "vigil/common/text.h"
#include "vigil/security/grpc_status.h"
#include "vigil/security/nonce.h"
#include "vigil/security/permissions.h"

namespace vigil::transport {

namespace pb = vigil::bootstrap::v1;

Result<RemoteRegion> PeerInfo::Region(std::string_view purpose) const {
  std::string have;
  for (const auto& r : regions) {
    if (r.purpose == purpose) return r;
    have += fmt::format("{}'{}'", have.empty() ? "" : ", ", r.purpose);
  }
  return NotFound(fmt::format("peer '{}' advertised no region '{}' (it advertised: {})", node_name,
                              purpose, have.empty() ? "none" : have));
}

void ToProto(const std::string& node_name, std::string_view transport_kind, const Endpoint& ep,
             const std::vector<RemoteRegion>& regions, pb::Hello& out) {
  out.set_protocol_version(kBootstrapProtocolVersion);
  out.set_node_name(node_name);
  out.set_transport(std::string(transport_kind));
  auto* e = out.mutable_endpoint();
  e->set_qpn(ep.qpn);
  e->set_psn(ep.psn);
  e->set_gid(std::string(reinterpret_cast<const char*>(ep.gid.data()), ep.gid.size()));
  e->set_gid_index(ep.gid_index);
  e->set_mtu(ep.mtu);
  e->set_port(ep.port);
  e->set_lid(ep.lid);
  for (const auto& r : regions) {
    auto* m = out.add_regions();
    m->set_addr(r.addr);
    m->set_length(r.length);
    m->set_rkey(r.rkey);
    m->set_purpose(r.purpose);
  }
}

Result<PeerInfo> FromProto(const pb::Hello& hello, std::string_view expected_kind) {
  auto bad = [&](std::string what) {
    return InvalidArgument(
        fmt::format("bootstrap hello from '{}': {}", Escaped(hello.node_name(), 64), what));
  };
  if (hello.protocol_version() != kBootstrapProtocolVersion) {
    return FailedPrecondition(fmt::format(
        "peer '{}' speaks bootstrap protocol v{}, this build speaks v{}: upgrade the older side",
        Escaped(hello.node_name(), 64), hello.protocol_version(), kBootstrapProtocolVersion));
  }
  if (hello.node_name().empty() || hello.node_name().size() > kMaxNodeNameLength ||
      !IsPrintable(hello.node_name())) {
    return bad(fmt::format("node_name must be 1..{} printable characters (has {} bytes)",
                           kMaxNodeNameLength, hello.node_name().size()));
  }
  if (hello.transport() != expected_kind) {
    return FailedPrecondition(fmt::format("peer '{}' uses the '{}' transport, this side uses '{}'",
                                          hello.node_name(), Escaped(hello.transport(), 64),
                                          expected_kind));
  }
  if (!hello.has_endpoint()) return bad("no endpoint");
  const auto& e = hello.endpoint();
  if (e.qpn() == 0 || e.qpn() > 0xFFFFFF)
    return bad(fmt::format("qpn {} is not a 24-bit QP number", e.qpn()));
  if (e.psn() > 0xFFFFFF) return bad(fmt::format("psn {} exceeds 24 bits", e.psn()));
  if (e.gid().size() != 16)
    return bad(fmt::format("gid has {} bytes, expected 16", e.gid().size()));
  if (e.gid_index() > 255) return bad(fmt::format("gid_index {} exceeds 255", e.gid_index()));
  const uint32_t mtu = e.mtu();
  if (mtu != 256 && mtu != 512 && mtu != 1024 && mtu != 2048 && mtu != 4096) {
    return bad(fmt::format("mtu {} is not one of 256, 512, 1024, 2048, 4096", mtu));
  }
  if (e.port() < 1 || e.port() > 255)
    return bad(fmt::format("port {} is not in [1, 255]", e.port()));
  if (e.lid() > 0xFFFF) return bad(fmt::format("lid {} exceeds 16 bits", e.lid()));
  if (static_cast<size_t>(hello.regions_size()) > kMaxAdvertisedRegions) {
    return bad(fmt::format("{} regions advertised, at most {} allowed", hello.regions_size(),
                           kMaxAdvertisedRegions));
  }
  PeerInfo info;
  info.node_name = hello.node_name();
  info.endpoint.qpn = e.qpn();
  info.endpoint.psn = e.psn();
  std::memcpy(info.endpoint.gid.data(), e.gid().data(), 16);
  info.endpoint.gid_index = e.gid_index();
  info.endpoint.mtu = mtu;
  info.endpoint.port = e.port();
  info.endpoint.lid = e.lid();
  for (int i = 0; i < hello.regions_size(); ++i) {
    const auto& r = hello.regions(i);
    const auto& p = r.purpose();
    if (p.empty() || p.size() > kMaxPurposeLength || !IsPrintable(p)) {
      return bad(fmt::format("region {} purpose must be 1..{} printable characters", i,
                             kMaxPurposeLength));
    }
    if (r.length() == 0) return bad(fmt::format("region '{}' has length 0", p));
    if (r.addr() > UINT64_MAX - r.length()) {
      return bad(fmt::format("region '{}' [{:#x}, +{}) wraps around the address space", p, r.addr(),
                             r.length()));
    }
    info.regions.push_back(RemoteRegion{r.addr(), r.length(), r.rkey(), p});
  }
  return info;
}

class BootstrapServer::Service final : public pb::Bootstrap::Service {
 public:
  explicit Service(BootstrapServer& owner) : owner_(owner) {}

  grpc::Status Connect(grpc::ServerContext* ctx, const pb::ConnectRequest* req,
                       pb::ConnectResponse* resp) override {
    security::Identity caller;
    if (grpc::Status st =
            security::AuthorizeCall(*ctx, "/vigil.bootstrap.v1.Bootstrap/Connect", &caller);
        !st.ok()) {
      return st;
    }
    Result<std::vector<RemoteRegion>> regions = Handle(*req, caller, resp);
    if (!regions.ok()) {
      log::Get("bootstrap")
          ->warn("rejected connection from {}: {}", ctx->peer(), regions.status().ToString());
      return security::ToGrpc(regions.status());
    }
    return grpc::Status::OK;
  }

 private:
  Result<std::vector<RemoteRegion>> Handle(const pb::ConnectRequest& req,
                                           const security::Identity& caller,
                                           pb::ConnectResponse* resp) {
    Acceptor accept = owner_.FindService(req.service());
    if (!accept.plain && !accept.with_domain) {
      return NotFound(fmt::format("no service '{}' on node '{}'", Escaped(req.service(), 64),
                                  owner_.node_name_));
    }
    if (req.token().size() > kMaxTokenLength) {
      return InvalidArgument(fmt::format("token of {} bytes for service '{}' (at most {})",
                                         req.token().size(), Escaped(req.service(), 64),
                                         kMaxTokenLength));
    }
    if (!accept.token.empty() && !security::SameNonce(accept.token, req.token())) {
      return PermissionDenied(fmt::format("service '{}' refused: {} token",
                                          Escaped(req.service(), 64),
                                          req.token().empty() ? "no" : "wrong"));
    }
    VIGIL_ASSIGN_OR_RETURN(PeerInfo peer, FromProto(req.hello(), owner_.transport_.kind()));
    peer.caller = caller;
    ConnectionOptions opts = owner_.options_;
    opts.name = fmt::format("{}<-{}", req.service(), peer.node_name);
    std::unique_ptr<ProtectionDomain> domain;
    if (accept.with_domain) {
      VIGIL_ASSIGN_OR_RETURN(domain, owner_.transport_.CreateDomain());
    }
    VIGIL_ASSIGN_OR_RETURN(auto conn, domain ? domain->CreateConnection(opts)
                                             : owner_.transport_.CreateConnection(opts));
    VIGIL_RETURN_IF_ERROR(conn->Connect(peer.endpoint));
    const Endpoint local = conn->local_endpoint();
    MutexLock lock(mu_);  // acceptors see one connection at a time
    VIGIL_ASSIGN_OR_RETURN(auto regions,
                           domain ? accept.with_domain(std::move(domain), std::move(conn), peer)
                                  : accept.plain(std::move(conn), peer));
    ToProto(owner_.node_name_, owner_.transport_.kind(), local, regions, *resp->mutable_hello());
    log::Get("bootstrap")
        ->debug("accepted '{}' from {} (qpn {})", req.service(), peer.node_name, peer.endpoint.qpn);
    return regions;
  }

  BootstrapServer& owner_;
  Mutex mu_;
};

BootstrapServer::BootstrapServer(Transport& transport, std::string node_name,
                                 ConnectionOptions options)
    : transport_(transport), node_name_(std::move(node_name)), options_(std::move(options)) {}

BootstrapServer::~BootstrapServer() { Shutdown(); }

void BootstrapServer::AddService(const std::string& service, AcceptFn accept, std::string token) {
  MutexLock lock(services_mu_);
  services_[service] = Acceptor{std::move(accept), nullptr, std::move(token)};
}

void BootstrapServer::AddService(const std::string& service, DomainAcceptFn accept) {
  MutexLock lock(services_mu_);
  services_[service] = Acceptor{nullptr, std::move(accept), {}};
}

void BootstrapServer::RemoveService(const std::string& service) {
  MutexLock lock(services_mu_);
  services_.erase(service);
}

BootstrapServer::Acceptor BootstrapServer::FindService(const std::string& service) const {
  MutexLock lock(services_mu_);
  auto it = services_.find(service);
  return it == services_.end() ? Acceptor{} : it->second;
}

Status BootstrapServer::Start(const std::string& address) {
  service_ = std::make_unique<Service>(*this);
  grpc::ServerBuilder builder;
  VIGIL_RETURN_IF_ERROR(security::AddPort(builder, security::OrProcessTls(tls_), address, &port_));
  builder.RegisterService(service_.get());
  for (grpc::Service* extra : extra_services_) builder.RegisterService(extra);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    server_.reset();
    return Unavailable(
        fmt::format("bootstrap server of '{}' cannot listen on '{}' (address in use "
                    "or malformed?)",
                    node_name_, address));
  }
  log::Get("bootstrap")->info("node '{}' listening for connections on port {}", node_name_, port_);
  return Status::Ok();
}

void BootstrapServer::Shutdown(std::chrono::milliseconds grace) {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + grace);
    server_.reset();
  }
}

Result<Dialed> Dial(Transport& transport, const DialOptions& options) {
  ConnectionOptions copts = options.connection;
  copts.name = fmt::format("{}->{}", options.node_name, options.service);
  VIGIL_ASSIGN_OR_RETURN(auto conn, transport.CreateConnection(copts));
  if (options.before_connect) VIGIL_RETURN_IF_ERROR(options.before_connect(*conn));

  pb::ConnectRequest req;
  req.set_service(options.service);
  req.set_token(options.token);
  ToProto(options.node_name, transport.kind(), conn->local_endpoint(), options.regions,
          *req.mutable_hello());
  VIGIL_ASSIGN_OR_RETURN(auto channel, security::Channel(security::OrProcessTls(options.tls),
                                                         options.target, options.server_role));
  auto stub = pb::Bootstrap::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + options.timeout);
  ctx.set_wait_for_ready(true);  // ride out a server that is still starting, within the deadline
  pb::ConnectResponse resp;
  grpc::Status st = stub->Connect(&ctx, req, &resp);
  if (!st.ok()) return security::FromGrpc(st, "bootstrap with " + options.target);
  VIGIL_ASSIGN_OR_RETURN(PeerInfo peer, FromProto(resp.hello(), transport.kind()));
  VIGIL_RETURN_IF_ERROR(conn->Connect(peer.endpoint));
  return Dialed{std::move(conn), std::move(peer)};
}

}  // namespace vigil::transport
