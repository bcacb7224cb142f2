// The trust boundary, wired: daemons started with certificates refuse callers of the wrong role,
// a client acting as another client, and a server opening a store session for another service;
// legitimate peers are served. (The parts: security_test.cc.)
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>
#include <vector>

#include "loopback_channel.h"
#include "test_ca.h"
#include "vigil/channel/channel.h"
#include "vigil/node/agent.h"
#include "vigil/node/v1/node.grpc.pb.h"
#include "vigil/security/nonce.h"
#include "vigil/server/client.h"
#include "vigil/server/framework.h"
#include "vigil/server/services.h"
#include "vigil/signal/v1/signal.grpc.pb.h"
#include "vigil/ssr/store.h"
#include "vigil/transport/bootstrap.h"
#include "vigil/transport/fake.h"

namespace vigil {
namespace {

using security::Role;
using namespace std::chrono_literals;
namespace pb = vigil::node::v1;

class TrustTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(ca_.status().ok()) << ca_.status(); }
  security::TlsOptions Cert(Role role, const std::string& name) {
    auto t = ca_.Issue(role, name);
    EXPECT_TRUE(ca_.status().ok()) << ca_.status();
    return t;
  }
  testing::TestCa ca_;
};

TEST_F(TrustTest, TheNodeAgentTakesReplicasFromVotersAndFaultsFromOperatorsOnly) {
  const std::string script = ca_.dir() + "/fake-replica";
  std::ofstream(script) << "#!/bin/sh\nexec sleep 30\n";
  ASSERT_EQ(chmod(script.c_str(), 0755), 0);
  node::AgentOptions o;
  o.node_name = "w1";
  o.replica_binary = script;
  o.tls = Cert(Role::kNode, "w1");
  node::NodeAgent agent(o);
  ASSERT_TRUE(agent.Start("127.0.0.1:0").ok());
  const std::string target = "127.0.0.1:" + std::to_string(agent.port());
  const auto stub = [&](const security::TlsOptions& t) {
    auto ch = security::Channel(t, target, Role::kNode);
    EXPECT_TRUE(ch.ok()) << ch.status();
    return pb::NodeAgent::NewStub(*ch);
  };
  pb::StartReplicaRequest start;
  start.mutable_id()->set_group(1);
  start.mutable_id()->set_replica(2);
  start.set_voter("127.0.0.1:9");
  start.set_service("replica/1/2/0");
  start.set_nonce("0123456789abcdef0123456789abcdef");
  start.set_signal("polling");
  start.set_workload("crc32");
  pb::InjectFaultRequest kill;
  *kill.mutable_id() = start.id();
  kill.set_kind(pb::FAULT_KILL);
  const auto call_start = [&](const security::TlsOptions& t) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    pb::StartReplicaResponse resp;
    return stub(t)->StartReplica(&ctx, start, &resp);
  };
  const auto call_inject = [&](const security::TlsOptions& t) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    pb::InjectFaultResponse resp;
    return stub(t)->InjectFault(&ctx, kill, &resp);
  };
  const security::TlsOptions voter = Cert(Role::kVoter, "v1");
  const security::TlsOptions alice = Cert(Role::kOperator, "alice");
  // Anyone else who holds a certificate of this cluster: refused, and nothing started.
  for (Role r : {Role::kOperator, Role::kClient, Role::kNode, Role::kServer}) {
    grpc::Status st = call_start(Cert(r, "intruder"));
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << security::RoleName(r);
    EXPECT_NE(st.error_message().find("may not call /vigil.node.v1.NodeAgent/StartReplica"),
              std::string::npos)
        << st.error_message();
  }
  grpc::ClientContext ctx;
  pb::HealthResponse health;
  ASSERT_TRUE(stub(alice)->Health(&ctx, {}, &health).ok());
  EXPECT_EQ(health.replicas_size(), 0);
  EXPECT_EQ(call_inject(voter).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // The voter starts it; the operator kills it.
  ASSERT_TRUE(call_start(voter).ok());
  EXPECT_TRUE(call_inject(alice).ok());
  agent.Shutdown();
}

// A store and a kv server on the fake transport, both with certificates.
class TrustedKv : public TrustTest {
 protected:
  void SetUp() override {
    TrustTest::SetUp();
    fabric_ = std::make_shared<transport::FakeFabric>();
    store_side_ = std::make_unique<transport::FakeTransport>(fabric_, "store");
    server_side_ = std::make_unique<transport::FakeTransport>(fabric_, "server");
    ssr::StoreOptions so;
    so.arena_bytes = 4 << 20;
    auto store = ssr::Store::Create(*store_side_, so);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    bootstrap_ = std::make_unique<transport::BootstrapServer>(*store_side_, "store",
                                                              transport::ConnectionOptions{});
    bootstrap_->set_tls(Cert(Role::kStore, "s1"));
    store_->Attach(*bootstrap_);
    ASSERT_TRUE(bootstrap_->Start("127.0.0.1:0").ok());
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    bootstrap_->Shutdown();
    store_->Shutdown();
  }
  // The kv server with the certificate of `server_name`.
  Result<std::unique_ptr<server::RestartableServer>> StartKv(const std::string& server_name) {
    server::ServerOptions o;
    o.tls = o.store.tls = Cert(Role::kServer, server_name);
    o.store.store = "127.0.0.1:" + std::to_string(bootstrap_->port());
    o.store.instance = "kv-0";
    o.store.timeout = 3s;
    return server::RestartableServer::Start(server_side_.get(), server::MakeKvService(), o);
  }
  std::unique_ptr<server::Client> Connect(const security::TlsOptions& t, uint64_t id) {
    server::ClientOptions o;
    o.server = "127.0.0.1:" + std::to_string(server_->port());
    o.client_id = id;
    o.deadline = 5s;
    o.tls = t;
    auto c = server::Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }
  std::shared_ptr<transport::FakeFabric> fabric_;
  std::unique_ptr<transport::FakeTransport> store_side_, server_side_;
  std::unique_ptr<ssr::Store> store_;
  std::unique_ptr<transport::BootstrapServer> bootstrap_;
  std::unique_ptr<server::RestartableServer> server_;
};

TEST_F(TrustedKv, AServerMayOpenStoreSessionsForItsOwnServiceOnly) {
  auto lock = StartKv("lock");  // a certificate for the lock service, serving kv's SSRs
  ASSERT_FALSE(lock.ok());
  EXPECT_EQ(lock.status().code(), StatusCode::kPermissionDenied) << lock.status();
  EXPECT_NE(lock.status().message().find("vigil://server/lock may not serve 'kv'"),
            std::string::npos)
      << lock.status();
  auto kv = StartKv("kv");
  ASSERT_TRUE(kv.ok()) << kv.status();
}

TEST_F(TrustedKv, AClientActsOnlyAsTheClientItsCertificateNames) {
  auto kv = StartKv("kv");
  ASSERT_TRUE(kv.ok()) << kv.status();
  server_ = std::move(*kv);
  auto c42 = Connect(Cert(Role::kClient, "42"), 42);
  ASSERT_TRUE(c42);
  auto r = c42->Call("put k mine");
  ASSERT_TRUE(r.ok()) << r.status();
  // Client 7's certificate, claiming to be 42: refused, and 42's state is untouched. The error
  // names only the caller's own id.
  auto impostor = Connect(Cert(Role::kClient, "7"), 42);
  ASSERT_TRUE(impostor);
  auto stolen = impostor->Call("get k");
  EXPECT_EQ(stolen.status().code(), StatusCode::kPermissionDenied) << stolen.status();
  EXPECT_EQ(stolen.status().message().find("client 42"), std::string::npos) << stolen.status();
  EXPECT_NE(stolen.status().message().find("may act only as client 7"), std::string::npos)
      << stolen.status();
  EXPECT_EQ(impostor->Call("put k theirs").status().code(), StatusCode::kPermissionDenied);
  // A node's certificate may probe health but not call.
  auto node = Connect(Cert(Role::kNode, "w1"), 5);
  ASSERT_TRUE(node);
  EXPECT_EQ(node->Call("get k").status().code(), StatusCode::kPermissionDenied);
  auto again = c42->Call("get k");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, "mine");
}

// A caller holding a replica's nonce (the replica itself, gone wrong) cannot park more than a few
// rpc events at the voter's end: the rest are RESOURCE_EXHAUSTED naming the cap, and once the
// parked calls end, the end takes events again.
TEST(RpcVoterCaps, ParkedEventsBeyondTheCapAreRefused) {
  auto made = security::NewNonce();
  ASSERT_TRUE(made.ok()) << made.status();
  const std::string nonce = *made;
  auto voter = channel::RpcVoter("127.0.0.1:0", 256, nonce);
  ASSERT_TRUE(voter.ok()) << voter.status();
  auto stub = vigil::signal::v1::Voter::NewStub(vigil::testing::LoopbackChannel(
      "127.0.0.1:" + std::to_string(channel::RpcVoterPort(**voter))));
  auto call = [&](uint64_t seq, std::chrono::milliseconds deadline) {
    vigil::signal::v1::EventRecord req, resp;
    req.set_kind(1);
    req.set_seq(seq);
    req.set_token(nonce);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    return stub->Signal(&ctx, req, &resp);
  };
  constexpr int kCalls = 16;
  std::vector<grpc::Status> got(kCalls);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCalls; ++i) {  // in sequence order: each parks before the next comes
    callers.emplace_back([&, i] { got[i] = call(static_cast<uint64_t>(i + 1), 3000ms); });
    std::this_thread::sleep_for(50ms);
  }
  for (auto& t : callers) t.join();
  int refused = 0, parked = 0;
  for (const grpc::Status& st : got) {
    if (st.error_code() == grpc::RESOURCE_EXHAUSTED) {
      refused++;
      EXPECT_NE(st.error_message().find("max parked rpc events"), std::string::npos)
          << st.error_message();
    } else {
      EXPECT_EQ(st.error_code(), grpc::DEADLINE_EXCEEDED) << st.error_message();
      parked++;
    }
  }
  EXPECT_EQ(parked, 8);
  EXPECT_EQ(refused, kCalls - 8);
  // The parked calls gave up and were dropped: a new event parks again (no one answers it).
  EXPECT_EQ(call(1000, 300ms).error_code(), grpc::DEADLINE_EXCEEDED);
}

}  // namespace
}  // namespace vigil
