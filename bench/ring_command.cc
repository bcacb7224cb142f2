// `vigil-bench ring`: the polling channel's round trip. A replica writes an event record into
// the voter's signal ring; the voter polls it, consumes it and writes a verdict into the
// replica's ring, which the replica polls. Measured next to perftest's ib_write_lat with the
// same bytes per WRITE (both rings use the same slot size), in the same run.
#include <fmt/format.h>

#include <chrono>

#include "harness.h"
#include "vigil/channel/ring.h"

namespace vigil::bench {
namespace {

using namespace std::chrono_literals;
using channel::RingConfig;
using channel::RingReader;
using channel::RingWriter;

constexpr auto kStall = 20s;  // no progress for this long: the peer is gone
constexpr uint16_t kEvent = 1;
constexpr uint16_t kVerdictAgree = 2;

uint32_t SlotBytesFor(uint32_t payload) {
  return std::max<uint32_t>(64, (payload + channel::kSlotOverhead + 7) / 8 * 8);
}

// One replica<->voter pair of rings, all four ends on this transport.
struct Rings {
  std::unique_ptr<RingWriter> events;    // replica side
  std::unique_ptr<RingReader> verdicts;  // replica side
  std::unique_ptr<RingReader> inbox;     // voter side (events)
  std::unique_ptr<RingWriter> replies;   // voter side (verdicts)
};

Result<Rings> MakeRings(transport::Transport& t, const RingConfig& cfg) {
  Rings r;
  VIGIL_ASSIGN_OR_RETURN(r.events, RingWriter::Create(t, cfg));
  VIGIL_ASSIGN_OR_RETURN(r.verdicts, RingReader::Create(t, cfg));
  VIGIL_ASSIGN_OR_RETURN(r.inbox, RingReader::Create(t, cfg));
  VIGIL_ASSIGN_OR_RETURN(r.replies, RingWriter::Create(t, cfg));
  return r;
}

Result<LatencySummary> MeasureSize(BenchSetup& setup, const RingBenchOptions& o, uint32_t bytes) {
  const RingConfig cfg{.slots = o.slots, .slot_bytes = SlotBytesFor(bytes)};
  VIGIL_ASSIGN_OR_RETURN(Rings rings, MakeRings(*setup.transport, cfg));
  const uint64_t total = o.common.warmup + o.common.iterations;
  LatencySamples samples(o.common.iterations);
  Side voter{{rings.inbox->ring_region(), rings.replies->credit_region()},
             nullptr,
             [&](transport::Connection& c, const transport::PeerInfo& peer) -> Status {
               VIGIL_ASSIGN_OR_RETURN(auto credit, peer.Region("ring-credit"));
               VIGIL_ASSIGN_OR_RETURN(auto ring, peer.Region("signal-ring"));
               rings.inbox->Attach(&c, credit);
               rings.replies->Attach(&c, ring);
               std::vector<std::byte> buf(cfg.slot_bytes);
               for (uint64_t i = 0; i < total; ++i) {
                 VIGIL_ASSIGN_OR_RETURN(channel::Record ev, rings.inbox->Read(buf, kStall));
                 const uint64_t verdict_seq = ev.seq;
                 VIGIL_RETURN_IF_ERROR(rings.inbox->Release());
                 VIGIL_RETURN_IF_ERROR(rings.replies->Write(
                     kVerdictAgree, 0, std::as_bytes(std::span(&verdict_seq, 1)), kStall));
               }
               return Status::Ok();
             }};
  Side replica{{rings.verdicts->ring_region(), rings.events->credit_region()},
               nullptr,
               [&](transport::Connection& c, const transport::PeerInfo& peer) -> Status {
                 VIGIL_ASSIGN_OR_RETURN(auto credit, peer.Region("ring-credit"));
                 VIGIL_ASSIGN_OR_RETURN(auto ring, peer.Region("signal-ring"));
                 rings.events->Attach(&c, ring);
                 rings.verdicts->Attach(&c, credit);
                 std::vector<std::byte> payload(bytes, std::byte{0x5a}), buf(cfg.slot_bytes);
                 for (uint64_t i = 0; i < total; ++i) {
                   const auto t0 = std::chrono::steady_clock::now();
                   VIGIL_RETURN_IF_ERROR(rings.events->Write(kEvent, 0, payload, kStall));
                   VIGIL_ASSIGN_OR_RETURN(channel::Record v, rings.verdicts->Read(buf, kStall));
                   if (v.kind != kVerdictAgree || v.payload.size() != 8) {
                     return Internal(fmt::format("unexpected verdict kind {} ({} bytes)", v.kind,
                                                 v.payload.size()));
                   }
                   VIGIL_RETURN_IF_ERROR(rings.verdicts->Release());
                   const auto t1 = std::chrono::steady_clock::now();
                   if (i >= o.common.warmup) {
                     samples.Record(static_cast<uint64_t>(
                         std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
                   }
                 }
                 return Status::Ok();
               }};
  VIGIL_RETURN_IF_ERROR(RunPair(setup, std::move(voter), std::move(replica)));
  return samples.Summarize();
}

}  // namespace

int RunRingBench(const RingBenchOptions& o) {
  for (uint32_t b : o.sizes) {
    if (b > 65536 - channel::kSlotOverhead) {
      fmt::print(stderr, "error: --sizes: event payload {} exceeds {} bytes\n", b,
                 65536 - channel::kSlotOverhead);
      return 2;
    }
  }
  if (Status st = channel::ValidateRingConfig({.slots = o.slots}); !st.ok()) {
    fmt::print(stderr, "error: --slots: {}\n", st.message());
    return 2;
  }
  auto setup = OpenAndDescribe(o.common);
  if (!setup) return 1;
  fmt::print(
      "# polling channel: event -> verdict round trip through two signal rings ({} slots), "
      "{} iterations per size after {} warm-up\n",
      o.slots, o.common.iterations, o.common.warmup);
  std::vector<Row> rows;
  for (uint32_t b : o.sizes) {
    auto rtt = MeasureSize(*setup, o, b);
    if (!rtt.ok()) {
      fmt::print(stderr, "error: {} byte events: {}\n", b, rtt.status().ToString());
      return 1;
    }
    rows.push_back({b, SlotBytesFor(b), *rtt});
  }
  return Report(*setup, o.common, "ring", 1.3, rows);
}

}  // namespace vigil::bench
