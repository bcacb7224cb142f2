#include "vigil/transport/fault_injection.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>

#include "vigil/transport/fake.h"

namespace vigil::transport {
namespace {

using namespace std::chrono_literals;

class FaultInjection : public ::testing::Test {
 protected:
  void SetUp() override {
    auto a = ta_.CreateConnection({});
    auto b = tb_.CreateConnection({});
    ASSERT_TRUE(a.ok() && b.ok());
    b_ = std::move(*b);
    auto wrapped = FaultInjectingConnection::Wrap(std::move(*a), injector_, ta_);
    ASSERT_TRUE(wrapped.ok()) << wrapped.status();
    a_ = std::move(*wrapped);
    ASSERT_TRUE(a_->Connect(b_->local_endpoint()).ok());
    ASSERT_TRUE(b_->Connect(a_->local_endpoint()).ok());
    auto abuf = RegisteredBuffer::Allocate(ta_, 4096, kAllAccess);
    auto bbuf = RegisteredBuffer::Allocate(tb_, 4096, kAllAccess);
    ASSERT_TRUE(abuf.ok() && bbuf.ok());
    abuf_ = std::make_unique<RegisteredBuffer>(std::move(*abuf));
    bbuf_ = std::make_unique<RegisteredBuffer>(std::move(*bbuf));
    std::memcpy(abuf_->data(), "0123456789abcdef", 16);
  }
  RemoteAddr B(uint64_t off) { return *bbuf_->mr().Describe("b").At(off, 16); }
  std::string BText(size_t off) {
    return std::string(reinterpret_cast<char*>(bbuf_->data() + off), 16);
  }

  std::shared_ptr<FakeFabric> fabric_ = std::make_shared<FakeFabric>();
  FakeTransport ta_{fabric_, "a"}, tb_{fabric_, "b"};
  std::shared_ptr<FaultInjector> injector_ = std::make_shared<FaultInjector>();
  std::unique_ptr<FaultInjectingConnection> a_;
  std::unique_ptr<Connection> b_;
  std::unique_ptr<RegisteredBuffer> abuf_, bbuf_;
};

TEST_F(FaultInjection, NoRulesMeansNoInterference) {
  ASSERT_TRUE(a_->PostWrite(abuf_->mr().Slice(0, 16), B(0), 1).ok());
  EXPECT_TRUE(WaitSendOk(*a_, 1s).ok());
  EXPECT_EQ(BText(0), "0123456789abcdef");
}

TEST_F(FaultInjection, FailAfterSkipAppliesToExactlyCountOperations) {
  ASSERT_TRUE(
      injector_->Add({.ops = kOpWrite, .action = FaultAction::kFail, .skip = 1, .count = 2}).ok());
  EXPECT_TRUE(a_->PostWrite(abuf_->mr().Slice(0, 16), B(0), 1).ok());  // skipped
  Status st = a_->PostWrite(abuf_->mr().Slice(0, 16), B(16), 2);       // failed
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("injected fault"), std::string::npos) << st;
  EXPECT_FALSE(a_->PostWrite(abuf_->mr().Slice(0, 16), B(32), 3).ok());  // failed
  EXPECT_TRUE(a_->PostWrite(abuf_->mr().Slice(0, 16), B(48), 4).ok());   // rule used up
  EXPECT_EQ(injector_->injected(FaultAction::kFail), 2u);
  EXPECT_EQ(BText(16), std::string(16, '\0'));
  EXPECT_EQ(BText(48), "0123456789abcdef");
}

TEST_F(FaultInjection, DropReportsSuccessButNothingArrives) {
  ASSERT_TRUE(injector_->Add({.ops = kOpWrite, .action = FaultAction::kDrop}).ok());
  ASSERT_TRUE(a_->PostWrite(abuf_->mr().Slice(0, 16), B(0), 7).ok());
  auto c = a_->WaitSend(1s);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->ok());
  EXPECT_EQ(c->wr_id, 7u);
  EXPECT_EQ(BText(0), std::string(16, '\0'));
}

TEST_F(FaultInjection, CorruptFlipsTheChosenBitOnlyInTheCopySent) {
  ASSERT_TRUE(injector_
                  ->Add({.ops = kOpSend,
                         .action = FaultAction::kCorrupt,
                         .corrupt_offset = 3,
                         .corrupt_mask = 0x20})
                  .ok());
  ASSERT_TRUE(b_->PostRecv(bbuf_->mr().Slice(0, 64), 1).ok());
  ASSERT_TRUE(a_->PostSend(abuf_->mr().Slice(0, 16), 1).ok());
  ASSERT_TRUE(WaitRecvOk(*b_, 1s).ok());
  EXPECT_EQ(BText(0), std::string("012\x13") + "456789abcdef");
  EXPECT_EQ(std::string(reinterpret_cast<char*>(abuf_->data()), 16), "0123456789abcdef")
      << "the sender's own buffer must stay intact";
}

TEST_F(FaultInjection, CorruptOffsetWrapsAroundThePayloadAndPostsAreCounted) {
  // Offset 35 of a 16-byte payload is its byte 3: a rule drawn at random always changes a byte.
  ASSERT_TRUE(injector_
                  ->Add({.ops = kOpWrite,
                         .action = FaultAction::kCorrupt,
                         .skip = 1,
                         .corrupt_offset = 35,
                         .corrupt_mask = 0x20})
                  .ok());
  ASSERT_TRUE(a_->PostWrite(abuf_->mr().Slice(0, 16), B(0), 1).ok());
  ASSERT_TRUE(WaitSendOk(*a_, 1s).ok());
  EXPECT_EQ(BText(0), "0123456789abcdef") << "the first write is skipped";
  ASSERT_TRUE(a_->PostWrite(abuf_->mr().Slice(0, 16), B(0), 2).ok());
  ASSERT_TRUE(WaitSendOk(*a_, 1s).ok());
  EXPECT_EQ(BText(0), std::string("012\x13") + "456789abcdef");
  EXPECT_EQ(injector_->posted(kOpWrite), 2u);
  EXPECT_EQ(injector_->posted(kOpSend), 0u);
  EXPECT_EQ(injector_->injected(FaultAction::kCorrupt), 1u);
}

TEST_F(FaultInjection, MaxBytesMatchesOnlySmallOperations) {
  // Only writes of at most 8 bytes match: the 16-byte one passes untouched, the 8-byte one is
  // corrupted (and counted as the rule's first match: skip counts matching operations only).
  ASSERT_TRUE(injector_
                  ->Add({.ops = kOpWrite,
                         .action = FaultAction::kCorrupt,
                         .max_bytes = 8,
                         .corrupt_offset = 0,
                         .corrupt_mask = 0x01})
                  .ok());
  ASSERT_TRUE(a_->PostWrite(abuf_->mr().Slice(0, 16), B(0), 1).ok());
  ASSERT_TRUE(WaitSendOk(*a_, 1s).ok());
  EXPECT_EQ(BText(0), "0123456789abcdef");
  ASSERT_TRUE(a_->PostWrite(abuf_->mr().Slice(0, 8), B(0), 2).ok());
  ASSERT_TRUE(WaitSendOk(*a_, 1s).ok());
  EXPECT_EQ(BText(0), "1123456789abcdef");
  EXPECT_EQ(injector_->injected(FaultAction::kCorrupt), 1u);
}

TEST_F(FaultInjection, DelayHoldsTheOperationBack) {
  ASSERT_TRUE(injector_->Add({.ops = kOpWrite, .action = FaultAction::kDelay, .delay = 50ms}).ok());
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(a_->PostWrite(abuf_->mr().Slice(0, 16), B(0), 1).ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
  EXPECT_TRUE(WaitSendOk(*a_, 1s).ok());
  EXPECT_EQ(BText(0), "0123456789abcdef");
}

TEST_F(FaultInjection, RejectsRulesThatCannotWork) {
  EXPECT_EQ(injector_->Add({.ops = kOpRead, .action = FaultAction::kCorrupt}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(injector_->Add({.action = FaultAction::kFail, .count = 0}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      injector_->Add({.ops = kOpSend, .action = FaultAction::kCorrupt, .corrupt_mask = 0}).code(),
      StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vigil::transport
