// The same protocol tests against all three signalling methods behind the channel interface:
// polling (signal rings), notify (SEND + sleeping receiver) and rpc (synchronous gRPC).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "rdma_env.h"
#include "transport_conformance.h"
#include "vigil/channel/channel.h"

namespace vigil::testing {
namespace {

using namespace std::chrono_literals;
using channel::ReplicaChannel;
using channel::VoterChannel;

constexpr auto kWait = 30s;
constexpr size_t kMaxPayload = 200;

using Param = std::tuple<TransportFactory, std::string>;

class Channels : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    const auto& [factory, method] = GetParam();
    auto pair = factory.make();
    if (!pair.ok()) {
      VIGIL_SKIP_WITHOUT_RDMA(pair.status());
    }
    t_ = *pair;
    if (method == "rpc") {
      auto v = channel::RpcVoter("127.0.0.1:0", kMaxPayload);
      ASSERT_TRUE(v.ok()) << v.status();
      voter_ = std::move(*v);
      auto r = channel::RpcReplica("127.0.0.1:" + std::to_string(channel::RpcVoterPort(*voter_)),
                                   kMaxPayload, "", &cancel_);
      ASSERT_TRUE(r.ok()) << r.status();
      replica_ = std::move(*r);
      return;
    }
    auto conns = MakeConnections(t_);
    ASSERT_TRUE(conns.ok()) << conns.status();
    rconn_ = std::move(conns->replica);
    vconn_ = std::move(conns->voter);
    if (method == "notify") {
      auto re = channel::NotifyEndpoint::Create(*t_.a, {.depth = 16, .max_payload = kMaxPayload});
      auto ve = channel::NotifyEndpoint::Create(*t_.b, {.depth = 16, .max_payload = kMaxPayload});
      ASSERT_TRUE(re.ok() && ve.ok());
      rnotify_ = std::move(*re);
      vnotify_ = std::move(*ve);
      ASSERT_TRUE(rnotify_->Attach(rconn_.get()).ok());
      ASSERT_TRUE(vnotify_->Attach(vconn_.get()).ok());
      replica_ = channel::NotifyReplica(*rnotify_, &cancel_);
      voter_ = channel::NotifyVoter(*vnotify_);
    } else {
      const channel::RingConfig cfg{
          .slots = 16, .slot_bytes = kMaxPayload + channel::kSlotOverhead, .cancel = &cancel_};
      auto ew = channel::RingWriter::Create(*t_.a, cfg);
      auto vr = channel::RingReader::Create(*t_.a, cfg);
      auto er = channel::RingReader::Create(*t_.b, cfg);
      auto vw = channel::RingWriter::Create(*t_.b, cfg);
      ASSERT_TRUE(ew.ok() && vr.ok() && er.ok() && vw.ok());
      events_w_ = std::move(*ew);
      verdicts_r_ = std::move(*vr);
      events_r_ = std::move(*er);
      verdicts_w_ = std::move(*vw);
      events_w_->Attach(rconn_.get(), events_r_->ring_region());
      verdicts_r_->Attach(rconn_.get(), verdicts_w_->credit_region());
      events_r_->Attach(vconn_.get(), events_w_->credit_region());
      verdicts_w_->Attach(vconn_.get(), verdicts_r_->ring_region());
      replica_ = channel::PollingReplica(*events_w_, *verdicts_r_);
      voter_ = channel::PollingVoter(*events_r_, *verdicts_w_);
    }
    ASSERT_TRUE(rconn_->Connect(vconn_->local_endpoint()).ok());
    ASSERT_TRUE(vconn_->Connect(rconn_->local_endpoint()).ok());
  }

  // The replica's cancel flag (a launcher stopping a thread replica raises it).
  std::atomic<bool> cancel_{false};
  TransportPair t_;
  std::unique_ptr<transport::Connection> rconn_, vconn_;
  std::unique_ptr<channel::NotifyEndpoint> rnotify_, vnotify_;
  std::unique_ptr<channel::RingWriter> events_w_, verdicts_w_;
  std::unique_ptr<channel::RingReader> events_r_, verdicts_r_;
  std::unique_ptr<ReplicaChannel> replica_;
  std::unique_ptr<VoterChannel> voter_;
};

uint64_t Sum(std::span<const std::byte> p) {
  uint64_t s = 0;
  for (auto b : p) s = s * 131 + static_cast<uint8_t>(b);
  return s;
}

TEST_P(Channels, EveryEventGetsItsOwnVerdict) {
  EXPECT_EQ(replica_->method(), std::get<1>(GetParam()));
  EXPECT_EQ(replica_->max_payload(), kMaxPayload);
  constexpr int kEvents = 200;
  std::thread voter([&] {
    std::vector<std::byte> buf(kMaxPayload);
    for (int i = 0; i < kEvents; ++i) {
      auto ev = voter_->NextEvent(buf, kWait);
      ASSERT_TRUE(ev.ok()) << ev.status();
      ASSERT_EQ(ev->kind, 7);
      ASSERT_EQ(ev->payload.size(), static_cast<size_t>(i % (kMaxPayload + 1)));
      const uint64_t verdict = Sum(ev->payload);  // the "decision": echo a digest of the event
      ASSERT_TRUE(voter_->Reply(8, std::as_bytes(std::span(&verdict, 1)), kWait).ok());
    }
  });
  std::vector<std::byte> buf(kMaxPayload);
  for (int i = 0; i < kEvents; ++i) {
    std::vector<std::byte> payload(i % (kMaxPayload + 1));
    for (size_t k = 0; k < payload.size(); ++k) payload[k] = std::byte(static_cast<uint8_t>(i + k));
    auto v = replica_->Signal(7, payload, buf, kWait);
    ASSERT_TRUE(v.ok()) << v.status();
    ASSERT_EQ(v->kind, 8);
    ASSERT_EQ(v->payload.size(), 8u);
    uint64_t got;
    std::memcpy(&got, v->payload.data(), 8);
    ASSERT_EQ(got, Sum(payload)) << "event " << i;
  }
  voter.join();
}

TEST_P(Channels, BuffersLargerThanASlotReceiveIntactRecords) {
  // Polling reads straight into a buffer that holds a whole slot; the others copy as usual.
  std::vector<std::byte> vbuf(4096), rbuf(4096), event(150);
  for (size_t k = 0; k < event.size(); ++k) event[k] = std::byte(static_cast<uint8_t>(3 * k + 1));
  std::thread voter([&] {
    for (int i = 0; i < 3; ++i) {
      auto ev = voter_->NextEvent(vbuf, kWait);
      ASSERT_TRUE(ev.ok()) << ev.status();
      ASSERT_EQ(ev->payload.size(), event.size());
      ASSERT_EQ(0, std::memcmp(ev->payload.data(), event.data(), event.size()));
      const uint64_t verdict = Sum(ev->payload) + static_cast<uint64_t>(i);
      ASSERT_TRUE(voter_->Reply(8, std::as_bytes(std::span(&verdict, 1)), kWait).ok());
    }
  });
  for (int i = 0; i < 3; ++i) {
    auto v = replica_->Signal(7, event, rbuf, kWait);
    ASSERT_TRUE(v.ok()) << v.status();
    ASSERT_EQ(v->payload.size(), 8u);
    uint64_t got;
    std::memcpy(&got, v->payload.data(), 8);
    EXPECT_EQ(got, Sum(event) + static_cast<uint64_t>(i));
  }
  voter.join();
}

TEST_P(Channels, OversizedEventIsRefusedBeforeSending) {
  std::vector<std::byte> big(kMaxPayload + 1), buf(kMaxPayload);
  EXPECT_EQ(replica_->Signal(1, big, buf, kWait).status().code(), StatusCode::kOutOfRange);
}

TEST_P(Channels, SilentVoterIsADeadlineNotAHang) {
  std::vector<std::byte> payload(8), buf(kMaxPayload);
  auto v = replica_->Signal(1, payload, buf, 300ms);
  EXPECT_EQ(v.status().code(), StatusCode::kDeadlineExceeded) << v.status();
}

// A replica thread whose launcher stopped it ends its wait for a verdict (kCancelGrace after the
// flag) instead of waiting out its timeout; a verdict already on its way would still arrive.
TEST_P(Channels, ARaisedCancelFlagEndsTheWaitForAVerdict) {
  std::vector<std::byte> payload(8), buf(kMaxPayload);
  std::thread raise([&] {
    std::this_thread::sleep_for(50ms);
    cancel_ = true;
  });
  auto v = replica_->Signal(1, payload, buf, kWait);  // the voter never answers
  raise.join();
  EXPECT_EQ(v.status().code(), StatusCode::kAborted) << v.status();
  EXPECT_NE(v.status().message().find("cancelled"), std::string::npos) << v.status();
}

TEST_P(Channels, VoterWithoutEventsTimesOut) {
  std::vector<std::byte> buf(kMaxPayload);
  EXPECT_EQ(voter_->NextEvent(buf, 100ms).status().code(), StatusCode::kDeadlineExceeded);
}

std::string ChannelName(const ::testing::TestParamInfo<Param>& info) {
  return std::get<0>(info.param).name + "_" + std::get<1>(info.param);
}

INSTANTIATE_TEST_SUITE_P(Methods, Channels,
                         ::testing::Combine(::testing::ValuesIn(ConformanceFactories()),
                                            ::testing::Values("polling", "notify", "rpc")),
                         ChannelName);

}  // namespace
}  // namespace vigil::testing
