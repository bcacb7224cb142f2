#include "vigil/transport/bootstrap.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "loopback_channel.h"
#include "vigil/bootstrap/v1/bootstrap.grpc.pb.h"
#include "vigil/common/text.h"
#include "vigil/transport/fake.h"

namespace vigil::transport {
namespace {

using namespace std::chrono_literals;
namespace pb = vigil::bootstrap::v1;

pb::Hello ValidHello() {
  pb::Hello h;
  Endpoint ep;
  ep.qpn = 0x1234;
  ep.psn = 0xabcdef;
  ep.mtu = 1024;
  ep.port = 1;
  ep.gid[10] = 0xff;
  ep.gid[11] = 0xff;
  ToProto("worker-1", "verbs", ep, {RemoteRegion{0x7000, 4096, 0x55, "signal-ring"}}, h);
  return h;
}

TEST(BootstrapCodec, RoundTripsEndpointAndRegions) {
  auto info = FromProto(ValidHello(), "verbs");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->node_name, "worker-1");
  EXPECT_EQ(info->endpoint.qpn, 0x1234u);
  EXPECT_EQ(info->endpoint.psn, 0xabcdefu);
  EXPECT_EQ(info->endpoint.mtu, 1024u);
  EXPECT_EQ(info->endpoint.gid[11], 0xff);
  ASSERT_EQ(info->regions.size(), 1u);
  EXPECT_EQ(info->regions[0].rkey, 0x55u);
  auto ring = info->Region("signal-ring");
  ASSERT_TRUE(ring.ok());
  EXPECT_EQ(ring->length, 4096u);
  auto missing = info->Region("verdicts");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("'signal-ring'"), std::string::npos);
}

struct BadCase {
  const char* name;
  void (*mutate)(pb::Hello&);
  StatusCode code;
  const char* message_part;
};

TEST(BootstrapCodec, RejectsIncompatibleOrOutOfRangeFields) {
  const BadCase cases[] = {
      {"version", [](pb::Hello& h) { h.set_protocol_version(1); }, StatusCode::kFailedPrecondition,
       "speaks bootstrap protocol v1, this build speaks v2"},
      {"transport", [](pb::Hello& h) { h.set_transport("fake"); }, StatusCode::kFailedPrecondition,
       "uses the 'fake' transport"},
      {"qpn", [](pb::Hello& h) { h.mutable_endpoint()->set_qpn(0x1000000); },
       StatusCode::kInvalidArgument, "qpn 16777216 is not a 24-bit QP number"},
      {"psn", [](pb::Hello& h) { h.mutable_endpoint()->set_psn(1u << 24); },
       StatusCode::kInvalidArgument, "psn 16777216 exceeds 24 bits"},
      {"gid", [](pb::Hello& h) { h.mutable_endpoint()->set_gid("short"); },
       StatusCode::kInvalidArgument, "gid has 5 bytes"},
      {"mtu", [](pb::Hello& h) { h.mutable_endpoint()->set_mtu(1500); },
       StatusCode::kInvalidArgument, "mtu 1500 is not one of"},
      {"port", [](pb::Hello& h) { h.mutable_endpoint()->set_port(0); },
       StatusCode::kInvalidArgument, "port 0 is not in [1, 255]"},
      {"name", [](pb::Hello& h) { h.set_node_name(""); }, StatusCode::kInvalidArgument,
       "node_name must be 1..255 printable characters (has 0 bytes)"},
      // A name that would forge a log line is refused, and shown escaped.
      {"name with a newline", [](pb::Hello& h) { h.set_node_name("w1\nerror [voter] forged"); },
       StatusCode::kInvalidArgument,
       "hello from 'w1\\x0aerror [voter] forged': node_name must be 1..255 printable"},
      {"no endpoint", [](pb::Hello& h) { h.clear_endpoint(); }, StatusCode::kInvalidArgument,
       "no endpoint"},
      {"region wraps", [](pb::Hello& h) { h.mutable_regions(0)->set_addr(UINT64_MAX - 10); },
       StatusCode::kInvalidArgument, "wraps around the address space"},
      {"region empty", [](pb::Hello& h) { h.mutable_regions(0)->set_length(0); },
       StatusCode::kInvalidArgument, "has length 0"},
      {"purpose", [](pb::Hello& h) { h.mutable_regions(0)->set_purpose("bad\npurpose"); },
       StatusCode::kInvalidArgument, "printable characters"},
      {"too many regions",
       [](pb::Hello& h) {
         for (int i = 0; i < 70; ++i) *h.add_regions() = h.regions(0);
       },
       StatusCode::kInvalidArgument, "71 regions advertised, at most 64"},
  };
  for (const auto& c : cases) {
    pb::Hello h = ValidHello();
    c.mutate(h);
    auto r = FromProto(h, "verbs");
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), c.code) << c.name << ": " << r.status();
    EXPECT_NE(r.status().message().find(c.message_part), std::string::npos)
        << c.name << ": " << r.status();
  }
}

// A hello mangled on the wire (random bytes of its encoding changed): if protobuf still parses
// it, FromProto either refuses it or returns what passes every check, and that re-encodes to a
// hello that decodes the same.
TEST(BootstrapCodec, MangledHellosAreRefusedOrPassEveryCheck) {
  pb::Hello h = ValidHello();
  *h.add_regions() = h.regions(0);
  h.mutable_regions(1)->set_purpose("verdicts");
  const std::string valid = h.SerializeAsString();
  std::mt19937_64 rng(11);
  int parsed = 0, accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = valid;
    for (int n = 1 + static_cast<int>(rng() % 3); n > 0; --n) {
      bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    pb::Hello mangled;
    if (!mangled.ParseFromString(bytes)) continue;
    ++parsed;
    auto info = FromProto(mangled, "verbs");
    if (!info.ok()) {
      EXPECT_FALSE(info.status().message().empty());
      continue;
    }
    ++accepted;
    ASSERT_FALSE(info->node_name.empty());
    ASSERT_TRUE(IsPrintable(info->node_name))
        << "iteration " << i << ": '" << Escaped(info->node_name) << "'";
    ASSERT_TRUE(info->endpoint.qpn > 0 && info->endpoint.qpn <= 0xFFFFFF) << "iteration " << i;
    ASSERT_LE(info->endpoint.psn, 0xFFFFFFu) << "iteration " << i;
    for (const auto& r : info->regions) {
      ASSERT_GT(r.length, 0u) << "iteration " << i;
      ASSERT_LE(r.addr, UINT64_MAX - r.length) << "iteration " << i;
    }
    pb::Hello again;
    ToProto(info->node_name, "verbs", info->endpoint, info->regions, again);
    auto back = FromProto(again, "verbs");
    ASSERT_TRUE(back.ok()) << "iteration " << i << ": " << back.status();
    ASSERT_EQ(back->regions.size(), info->regions.size());
    ASSERT_EQ(back->endpoint.gid, info->endpoint.gid);
  }
  EXPECT_GT(parsed, 1000);
  EXPECT_GT(accepted, 100);  // mangled values that are still in range are reached too
}

// Client and server over gRPC on loopback, with the FAKE transport underneath.
class BootstrapOverGrpc : public ::testing::Test {
 protected:
  void SetUp() override {
    auto buf = RegisteredBuffer::Allocate(server_t_, 4096, kAllAccess);
    ASSERT_TRUE(buf.ok());
    server_buf_ = std::make_unique<RegisteredBuffer>(std::move(*buf));
    server_.AddService("echo",
                       [this](std::unique_ptr<Connection> c,
                              const PeerInfo& peer) -> Result<std::vector<RemoteRegion>> {
                         accepted_peer_ = peer;
                         VIGIL_RETURN_IF_ERROR(c->PostRecv(server_buf_->mr().Slice(0, 256), 1));
                         accepted_ = std::move(c);
                         return std::vector<RemoteRegion>{server_buf_->mr().Describe("server-buf")};
                       });
    ASSERT_TRUE(server_.Start("127.0.0.1:0").ok());
    ASSERT_GT(server_.port(), 0);
  }

  DialOptions Options(std::string service) {
    DialOptions o;
    o.target = "127.0.0.1:" + std::to_string(server_.port());
    o.service = std::move(service);
    o.node_name = "tester";
    o.timeout = 5s;
    return o;
  }

  std::shared_ptr<FakeFabric> fabric_ = std::make_shared<FakeFabric>();
  FakeTransport server_t_{fabric_, "server"};
  FakeTransport client_t_{fabric_, "client"};
  BootstrapServer server_{server_t_, "server", ConnectionOptions{}};
  std::unique_ptr<RegisteredBuffer> server_buf_;
  std::unique_ptr<Connection> accepted_;
  PeerInfo accepted_peer_;
};

TEST_F(BootstrapOverGrpc, ConnectsBothEndsAndExchangesRegions) {
  auto cbuf = RegisteredBuffer::Allocate(client_t_, 4096, kAllAccess);
  ASSERT_TRUE(cbuf.ok());
  DialOptions o = Options("echo");
  o.regions = {cbuf->mr().Describe("client-buf")};
  auto d = Dial(client_t_, o);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->peer.node_name, "server");
  EXPECT_EQ(accepted_peer_.node_name, "tester");
  ASSERT_TRUE(accepted_peer_.Region("client-buf").ok());
  auto remote = d->peer.Region("server-buf");
  ASSERT_TRUE(remote.ok());
  // Data flows both ways over the connections the bootstrap set up.
  std::memcpy(cbuf->data(), "ping", 5);
  ASSERT_TRUE(d->connection->PostSend(cbuf->mr().Slice(0, 5), 1).ok());
  EXPECT_TRUE(WaitSendOk(*d->connection, 5s).ok());
  ASSERT_NE(accepted_, nullptr);
  auto r = WaitRecvOk(*accepted_, 5s);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_STREQ(reinterpret_cast<char*>(server_buf_->data()), "ping");
  auto at = remote->At(100, 5);
  ASSERT_TRUE(at.ok());
  ASSERT_TRUE(d->connection->PostWrite(cbuf->mr().Slice(0, 5), *at, 2).ok());
  EXPECT_TRUE(WaitSendOk(*d->connection, 5s).ok());
  EXPECT_STREQ(reinterpret_cast<char*>(server_buf_->data() + 100), "ping");
}

TEST_F(BootstrapOverGrpc, UnknownServiceIsNotFound) {
  auto d = Dial(client_t_, Options("nope"));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kNotFound);
  EXPECT_NE(d.status().message().find("no service 'nope'"), std::string::npos) << d.status();
}

TEST_F(BootstrapOverGrpc, ServerRejectsAnIncompatibleVersion) {
  auto channel = vigil::testing::LoopbackChannel("127.0.0.1:" + std::to_string(server_.port()));
  auto stub = pb::Bootstrap::NewStub(channel);
  pb::ConnectRequest req;
  req.set_service("echo");
  *req.mutable_hello() = ValidHello();
  req.mutable_hello()->set_transport("fake");
  req.mutable_hello()->set_protocol_version(7);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
  pb::ConnectResponse resp;
  grpc::Status st = stub->Connect(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("v7"), std::string::npos) << st.error_message();
  EXPECT_EQ(accepted_, nullptr);
}

TEST(Bootstrap, DialingNobodyFailsWithinTheTimeout) {
  auto fabric = std::make_shared<FakeFabric>();
  FakeTransport t(fabric, "lonely");
  DialOptions o;
  o.target = "127.0.0.1:1";  // nothing listens on port 1
  o.service = "x";
  o.timeout = 300ms;
  const auto start = std::chrono::steady_clock::now();
  auto d = Dial(t, o);
  EXPECT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kDeadlineExceeded) << d.status();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(Bootstrap, ListeningOnABadAddressIsAnError) {
  auto fabric = std::make_shared<FakeFabric>();
  FakeTransport t(fabric, "s");
  BootstrapServer s(t, "s", ConnectionOptions{});
  Status st = s.Start("unix:/nonexistent/vigil-test.sock");
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("unix:/nonexistent/vigil-test.sock"), std::string::npos) << st;
}

}  // namespace
}  // namespace vigil::transport
