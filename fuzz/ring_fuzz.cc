// Fuzzes the polling ring's reader (channel::RingReader::TryRead): what a replica, or corruption
// in flight or in memory, leaves in the voter's ring. The input is written over the FAKE
// in-process transport into the first slots of a small ring (the first byte picks how many slots
// and where), then the reader polls them the way the voter does, including past the point where
// a persisting anomaly is reported. A record it returns must lie inside the caller's buffer,
// carry the sequence it expected and no more than the slot's payload capacity.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>

#include "vigil/channel/ring.h"
#include "vigil/transport/fake.h"

namespace {

struct Rig {
  std::shared_ptr<vigil::transport::FakeFabric> fabric =
      std::make_shared<vigil::transport::FakeFabric>();
  vigil::transport::FakeTransport writer_side{fabric, "replica"};
  vigil::transport::FakeTransport reader_side{fabric, "voter"};
  std::unique_ptr<vigil::transport::Connection> writer, reader;
  std::unique_ptr<vigil::transport::RegisteredBuffer> src;
  std::unique_ptr<vigil::transport::RegisteredBuffer> credit;  // the reader writes credits here
};

constexpr uint32_t kSlots = 4;
constexpr uint32_t kSlotBytes = 96;

Rig& Setup() {
  static Rig* rig = [] {
    auto* r = new Rig();
    auto w = r->writer_side.CreateConnection({.name = "fuzz-writer"});
    auto rd = r->reader_side.CreateConnection({.name = "fuzz-reader"});
    auto src = vigil::transport::RegisteredBuffer::Allocate(r->writer_side, kSlots * kSlotBytes,
                                                            vigil::transport::kLocalWrite);
    auto credit = vigil::transport::RegisteredBuffer::Allocate(
        r->writer_side, 8, vigil::transport::kLocalWrite | vigil::transport::kRemoteWrite);
    if (!w.ok() || !rd.ok() || !src.ok() || !credit.ok()) std::abort();
    r->credit = std::make_unique<vigil::transport::RegisteredBuffer>(std::move(*credit));
    r->writer = std::move(*w);
    r->reader = std::move(*rd);
    r->src = std::make_unique<vigil::transport::RegisteredBuffer>(std::move(*src));
    if (!r->writer->Connect(r->reader->local_endpoint()).ok() ||
        !r->reader->Connect(r->writer->local_endpoint()).ok()) {
      std::abort();
    }
    return r;
  }();
  return *rig;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vigil;
  if (size < 1) return 0;
  Rig& rig = Setup();
  auto reader = channel::RingReader::Create(
      rig.reader_side, {.slots = kSlots, .slot_bytes = kSlotBytes, .credit_batch = kSlots});
  if (!reader.ok()) std::abort();
  (*reader)->Attach(rig.reader.get(), rig.credit->mr().Describe("ring-credit"));
  const size_t n = std::min<size_t>(size - 1, kSlots * kSlotBytes);
  std::memset(rig.src->data(), 0, kSlots * kSlotBytes);
  std::memcpy(rig.src->data(), data + 1, n);
  const size_t at = (data[0] & 0x3) * 8;  // write at an 8-aligned offset into the ring
  const size_t len = std::min(n, kSlots * kSlotBytes - at);
  auto dst = (*reader)->ring_region().At(at, len);
  if (!dst.ok()) std::abort();
  if (len > 0) {
    if (!rig.writer->PostWrite(rig.src->mr().Slice(0, len), *dst, 1).ok()) std::abort();
    if (!transport::WaitSendOk(*rig.writer, std::chrono::seconds(5)).ok()) std::abort();
  }
  std::byte buf[kSlotBytes];
  // Enough polls for any anomaly to be reported, not enough to reach the torn-record limit.
  for (int poll = 0; poll < 2100; ++poll) {
    channel::Record rec;
    const uint64_t want = (*reader)->next_seq();
    Result<bool> got = (*reader)->TryRead(buf, rec);
    if (!got.ok()) {
      if (!(*reader)->Release().ok()) std::abort();  // skip it, as the voter would
      continue;
    }
    if (!*got) continue;
    const auto* p = reinterpret_cast<const std::byte*>(rec.payload.data());
    if (rec.seq != want || rec.payload.size() > kSlotBytes - channel::kSlotOverhead ||
        (!rec.payload.empty() && (p < buf || p + rec.payload.size() > buf + kSlotBytes))) {
      std::abort();
    }
    if (!(*reader)->Release().ok()) std::abort();
  }
  return 0;
}
