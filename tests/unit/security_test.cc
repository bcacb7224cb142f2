// The trust boundary's parts: identities, the permission table, certificates made by vigilctl's
// code, and mutual TLS between a real gRPC server and clients holding certificates of different
// roles (or none, or from another CA).
#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <condition_variable>
#include <initializer_list>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "test_ca.h"
#include "vigil/bootstrap/v1/bootstrap.grpc.pb.h"
#include "vigil/node/v1/node.grpc.pb.h"
#include "vigil/security/certs.h"
#include "vigil/security/permissions.h"
#include "vigil/security/tls.h"
#include "vigil/server/v1/restartable.grpc.pb.h"
#include "vigil/signal/v1/signal.grpc.pb.h"
#include "vigil/ssr/v1/store.grpc.pb.h"

namespace vigil::security {
namespace {

using namespace std::chrono_literals;

TEST(Identity, ParsesVigilUrisAndRefusesEverythingElse) {
  auto id = ParseIdentityUri("vigil://voter/v1");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->role, Role::kVoter);
  EXPECT_EQ(id->name, "v1");
  EXPECT_EQ(id->Uri(), "vigil://voter/v1");
  for (const char* bad : {"vigil://voter", "vigil://king/v1", "spiffe://voter/v1", "vigil://voter/",
                          "vigil://voter/a/b", "vigil://client/has space"}) {
    EXPECT_EQ(ParseIdentityUri(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

// Every method of every vigil service has a row, and every row names a real method: a new
// method cannot be added without deciding who may call it.
TEST(Permissions, TheTableCoversEveryMethodOfEveryService) {
  std::set<std::string> methods;
  for (const google::protobuf::FileDescriptor* file :
       {vigil::bootstrap::v1::ConnectRequest::descriptor()->file(),
        vigil::node::v1::HealthRequest::descriptor()->file(),
        vigil::server::v1::CallRequest::descriptor()->file(),
        vigil::signal::v1::EventRecord::descriptor()->file(),
        vigil::ssr::v1::StatusRequest::descriptor()->file()}) {
    ASSERT_GT(file->service_count(), 0) << file->name();
    for (int s = 0; s < file->service_count(); ++s) {
      const auto* service = file->service(s);
      for (int i = 0; i < service->method_count(); ++i) {
        methods.insert("/" + service->full_name() + "/" + service->method(i)->name());
      }
    }
  }
  EXPECT_EQ(methods.size(), 10u);
  std::set<std::string> rows;
  for (const Permission& p : PermissionTable()) rows.insert(std::string(p.method));
  EXPECT_EQ(rows, methods);
}

// Every (role, method) pair: allowed exactly where the design says.
TEST(Permissions, EachRoleMayCallExactlyItsMethods) {
  const std::map<std::string, std::set<Role>> want = {
      {"/vigil.bootstrap.v1.Bootstrap/Connect", {Role::kNode, Role::kVoter, Role::kServer}},
      {"/vigil.node.v1.NodeAgent/StartReplica", {Role::kVoter}},
      {"/vigil.node.v1.NodeAgent/StopReplica", {Role::kVoter}},
      {"/vigil.node.v1.NodeAgent/InjectFault", {Role::kOperator}},
      {"/vigil.node.v1.NodeAgent/Health", {Role::kVoter, Role::kOperator, Role::kNode}},
      {"/vigil.server.v1.Restartable/Call", {Role::kClient}},
      {"/vigil.server.v1.Restartable/Bye", {Role::kClient}},
      {"/vigil.server.v1.Restartable/Health", {Role::kNode, Role::kOperator}},
      {"/vigil.signal.v1.Voter/Signal", {Role::kNode, Role::kVoter}},
      {"/vigil.ssr.v1.SsrStore/Status", {Role::kOperator, Role::kStore}},
  };
  for (const auto& [method, roles] : want) {
    for (Role r : kAllRoles) {
      EXPECT_EQ(Allowed(r, method), roles.count(r) == 1) << RoleName(r) << " " << method;
    }
  }
  EXPECT_FALSE(Allowed(Role::kOperator, "/vigil.node.v1.NodeAgent/NoSuchMethod"));
}

TEST(Address, AnAddressHandedOverMustBeTheCallersOwnHost) {
  struct Case {
    const char* address;
    const char* peer;
    bool ok;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"127.0.0.1:9", "ipv4:127.0.0.1:5000", true},
           {"localhost:9", "ipv4:127.0.0.1:5000", true},
           {"127.0.0.1:9", "unix:/run/x.sock", true},
           {"127.0.0.1:9", "ipv6:[::ffff:127.0.0.1]:5000", true},  // a dual-stack listener
           {"198.18.0.5:7", "ipv6:[::ffff:198.18.0.5]:41000", true},
           {"198.18.0.5:9", "ipv4:127.0.0.1:5000", false},  // a local caller names a third party
           {"198.18.0.5:7", "ipv4:198.18.0.5:41000", true},
           {"198.18.0.6:7", "ipv4:198.18.0.5:41000", false},
           {"127.0.0.1:7", "ipv4:198.18.0.5:41000", false},  // the node's own loopback
           {"localhost:7", "ipv4:198.18.0.5:41000", false},
           {"[::1]:9", "ipv6:[::1]:5000", true},
           {"[2001:db8::1]:9", "ipv6:[2001:db8::1]:5000", true},
           {"[2001:db8::2]:9", "ipv6:[2001:db8::1]:5000", false},
           {"no-such-host.invalid:9", "ipv4:198.18.0.5:41000", false},
       }) {
    const Status st = CheckCallersAddress("voter address", c.address, c.peer);
    EXPECT_EQ(st.ok(), c.ok) << c.address << " from " << c.peer << ": " << st;
    if (!c.ok) {
      EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
      EXPECT_NE(st.message().find(fmt::format(
                    "voter address '{}' is not the caller's own host ({})", c.address, c.peer)),
                std::string::npos)
          << st;
    }
  }
}

TEST(Tls, LoopbackIsLoopbackAndNothingElse) {
  for (const char* a : {"127.0.0.1:5000", "127.3.2.1", "[::1]:80", "localhost:1", "unix:/tmp/s"}) {
    EXPECT_TRUE(IsLoopback(a)) << a;
  }
  for (const char* a : {"198.18.0.1:5000", "0.0.0.0:1", "[::]:80", "example.org:1", "10.0.0.1"}) {
    EXPECT_FALSE(IsLoopback(a)) << a;
  }
  TlsOptions insecure;
  insecure.insecure = true;
  EXPECT_TRUE(ServerCredentials(insecure, "127.0.0.1:0").ok());
  auto refused = ServerCredentials(insecure, "198.18.0.1:7000");
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(refused.status().message().find("loopback"), std::string::npos) << refused.status();
  EXPECT_EQ(Channel(insecure, "0.0.0.0:7000", std::nullopt).status().code(),
            StatusCode::kPermissionDenied);
  // Neither TLS nor --insecure: nothing, not even on loopback, both for listening and for
  // dialling; the refusal says what to pass.
  for (const char* a : {"127.0.0.1:0", "localhost:7000", "198.18.0.1:7000", "0.0.0.0:7000"}) {
    auto plain = ServerCredentials(TlsOptions{}, a);
    EXPECT_EQ(plain.status().code(), StatusCode::kPermissionDenied) << a;
    EXPECT_NE(plain.status().message().find(fmt::format("'{}' without TLS: no --tls-dir", a)),
              std::string::npos)
        << plain.status();
    EXPECT_NE(plain.status().message().find("or pass --insecure for plaintext on loopback"),
              std::string::npos)
        << plain.status();
    EXPECT_EQ(Channel(TlsOptions{}, a, std::nullopt).status().code(), StatusCode::kPermissionDenied)
        << a;
  }
  TlsOptions half;
  half.cert = "/nonexistent/cert.pem";
  EXPECT_EQ(ServerCredentials(half, "127.0.0.1:0").status().code(),
            StatusCode::kFailedPrecondition);
  TlsOptions both = insecure;
  both.dir = "/etc/vigil/tls";
  EXPECT_EQ(UseTlsOptions(both).code(), StatusCode::kInvalidArgument);
}

class Certs : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(ca_.status().ok()) << ca_.status(); }
  TlsOptions Issue(Role role, const std::string& name, const std::string& ca = "ca") {
    TlsOptions t = ca_.Issue(role, name, ca);
    EXPECT_TRUE(ca_.status().ok()) << ca_.status();
    return t;
  }
  vigil::testing::TestCa ca_;
  const std::string& dir_ = ca_.dir();
};

TEST_F(Certs, KeysArePrivateAndAKeyOthersCanReadIsRefused) {
  TlsOptions t = Issue(Role::kVoter, "v1");
  struct stat st {};
  ASSERT_EQ(stat((t.dir + "/key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((dir_ + "/ca/ca-key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(LoadTls(t).ok());
  ASSERT_EQ(chmod((t.dir + "/key.pem").c_str(), 0640), 0);
  auto refused = LoadTls(t);
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(refused.status().message().find("key.pem' has mode 0640"), std::string::npos)
      << refused.status();
  // Nothing is overwritten: a second CA in the same place, or a second certificate, is refused.
  EXPECT_EQ(InitCa(dir_ + "/ca").code(), StatusCode::kFailedPrecondition);
  IssueOptions again;
  again.identity = {Role::kVoter, "v1"};
  EXPECT_EQ(IssueCertificate(dir_ + "/ca", again, t.dir).code(), StatusCode::kFailedPrecondition);
  IssueOptions bad_host = again;
  bad_host.hosts = {"not a host"};
  EXPECT_EQ(IssueCertificate(dir_ + "/ca", bad_host, dir_ + "/x").code(),
            StatusCode::kInvalidArgument);
}

TEST_F(Certs, ACertificateSaysWhoItsHolderIs) {
  const TlsOptions t = Issue(Role::kClient, "42");
  auto pem = LoadTls(t);
  ASSERT_TRUE(pem.ok()) << pem.status();
  auto id = CertificateIdentity(pem->cert);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, (Identity{Role::kClient, "42"}));
  // The CA's own certificate names no identity; bytes that are no certificate are refused.
  EXPECT_EQ(CertificateIdentity(pem->ca).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CertificateIdentity("-----BEGIN CERTIFICATE-----\nAAAA\n").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CertificateIdentity("").status().code(), StatusCode::kInvalidArgument);
}

// A node agent's Health, authorised from the table; it remembers who called.
class AgentHealth final : public vigil::node::v1::NodeAgent::Service {
 public:
  grpc::Status Health(grpc::ServerContext* ctx, const vigil::node::v1::HealthRequest*,
                      vigil::node::v1::HealthResponse* resp) override {
    Identity who;
    grpc::Status st = AuthorizeCall(*ctx, "/vigil.node.v1.NodeAgent/Health", &who);
    if (st.ok()) resp->set_node(who.Uri());
    return st;
  }
};

TEST_F(Certs, MutualTlsAuthenticatesCallersAndTheTableAuthorisesThem) {
  const TlsOptions node = Issue(Role::kNode, "w1");
  AgentHealth service;
  grpc::ServerBuilder b;
  int port = 0;
  auto creds = ServerCredentials(node, "127.0.0.1:0");
  ASSERT_TRUE(creds.ok()) << creds.status();
  b.AddListeningPort("127.0.0.1:0", *creds, &port);
  b.RegisterService(&service);
  auto server = b.BuildAndStart();
  ASSERT_TRUE(server && port > 0);
  const std::string target = "127.0.0.1:" + std::to_string(port);
  const auto health = [&](const TlsOptions& t, std::string* who,
                          std::optional<Role> server_role = Role::kNode) {
    auto ch = Channel(t, target, server_role);
    EXPECT_TRUE(ch.ok()) << ch.status();
    auto stub = vigil::node::v1::NodeAgent::NewStub(*ch);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    vigil::node::v1::HealthResponse resp;
    grpc::Status st = stub->Health(&ctx, {}, &resp);
    if (who != nullptr) *who = resp.node();
    return st;
  };
  std::string who;
  EXPECT_TRUE(health(Issue(Role::kOperator, "alice"), &who).ok());
  EXPECT_EQ(who, "vigil://operator/alice");
  // The wrong role: refused, naming it.
  grpc::Status denied = health(Issue(Role::kClient, "42"), nullptr);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(denied.error_message().find("vigil://client/42 (role client) may not call"),
            std::string::npos)
      << denied.error_message();
  // No certificate at all, or one from another CA: no connection.
  {
    auto material = LoadTls(node);
    ASSERT_TRUE(material.ok()) << material.status();
    grpc::SslCredentialsOptions ssl;  // the CA, but no certificate of its own
    ssl.pem_root_certs = material->ca;
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride(kClusterDnsName);
    auto stub = vigil::node::v1::NodeAgent::NewStub(
        grpc::CreateCustomChannel(target, grpc::SslCredentials(ssl), args));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    vigil::node::v1::HealthResponse resp;
    EXPECT_EQ(stub->Health(&ctx, {}, &resp).error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  EXPECT_EQ(health(Issue(Role::kOperator, "mallory", "other"), nullptr).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // A plaintext caller gets nowhere either.
  TlsOptions plain;
  plain.insecure = true;
  EXPECT_EQ(health(plain, nullptr).error_code(), grpc::StatusCode::UNAVAILABLE);
  // A client that expects another role of its server (a store, a voter) refuses this node's
  // certificate in the handshake: no cluster member stands in for another; one that expects no
  // particular role accepts any certificate of the CA.
  EXPECT_EQ(health(Issue(Role::kVoter, "v1"), nullptr, Role::kStore).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(health(Issue(Role::kVoter, "v1"), nullptr, Role::kVoter).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(health(Issue(Role::kVoter, "v1"), nullptr, std::nullopt).ok());
  // And the legitimate peer is still served.
  EXPECT_TRUE(health(Issue(Role::kVoter, "v1"), &who).ok());
  EXPECT_EQ(who, "vigil://voter/v1");
  server->Shutdown();
}

// A node agent whose Health holds its thread until released: callers pile up on the port.
class SlowHealth final : public vigil::node::v1::NodeAgent::Service {
 public:
  grpc::Status Health(grpc::ServerContext*, const vigil::node::v1::HealthRequest*,
                      vigil::node::v1::HealthResponse*) override {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 5s, [&] { return released_; });
    return grpc::Status::OK;
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

// Every port caps its handler threads (gRPC's thread quota): callers beyond the cap are
// RESOURCE_EXHAUSTED at once instead of each pinning a thread; the port serves again afterwards.
TEST(PortLimits, CallersBeyondTheThreadCapAreRefusedAndThePortServesAfterwards) {
  SlowHealth service;
  grpc::ServerBuilder b;
  int port = 0;
  TlsOptions plain;
  plain.insecure = true;
  PortLimits limits;
  limits.max_threads = 4;
  ASSERT_TRUE(AddPort(b, plain, "127.0.0.1:0", &port, limits).ok());
  b.RegisterService(&service);
  auto server = b.BuildAndStart();
  ASSERT_TRUE(server && port != 0);
  auto channel = Channel(plain, "127.0.0.1:" + std::to_string(port), std::nullopt);
  ASSERT_TRUE(channel.ok()) << channel.status();
  auto stub = vigil::node::v1::NodeAgent::NewStub(*channel);
  auto health = [&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    vigil::node::v1::HealthRequest req;
    vigil::node::v1::HealthResponse resp;
    return stub->Health(&ctx, req, &resp);
  };
  constexpr int kCallers = 12;
  std::vector<grpc::Status> got(kCallers);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) callers.emplace_back([&, i] { got[i] = health(); });
  std::this_thread::sleep_for(1s);
  service.Release();
  for (auto& t : callers) t.join();
  int refused = 0;
  for (const grpc::Status& st : got) {
    if (st.error_code() == grpc::RESOURCE_EXHAUSTED) {
      refused++;
    } else {
      EXPECT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_TRUE(health().ok());
  server->Shutdown();
}

}  // namespace
}  // namespace vigil::security
