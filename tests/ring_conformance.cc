// The polling channel's slot ring over every transport the binary offers (fake in the unit tier,
// verbs in the rxe tier), including corrupted, dropped and overrunning writes.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "rdma_env.h"
#include "transport_conformance.h"
#include "vigil/channel/ring.h"
#include "vigil/transport/fault_injection.h"

namespace vigil::testing {
namespace {

using namespace std::chrono_literals;
using channel::Record;
using channel::RingConfig;
using channel::RingReader;
using channel::RingWriter;

constexpr auto kWait = 30s;

std::vector<std::byte> Payload(uint64_t i, size_t len) {
  std::vector<std::byte> p(len);
  for (size_t k = 0; k < len; ++k) p[k] = std::byte(static_cast<uint8_t>(i * 31 + k));
  return p;
}

class Ring : public TransportFixture {
 protected:
  // writer (replica) -> reader (voter), optionally through a fault injector on the writer side.
  void Build(RingConfig cfg, bool faulty = false) {
    auto pair = MakeConnections(t_, faulty ? faults_ : nullptr);
    ASSERT_TRUE(pair.ok()) << pair.status();
    ASSERT_TRUE(ConnectBoth(*pair).ok());
    wconn_ = std::move(pair->replica);
    rconn_ = std::move(pair->voter);
    auto reader = RingReader::Create(*t_.b, cfg);
    auto writer = RingWriter::Create(*t_.a, cfg);
    ASSERT_TRUE(reader.ok()) << reader.status();
    ASSERT_TRUE(writer.ok()) << writer.status();
    reader_ = std::move(*reader);
    writer_ = std::move(*writer);
    reader_->Attach(rconn_.get(), writer_->credit_region());
    writer_->Attach(wconn_.get(), reader_->ring_region());
    buf_.resize(cfg.slot_bytes);
  }

  std::shared_ptr<transport::FaultInjector> faults_ = std::make_shared<transport::FaultInjector>();
  std::unique_ptr<transport::Connection> wconn_, rconn_;
  std::unique_ptr<RingReader> reader_;
  std::unique_ptr<RingWriter> writer_;
  std::vector<std::byte> buf_;
};

TEST_P(Ring, StreamsRecordsInOrderThroughManyLaps) {
  Build({.slots = 16, .slot_bytes = 128});
  // 16 slots, 1000 records: the ring wraps ~60 times and credits flow back each lap.
  uint64_t written = 0, read = 0;
  while (read < 1000) {
    while (written < 1000) {
      auto p = Payload(written, written % 97);
      auto ok = writer_->TryWrite(static_cast<uint16_t>(written % 7), 0x5, p);
      ASSERT_TRUE(ok.ok()) << ok.status();
      if (!*ok) break;  // ring full: let the reader catch up
      ++written;
    }
    auto rec = reader_->Read(buf_, kWait);
    ASSERT_TRUE(rec.ok()) << rec.status();
    EXPECT_EQ(rec->seq, read + 1);
    EXPECT_EQ(rec->kind, read % 7);
    EXPECT_EQ(rec->flags, 0x5);
    auto want = Payload(read, read % 97);
    ASSERT_EQ(rec->payload.size(), want.size());
    if (!want.empty()) {  // memcmp on an empty vector's null data() is undefined
      ASSERT_EQ(0, std::memcmp(rec->payload.data(), want.data(), want.size())) << "record " << read;
    }
    ASSERT_TRUE(reader_->Release().ok());
    ++read;
  }
}

TEST_P(Ring, WriterStopsAtTheCreditLimitAndResumes) {
  Build({.slots = 4, .slot_bytes = 64, .credit_batch = 1});
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(*writer_->TryWrite(1, 0, Payload(i, 8)));
  auto full = writer_->TryWrite(1, 0, Payload(4, 8));
  ASSERT_TRUE(full.ok());
  EXPECT_FALSE(*full) << "a fifth record would overwrite an unread slot";
  EXPECT_EQ(writer_->Write(1, 0, Payload(4, 8), 50ms).code(), StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(reader_->Read(buf_, kWait).ok());
  ASSERT_TRUE(reader_->Release().ok());  // credit for one slot goes back
  EXPECT_TRUE(writer_->Write(1, 0, Payload(4, 8), kWait).ok());
}

TEST_P(Ring, OversizedPayloadIsRejectedAtTheWriter) {
  Build({.slots = 4, .slot_bytes = 64});
  EXPECT_EQ(writer_->max_payload(), 32u);
  auto r = writer_->TryWrite(1, 0, Payload(0, 33));
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(r.status().message(),
            "event payload of 33 bytes exceeds the slot capacity of 32 bytes");
}

TEST_P(Ring, PayloadCorruptedInFlightIsRejectedAndTheStreamContinues) {
  Build({.slots = 8, .slot_bytes = 64}, /*faulty=*/true);
  ASSERT_TRUE(faults_
                  ->Add({.ops = transport::kOpWrite,
                         .action = transport::FaultAction::kCorrupt,
                         .skip = 1,
                         .corrupt_offset = 30,
                         .corrupt_mask = 0x10})
                  .ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(*writer_->TryWrite(2, 0, Payload(i, 16)));
  ASSERT_TRUE(reader_->Read(buf_, kWait).ok());
  ASSERT_TRUE(reader_->Release().ok());
  auto bad = reader_->Read(buf_, kWait);
  ASSERT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find("sequence 2: CRC mismatch"), std::string::npos)
      << bad.status();
  ASSERT_TRUE(reader_->Release().ok());  // skip the rejected record
  auto third = reader_->Read(buf_, kWait);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->seq, 3u);
}

TEST_P(Ring, CorruptedSequenceHeaderIsRejected) {
  Build({.slots = 8, .slot_bytes = 64}, /*faulty=*/true);
  ASSERT_TRUE(faults_
                  ->Add({.ops = transport::kOpWrite,
                         .action = transport::FaultAction::kCorrupt,
                         .corrupt_offset = 0,
                         .corrupt_mask = 0x02})
                  .ok());
  ASSERT_TRUE(*writer_->TryWrite(2, 0, Payload(0, 16)));
  auto bad = reader_->Read(buf_, kWait);
  ASSERT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find("header sequence 3, expected 1"), std::string::npos)
      << bad.status();
}

TEST_P(Ring, DroppedRecordStallsTheReaderWithAClearTimeout) {
  Build({.slots = 8, .slot_bytes = 64}, /*faulty=*/true);
  ASSERT_TRUE(
      faults_->Add({.ops = transport::kOpWrite, .action = transport::FaultAction::kDrop}).ok());
  ASSERT_TRUE(*writer_->TryWrite(2, 0, Payload(0, 16)));  // lost
  ASSERT_TRUE(*writer_->TryWrite(2, 0, Payload(1, 16)));  // arrives in the next slot
  auto r = reader_->Read(buf_, 200ms);
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(r.status().message().find("no record with sequence 1"), std::string::npos)
      << r.status();
}

TEST_P(Ring, OverrunningWriterIsDetected) {
  Build({.slots = 4, .slot_bytes = 64});
  // A buggy writer ignoring credits: write a record whose header claims sequence 5 into slot 0,
  // where the reader expects sequence 1.
  auto src = transport::RegisteredBuffer::Allocate(*t_.a, 64, transport::kLocalWrite);
  ASSERT_TRUE(src.ok());
  const uint64_t seq = 5;
  std::memcpy(src->data(), &seq, 8);
  ASSERT_TRUE(wconn_->PostWrite(src->mr().All(), *reader_->ring_region().At(0, 64), 1).ok());
  ASSERT_TRUE(transport::WaitSendOk(*wconn_, kWait).ok());
  auto r = reader_->Read(buf_, kWait);
  ASSERT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("header sequence 5, expected 1"), std::string::npos)
      << r.status();
}

TEST_P(Ring, WithImplicitCreditTheReaderWritesNoCreditAndTheWriterTrustsConsumed) {
  Build({.slots = 4, .slot_bytes = 64, .credit_batch = 1, .implicit_credit = true});
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(*writer_->TryWrite(1, 0, Payload(i, 8)));
  for (uint64_t seq = 1; seq <= 4; ++seq) {
    auto rec = reader_->Read(buf_, kWait);
    ASSERT_TRUE(rec.ok()) << rec.status();
    ASSERT_TRUE(reader_->Release().ok());
  }
  // Every record read, but no credit came back: the ring is still full for the writer.
  auto full = writer_->TryWrite(1, 0, Payload(4, 8));
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_FALSE(*full);
  // The caller vouches for what Consumed says (in the channel: verdicts received); this test
  // checks the writer's count only.
  writer_->Consumed(2);
  EXPECT_TRUE(*writer_->TryWrite(1, 0, Payload(4, 8)));
  EXPECT_TRUE(*writer_->TryWrite(1, 0, Payload(5, 8)));
  EXPECT_FALSE(*writer_->TryWrite(1, 0, Payload(6, 8)));
  writer_->Consumed(1);     // never back
  writer_->Consumed(1000);  // nor past what was written (6)
  EXPECT_TRUE(*writer_->TryWrite(1, 0, Payload(6, 8)));
  EXPECT_TRUE(*writer_->TryWrite(1, 0, Payload(7, 8)));
  EXPECT_TRUE(*writer_->TryWrite(1, 0, Payload(8, 8)));
  EXPECT_TRUE(*writer_->TryWrite(1, 0, Payload(9, 8)));
  EXPECT_FALSE(*writer_->TryWrite(1, 0, Payload(10, 8)));  // 6 consumed, 10 written: full
}

TEST_P(Ring, ACorruptedCreditIsNotBelievedAndIsReported) {
  Build({.slots = 4, .slot_bytes = 64, .credit_batch = 1});
  auto src = transport::RegisteredBuffer::Allocate(*t_.b, 8, transport::kLocalWrite);
  ASSERT_TRUE(src.ok());
  auto forge = [&](uint64_t credit) {  // the reader's connection writes the writer's credit word
    std::memcpy(src->data(), &credit, 8);
    ASSERT_TRUE(rconn_->PostWrite(src->mr().All(), *writer_->credit_region().At(0, 8), 9).ok());
    ASSERT_TRUE(transport::WaitSendOk(*rconn_, kWait).ok());
  };
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(*writer_->TryWrite(1, 0, Payload(i, 8)));
  // Past what was written: believed, it would let the writer overwrite four unread slots.
  forge(1000);
  auto full = writer_->TryWrite(1, 0, Payload(4, 8));
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_FALSE(*full) << "a credit for records never written was believed";
  Status st = writer_->Write(1, 0, Payload(4, 8), kWait);
  ASSERT_EQ(st.code(), StatusCode::kDataLoss) << st;
  EXPECT_NE(st.message().find("credit word holds 1000, but 4 records were written and 0 already "
                              "consumed"),
            std::string::npos)
      << st;
  // The reader's next credit replaces it and the stream goes on.
  for (uint64_t seq = 1; seq <= 2; ++seq) {
    auto rec = reader_->Read(buf_, kWait);
    ASSERT_TRUE(rec.ok()) << rec.status();
    EXPECT_EQ(rec->seq, seq);
    ASSERT_TRUE(reader_->Release().ok());
  }
  ASSERT_TRUE(writer_->Write(1, 0, Payload(4, 8), kWait).ok());
  // Backwards (2 consumed, the word says 0): the last good count stands, so one more slot is free.
  forge(0);
  auto again = writer_->TryWrite(1, 0, Payload(5, 8));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(*again);
}

TEST_P(Ring, ARaisedCancelFlagEndsBlockingWaits) {
  std::atomic<bool> cancel{false};
  Build({.slots = 2, .slot_bytes = 64, .credit_batch = 1, .cancel = &cancel});
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(*writer_->TryWrite(1, 0, Payload(i, 8)));
  std::thread raise([&] {
    std::this_thread::sleep_for(50ms);
    cancel = true;
  });
  // Both would wait out their 30-s timeout (DEADLINE_EXCEEDED) without the flag.
  Status write = writer_->Write(1, 0, Payload(2, 8), kWait);  // the ring is full
  raise.join();
  EXPECT_EQ(write.code(), StatusCode::kAborted) << write;
  ASSERT_TRUE(reader_->Read(buf_, kWait).ok());
  ASSERT_TRUE(reader_->Release().ok());
  ASSERT_TRUE(reader_->Read(buf_, kWait).ok());
  ASSERT_TRUE(reader_->Release().ok());
  auto read = reader_->Read(buf_, kWait);  // nothing more was written
  EXPECT_EQ(read.status().code(), StatusCode::kAborted) << read.status();
  EXPECT_NE(read.status().message().find("wait for sequence 3 cancelled"), std::string::npos)
      << read.status();
}

TEST(RingConfigTest, RejectsBadGeometry) {
  EXPECT_EQ(channel::ValidateRingConfig({.slots = 3}).message(),
            "ring slots = 3 must be a power of two in [2, 65536]");
  EXPECT_EQ(channel::ValidateRingConfig({.slot_bytes = 100}).message(),
            "ring slot_bytes = 100 must be a multiple of 8 in [64, 65536]");
  EXPECT_EQ(channel::ValidateRingConfig({.slots = 4, .credit_batch = 8}).message(),
            "ring credit_batch = 8 exceeds slots = 4");
}

INSTANTIATE_TEST_SUITE_P(Transports, Ring, ::testing::ValuesIn(ConformanceFactories()),
                         FactoryName);

}  // namespace
}  // namespace vigil::testing
