// The event record every signalling method carries: a 24-byte header and a bounded payload.
//
//   [0,8) seq u64 | [8,12) len u32 | [12,14) kind u16 | [14,16) flags u16 | [16,20) crc32c u32 |
//   [20,24) reserved | [24, 24+len) payload
// crc32c covers bytes [0,16) and the payload; the reserved bytes must be zero. Decoding checks the
// sequence, the length against both the bytes received and the capacity, the reserved bytes and
// the CRC before anything is handed out, so every single flipped bit is rejected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "vigil/common/status.h"

namespace vigil::channel {

inline constexpr size_t kRecordHeaderBytes = 24;

struct Record {
  uint64_t seq = 0;
  uint16_t kind = 0;
  uint16_t flags = 0;
  std::span<const std::byte> payload;  // points into the decoded bytes
};

// Writes the record into `dst` (at least kRecordHeaderBytes + payload.size() bytes); returns the
// number of bytes written.
size_t EncodeRecord(std::span<std::byte> dst, uint64_t seq, uint16_t kind, uint16_t flags,
                    std::span<const std::byte> payload);

// Validates `bytes` as the record with sequence `expected_seq` and at most `max_payload` payload
// bytes. Errors are kDataLoss and start with `where` plus, if `slot` >= 0, " slot <slot>" (e.g.
// "signal ring slot 3"). Nothing is formatted unless the record is rejected: this runs in polling
// loops.
Result<Record> DecodeRecord(std::span<const std::byte> bytes, uint64_t expected_seq,
                            size_t max_payload, std::string_view where, int64_t slot = -1);
// DecodeRecord's checks without its message: nothing when the record does not validate (yet). A
// poller re-reads such a record (its bytes may still be landing) and asks DecodeRecord why only
// once the failure persists, so a torn read costs no allocation.
std::optional<Record> TryDecodeRecord(std::span<const std::byte> bytes, uint64_t expected_seq,
                                      size_t max_payload);

}  // namespace vigil::channel
