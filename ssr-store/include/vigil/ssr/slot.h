// The on-memory format of one Server State Region (SSR): two slots, A and B, each a fixed header
// and up to `capacity` payload bytes. A write goes to the older (or invalid) slot with the next
// sequence number; a read takes the newest slot that validates. A torn or corrupted write
// therefore never loses the previous state. The same bytes live in the SSR store's registered
// arena and are read/written remotely with RDMA; nothing read back is trusted before validation.
//
// Slot header (little-endian, 48 bytes):
//   magic u32 | version u16 | reserved u16 | service_id u32 | len u32 |
//   client_id u64 | epoch u64 | seq u64 | crc32c u32 | reserved u32
// crc32c covers the header (with the crc field zero) and the `len` payload bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vigil/common/status.h"

namespace vigil::ssr {

inline constexpr uint32_t kSlotMagic = 0x56534652;  // "RFSV"
inline constexpr uint16_t kSlotVersion = 1;
inline constexpr size_t kSlotHeaderBytes = 48;

struct Identity {
  uint32_t service_id = 0;
  uint64_t client_id = 0;
};

// Bytes one SSR occupies for a given payload capacity: 2 x (header + capacity), rounded to 8.
size_t RegionBytes(size_t capacity);

struct State {
  uint64_t epoch = 0;
  uint64_t seq = 0;
  int slot = 0;  // 0 = A, 1 = B
  std::vector<std::byte> payload;
  std::string rejected;  // why the other slot was not used, if it was invalid
};

// The bytes of `region` a Write changed (one slot): what a remote writer must transfer.
struct Written {
  size_t offset = 0;
  size_t length = 0;
  uint64_t seq = 0;
};

// Writes `payload` as the next version into the older (or invalid) slot. `region` must be
// RegionBytes(capacity) long.
Result<Written> Write(std::span<std::byte> region, size_t capacity, const Identity& id,
                      uint64_t epoch, std::span<const std::byte> payload);

// The newest valid version. kNotFound when neither slot was ever written; kDataLoss naming both
// slots' problems when neither validates (magic, version, identity, length, CRC).
Result<State> Read(std::span<const std::byte> region, size_t capacity, const Identity& id);

}  // namespace vigil::ssr
