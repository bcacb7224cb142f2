// Voting, the catch-up log, failure budgets and the SSR slot format: the pure logic the voter, node
// agent and SSR store are built on.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "vigil/common/failure_budget.h"
#include "vigil/ssr/slot.h"
#include "vigil/voter/catch_up_log.h"
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
  EXPECT_EQ(v->faulty.ToVector(), std::vector<uint32_t>{2});
}

TEST(Vote, TmrToleratesOneMissingReplica) {
  Ballot b[] = {{1, true, 7}, {2, false, 0}, {3, true, 7}};
  auto v = Decide(Mode::kTmr, b);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->kind, Kind::kMajority);
  EXPECT_EQ(v->faulty.ToVector(), std::vector<uint32_t>{2});
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
  auto b = FailureBudget::Create(
      {.initial_backoff = 100ms, .max_backoff = 1000ms, .max_failures = 5, .window = 60s});
  ASSERT_TRUE(b.ok());
  const auto t0 = FailureBudget::Clock::time_point{} + 1h;
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

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}
std::string Text(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

TEST(CatchUpLog, HoldsTheEventsAgreedSinceTheCheckpointWithTheirBytes) {
  using replica::EventKind;
  voter::CatchUpLog log(1 << 20);
  log.RestartAfter(10);  // the checkpoint at event 10
  EXPECT_TRUE(log.Covers(10));
  EXPECT_FALSE(log.Covers(9));  // a replica restarting from before it cannot be answered
  EXPECT_EQ(log.last(), 10u);   // empty
  ASSERT_TRUE(log.Append(0xa, 11, EventKind::kInput, Bytes("eleven")));
  ASSERT_TRUE(log.Append(0xb, 12, EventKind::kSyscall, {}));
  ASSERT_TRUE(log.Append(0xc, 13, EventKind::kOutput, Bytes("13")));
  EXPECT_EQ(log.first(), 11u);
  EXPECT_EQ(log.last(), 13u);
  auto e = log.At(11);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->digest, 0xau);
  EXPECT_EQ(e->arg, 11u);
  EXPECT_EQ(e->kind, EventKind::kInput);
  EXPECT_EQ(Text(e->bytes), "eleven");
  EXPECT_TRUE(log.At(12)->bytes.empty());
  EXPECT_EQ(Text(log.At(13)->bytes), "13");
  EXPECT_FALSE(log.At(10));  // before the log
  EXPECT_FALSE(log.At(14));  // not agreed yet
  // A rollback to the checkpoint forgets what came after it; the log stays usable.
  log.RewindTo(10);
  EXPECT_FALSE(log.At(11));
  EXPECT_EQ(log.last(), 10u);
  ASSERT_TRUE(log.Append(0xd, 11, EventKind::kInput, Bytes("again")));
  EXPECT_EQ(Text(log.At(11)->bytes), "again");
  // A rollback to an older checkpoint than the log's start empties it from there.
  log.RewindTo(5);
  EXPECT_EQ(log.first(), 6u);
  EXPECT_FALSE(log.At(11));
  // Rewinding to a point after the last entry changes nothing.
  ASSERT_TRUE(log.Append(0xe, 6, EventKind::kCheckpoint, {}));
  log.RewindTo(8);
  EXPECT_EQ(log.At(6)->digest, 0xeu);
}

TEST(CatchUpLog, PastItsCapacityItIsDroppedUntilTheNextCheckpoint) {
  using replica::EventKind;
  const std::string big(200, 'x');
  voter::CatchUpLog log(512);
  log.RestartAfter(0);
  ASSERT_TRUE(log.Append(1, 0, EventKind::kInput, Bytes(big)));
  EXPECT_FALSE(log.Append(2, 0, EventKind::kInput, Bytes(big + big)));  // over 512 bytes
  EXPECT_FALSE(log.ok());
  EXPECT_FALSE(log.At(1));  // dropped, not kept in part
  EXPECT_FALSE(log.Covers(0));
  EXPECT_FALSE(log.Append(3, 0, EventKind::kOutput, {}));  // still dropped
  log.RestartAfter(7);                                     // the next agreed checkpoint
  EXPECT_TRUE(log.ok());
  EXPECT_TRUE(log.Covers(7));
  ASSERT_TRUE(log.Append(4, 0, EventKind::kOutput, {}));
  EXPECT_EQ(log.At(8)->digest, 4u);
  // No capacity: no log at all.
  voter::CatchUpLog none(0);
  EXPECT_FALSE(none.Covers(0));
  EXPECT_FALSE(none.Append(1, 0, EventKind::kOutput, {}));
}

TEST(FailureBudget, RejectsNonsensePolicies) {
  using namespace std::chrono_literals;
  EXPECT_FALSE(FailureBudget::Create({.initial_backoff = 0ms}).ok());
  EXPECT_FALSE(FailureBudget::Create({.initial_backoff = 5s, .max_backoff = 1s}).ok());
  EXPECT_FALSE(FailureBudget::Create({.max_failures = 0}).ok());
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
