// The notification method (SEND into posted receives, sleeping receiver) over every transport
// the binary offers, including corrupted records and non-inline payloads.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "rdma_env.h"
#include "transport_conformance.h"
#include "vigil/channel/notify.h"
#include "vigil/transport/fault_injection.h"

namespace vigil::testing {
namespace {

using namespace std::chrono_literals;
using channel::NotifyConfig;
using channel::NotifyEndpoint;

constexpr auto kWait = 30s;

std::vector<std::byte> Bytes(uint64_t i, size_t len) {
  std::vector<std::byte> p(len);
  for (size_t k = 0; k < len; ++k) p[k] = std::byte(static_cast<uint8_t>(i * 17 + k * 3));
  return p;
}

class Notify : public TransportFixture {
 protected:
  void Build(NotifyConfig cfg, bool faulty = false) {
    auto pair = MakeConnections(t_, faulty ? faults_ : nullptr);
    ASSERT_TRUE(pair.ok()) << pair.status();
    aconn_ = std::move(pair->replica);
    bconn_ = std::move(pair->voter);
    auto ea = NotifyEndpoint::Create(*t_.a, cfg);
    auto eb = NotifyEndpoint::Create(*t_.b, cfg);
    ASSERT_TRUE(ea.ok() && eb.ok());
    a_ = std::move(*ea);
    b_ = std::move(*eb);
    ASSERT_TRUE(a_->Attach(aconn_.get()).ok());  // receives first, then connect
    ASSERT_TRUE(b_->Attach(bconn_.get()).ok());
    ASSERT_TRUE(aconn_->Connect(bconn_->local_endpoint()).ok());
    ASSERT_TRUE(bconn_->Connect(aconn_->local_endpoint()).ok());
    buf_.resize(cfg.max_payload);
  }

  std::shared_ptr<transport::FaultInjector> faults_ = std::make_shared<transport::FaultInjector>();
  std::unique_ptr<transport::Connection> aconn_, bconn_;
  std::unique_ptr<NotifyEndpoint> a_, b_;
  std::vector<std::byte> buf_;
};

TEST_P(Notify, RecordsFlowBothWaysInOrder) {
  Build({.depth = 8, .max_payload = 200});
  for (uint64_t i = 0; i < 300; ++i) {
    auto p = Bytes(i, i % 201);
    ASSERT_TRUE(a_->Send(static_cast<uint16_t>(i % 5), 1, p, kWait).ok());
    auto r = b_->Receive(buf_, kWait);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->seq, i + 1);
    EXPECT_EQ(r->kind, i % 5);
    ASSERT_EQ(r->payload.size(), p.size());
    if (!p.empty()) {
      ASSERT_EQ(0, std::memcmp(r->payload.data(), p.data(), p.size()));
    }
    // The verdict goes back the same way.
    const uint64_t verdict = i;
    ASSERT_TRUE(b_->Send(9, 0, std::as_bytes(std::span(&verdict, 1)), kWait).ok());
    auto v = a_->Receive(buf_, kWait);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->kind, 9);
  }
}

TEST_P(Notify, LargeNonInlinePayloadsArrive) {
  Build({.depth = 4, .max_payload = 4000});
  for (uint64_t i = 0; i < 10; ++i) {
    auto p = Bytes(i, 4000);
    ASSERT_TRUE(a_->Send(1, 0, p, kWait).ok());
    auto r = b_->Receive(buf_, kWait);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(0, std::memcmp(r->payload.data(), p.data(), p.size()));
  }
}

TEST_P(Notify, ReceiverSleepsUntilTheRecordComes) {
  Build({.depth = 4, .max_payload = 64});
  std::thread sender([&] {
    std::this_thread::sleep_for(100ms);
    EXPECT_TRUE(a_->Send(3, 0, Bytes(0, 16), kWait).ok());
  });
  const auto start = std::chrono::steady_clock::now();
  auto r = b_->Receive(buf_, kWait);
  sender.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 90ms);
  EXPECT_EQ(b_->Receive(buf_, 50ms).status().code(), StatusCode::kDeadlineExceeded);
}

TEST_P(Notify, CorruptedRecordIsRejectedAndTheStreamContinues) {
  Build({.depth = 4, .max_payload = 64}, /*faulty=*/true);
  ASSERT_TRUE(faults_
                  ->Add({.ops = transport::kOpSend,
                         .action = transport::FaultAction::kCorrupt,
                         .corrupt_offset = 30,
                         .corrupt_mask = 0x01})
                  .ok());
  ASSERT_TRUE(a_->Send(1, 0, Bytes(1, 32), kWait).ok());
  ASSERT_TRUE(a_->Send(1, 0, Bytes(2, 32), kWait).ok());
  auto bad = b_->Receive(buf_, kWait);
  ASSERT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find("notify receive sequence 1: CRC mismatch"),
            std::string::npos)
      << bad.status();
  auto good = b_->Receive(buf_, kWait);
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->seq, 2u);
}

TEST_P(Notify, OversizedPayloadIsRejectedAtTheSender) {
  Build({.depth = 2, .max_payload = 64});
  EXPECT_EQ(a_->Send(1, 0, Bytes(0, 65), kWait).code(), StatusCode::kOutOfRange);
}

INSTANTIATE_TEST_SUITE_P(Transports, Notify, ::testing::ValuesIn(ConformanceFactories()),
                         FactoryName);

}  // namespace
}  // namespace vigil::testing
