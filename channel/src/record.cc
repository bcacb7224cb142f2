#include "vigil/channel/record.h"

#include <fmt/format.h>
#include <isa-l/crc.h>

#include <cstring>
#include <string>

namespace vigil::channel {
namespace {

struct Header {
  uint64_t seq;
  uint32_t len;
  uint16_t kind;
  uint16_t flags;
  uint32_t crc32c;
  uint32_t reserved;
};
static_assert(sizeof(Header) == kRecordHeaderBytes);

uint32_t Crc(const Header& h, const std::byte* payload) {
  uint32_t crc = crc32_iscsi(const_cast<unsigned char*>(reinterpret_cast<const unsigned char*>(&h)),
                             16, 0xFFFFFFFF);
  return crc32_iscsi(const_cast<unsigned char*>(reinterpret_cast<const unsigned char*>(payload)),
                     static_cast<int>(h.len), crc);
}

}  // namespace

size_t EncodeRecord(std::span<std::byte> dst, uint64_t seq, uint16_t kind, uint16_t flags,
                    std::span<const std::byte> payload) {
  Header h{seq, static_cast<uint32_t>(payload.size()), kind, flags, 0, 0};
  h.crc32c = Crc(h, payload.data());
  std::memcpy(dst.data(), &h, sizeof(h));
  if (!payload.empty()) std::memcpy(dst.data() + sizeof(h), payload.data(), payload.size());
  return sizeof(h) + payload.size();
}

std::optional<Record> TryDecodeRecord(std::span<const std::byte> bytes, uint64_t expected_seq,
                                      size_t max_payload) {
  if (bytes.size() < kRecordHeaderBytes) return std::nullopt;
  Header h;
  std::memcpy(&h, bytes.data(), sizeof(h));
  if (h.seq != expected_seq || h.len > max_payload || h.len > bytes.size() - kRecordHeaderBytes ||
      h.reserved != 0 || Crc(h, bytes.data() + kRecordHeaderBytes) != h.crc32c) {
    return std::nullopt;
  }
  return Record{h.seq, h.kind, h.flags, bytes.subspan(kRecordHeaderBytes, h.len)};
}

Result<Record> DecodeRecord(std::span<const std::byte> bytes, uint64_t expected_seq,
                            size_t max_payload, std::string_view what, int64_t slot) {
  auto where = [&] { return slot < 0 ? std::string(what) : fmt::format("{} slot {}", what, slot); };
  if (bytes.size() < kRecordHeaderBytes) {
    return DataLoss(fmt::format("{}: record of {} bytes is shorter than its {}-byte header",
                                where(), bytes.size(), kRecordHeaderBytes));
  }
  Header h;
  std::memcpy(&h, bytes.data(), sizeof(h));
  if (h.seq != expected_seq) {
    return DataLoss(
        fmt::format("{}: corrupted or out-of-sequence record: header sequence {}, "
                    "expected {}",
                    where(), h.seq, expected_seq));
  }
  if (h.len > max_payload || h.len > bytes.size() - kRecordHeaderBytes) {
    return DataLoss(
        fmt::format("{} sequence {}: length {} exceeds the payload capacity {} or the "
                    "{} bytes received",
                    where(), expected_seq, h.len, max_payload, bytes.size()));
  }
  if (h.reserved != 0) {
    return DataLoss(
        fmt::format("{} sequence {}: reserved header bytes are {:#010x}, not zero: "
                    "corrupted in flight or in memory",
                    where(), expected_seq, h.reserved));
  }
  const uint32_t crc = Crc(h, bytes.data() + kRecordHeaderBytes);
  if (crc != h.crc32c) {
    return DataLoss(
        fmt::format("{} sequence {}: CRC mismatch (record {:#010x}, computed {:#010x}): "
                    "corrupted in flight or in memory",
                    where(), expected_seq, h.crc32c, crc));
  }
  return Record{h.seq, h.kind, h.flags, bytes.subspan(kRecordHeaderBytes, h.len)};
}

}  // namespace vigil::channel
