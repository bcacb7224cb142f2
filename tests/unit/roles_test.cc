// Voting, failure budgets and the SSR slot format: the pure logic the voter, node agent and SSR
// store are built on.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "vigil/node/failure_budget.h"
#include "vigil/ssr/slot.h"
#include "vigil/voter/vote.h"

namespace vigil {
namespace {

using voter::Ballot;
using voter::Decide;
using voter::Mode;
using Kind = voter::Verdict::Kind;

TEST(Vote, TmrMajorityOutvotesTheOddReplica) {
  Ballot b[] = {{1, true, 0xAA}, {2, true, 0xBB}, {3, true, 0xAA}};
  auto v = Decide(Mode::kTmr, b);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->kind, Kind::kMajority);
  EXPECT_EQ(v->digest, 0xAAu);
  EXPECT_EQ(v->faulty, std::vector<uint32_t>{2});
}

TEST(Vote, TmrToleratesOneMissingReplica) {
  Ballot b[] = {{1, true, 7}, {2, false, 0}, {3, true, 7}};
  auto v = Decide(Mode::kTmr, b);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->kind, Kind::kMajority);
  EXPECT_EQ(v->faulty, std::vector<uint32_t>{2});
}

TEST(Vote, TmrWithoutTwoEqualHasNoMajority) {
  Ballot b[] = {{1, true, 1}, {2, true, 2}, {3, true, 3}};
  EXPECT_EQ(Decide(Mode::kTmr, b)->kind, Kind::kNoMajority);
  Ballot lonely[] = {{1, true, 1}, {2, false, 0}, {3, false, 0}};
  EXPECT_EQ(Decide(Mode::kTmr, lonely)->kind, Kind::kNoMajority);
}

TEST(Vote, DmrAgreesOrRollsBack) {
  Ballot same[] = {{1, true, 5}, {2, true, 5}};
  EXPECT_EQ(Decide(Mode::kDmr, same)->kind, Kind::kAgree);
  Ballot differ[] = {{1, true, 5}, {2, true, 6}};
  EXPECT_EQ(Decide(Mode::kDmr, differ)->kind, Kind::kRollback);
  Ballot missing[] = {{1, true, 5}, {2, false, 0}};
  EXPECT_EQ(Decide(Mode::kDmr, missing)->kind, Kind::kRollback);
}

TEST(Vote, RejectsMalformedBallotSets) {
  Ballot two[] = {{1, true, 5}, {2, true, 5}};
  EXPECT_EQ(Decide(Mode::kTmr, two).status().message(), "TMR vote needs 3 ballots, got 2");
  Ballot dup[] = {{1, true, 5}, {1, true, 5}, {3, true, 5}};
  EXPECT_EQ(Decide(Mode::kTmr, dup).status().message(), "replica 1 voted twice");
}

TEST(FailureBudget, BacksOffExponentiallyAndGivesUpPastTheBudget) {
  using namespace std::chrono_literals;
  auto b = node::FailureBudget::Create(
      {.initial_backoff = 100ms, .max_backoff = 1000ms, .max_failures = 5, .window = 60s});
  ASSERT_TRUE(b.ok());
  const auto t0 = node::FailureBudget::Clock::time_point{} + 1h;
  EXPECT_EQ(*b->OnFailure(t0), 100ms);
  EXPECT_EQ(*b->OnFailure(t0 + 1s), 200ms);
  EXPECT_EQ(*b->OnFailure(t0 + 2s), 400ms);
  EXPECT_EQ(*b->OnFailure(t0 + 3s), 800ms);
  EXPECT_EQ(*b->OnFailure(t0 + 4s), 1000ms);  // capped
  auto over = b->OnFailure(t0 + 5s);
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(over.status().message(), "6 failures within 60000 ms exceed the budget of 5");
  // A quiet window later everything has expired: the backoff starts over.
  EXPECT_EQ(b->failures_in_window(t0 + 70s), 0u);
  EXPECT_EQ(*b->OnFailure(t0 + 70s), 100ms);
}

TEST(FailureBudget, RejectsNonsensePolicies) {
  using namespace std::chrono_literals;
  EXPECT_FALSE(node::FailureBudget::Create({.initial_backoff = 0ms}).ok());
  EXPECT_FALSE(node::FailureBudget::Create({.initial_backoff = 5s, .max_backoff = 1s}).ok());
  EXPECT_FALSE(node::FailureBudget::Create({.max_failures = 0}).ok());
}

class SsrSlots : public ::testing::Test {
 protected:
  static constexpr size_t kCap = 100;
  std::vector<std::byte> region = std::vector<std::byte>(ssr::RegionBytes(kCap));
  ssr::Identity id{7, 42};

  Status Put(const std::string& s, uint64_t epoch = 1) {
    auto w = ssr::Write(region, kCap, id, epoch, std::as_bytes(std::span(s.data(), s.size())));
    if (!w.ok()) return w.status();
    // Only the reported slot may have changed, and it is one of the two slots.
    EXPECT_TRUE(w->offset == 0 || w->offset == region.size() / 2) << w->offset;
    EXPECT_EQ(w->length, ssr::kSlotHeaderBytes + s.size());
    return Status::Ok();
  }
  std::string Text(const ssr::State& st) {
    return std::string(reinterpret_cast<const char*>(st.payload.data()), st.payload.size());
  }
};

TEST_F(SsrSlots, EmptyRegionHoldsNoStateAndLayoutIsDense) {
  EXPECT_EQ(ssr::RegionBytes(kCap), 2u * 152);  // 48-byte header + 100, rounded to 8, twice
  EXPECT_EQ(ssr::Read(region, kCap, id).status().code(), StatusCode::kNotFound);
}

TEST_F(SsrSlots, NewestVersionWinsAndWritesAlternateSlots) {
  ASSERT_TRUE(Put("v1").ok());
  ASSERT_TRUE(Put("v2").ok());
  ASSERT_TRUE(Put("v3", 2).ok());
  auto st = ssr::Read(region, kCap, id);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(Text(*st), "v3");
  EXPECT_EQ(st->seq, 3u);
  EXPECT_EQ(st->epoch, 2u);
  EXPECT_EQ(st->slot, 0);  // v1 -> A, v2 -> B, v3 -> A
  EXPECT_TRUE(st->rejected.empty());
}

TEST_F(SsrSlots, TornWriteKeepsThePreviousVersion) {
  ASSERT_TRUE(Put("first state").ok());
  ASSERT_TRUE(Put("second state").ok());  // in slot B; the next write targets A
  std::vector<std::byte> full = region;
  ASSERT_TRUE(Put("third state, never completed").ok());
  // Tear the write: only the first 30 bytes of slot A's new contents reached memory.
  std::vector<std::byte> torn = full;
  std::memcpy(torn.data(), region.data(), 30);
  auto st = ssr::Read(torn, kCap, id);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(Text(*st), "second state");
  EXPECT_NE(st->rejected.find("slot A"), std::string::npos) << st->rejected;
}

TEST_F(SsrSlots, CorruptionIsDetectedAndTheOtherSlotUsed) {
  ASSERT_TRUE(Put("older").ok());
  ASSERT_TRUE(Put("newer").ok());  // slot B
  region[ssr::RegionBytes(kCap) / 2 + ssr::kSlotHeaderBytes + 2] ^=
      std::byte{0x04};  // flip a payload bit
  auto st = ssr::Read(region, kCap, id);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(Text(*st), "older");
  EXPECT_NE(st->rejected.find("CRC mismatch"), std::string::npos) << st->rejected;
  // And the next write repairs by overwriting the corrupt slot, not the good one.
  ASSERT_TRUE(Put("repaired").ok());
  EXPECT_EQ(Text(*ssr::Read(region, kCap, id)), "repaired");
}

TEST_F(SsrSlots, BothSlotsBadIsDataLossNamingEachProblem) {
  ASSERT_TRUE(Put("a").ok());
  ASSERT_TRUE(Put("b").ok());
  region[0] ^= std::byte{0xFF};  // slot A magic
  region[ssr::RegionBytes(kCap) / 2 + 12] =
      std::byte{200};  // slot B length byte 0 -> 200 > capacity
  auto st = ssr::Read(region, kCap, id);
  ASSERT_EQ(st.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(st.status().message().find("slot A: bad magic"), std::string::npos) << st.status();
  EXPECT_NE(st.status().message().find("slot B: length 200 exceeds capacity 100"),
            std::string::npos)
      << st.status();
}

TEST_F(SsrSlots, AnotherClientsStateIsNeverAccepted) {
  ASSERT_TRUE(Put("mine").ok());
  auto st = ssr::Read(region, kCap, {7, 43});
  EXPECT_EQ(st.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(st.status().message().find("belongs to service 7 client 42"), std::string::npos);
}

TEST_F(SsrSlots, RejectsOversizedPayloadAndMismatchedRegion) {
  EXPECT_EQ(Put(std::string(101, 'x')).code(), StatusCode::kOutOfRange);
  std::vector<std::byte> small(10);
  EXPECT_EQ(ssr::Read(small, kCap, id).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vigil
