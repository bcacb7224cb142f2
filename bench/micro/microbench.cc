// vigil-microbench: the voter's per-event work, piece by piece, with Google Benchmark. One
// thread, so items/s is per core. No transport, no clock reads of vigil's own:
//   Decide/replicas:R/odd:O   the vote (vote.h) over R ballots; O = 1: one differs (DMR:
//                             rollback, TMR: one outvoted)
//   Round/replicas:R/odd:O    the round machine (round.h) deciding one round: ballots cast,
//                             complete?, plan, agreed (what the voter does per event, less I/O)
//   EventDigest/bytes:N       the digest each event is voted by (xxh3 over fields + data)
//   EventRecord/bytes:N       a replica's event as it crosses the wire: encode the event and its
//                             record (CRC32C), then validate both as the voter does
//   StateDigest/bytes:N       a replica's state digest (checkpoints, repairs)
// Run: build/bench/vigil-microbench [--benchmark_format=json] [--benchmark_repetitions=5]
// Exits 1 when a benchmark found its own work wrong (a record it made rejected).
#include <benchmark/benchmark.h>

#include <cstddef>
#include <vector>

#include "vigil/channel/record.h"
#include "vigil/replica/protocol.h"
#include "vigil/replica/state_digest.h"
#include "vigil/voter/round.h"
#include "vigil/voter/vote.h"

namespace vigil {
namespace {

// A benchmark that found its own work wrong (a record rejected) says so and fails the run.
bool failed = false;
void Fail(benchmark::State& state, const char* why) {
  failed = true;
  state.SkipWithError(why);
}

voter::Mode ModeOf(int64_t replicas) {
  return replicas == 3   ? voter::Mode::kTmr
         : replicas == 2 ? voter::Mode::kDmr
                         : voter::Mode::kSimplex;
}

// Every group size, with all ballots equal and (R >= 2) with the last one differing.
void ReplicaArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"replicas", "odd"})
      ->Args({1, 0})
      ->Args({2, 0})
      ->Args({2, 1})
      ->Args({3, 0})
      ->Args({3, 1});
}

void Decide(benchmark::State& state) {
  const auto replicas = static_cast<uint32_t>(state.range(0));
  const bool odd = state.range(1) != 0;
  const voter::Mode mode = ModeOf(replicas);
  std::vector<voter::Ballot> ballots;
  for (uint32_t r = 0; r < replicas; ++r) ballots.push_back({r, true, 0x5eed});
  if (odd) ballots.back().digest ^= 1;
  for (auto _ : state) {
    Result<voter::Verdict> v = voter::Decide(mode, ballots);
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(Decide)->Apply(ReplicaArgs);

void Round(benchmark::State& state) {
  const auto replicas = static_cast<uint16_t>(state.range(0));
  const bool odd = state.range(1) != 0;
  const voter::Mode mode = ModeOf(replicas);
  voter::RoundMachine m(voter::RoundOptions{.mode = mode});
  for (uint16_t r = 0; r < replicas; ++r) m.Connected(r, {});
  uint64_t seq = 1;
  for (auto _ : state) {
    for (uint16_t r = 0; r < replicas; ++r) {
      const uint64_t digest = odd && r == replicas - 1 ? seq ^ 1 : seq;
      m.Cast(r, {replica::EventKind::kSync, seq, digest});
    }
    if (!m.Complete(false)) return Fail(state, "a round with every ballot in is not complete");
    const voter::RoundPlan p = m.Plan(false);
    benchmark::DoNotOptimize(p);
    if (p.kind == voter::RoundPlan::Kind::kAgree) {
      m.Agreed(seq++);
    } else if (p.kind != voter::RoundPlan::Kind::kMismatch) {
      return Fail(state, "an unexpected plan");
    }
    for (uint16_t r = 0; r < replicas; ++r) m.Answered(r);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(Round)->Apply(ReplicaArgs);

// TMR decided on the first two matching ballots (with the log): replicas 0 and 1 cast, the round
// is complete and agreed without replica 2, which lags one event and is then answered from the
// log (what the voter checks it against is the caller's; this is the machine's share).
void RoundFirstTwo(benchmark::State& state) {
  voter::RoundMachine m(voter::RoundOptions{.mode = voter::Mode::kTmr});
  for (uint16_t r = 0; r < 3; ++r) m.Connected(r, {});
  uint64_t seq = 1;
  for (auto _ : state) {
    m.Cast(0, {replica::EventKind::kSync, seq, seq});
    m.Cast(1, {replica::EventKind::kSync, seq, seq});
    if (!m.Complete(true)) return Fail(state, "two matching ballots are not complete");
    const voter::RoundPlan p = m.Plan(true);
    benchmark::DoNotOptimize(p);
    if (p.kind != voter::RoundPlan::Kind::kAgree || !p.lagging.Has(2)) {
      return Fail(state, "an unexpected plan");
    }
    m.Agreed(seq);
    m.FellBehind(2, seq);
    m.Answered(0);
    m.Answered(1);
    m.Replayed(2, {});  // its late ballot for `seq`, answered from the log
    m.SetStanding(2, voter::Standing::kLive);
    ++seq;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(RoundFirstTwo);

void EventDigest(benchmark::State& state) {
  const std::vector<std::byte> data(static_cast<size_t>(state.range(0)), std::byte{0x42});
  uint64_t seq = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(voter::EventDigest(3, ++seq, 0x1234, 7, 8, data));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(EventDigest)->ArgName("bytes")->Arg(0)->Arg(64)->Arg(4096)->Arg(65536);

void EventRecord(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const std::vector<std::byte> data(n, std::byte{0x42});
  std::vector<std::byte> event(replica::kEventHeaderBytes + n);
  std::vector<std::byte> wire(channel::kRecordHeaderBytes + event.size());
  replica::EventHeader h{.group = 1, .replica = 2, .event_seq = 0, .state_digest = 0x1234};
  for (auto _ : state) {
    ++h.event_seq;
    Result<size_t> used = replica::EncodeEvent(event, h, data);
    if (!used.ok()) {
      Fail(state, "event not encoded");
      break;
    }
    const size_t bytes =
        channel::EncodeRecord(wire, h.event_seq, 3, 0, std::span(event).first(*used));
    Result<channel::Record> rec =
        channel::DecodeRecord(std::span(wire).first(bytes), h.event_seq, event.size(), "bench");
    if (!rec.ok()) {
      Fail(state, "record rejected");
      break;
    }
    Result<replica::Event> ev = replica::DecodeEvent(*rec, 1, 2);
    if (!ev.ok()) {
      Fail(state, "event rejected");
      break;
    }
    benchmark::DoNotOptimize(ev);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
}
BENCHMARK(EventRecord)->ArgName("bytes")->Arg(8)->Arg(64)->Arg(4096);

void StateDigest(benchmark::State& state) {
  const std::vector<std::byte> region(static_cast<size_t>(state.range(0)), std::byte{0x17});
  for (auto _ : state) benchmark::DoNotOptimize(replica::StateDigest(region));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(StateDigest)->ArgName("bytes")->Arg(4096)->Arg(65536)->Arg(1 << 20);

}  // namespace
}  // namespace vigil

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return vigil::failed ? 1 : 0;
}
