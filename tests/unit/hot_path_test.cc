// The voter's polling path allocates nothing from a record's arrival to its verdict
// (common/hot_path.h): this binary replaces the global operator new with one that counts the
// allocations made inside a HotPath mark, and runs replicated jobs over the polling method on
// the FAKE in-process transport (replicas are threads). Handling a fault may allocate (it runs
// under ColdPath): jobs with faults check that every allocation of theirs is marked so.
#include "vigil/common/hot_path.h"

#include <execinfo.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <thread>

#include "replication_harness.h"
#include "vigil/transport/fake.h"

namespace {

std::atomic<bool> g_counting{false};
std::atomic<uint64_t> g_hot_allocs{0};
// Where the first hot-path allocations came from (printed when the check fails).
constexpr int kFrames = 24;
std::atomic<int> g_traces{0};
void* g_trace[4][kFrames];
int g_trace_depth[4];
thread_local bool t_in_hook = false;

void* CountedAlloc(std::size_t n) {
  if (vigil::InHotPath() && g_counting.load(std::memory_order_relaxed) && !t_in_hook) {
    g_hot_allocs.fetch_add(1, std::memory_order_relaxed);
    const int i = g_traces.fetch_add(1, std::memory_order_relaxed);
    if (i < 4) {
      t_in_hook = true;
      g_trace_depth[i] = backtrace(g_trace[i], kFrames);
      t_in_hook = false;
    }
  }
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(std::size_t n) { return CountedAlloc(n); }
void* operator new[](std::size_t n) { return CountedAlloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace vigil {
namespace {

using namespace std::chrono_literals;
using testing::JobSpec;
using voter::Mode;

std::string Input(size_t n) { return testing::PseudoRandomInput(n, 777); }

std::string Where() {
  std::string out;
  const int n = std::min(g_traces.load(), 4);
  for (int i = 0; i < n; ++i) {
    out += "allocation " + std::to_string(i + 1) + ":\n";
    char** names = backtrace_symbols(g_trace[i], g_trace_depth[i]);
    for (int f = 0; f < g_trace_depth[i]; ++f) {
      out += "  " + std::string(names != nullptr ? names[f] : "?") + "\n";
    }
    std::free(names);
  }
  return out;
}

class HotPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_counting = false;
    g_hot_allocs = 0;
    g_traces = 0;
  }
  // Runs `workload` over polling; counting starts at replica 0's step `arm_at` (after the first
  // rounds have sized the buffers that grow with use: the input window, the catch-up log).
  testing::JobResult Run(Mode mode, const std::string& workload, const std::string& input,
                         testing::StepHook fault = nullptr, uint64_t arm_at = 8) {
    JobSpec s;
    s.group.mode = mode;
    s.group.deadline = 5000ms;
    s.group.channel.method = channel::Method::kPolling;
    s.workload = workload;
    s.input = input;
    s.hook = [fault, arm_at](uint16_t r, uint32_t inc, uint64_t step,
                             replica::ChannelContext& ctx) {
      if (r == 0 && inc == 0 && step == arm_at) g_counting = true;
      if (fault) fault(r, inc, step, ctx);
    };
    auto got = testing::RunReplicatedJob(voter_t_, replica_t_, s);
    g_counting = false;
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok()) return {};
    EXPECT_TRUE(got->report.completed) << got->report.failure;
    EXPECT_EQ(got->output, *testing::RunUnreplicated(workload, "edges", input));
    return *got;
  }

  std::shared_ptr<transport::FakeFabric> fabric_ = std::make_shared<transport::FakeFabric>();
  transport::FakeTransport voter_t_{fabric_, "voter"};
  transport::FakeTransport replica_t_{fabric_, "worker"};
};

// The check itself: an allocation inside the mark is counted, one under ColdPath is not.
TEST_F(HotPathTest, TheCountSeesAllocationsInsideTheMarkOnly) {
  g_counting = true;
  {
    HotPath hot;
    auto* p = new int(1);
    delete p;
    {
      ColdPath cold;
      EXPECT_FALSE(InHotPath());
      auto* q = new int(2);
      delete q;
    }
    EXPECT_TRUE(InHotPath());
  }
  EXPECT_FALSE(InHotPath());
  g_counting = false;
  EXPECT_EQ(g_hot_allocs.load(), 1u);
}

TEST_F(HotPathTest, AgreementRoundsAllocateNothingOnThePollingPath) {
  for (Mode mode : {Mode::kSimplex, Mode::kDmr, Mode::kTmr}) {
    for (const char* workload : {"crc32", "susan"}) {
      SetUp();
      const std::string input = workload == std::string("crc32") ? Input(1 << 20) : [] {
        auto img = workloads::MakeTestImage(160, 240, 7);
        return std::string(reinterpret_cast<const char*>(img.data()), img.size());
      }();
      testing::JobResult r = Run(mode, workload, input);
      EXPECT_GT(r.report.rounds, 20u) << voter::ModeName(mode) << " " << workload;
      EXPECT_EQ(g_hot_allocs.load(), 0u)
          << voter::ModeName(mode) << " " << workload << ": allocations on the polling path\n"
          << Where();
    }
  }
}

// A fault's handling allocates (messages, a replacement's thread and channel), but only under
// ColdPath: the rounds around it still allocate nothing.
TEST_F(HotPathTest, FaultHandlingAllocatesOnlyOffTheHotPath) {
  const std::string input = Input(1 << 20);
  // Flips a bit of replica `victim`'s state before its step 6 (counting from step 3).
  auto flip = [](uint16_t victim) {
    return [victim](uint16_t r, uint32_t inc, uint64_t step, replica::ChannelContext& ctx) {
      if (r == victim && inc == 0 && step == 6) ctx.FlipStateBit(replica::kStateMetaBytes * 8 + 5);
    };
  };
  // TMR: replica 1 outvoted and repaired.
  testing::JobResult tmr = Run(Mode::kTmr, "crc32", input, flip(1), /*arm_at=*/3);
  EXPECT_EQ(tmr.report.repairs, 1u);
  EXPECT_EQ(g_hot_allocs.load(), 0u) << "TMR repair\n" << Where();
  // DMR: both roll back.
  SetUp();
  testing::JobResult dmr = Run(Mode::kDmr, "crc32", input, flip(0), /*arm_at=*/3);
  EXPECT_EQ(dmr.report.rollbacks, 1u);
  EXPECT_EQ(g_hot_allocs.load(), 0u) << "DMR rollback\n" << Where();
}

// TMR deciding on the first two matching ballots: replica 2, slowed down, lags, and each of its
// late events is checked against the voter's log and answered from it on the polling thread.
// That path allocates nothing either (the log grows to its high-water mark under ColdPath).
TEST_F(HotPathTest, LateBallotsAreCheckedAndAnsweredWithoutAllocating) {
  auto slow = [](uint16_t r, uint32_t, uint64_t, replica::ChannelContext&) {
    if (r == 2) std::this_thread::sleep_for(1ms);
  };
  testing::JobResult r = Run(Mode::kTmr, "crc32", Input(1 << 20), slow);
  EXPECT_GT(r.report.late_ballots, 10u);
  EXPECT_EQ(g_hot_allocs.load(), 0u) << "late ballots\n" << Where();
}

}  // namespace
}  // namespace vigil
