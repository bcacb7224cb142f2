// Replicated execution end to end on the FAKE in-process transport (replicas are threads):
// every signalling method in DMR and TMR, outputs against the unreplicated run, and the faults
// the voter must survive. The same jobs run over real verbs in the rxe tier.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <set>
#include <tuple>

#include "replication_harness.h"
#include "replication_params.h"
#include "vigil/security/tls.h"
#include "vigil/signal/v1/signal.grpc.pb.h"
#include "vigil/transport/fake.h"
#include "vigil/transport/fault_injection.h"

namespace vigil {
namespace {

using namespace std::chrono_literals;
using testing::JobSpec;
using testing::RunReplicatedJob;
using testing::RunUnreplicated;
using voter::Mode;

std::string Crc32Input(size_t n) { return testing::PseudoRandomInput(n); }

std::string TestImage() {
  auto img = workloads::MakeTestImage(96, 80, 7);
  return std::string(reinterpret_cast<const char*>(img.data()), img.size());
}

class ReplicationTest : public ::testing::Test {
 protected:
  JobSpec Spec(Mode mode, channel::Method method) {
    JobSpec s;
    s.group.mode = mode;
    s.group.deadline = 2000ms;
    s.group.channel.method = method;
    s.verdict_timeout = 10s;
    return s;
  }
  Result<testing::JobResult> Run(const JobSpec& s) {
    return RunReplicatedJob(voter_t_, replica_t_, s);
  }

  std::shared_ptr<transport::FakeFabric> fabric_ = std::make_shared<transport::FakeFabric>();
  transport::FakeTransport voter_t_{fabric_, "voter"};
  transport::FakeTransport replica_t_{fabric_, "worker"};
};

TEST(Workloads, Crc32MatchesTheStandardCheckValue) {
  auto out = RunUnreplicated("crc32", "", "123456789");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, "cbf43926 9\n");
}

TEST(Workloads, SusanModesProduceDifferentValidImages) {
  const std::string img = TestImage();
  std::set<std::string> outputs;
  for (const char* mode : {"smooth", "edges", "corners"}) {
    auto out = RunUnreplicated("susan", mode, img);
    ASSERT_TRUE(out.ok()) << mode << ": " << out.status().ToString();
    EXPECT_EQ(out->size(), img.size()) << mode;
    EXPECT_EQ(out->substr(0, 3), "P5\n") << mode;
    EXPECT_NE(*out, img) << mode;
    outputs.insert(*out);
  }
  EXPECT_EQ(outputs.size(), 3u);
}

TEST(Workloads, SusanRejectsBadImagesByName) {
  auto out = RunUnreplicated("susan", "edges", "P2\n3 3\n255\n");
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("not a binary PGM"), std::string::npos);
  auto img = workloads::MakeTestImage(300, 10, 1);
  out = RunUnreplicated("susan", "edges",
                        std::string(reinterpret_cast<const char*>(img.data()), img.size()));
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("300x10"), std::string::npos) << out.status().ToString();
  EXPECT_FALSE(workloads::ParseSusanMode("blur").ok());
}

class EveryMethod : public ReplicationTest,
                    public ::testing::WithParamInterface<testing::ModeAndMethod> {};

TEST_P(EveryMethod, Crc32AndSusanOutputsEqualTheUnreplicatedRun) {
  const auto [mode, method] = GetParam();
  for (const auto& [workload, input] :
       {std::pair<std::string, std::string>{"crc32", Crc32Input(200000)}, {"susan", TestImage()}}) {
    auto want = RunUnreplicated(workload, "edges", input);
    ASSERT_TRUE(want.ok()) << want.status().ToString();
    JobSpec s = Spec(mode, method);
    s.workload = workload;
    s.input = input;
    auto got = Run(s);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(got->report.completed) << got->report.failure;
    EXPECT_EQ(got->report.exit_code, 0);
    EXPECT_EQ(got->output, *want) << workload;
    EXPECT_EQ(got->report.mismatches, 0u);
    EXPECT_EQ(got->report.replacements, 0u);
    EXPECT_GT(got->report.rounds, 10u);
  }
}

INSTANTIATE_TEST_SUITE_P(Fake, EveryMethod, testing::EveryModeAndMethod(),
                         testing::ModeAndMethodName);

// Flips a bit of the crc in replica `victim`'s state before step `at` of its first incarnation.
// The incarnations that ended on the voter's abort saying they were replaced (not on a timeout).
std::vector<voter::LaunchSpec> ToldTheyWereReplaced(const testing::JobResult& r) {
  std::vector<voter::LaunchSpec> told;
  for (const auto& rep : r.replicas) {
    if (rep.status.code() == StatusCode::kAborted &&
        rep.status.message().find("replaced") != std::string::npos) {
      told.push_back(rep.spec);
    }
  }
  return told;
}

testing::StepHook FlipCrcBit(uint16_t victim, uint64_t at) {
  return [victim, at](uint16_t r, uint32_t inc, uint64_t step, replica::ChannelContext& ctx) {
    if (r == victim && inc == 0 && step == at) ctx.FlipStateBit(replica::kStateMetaBytes * 8 + 5);
  };
}

TEST_F(ReplicationTest, TmrBitFlipIsOutvotedAndTheReplicaRepaired) {
  const std::string input = Crc32Input(300000);
  JobSpec s = Spec(Mode::kTmr, channel::Method::kPolling);
  s.input = input;
  s.hook = FlipCrcBit(1, 3);
  auto got = Run(s);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  EXPECT_EQ(got->output, *RunUnreplicated("crc32", "", input));
  EXPECT_EQ(got->report.mismatches, 1u);
  EXPECT_EQ(got->report.repairs, 1u);
  EXPECT_EQ(got->report.rollbacks, 0u);
  EXPECT_EQ(got->report.replacements, 0u);
}

TEST_F(ReplicationTest, DmrBitFlipIsDetectedAndRolledBack) {
  const std::string input = Crc32Input(300000);
  JobSpec s = Spec(Mode::kDmr, channel::Method::kNotify);
  s.input = input;
  s.hook = FlipCrcBit(0, 4);
  auto got = Run(s);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  EXPECT_EQ(got->output, *RunUnreplicated("crc32", "", input));
  EXPECT_EQ(got->report.mismatches, 1u);
  EXPECT_EQ(got->report.rollbacks, 1u);
}

TEST_F(ReplicationTest, ReplicasMeasureTheirBreakdownOnlyWhenAsked) {
  const std::string input = TestImage();
  for (bool measure : {false, true}) {
    SCOPED_TRACE(measure ? "measured" : "not measured");
    JobSpec s = Spec(Mode::kTmr, channel::Method::kPolling);
    s.workload = "susan";
    s.input = input;
    s.measure = measure;
    s.group.measure = measure;
    auto got = Run(s);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(got->report.completed) << got->report.failure;
    EXPECT_EQ(got->report.voter_ns > 0, measure);
    ASSERT_EQ(got->replicas.size(), 3u);
    for (const auto& r : got->replicas) {
      EXPECT_TRUE(r.status.ok()) << r.status.ToString();
      EXPECT_GT(r.events, 10u);
      if (!measure) {
        EXPECT_EQ(r.work_cpu_ns, 0u);
        EXPECT_EQ(r.state_cpu_ns, 0u);
        EXPECT_EQ(r.signal_wait_ns, 0u);
        continue;
      }
      EXPECT_GT(r.signal_wait_ns, 0u);
      EXPECT_GT(r.work_cpu_ns, 0u);
      // Every event digests the state: some CPU time, counted inside the time outside signalling.
      EXPECT_GT(r.state_cpu_ns, 0u);
      EXPECT_LE(r.state_cpu_ns, r.work_cpu_ns);
    }
  }
}

TEST_F(ReplicationTest, LargeOutputIsVotedByDigestAndReadFromAReplica) {
  // 30,015 bytes of output in one Write: more than an event (4 KiB) and than the 16 KiB input
  // buffers, so two events carry its digest and the voter RDMA-READs the bytes.
  const auto img = workloads::MakeTestImage(200, 150, 3);
  const std::string input(reinterpret_cast<const char*>(img.data()), img.size());
  const auto want = RunUnreplicated("susan", "edges", input);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  ASSERT_EQ(want->size(), 30015u);
  for (Mode mode : {Mode::kTmr, Mode::kDmr}) {
    for (bool flip : {false, true}) {
      SCOPED_TRACE(fmt::format("{}{}", voter::ModeName(mode), flip ? " with a flip" : ""));
      JobSpec s =
          Spec(mode, mode == Mode::kTmr ? channel::Method::kPolling : channel::Method::kNotify);
      s.workload = "susan";
      s.input = input;
      // Steps: 1 reads, 2-6 and 7-11 process 32 rows each, 12 writes the image.
      if (flip) s.hook = testing::FlipSusanOutputBit(1, 12);
      auto got = Run(s);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      EXPECT_TRUE(got->report.completed) << got->report.failure;
      EXPECT_EQ(got->output, *want);
      EXPECT_EQ(got->report.output_bytes, want->size());
      EXPECT_EQ(got->report.aside_bytes, want->size());
      EXPECT_EQ(got->report.mismatches, flip ? 1u : 0u);
      EXPECT_EQ(got->report.repairs, flip && mode == Mode::kTmr ? 1u : 0u);
      EXPECT_EQ(got->report.rollbacks, flip && mode == Mode::kDmr ? 1u : 0u);
      EXPECT_EQ(got->report.replacements, 0u);
    }
  }
}

// Step 1 writes 40,000 bytes in one Write (three large-output events with 16 KiB input
// buffers), waits until `go` (at most 5 s), then declares 20 sync points 5 ms apart; step 2
// ends. With `corrupt`, byte 20,000 of the output differs: the state does not, so only the
// second output event disagrees.
class LargeWriter final : public replica::Program {
 public:
  LargeWriter(bool corrupt, std::shared_ptr<std::atomic<bool>> go)
      : corrupt_(corrupt), go_(std::move(go)) {}
  static std::string Output() {
    std::string s(40000, '\0');
    for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(i * 131 + i / 7);
    return s;
  }
  std::string name() const override { return "large-writer"; }
  size_t state_bytes() const override { return sizeof(uint64_t); }
  Status Init(replica::ReplicaContext&) override { return Status::Ok(); }
  Result<bool> Step(replica::ReplicaContext& ctx) override {
    if (++ctx.State<uint64_t>() == 2) return true;
    std::string out = Output();
    if (corrupt_) out[20000] ^= 0x04;
    VIGIL_RETURN_IF_ERROR(ctx.Write(std::as_bytes(std::span(out))));
    for (int i = 0; i < 5000 && !go_->load(); ++i) std::this_thread::sleep_for(1ms);
    for (uint64_t i = 0; i < 20; ++i) {
      std::this_thread::sleep_for(5ms);
      VIGIL_RETURN_IF_ERROR(ctx.Sync(std::as_bytes(std::span(&i, 1))));
    }
    return false;
  }

 private:
  bool corrupt_;
  std::shared_ptr<std::atomic<bool>> go_;
};

// Replica 2 is outvoted at the second large-output event and replaced at once. The others wait
// until its replacement has started, then go on, so the replacement restarts from the checkpoint
// before the write and catches up through all three large-output events, which the voter's log
// answers by digest: the bytes are out already and are neither read nor written again.
TEST_F(ReplicationTest, TmrReplacementCatchesUpThroughLargeOutputEvents) {
  JobSpec s = Spec(Mode::kTmr, channel::Method::kPolling);
  s.group.replace_after = 1;  // replace at the first fault instead of repairing
  auto replacement_started = std::make_shared<std::atomic<bool>>(false);
  s.program = [replacement_started](uint16_t r, uint32_t inc) -> std::unique_ptr<replica::Program> {
    if (inc > 0) replacement_started->store(true);
    return std::make_unique<LargeWriter>(r == 2 && inc == 0, replacement_started);
  };
  auto got = Run(s);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  EXPECT_EQ(got->output, LargeWriter::Output());
  EXPECT_EQ(got->report.output_bytes, 40000u);
  EXPECT_EQ(got->report.aside_bytes, 40000u);
  EXPECT_EQ(got->report.mismatches, 1u);
  EXPECT_EQ(got->report.repairs, 0u);
  EXPECT_EQ(got->report.replacements, 1u);
  EXPECT_EQ(got->report.catch_ups, 1u);
  // Events 2-4 are the write's, replayed from the checkpoint at event 1.
  EXPECT_GE(got->report.replayed, 3u);
  // The replaced incarnation was told so by an abort verdict for the event it was outvoted on.
  const auto told = ToldTheyWereReplaced(*got);
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].replica, 2u);
  EXPECT_EQ(told[0].incarnation, 0u);
}

TEST_F(ReplicationTest, DmrPersistentFaultFailsTheGroupWithAReport) {
  JobSpec s = Spec(Mode::kDmr, channel::Method::kPolling);
  s.input = Crc32Input(300000);
  // The same flip at the same step after every rollback: a permanent fault.
  s.hook = [](uint16_t r, uint32_t, uint64_t step, replica::ChannelContext& ctx) {
    if (r == 1 && ctx.meta().checkpoints == 3 && step >= 3) {
      ctx.FlipStateBit(replica::kStateMetaBytes * 8 + 9);
    }
  };
  auto got = Run(s);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_FALSE(got->report.completed);
  EXPECT_NE(got->report.failure.find("rollbacks"), std::string::npos) << got->report.failure;
  EXPECT_EQ(got->report.rollbacks, 2u);
}

TEST_F(ReplicationTest, AHelloWithARegionBeyondTheVotersCapIsRefused) {
  JobSpec s = Spec(Mode::kTmr, channel::Method::kPolling);
  s.input = Crc32Input(10000);
  s.input_bytes = 64 * 1024;             // each replica's input region
  s.group.max_region_bytes = 32 * 1024;  // this voter's cap
  s.group.max_incarnations = 1;
  s.group.start_deadline = std::chrono::milliseconds(5000);
  auto got = Run(s);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_FALSE(got->report.completed);
  ASSERT_FALSE(got->replicas.empty());
  for (const auto& rep : got->replicas) {
    EXPECT_EQ(rep.status.code(), StatusCode::kResourceExhausted) << rep.status.ToString();
    EXPECT_NE(rep.status.message().find("input region of 65536 bytes exceeds this voter's cap of "
                                        "32768 bytes"),
              std::string::npos)
        << rep.status.ToString();
  }
  // Under the cap, the same job runs.
  s.group.max_region_bytes = 64 * 1024;
  s.group.max_incarnations = 8;
  auto ok = Run(s);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE(ok->report.completed) << ok->report.failure;
}

TEST_F(ReplicationTest, TmrKilledReplicaIsReplacedAndRejoins) {
  const std::string input = Crc32Input(400000);
  JobSpec s = Spec(Mode::kTmr, channel::Method::kPolling);
  s.input = input;
  s.hook = [](uint16_t r, uint32_t inc, uint64_t step, replica::ChannelContext&) {
    if (r == 2 && inc == 0 && step == 2) std::this_thread::sleep_for(50ms);
  };
  s.while_running = [](voter::Group& g) {
    std::this_thread::sleep_for(30ms);
    g.KillReplica(2);
  };
  auto got = Run(s);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  EXPECT_EQ(got->output, *RunUnreplicated("crc32", "", input));
  EXPECT_EQ(got->report.replacements, 1u);
  // The launcher reports the ended replica before its deadline passes.
  EXPECT_EQ(got->report.crashes, 1u);
  EXPECT_EQ(got->report.missed_deadlines, 0u);
}

TEST_F(ReplicationTest, TmrDownToOneReplicaRecoversFromTheLastAgreedCheckpoint) {
  const std::string input = Crc32Input(400000);
  JobSpec s = Spec(Mode::kTmr, channel::Method::kNotify);
  s.input = input;
  // Replicas 1 and 2 are killed together: one survivor, which can be neither out-voted nor
  // confirmed, so everyone restarts from the last checkpoint the majority agreed on.
  s.hook = [](uint16_t, uint32_t inc, uint64_t step, replica::ChannelContext&) {
    if (inc == 0 && step == 2) std::this_thread::sleep_for(100ms);  // still running at the kill
  };
  s.while_running = [](voter::Group& g) {
    std::this_thread::sleep_for(50ms);
    g.KillReplica(1);
    g.KillReplica(2);
  };
  auto got = Run(s);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  EXPECT_EQ(got->output, *RunUnreplicated("crc32", "", input));
  EXPECT_EQ(got->report.replacements, 2u);
  EXPECT_GE(got->report.rollbacks, 1u);  // the survivor went back to the checkpoint
}

TEST_F(ReplicationTest, DmrHungReplicaIsReplacedAndThePairRecovers) {
  const std::string input = Crc32Input(300000);
  JobSpec s = Spec(Mode::kDmr, channel::Method::kRpc);
  s.input = input;
  s.group.deadline = 500ms;
  // Replica 0's first incarnation hangs in its third step (until the voter stops it).
  auto hung = std::make_shared<std::atomic<bool>>(false);
  s.hook = [hung](uint16_t r, uint32_t inc, uint64_t step, replica::ChannelContext&) {
    if (r == 0 && inc == 0 && step == 3) {
      hung->store(true);
      std::this_thread::sleep_for(1500ms);
    }
  };
  auto got = Run(s);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(hung->load());
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  EXPECT_EQ(got->output, *RunUnreplicated("crc32", "", input));
  EXPECT_GE(got->report.replacements, 1u);
  EXPECT_GE(got->report.missed_deadlines, 1u);
}

TEST_F(ReplicationTest, CorruptedEventRecordIsRejectedAndTheReplicaReplaced) {
  const std::string input = Crc32Input(300000);
  // polling sends events by RDMA WRITE, notify by SEND (rpc's go through gRPC, not a transport).
  for (auto [method, op] : {std::pair{channel::Method::kPolling, transport::kOpWrite},
                            std::pair{channel::Method::kNotify, transport::kOpSend}}) {
    SCOPED_TRACE(channel::MethodName(method));
    auto injector = std::make_shared<transport::FaultInjector>();
    // The 10th event-carrying operation of a replica connection has a payload byte flipped in
    // flight.
    ASSERT_TRUE(injector
                    ->Add({.ops = op,
                           .action = transport::FaultAction::kCorrupt,
                           .skip = 9,
                           .count = 1,
                           .corrupt_offset = 30,
                           .corrupt_mask = 0x10})
                    .ok());
    transport::FaultInjectingTransport faulty(replica_t_, injector);
    JobSpec s = Spec(Mode::kTmr, method);
    s.input = input;
    auto got = RunReplicatedJob(voter_t_, faulty, s);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(injector->injected(transport::FaultAction::kCorrupt), 1u);
    EXPECT_TRUE(got->report.completed) << got->report.failure;
    EXPECT_EQ(got->output, *RunUnreplicated("crc32", "", input));
    EXPECT_EQ(got->report.rejected_records, 1u);
    EXPECT_EQ(got->report.replacements, 1u);
    // The replica whose record was rejected waited for a verdict: it got an abort saying why.
    const auto told = ToldTheyWereReplaced(*got);
    ASSERT_EQ(told.size(), 1u);
    EXPECT_EQ(told[0].incarnation, 0u);
  }
}

// A replica's credit word (how many verdicts it consumed) corrupted in flight to a count the voter
// never wrote: believed, it once stalled that replica's verdicts and, behind them, the whole
// group's (the campaign's TMR runs that failed closed); then it was not believed. Since the
// polling channel's credits are implicit (a verdict means its event was consumed, the next event
// that the last verdict was), no credit crosses the wire at all: a rule that would corrupt the
// first one never fires, and the job runs as usual. (Explicit credit words, corrupted, are
// still refused: ring_conformance's ACorruptedCreditIsNotBelievedAndIsReported.)
TEST_F(ReplicationTest, NoCreditWordCrossesTheWireSoNoneCanBeCorrupted) {
  const std::string input = Crc32Input(300000);
  for (Mode mode : {Mode::kTmr, Mode::kDmr}) {
    SCOPED_TRACE(voter::ModeName(mode));
    auto injector = std::make_shared<transport::FaultInjector>();
    ASSERT_TRUE(injector
                    ->Add({.ops = transport::kOpWrite,
                           .action = transport::FaultAction::kCorrupt,
                           .max_bytes = 8,  // a credit write, not an event slot
                           .corrupt_offset = 6,
                           .corrupt_mask = 0x80})
                    .ok());
    transport::FaultInjectingTransport faulty(replica_t_, injector);
    JobSpec s = Spec(mode, channel::Method::kPolling);
    s.input = input;
    s.group.deadline = 2s;
    auto got = RunReplicatedJob(voter_t_, faulty, s);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(injector->injected(transport::FaultAction::kCorrupt), 0u);
    EXPECT_TRUE(got->report.completed) << got->report.failure;
    EXPECT_EQ(got->output, *RunUnreplicated("crc32", "", input));
    EXPECT_EQ(got->report.replacements, 0u);
    EXPECT_EQ(got->report.missed_deadlines, 0u);
  }
}

// Before every incarnation starts, an impostor that knows the voter's address, the incarnation's
// service name and its rpc target (all of which a network peer can guess) tries to take its
// slot without the nonce, or with a wrong one, and to signal a huge sequence number in its
// name. All are refused, and the real replicas, which hold the nonce, run the job to the end.
TEST_F(ReplicationTest, OnlyTheIncarnationWithItsNonceTakesTheSlotOrSignals) {
  const std::string input = Crc32Input(50000);
  for (channel::Method method : {channel::Method::kPolling, channel::Method::kRpc}) {
    SCOPED_TRACE(channel::MethodName(method));
    std::atomic<int> dials_refused{0}, signals_refused{0};
    JobSpec s = Spec(Mode::kTmr, method);
    s.input = input;
    s.before_launch = [&](const voter::LaunchSpec& l, const std::string& voter) {
      ASSERT_EQ(l.nonce.size(), 32u);
      for (const std::string& token : {std::string(), std::string(32, '0'), l.nonce + "0"}) {
        transport::DialOptions d;
        d.target = voter;
        d.service = l.service;
        d.node_name = "impostor";
        d.token = token;
        d.timeout = 5s;
        auto dialed = transport::Dial(replica_t_, d);
        ASSERT_FALSE(dialed.ok());
        EXPECT_EQ(dialed.status().code(), StatusCode::kPermissionDenied) << dialed.status();
        dials_refused++;
      }
      if (l.rpc_target.empty()) return;
      auto ch = security::Channel(security::ProcessTls(), l.rpc_target, security::Role::kVoter);
      ASSERT_TRUE(ch.ok()) << ch.status();
      auto stub = signal::v1::Voter::NewStub(*ch);
      signal::v1::EventRecord ev, verdict;
      ev.set_seq(uint64_t{1} << 62);  // would lock the real replica out if it were believed
      ev.set_token(std::string(32, 'f'));
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 5s);
      const grpc::Status st = stub->Signal(&ctx, ev, &verdict);
      EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
      EXPECT_NE(st.error_message().find("wrong replica nonce"), std::string::npos);
      signals_refused++;
    };
    auto got = Run(s);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(got->report.completed) << got->report.failure;
    EXPECT_EQ(got->output, *RunUnreplicated("crc32", "", input));
    EXPECT_EQ(got->report.replacements, 0u);
    EXPECT_EQ(dials_refused.load(), 9);  // three tries for each of the three incarnations
    EXPECT_EQ(signals_refused.load(), method == channel::Method::kRpc ? 3 : 0);
  }
}

// The voter's input: read once, kept from the last agreed checkpoint on for re-execution.
TEST(InputSource, ReadsOnceKeepsWhatARollbackNeedsAndRefusesWhatWasTrimmed) {
  const std::string text = Crc32Input(1000000);  // several of InputSource's 64 KiB reads
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(std::fwrite(text.data(), 1, text.size(), f), text.size());
  std::rewind(f);
  voter::InputSource in(f);
  std::string got;
  std::vector<std::byte> buf(100000);
  uint64_t off = 0;
  for (int i = 0;; ++i) {
    auto n = in.ReadAt(off, buf);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    if (*n == 0) break;
    got.append(reinterpret_cast<const char*>(buf.data()), *n);
    if (i % 3 == 2) {
      // A rollback re-reads from the last checkpoint's offset: the same bytes again.
      auto again = in.ReadAt(off, std::span(buf).first(*n));
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), *again),
                got.substr(static_cast<size_t>(off)));
      in.Trim(off);  // an agreed checkpoint at `off`
    }
    off += *n;
  }
  EXPECT_EQ(got, text);
  EXPECT_EQ(*in.ReadAt(off + 5, buf), 0u);  // past the end: nothing, not an error
  in.Trim(950000);
  auto trimmed = in.ReadAt(949999, std::span(buf).first(10));
  ASSERT_FALSE(trimmed.ok());
  EXPECT_NE(trimmed.status().message().find("input offset 949999 lies before"), std::string::npos)
      << trimmed.status().ToString();
  auto kept = in.ReadAt(950000, std::span(buf).first(10));
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), *kept), text.substr(950000, 10));
  // An offset near 2^64 (from a replica's event) neither wraps nor throws.
  EXPECT_EQ(*in.ReadAt(UINT64_MAX - 3, buf), 0u);
  std::fclose(f);
}

TEST(ReplicaProtocol, RejectsForeignShortAndUnknownRecords) {
  std::vector<std::byte> buf(128);
  replica::EventHeader h{.group = 4, .replica = 1, .event_seq = 9};
  auto n = replica::EncodeEvent(buf, h, {});
  ASSERT_TRUE(n.ok());
  channel::Record r{1, static_cast<uint16_t>(replica::EventKind::kInput), 0,
                    std::span(buf).first(*n)};
  EXPECT_TRUE(replica::DecodeEvent(r, 4, 1).ok());
  auto wrong = replica::DecodeEvent(r, 4, 2);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("claims to be replica 1"), std::string::npos);
  r.kind = 99;
  EXPECT_NE(replica::DecodeEvent(r, 4, 1).status().message().find("unknown event kind 99"),
            std::string::npos);
  r.kind = static_cast<uint16_t>(replica::EventKind::kInput);
  r.payload = std::span(buf).first(10);
  EXPECT_NE(replica::DecodeEvent(r, 4, 1).status().message().find("shorter"), std::string::npos);
  replica::VerdictHeader vh{.event_seq = 5};
  n = replica::EncodeVerdict(buf, vh, {});
  channel::Record v{1, static_cast<uint16_t>(replica::VerdictKind::kProceed), 0,
                    std::span(buf).first(*n)};
  EXPECT_TRUE(replica::DecodeVerdict(v, 5).ok());
  EXPECT_NE(replica::DecodeVerdict(v, 6).status().message().find("answers event 5"),
            std::string::npos);
  // An abort ends the replica whatever event it names (the voter may not know the sequence).
  v.kind = static_cast<uint16_t>(replica::VerdictKind::kAbort);
  auto abort = replica::DecodeVerdict(v, 6);
  ASSERT_TRUE(abort.ok()) << abort.status().ToString();
  EXPECT_EQ(abort->kind, replica::VerdictKind::kAbort);
  EXPECT_FALSE(replica::EncodeEvent(std::span(buf).first(20), h, {}).ok());
}

}  // namespace
}  // namespace vigil

namespace vigil {
namespace {

TEST(Vote, SimplexAgreesWithItsOnlyBallotAndModesParse) {
  const voter::Ballot one[] = {{0, true, 42}};
  auto v = voter::Decide(voter::Mode::kSimplex, one);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->kind, voter::Verdict::Kind::kAgree);
  const voter::Ballot two[] = {{0, true, 1}, {1, true, 1}};
  EXPECT_FALSE(voter::Decide(voter::Mode::kSimplex, two).ok());
  EXPECT_EQ(*voter::ParseMode("simplex"), voter::Mode::kSimplex);
  EXPECT_EQ(voter::ReplicasOf(voter::Mode::kTmr), 3u);
  EXPECT_NE(voter::ParseMode("quad").status().message().find("'quad'"), std::string::npos);
}

class SimplexTest : public ::testing::TestWithParam<channel::Method> {};

TEST_P(SimplexTest, OneReplicaThroughTheVoterGivesTheUnreplicatedOutput) {
  auto fabric = std::make_shared<transport::FakeFabric>();
  transport::FakeTransport voter_t(fabric, "voter"), replica_t(fabric, "worker");
  testing::JobSpec s;
  s.group.mode = voter::Mode::kSimplex;
  s.group.channel.method = GetParam();
  s.input = std::string(100000, 'x');
  auto got = testing::RunReplicatedJob(voter_t, replica_t, s);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->report.completed) << got->report.failure;
  EXPECT_EQ(got->output, *testing::RunUnreplicated("crc32", "", s.input));
  EXPECT_GT(got->report.rounds, 5u);
}

INSTANTIATE_TEST_SUITE_P(Fake, SimplexTest,
                         ::testing::Values(channel::Method::kPolling, channel::Method::kNotify,
                                           channel::Method::kRpc),
                         [](const auto& p) { return std::string(channel::MethodName(p.param)); });

}  // namespace
}  // namespace vigil
