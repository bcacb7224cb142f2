// Replicated execution over real verbs (soft-RoCE in the rxe tier): every signalling method in
// DMR and TMR on crc32 and susan against the unreplicated output (susan's image read back from a
// replica by RDMA READ), TMR repair of a flipped bit by RDMA READ + WRITE, and of one found late
// (TMR deciding on the first two matching ballots) through the checkpoint region. Replicas are
// threads of this process with their own verbs transport (own protection domain and queue
// pairs); the process path is covered by vigil-voter's tests.
#include <gtest/gtest.h>

#include <thread>
#include <tuple>

#include "rdma_env.h"
#include "replication_harness.h"
#include "replication_params.h"
#include "vigil/transport/verbs.h"

namespace vigil {
namespace {

using namespace std::chrono_literals;
using voter::Mode;

std::string Input(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + (i >> 7)) & 0xff);
  return s;
}

std::string Image() {
  auto img = workloads::MakeTestImage(64, 64, 3);
  return std::string(reinterpret_cast<const char*>(img.data()), img.size());
}

class RxeReplication : public ::testing::TestWithParam<testing::ModeAndMethod> {
 protected:
  void SetUp() override {
    auto v = transport::VerbsTransport::Open({.device = testing::RdmaDevice()});
    if (!v.ok()) VIGIL_SKIP_WITHOUT_RDMA(v.status().ToString());
    auto r = transport::VerbsTransport::Open({.device = testing::RdmaDevice()});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    voter_t_ = std::move(*v);
    replica_t_ = std::move(*r);
  }
  testing::JobSpec Spec(Mode mode, channel::Method method) {
    testing::JobSpec s;
    s.group.mode = mode;
    s.group.deadline = 20s;  // emulated RDMA in a TCG guest is slow
    s.group.channel.method = method;
    s.verdict_timeout = 60s;
    return s;
  }
  std::unique_ptr<transport::Transport> voter_t_, replica_t_;
};

TEST_P(RxeReplication, OutputsEqualTheUnreplicatedRun) {
  const auto [mode, method] = GetParam();
  for (const auto& [workload, input] :
       {std::pair<std::string, std::string>{"crc32", Input(100000)}, {"susan", Image()}}) {
    auto want = testing::RunUnreplicated(workload, "corners", input);
    ASSERT_TRUE(want.ok()) << want.status().ToString();
    testing::JobSpec s = Spec(mode, method);
    s.workload = workload;
    s.susan_mode = "corners";
    s.input = input;
    auto got = testing::RunReplicatedJob(*voter_t_, *replica_t_, s);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(got->report.completed) << got->report.failure;
    EXPECT_EQ(got->output, *want) << workload;
    EXPECT_EQ(got->report.mismatches, 0u);
    // susan's image (4,109 bytes) is larger than an event: the voter RDMA-READs it from a replica.
    EXPECT_EQ(got->report.aside_bytes, workload == "susan" ? want->size() : 0u) << workload;
  }
}

INSTANTIATE_TEST_SUITE_P(Verbs, RxeReplication, testing::EveryModeAndMethod(),
                         testing::ModeAndMethodName);

class RxeFaults : public RxeReplication {};

TEST_F(RxeFaults, TmrBitFlipRepairedOverRdmaAndDmrRolledBack) {
  const std::string input = Input(200000);
  auto want = testing::RunUnreplicated("crc32", "", input);
  ASSERT_TRUE(want.ok());
  for (Mode mode : {Mode::kTmr, Mode::kDmr}) {
    testing::JobSpec s = Spec(mode, channel::Method::kPolling);
    s.input = input;
    s.hook = [](uint16_t r, uint32_t inc, uint64_t step, replica::ChannelContext& ctx) {
      if (r == 1 && inc == 0 && step == 2) ctx.FlipStateBit(replica::kStateMetaBytes * 8 + 1);
    };
    auto got = testing::RunReplicatedJob(*voter_t_, *replica_t_, s);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(got->report.completed) << got->report.failure;
    EXPECT_EQ(got->output, *want);
    EXPECT_EQ(got->report.mismatches, 1u);
    EXPECT_EQ(got->report.repairs, mode == Mode::kTmr ? 1u : 0u);
    EXPECT_EQ(got->report.rollbacks, mode == Mode::kDmr ? 1u : 0u);
  }
}

// TMR decides on the first two matching ballots: replica 2, slowed down, lags; its flipped state
// shows in a late event, checked against the voter's log, and it is repaired by an RDMA WRITE of
// a healthy replica's checkpoint into its checkpoint region (remotely writable for this), then
// rolls back alone and catches up.
TEST_F(RxeFaults, TmrLateFaultRepairedFromACheckpointOverRdma) {
  const std::string input = Input(200000);
  auto want = testing::RunUnreplicated("crc32", "", input);
  ASSERT_TRUE(want.ok());
  testing::JobSpec s = Spec(Mode::kTmr, channel::Method::kPolling);
  s.input = input;
  s.hook = [](uint16_t r, uint32_t inc, uint64_t step, replica::ChannelContext& ctx) {
    if (r != 2) return;
    std::this_thread::sleep_for(20ms);  // far behind the other two under emulation too
    if (inc == 0 && step == 2) ctx.FlipStateBit(replica::kStateMetaBytes * 8 + 1);
  };
  auto got = testing::RunReplicatedJob(*voter_t_, *replica_t_, s);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  EXPECT_EQ(got->output, *want);
  EXPECT_GT(got->report.late_ballots, 0u);
  EXPECT_EQ(got->report.mismatches, 1u);
  EXPECT_EQ(got->report.repairs, 1u);
  EXPECT_EQ(got->report.catch_ups, 1u);
  EXPECT_EQ(got->report.rollbacks, 0u);
  EXPECT_EQ(got->report.replacements, 0u);
}

}  // namespace
}  // namespace vigil
