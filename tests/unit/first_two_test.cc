// TMR decides on the first two matching ballots (voter/round.h, group.h): a replica slowed down
// by a hook falls behind, its events are checked against the voter's log when they arrive, and
// a fault in it is still found (late) and repaired. Replicated jobs on the FAKE in-process
// transport (replicas are threads); the same voter code runs over verbs in the rxe tier.
#include <gtest/gtest.h>

#include <thread>

#include "replication_harness.h"
#include "vigil/transport/fake.h"

namespace vigil {
namespace {

using namespace std::chrono_literals;
using testing::JobSpec;
using voter::Mode;

const std::string& Input() {
  static const std::string input = testing::PseudoRandomInput(200000, 4242);
  return input;
}

const std::string& Want() {
  static const std::string want = *testing::RunUnreplicated("crc32", "", Input());
  return want;
}

// Replica `slow` sleeps before each of its steps; with `flip_at`, it also flips a bit of its
// crc before that step of its first incarnation.
testing::StepHook Slow(uint16_t slow, std::chrono::milliseconds pause, uint64_t flip_at = 0) {
  return [=](uint16_t r, uint32_t inc, uint64_t step, replica::ChannelContext& ctx) {
    if (r != slow) return;
    std::this_thread::sleep_for(pause);
    if (flip_at != 0 && inc == 0 && step == flip_at) {
      ctx.FlipStateBit(replica::kStateMetaBytes * 8 + 5);
    }
  };
}

class FirstTwoTest : public ::testing::TestWithParam<channel::Method> {
 protected:
  JobSpec Spec() {
    JobSpec s;
    s.group.mode = Mode::kTmr;
    s.group.deadline = 5000ms;
    s.group.channel.method = GetParam();
    s.input = Input();
    return s;
  }
  // Runs the job and checks that it completed with the plain run's output.
  testing::JobResult RunToTheEnd(const JobSpec& s) {
    Result<testing::JobResult> got = testing::RunReplicatedJob(voter_t_, replica_t_, s);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok()) return {};
    EXPECT_TRUE(got->report.completed) << got->report.failure;
    EXPECT_EQ(got->output, Want());
    return *std::move(got);
  }

  std::shared_ptr<transport::FakeFabric> fabric_ = std::make_shared<transport::FakeFabric>();
  transport::FakeTransport voter_t_{fabric_, "voter"};
  transport::FakeTransport replica_t_{fabric_, "worker"};
};

TEST_P(FirstTwoTest, ASlowReplicaIsCheckedLateAndEveryReplicaReachesTheExit) {
  JobSpec s = Spec();
  s.hook = Slow(2, 3ms);
  const testing::JobResult got = RunToTheEnd(s);
  // The other two did not wait for it: its events were answered from the log, each checked.
  EXPECT_GT(got.report.late_ballots, 0u);
  EXPECT_EQ(got.report.mismatches, 0u);
  EXPECT_EQ(got.report.replacements, 0u);
  EXPECT_EQ(got.report.catch_ups, 0u);
  // The exit waits for every live replica: all three end cleanly.
  ASSERT_EQ(got.replicas.size(), 3u);
  for (const auto& r : got.replicas) EXPECT_TRUE(r.status.ok()) << r.status.ToString();
}

TEST_P(FirstTwoTest, AFlipInTheSlowReplicaIsFoundLateAndRepairedFromACheckpoint) {
  JobSpec s = Spec();
  s.hook = Slow(2, 3ms, 3);
  const testing::JobResult got = RunToTheEnd(s);
  EXPECT_EQ(got.report.mismatches, 1u);
  // Its checkpoint region got a healthy replica's checkpoint; it rolled back to it alone and
  // caught up from the log, then voted again.
  EXPECT_EQ(got.report.repairs, 1u);
  EXPECT_EQ(got.report.catch_ups, 1u);
  EXPECT_EQ(got.report.rollbacks, 0u);
  EXPECT_EQ(got.report.replacements, 0u);
  for (const auto& r : got.replicas) EXPECT_TRUE(r.status.ok()) << r.status.ToString();
}

// The fault shows in the last output before the checkpoint and the exit: the slow replica is
// repaired all the same, and the exit waits until it has caught up and votes on it.
TEST_P(FirstTwoTest, AFaultFoundLateJustBeforeTheExitIsRepairedAndTheExitWaits) {
  const auto img = workloads::MakeTestImage(200, 150, 3);
  const std::string image(reinterpret_cast<const char*>(img.data()), img.size());
  JobSpec s = Spec();
  s.workload = "susan";
  s.input = image;
  // Steps: 1 reads, 2-11 process rows, 12 writes the image (the last outputs).
  const testing::StepHook flip = testing::FlipSusanOutputBit(2, 12);
  s.hook = [flip](uint16_t r, uint32_t inc, uint64_t step, replica::ChannelContext& ctx) {
    if (r == 2) std::this_thread::sleep_for(3ms);
    flip(r, inc, step, ctx);
  };
  Result<testing::JobResult> got = testing::RunReplicatedJob(voter_t_, replica_t_, s);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  EXPECT_EQ(got->output, *testing::RunUnreplicated("susan", "edges", image));
  EXPECT_EQ(got->report.mismatches, 1u);
  EXPECT_EQ(got->report.repairs, 1u);
  EXPECT_EQ(got->report.rollbacks, 0u);
  EXPECT_EQ(got->report.replacements, 0u);
  for (const auto& r : got->replicas) EXPECT_TRUE(r.status.ok()) << r.status.ToString();
}

TEST_P(FirstTwoTest, PastTheFailureBudgetTheLateFaultyReplicaIsReplacedAndToldWhy) {
  JobSpec s = Spec();
  s.group.replace_after = 1;
  s.hook = Slow(2, 3ms, 3);
  const testing::JobResult got = RunToTheEnd(s);
  EXPECT_EQ(got.report.mismatches, 1u);
  EXPECT_EQ(got.report.repairs, 0u);
  EXPECT_EQ(got.report.replacements, 1u);
  bool told = false;
  for (const auto& r : got.replicas) {
    if (r.spec.replica == 2 && r.spec.incarnation == 0) {
      const std::string_view why = r.status.message();
      told = r.status.code() == StatusCode::kAborted &&
             why.find("replaced: replica 2 outvoted at event") != std::string_view::npos &&
             why.find("found late") != std::string_view::npos;
      EXPECT_TRUE(told) << r.status.ToString();
    }
  }
  EXPECT_TRUE(told);
}

TEST_P(FirstTwoTest, WithoutALagOrALogEveryRoundWaitsForAllThree) {
  for (bool no_log : {false, true}) {
    SCOPED_TRACE(no_log ? "catch_up_bytes 0" : "max_lag 0");
    JobSpec s = Spec();
    if (no_log) {
      s.group.catch_up_bytes = 0;  // nothing to check a late ballot against
    } else {
      s.group.max_lag = 0;
    }
    s.hook = Slow(2, 1ms);
    EXPECT_EQ(RunToTheEnd(s).report.late_ballots, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Fake, FirstTwoTest,
                         ::testing::Values(channel::Method::kPolling, channel::Method::kNotify,
                                           channel::Method::kRpc),
                         [](const ::testing::TestParamInfo<channel::Method>& p) {
                           return std::string(channel::MethodName(p.param));
                         });

}  // namespace
}  // namespace vigil
