#include "vigil/ssr/slot.h"

#include <fmt/format.h>
#include <isa-l/crc.h>

#include <cstring>

namespace vigil::ssr {
namespace {

struct Header {
  uint32_t magic;
  uint16_t version;
  uint16_t reserved0;
  uint32_t service_id;
  uint32_t len;
  uint64_t client_id;
  uint64_t epoch;
  uint64_t seq;
  uint32_t crc32c;
  uint32_t reserved1;
};
static_assert(sizeof(Header) == kSlotHeaderBytes, "slot header layout");

size_t SlotBytes(size_t capacity) { return (kSlotHeaderBytes + capacity + 7) / 8 * 8; }

uint32_t Crc(const Header& h, const std::byte* payload) {
  Header copy = h;
  copy.crc32c = 0;
  uint32_t crc = crc32_iscsi(reinterpret_cast<unsigned char*>(&copy), sizeof(copy), 0xFFFFFFFF);
  return crc32_iscsi(const_cast<unsigned char*>(reinterpret_cast<const unsigned char*>(payload)),
                     static_cast<int>(h.len), crc);
}

bool AllZero(const std::byte* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != std::byte{0}) return false;
  }
  return true;
}

// Validates one slot; on failure returns why (empty string = valid).
std::string Check(const std::byte* slot, size_t capacity, const Identity& id, Header& h) {
  std::memcpy(&h, slot, sizeof(h));
  if (AllZero(slot, sizeof(h))) return "never written";
  if (h.magic != kSlotMagic) return fmt::format("bad magic {:#x}", h.magic);
  if (h.version != kSlotVersion) return fmt::format("unsupported version {}", h.version);
  if (h.service_id != id.service_id || h.client_id != id.client_id) {
    return fmt::format("belongs to service {} client {}", h.service_id, h.client_id);
  }
  if (h.len > capacity) return fmt::format("length {} exceeds capacity {}", h.len, capacity);
  const uint32_t crc = Crc(h, slot + sizeof(h));
  if (crc != h.crc32c)
    return fmt::format("CRC mismatch (stored {:#010x}, computed {:#010x})", h.crc32c, crc);
  return "";
}

Status CheckRegion(size_t region_bytes, size_t capacity) {
  if (capacity > UINT32_MAX)
    return InvalidArgument(fmt::format("SSR capacity {} exceeds 4 GiB", capacity));
  if (region_bytes != RegionBytes(capacity)) {
    return InvalidArgument(fmt::format("SSR region is {} bytes, capacity {} needs {}", region_bytes,
                                       capacity, RegionBytes(capacity)));
  }
  return Status::Ok();
}

}  // namespace

size_t RegionBytes(size_t capacity) { return 2 * SlotBytes(capacity); }

Result<Written> Write(std::span<std::byte> region, size_t capacity, const Identity& id,
                      uint64_t epoch, std::span<const std::byte> payload) {
  VIGIL_RETURN_IF_ERROR(CheckRegion(region.size(), capacity));
  if (payload.size() > capacity) {
    return OutOfRange(
        fmt::format("SSR payload of {} bytes exceeds capacity {}", payload.size(), capacity));
  }
  Header h[2];
  const bool ok0 = Check(region.data(), capacity, id, h[0]).empty();
  const bool ok1 = Check(region.data() + SlotBytes(capacity), capacity, id, h[1]).empty();
  // Overwrite the invalid slot, or the older one; the newer valid version stays intact.
  int target = 0;
  uint64_t newest = 0;
  if (ok0 && ok1) {
    target = h[0].seq < h[1].seq ? 0 : 1;
    newest = std::max(h[0].seq, h[1].seq);
  } else if (ok0) {
    target = 1;
    newest = h[0].seq;
  } else if (ok1) {
    newest = h[1].seq;
  }
  Header out{};
  out.magic = kSlotMagic;
  out.version = kSlotVersion;
  out.service_id = id.service_id;
  out.len = static_cast<uint32_t>(payload.size());
  out.client_id = id.client_id;
  out.epoch = epoch;
  out.seq = newest + 1;
  out.crc32c = Crc(out, payload.data());
  std::byte* slot = region.data() + target * SlotBytes(capacity);
  std::memcpy(slot + sizeof(out), payload.data(), payload.size());
  std::memcpy(slot, &out, sizeof(out));
  return Written{target * SlotBytes(capacity), kSlotHeaderBytes + payload.size(), out.seq};
}

Result<State> Read(std::span<const std::byte> region, size_t capacity, const Identity& id) {
  VIGIL_RETURN_IF_ERROR(CheckRegion(region.size(), capacity));
  Header h[2];
  const std::string why[2] = {Check(region.data(), capacity, id, h[0]),
                              Check(region.data() + SlotBytes(capacity), capacity, id, h[1])};
  const bool ok[2] = {why[0].empty(), why[1].empty()};
  if (!ok[0] && !ok[1]) {
    if (why[0] == "never written" && why[1] == "never written") {
      return NotFound(fmt::format("SSR of service {} client {} holds no state yet", id.service_id,
                                  id.client_id));
    }
    return DataLoss(fmt::format("SSR of service {} client {}: slot A: {}; slot B: {}",
                                id.service_id, id.client_id, why[0], why[1]));
  }
  const int s = (ok[0] && ok[1]) ? (h[0].seq > h[1].seq ? 0 : 1) : (ok[0] ? 0 : 1);
  State st;
  st.slot = s;
  st.epoch = h[s].epoch;
  st.seq = h[s].seq;
  const std::byte* p = region.data() + s * SlotBytes(capacity) + kSlotHeaderBytes;
  st.payload.assign(p, p + h[s].len);
  if (!ok[1 - s]) st.rejected = fmt::format("slot {}: {}", s == 0 ? 'B' : 'A', why[1 - s]);
  return st;
}

}  // namespace vigil::ssr
