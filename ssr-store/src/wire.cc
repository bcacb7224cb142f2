#include "vigil/ssr/wire.h"

#include <fmt/format.h>

#include <cstring>

#include "vigil/common/text.h"

namespace vigil::ssr::wire {
namespace {

// Request layout: magic u32 @0 | version u16 @4 | op u16 @6 | seq u64 @8 | client u64 @16 |
// grant u64 @24 | flags u32 @32 | name_len u8 @36 | instance_len u8 @37 | name [48] @40 |
// instance [48] @88.
// Reply layout: magic u32 @0 | version u16 @4 | op u16 @6 | seq u64 @8 | code u32 @16 |
// message_len u16 @20 | flags u16 @22 | service u32 @24 | capacity u32 @28 | epoch u64 @32 |
// grant u64 @40 | addr u64 @48 | length u64 @56 | rkey u32 @64 | count u32 @68 |
// clients [16 x u64] @72 | message [96] @200.
constexpr uint32_t kFlagCreate = 1;
constexpr uint32_t kFlagNoReply = 2;
constexpr uint16_t kFlagCreated = 1;
constexpr uint16_t kFlagMore = 2;

template <typename T>
void Put(std::byte* base, size_t off, T v) {
  std::memcpy(base + off, &v, sizeof(T));
}
template <typename T>
T Get(const std::byte* base, size_t off) {
  T v;
  std::memcpy(&v, base + off, sizeof(T));
  return v;
}

void PutText(std::byte* base, size_t off, size_t cap, std::string_view s) {
  const size_t n = std::min(s.size(), cap);
  std::memcpy(base + off, s.data(), n);
}

bool KnownOp(uint16_t op) { return op >= 1 && op <= 6; }

}  // namespace

std::string_view OpName(Op op) {
  switch (op) {
    case Op::kOpen:
      return "open";
    case Op::kGrant:
      return "grant";
    case Op::kRelease:
      return "release";
    case Op::kFree:
      return "free";
    case Op::kList:
      return "list";
    case Op::kClose:
      return "close";
  }
  return "unknown";
}

Status CheckName(std::string_view what, std::string_view name) {
  if (name.empty() || name.size() > kMaxName || !IsPrintable(name)) {
    return InvalidArgument(fmt::format("{} '{}' must be 1..{} printable characters", what,
                                       Escaped(name, kMaxName + 1), kMaxName));
  }
  return Status::Ok();
}

Status Reply::ToStatus() const {
  if (code == StatusCode::kOk) return Status::Ok();
  return Status(code, fmt::format("SSR store refused {}: {}", OpName(op), message));
}

void Encode(const Request& r, std::span<std::byte, kRequestBytes> out) {
  std::byte* b = out.data();
  std::memset(b, 0, kRequestBytes);
  Put<uint32_t>(b, 0, kRequestMagic);
  Put<uint16_t>(b, 4, kVersion);
  Put<uint16_t>(b, 6, static_cast<uint16_t>(r.op));
  Put<uint64_t>(b, 8, r.seq);
  Put<uint64_t>(b, 16, r.client_id);
  Put<uint64_t>(b, 24, r.grant_id);
  Put<uint32_t>(b, 32, (r.create ? kFlagCreate : 0) | (r.no_reply ? kFlagNoReply : 0));
  Put<uint8_t>(b, 36, static_cast<uint8_t>(std::min(r.name.size(), kMaxName)));
  Put<uint8_t>(b, 37, static_cast<uint8_t>(std::min(r.instance.size(), kMaxName)));
  PutText(b, 40, kMaxName, r.name);
  PutText(b, 88, kMaxName, r.instance);
}

Result<Request> DecodeRequest(std::span<const std::byte> in) {
  if (in.size() != kRequestBytes) {
    return InvalidArgument(
        fmt::format("SSR request of {} bytes (expected {})", in.size(), kRequestBytes));
  }
  const std::byte* b = in.data();
  if (Get<uint32_t>(b, 0) != kRequestMagic) {
    return DataLoss(fmt::format("SSR request with bad magic {:#x}", Get<uint32_t>(b, 0)));
  }
  if (Get<uint16_t>(b, 4) != kVersion) {
    return InvalidArgument(fmt::format("SSR request of protocol version {} (this store speaks {})",
                                       Get<uint16_t>(b, 4), kVersion));
  }
  const uint16_t op = Get<uint16_t>(b, 6);
  if (!KnownOp(op)) return InvalidArgument(fmt::format("SSR request with unknown op {}", op));
  Request r;
  r.op = static_cast<Op>(op);
  r.seq = Get<uint64_t>(b, 8);
  r.client_id = Get<uint64_t>(b, 16);
  r.grant_id = Get<uint64_t>(b, 24);
  const uint32_t flags = Get<uint32_t>(b, 32);
  if ((flags & ~(kFlagCreate | kFlagNoReply)) != 0) {
    return InvalidArgument(fmt::format("SSR request with unknown flags {:#x}", flags));
  }
  r.create = (flags & kFlagCreate) != 0;
  r.no_reply = (flags & kFlagNoReply) != 0;
  if (r.no_reply && r.op != Op::kRelease) {
    return InvalidArgument(
        fmt::format("SSR {} request asks for no reply (release only)", OpName(r.op)));
  }
  const size_t name_len = Get<uint8_t>(b, 36);
  const size_t inst_len = Get<uint8_t>(b, 37);
  if (name_len > kMaxName || inst_len > kMaxName) {
    return InvalidArgument(
        fmt::format("SSR request with name lengths {}/{} (max {})", name_len, inst_len, kMaxName));
  }
  r.name.assign(reinterpret_cast<const char*>(b + 40), name_len);
  r.instance.assign(reinterpret_cast<const char*>(b + 88), inst_len);
  if (r.op == Op::kOpen) {
    VIGIL_RETURN_IF_ERROR(CheckName("service name", r.name));
    VIGIL_RETURN_IF_ERROR(CheckName("instance name", r.instance));
  }
  return r;
}

void Encode(const Reply& r, std::span<std::byte, kReplyBytes> out) {
  std::byte* b = out.data();
  std::memset(b, 0, kReplyBytes);
  Put<uint32_t>(b, 0, kReplyMagic);
  Put<uint16_t>(b, 4, kVersion);
  Put<uint16_t>(b, 6, static_cast<uint16_t>(r.op));
  Put<uint64_t>(b, 8, r.seq);
  Put<uint32_t>(b, 16, static_cast<uint32_t>(r.code));
  const size_t mlen = std::min(r.message.size(), kMaxReplyMessage);
  Put<uint16_t>(b, 20, static_cast<uint16_t>(mlen));
  Put<uint16_t>(b, 22,
                static_cast<uint16_t>((r.created ? kFlagCreated : 0) | (r.more ? kFlagMore : 0)));
  Put<uint32_t>(b, 24, r.service_id);
  Put<uint32_t>(b, 28, r.capacity);
  Put<uint64_t>(b, 32, r.epoch);
  Put<uint64_t>(b, 40, r.grant_id);
  Put<uint64_t>(b, 48, r.addr);
  Put<uint64_t>(b, 56, r.length);
  Put<uint32_t>(b, 64, r.rkey);
  const size_t n = std::min(r.clients.size(), kMaxListed);
  Put<uint32_t>(b, 68, static_cast<uint32_t>(n));
  for (size_t i = 0; i < n; ++i) Put<uint64_t>(b, 72 + 8 * i, r.clients[i]);
  PutText(b, 200, kMaxReplyMessage, r.message);
}

Result<Reply> DecodeReply(std::span<const std::byte> in) {
  if (in.size() != kReplyBytes) {
    return InvalidArgument(
        fmt::format("SSR reply of {} bytes (expected {})", in.size(), kReplyBytes));
  }
  const std::byte* b = in.data();
  if (Get<uint32_t>(b, 0) != kReplyMagic || Get<uint16_t>(b, 4) != kVersion) {
    return DataLoss(fmt::format("SSR reply with bad magic {:#x} or version {}", Get<uint32_t>(b, 0),
                                Get<uint16_t>(b, 4)));
  }
  const uint16_t op = Get<uint16_t>(b, 6);
  const uint32_t code = Get<uint32_t>(b, 16);
  const size_t mlen = Get<uint16_t>(b, 20);
  const uint32_t count = Get<uint32_t>(b, 68);
  if (!KnownOp(op) || code > static_cast<uint32_t>(StatusCode::kInternal) ||
      mlen > kMaxReplyMessage || count > kMaxListed) {
    return InvalidArgument(
        fmt::format("malformed SSR reply (op {}, code {}, message length {}, {} client ids)", op,
                    code, mlen, count));
  }
  Reply r;
  r.op = static_cast<Op>(op);
  r.seq = Get<uint64_t>(b, 8);
  r.code = static_cast<StatusCode>(code);
  r.message.assign(reinterpret_cast<const char*>(b + 200), mlen);
  if (!IsPrintable(r.message)) {
    return InvalidArgument(
        fmt::format("malformed SSR reply to {}: its message '{}' is not printable", OpName(r.op),
                    Escaped(r.message)));
  }
  const uint16_t flags = Get<uint16_t>(b, 22);
  r.created = (flags & kFlagCreated) != 0;
  r.more = (flags & kFlagMore) != 0;
  r.service_id = Get<uint32_t>(b, 24);
  r.capacity = Get<uint32_t>(b, 28);
  r.epoch = Get<uint64_t>(b, 32);
  r.grant_id = Get<uint64_t>(b, 40);
  r.addr = Get<uint64_t>(b, 48);
  r.length = Get<uint64_t>(b, 56);
  r.rkey = Get<uint32_t>(b, 64);
  for (uint32_t i = 0; i < count; ++i) r.clients.push_back(Get<uint64_t>(b, 72 + 8 * i));
  return r;
}

}  // namespace vigil::ssr::wire
