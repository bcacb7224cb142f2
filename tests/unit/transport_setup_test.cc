#include <gtest/gtest.h>

#include "vigil/common/config.h"
#include "vigil/transport/config.h"
#include "vigil/transport/verbs.h"

namespace vigil::transport {
namespace {

TEST(VerbsSetup, MissingDeviceIsAClearErrorNeverACrash) {
  // On a host without RDMA this reports "no RDMA device" with the fix; with devices, it names
  // the missing one and lists the others. Either way: an error naming the thing, not a crash.
  auto t = VerbsTransport::Open({.device = "vigil-no-such-device"});
  ASSERT_FALSE(t.ok());
  const std::string& m = t.status().message();
  if (t.status().code() == StatusCode::kUnavailable) {
    EXPECT_NE(m.find("no RDMA device found"), std::string::npos) << m;
    EXPECT_NE(m.find("rdma link add rxe0 type rxe netdev"), std::string::npos) << m;
    EXPECT_NE(m.find("scripts/with-rxe"), std::string::npos) << m;
  } else {
    EXPECT_EQ(t.status().code(), StatusCode::kNotFound) << t.status();
    EXPECT_NE(m.find("'vigil-no-such-device' not found (available: "), std::string::npos) << m;
  }
}

TEST(VerbsSetup, MemlockAdviceNamesTheLimitAndTheFix) {
  const std::string advice = MemlockAdvice(1 << 20);
  EXPECT_NE(advice.find("registering 1048576 bytes"), std::string::npos) << advice;
  EXPECT_NE(advice.find("RLIMIT_MEMLOCK is "), std::string::npos) << advice;
  EXPECT_NE(advice.find("ulimit -l unlimited"), std::string::npos) << advice;
}

TEST(VerbsSetup, PeerTimeoutDefaultsToFourRetryBudgetsWithAFloor) {
  ConnectionOptions o;
  EXPECT_EQ(EffectivePeerTimeout(o).count(), 5000);  // 4 x 0.54 s < 5 s floor
  o.ack_timeout = 20;                                // 4.3 s per try, 8 tries
  EXPECT_EQ(EffectivePeerTimeout(o).count(), 137438);
  o.peer_timeout_ms = 1234;
  EXPECT_EQ(EffectivePeerTimeout(o).count(), 1234);
}

TEST(TransportConfig, LoadsEveryKeyAndRejectsBadOnes) {
  auto cfg = ConfigReader::FromString(
      "transport:\n  device: mlx5_0\n  port: 2\n  gid_index: 3\n  sq_depth: 512\n  rq_depth: 128\n"
      "  max_inline: 64\n  signal_every: 16\n  ack_timeout: 12\n  retry_count: 5\n  rnr_retry: 6\n"
      "  peer_timeout_ms: 9000\n",
      "vigil.yaml");
  ASSERT_TRUE(cfg.ok());
  VerbsOptions v;
  ConnectionOptions c;
  ASSERT_TRUE(LoadTransportConfig(*cfg, v, c).ok());
  EXPECT_EQ(v.device, "mlx5_0");
  EXPECT_EQ(v.port, 2u);
  EXPECT_EQ(v.gid_index, 3);
  EXPECT_EQ(c.sq_depth, 512u);
  EXPECT_EQ(c.rq_depth, 128u);
  EXPECT_EQ(c.max_inline, 64u);
  EXPECT_EQ(c.signal_every, 16u);
  EXPECT_EQ(c.ack_timeout, 12);
  EXPECT_EQ(c.retry_count, 5);
  EXPECT_EQ(c.rnr_retry, 6);
  EXPECT_EQ(c.peer_timeout_ms, 9000u);

  struct Bad {
    const char* yaml;
    const char* message;
  } bad[] = {
      {"transport:\n  retry_count: 9\n",
       "key 'transport.retry_count' = '9' is out of range [0, 7]"},
      {"transport:\n  gid_index: -2\n",
       "key 'transport.gid_index' = '-2' is out of range [-1, 255]"},
      {"transport:\n  sq_depth: 8\n  signal_every: 16\n",
       "'transport.signal_every' = '16' must not exceed"},
      {"transport:\n  devcie: rxe0\n", "unknown key 'transport.devcie'"},
  };
  for (const auto& b : bad) {
    auto r = ConfigReader::FromString(b.yaml, "vigil.yaml");
    ASSERT_TRUE(r.ok());
    VerbsOptions v2;
    ConnectionOptions c2;
    Status st = LoadTransportConfig(*r, v2, c2);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << b.yaml;
    EXPECT_NE(st.message().find(b.message), std::string::npos) << st;
  }
}

}  // namespace
}  // namespace vigil::transport
