// Fuzzes the event record of every signalling method (channel::DecodeRecord) and the event and
// verdict payloads inside it (replica::DecodeEvent / DecodeVerdict): bytes a replica, the voter
// or the network wrote into registered memory.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "vigil/channel/record.h"
#include "vigil/replica/protocol.h"

namespace {
bool Within(std::span<const std::byte> part, std::span<const std::byte> whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vigil;
  const auto bytes = std::as_bytes(std::span(data, size));
  auto r = channel::DecodeRecord(bytes, 7, 512, "fuzz");
  if (r.ok() && (!Within(r->payload, bytes) || r->payload.size() > 512)) std::abort();
  // The pollers' message-free check accepts exactly what DecodeRecord accepts, the same record.
  auto t = channel::TryDecodeRecord(bytes, 7, 512);
  if (t.has_value() != r.ok()) std::abort();
  if (t && (t->payload.data() != r->payload.data() || t->payload.size() != r->payload.size() ||
            t->kind != r->kind || t->flags != r->flags || t->seq != r->seq)) {
    std::abort();
  }
  // The payload decoders, on the record when it decoded, else on the raw bytes under every kind.
  for (uint16_t kind = 0; kind < 24; ++kind) {
    const channel::Record rec = r.ok() ? *r : channel::Record{7, kind, 0, bytes};
    auto e = replica::DecodeEvent(rec, 9, 2);
    if (e.ok() && !Within(e->data, rec.payload)) std::abort();
    auto v = replica::DecodeVerdict(rec, 77);
    if (v.ok() && !Within(v->data, rec.payload)) std::abort();
    if (r.ok()) break;
  }
  return 0;
}
