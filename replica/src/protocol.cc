#include "vigil/replica/protocol.h"

#include <fmt/format.h>

#include <cstring>

namespace vigil::replica {

std::string_view EventKindName(EventKind k) {
  switch (k) {
    case EventKind::kJoin:
      return "join";
    case EventKind::kInput:
      return "input";
    case EventKind::kOutput:
      return "output";
    case EventKind::kCheckpoint:
      return "checkpoint";
    case EventKind::kExit:
      return "exit";
    case EventKind::kSync:
      return "sync";
    case EventKind::kSyscall:
      return "syscall";
  }
  return "unknown";
}

std::string_view VerdictKindName(VerdictKind k) {
  switch (k) {
    case VerdictKind::kProceed:
      return "proceed";
    case VerdictKind::kRepaired:
      return "repaired";
    case VerdictKind::kRollback:
      return "rollback";
    case VerdictKind::kAbort:
      return "abort";
  }
  return "unknown";
}

namespace {

template <typename Header>
Result<size_t> Encode(std::span<std::byte> dst, const Header& h, std::span<const std::byte> data,
                      const char* what) {
  const size_t n = sizeof(Header) + data.size();
  if (n > dst.size()) {
    return InvalidArgument(fmt::format("{} of {} data bytes does not fit the channel's {} bytes",
                                       what, data.size(), dst.size()));
  }
  std::memcpy(dst.data(), &h, sizeof(Header));
  if (!data.empty()) std::memcpy(dst.data() + sizeof(Header), data.data(), data.size());
  return n;
}

}  // namespace

Result<size_t> EncodeEvent(std::span<std::byte> dst, const EventHeader& h,
                           std::span<const std::byte> data) {
  return Encode(dst, h, data, "event");
}

Result<size_t> EncodeVerdict(std::span<std::byte> dst, const VerdictHeader& h,
                             std::span<const std::byte> data) {
  return Encode(dst, h, data, "verdict");
}

Result<Event> DecodeEvent(const channel::Record& r, uint32_t group, uint16_t replica) {
  const auto fail = [&](const std::string& what) {
    return DataLoss(fmt::format("event from replica {} of group {} (record {}): {}", replica, group,
                                r.seq, what));
  };
  if (r.kind < static_cast<uint16_t>(EventKind::kJoin) ||
      r.kind > static_cast<uint16_t>(EventKind::kSyscall)) {
    return fail(fmt::format("unknown event kind {}", r.kind));
  }
  if (r.payload.size() < kEventHeaderBytes) {
    return fail(fmt::format("{} payload bytes, shorter than the {}-byte event header",
                            r.payload.size(), kEventHeaderBytes));
  }
  Event e;
  e.kind = static_cast<EventKind>(r.kind);
  std::memcpy(&e.header, r.payload.data(), kEventHeaderBytes);
  e.data = r.payload.subspan(kEventHeaderBytes);
  if (e.header.group != group || e.header.replica != replica) {
    return fail(
        fmt::format("claims to be replica {} of group {}", e.header.replica, e.header.group));
  }
  if (e.header.reserved != 0) return fail(fmt::format("reserved = {}", e.header.reserved));
  return e;
}

Result<Verdict> DecodeVerdict(const channel::Record& r, uint64_t event_seq) {
  const auto fail = [&](const std::string& what) {
    return DataLoss(fmt::format("verdict for event {} (record {}): {}", event_seq, r.seq, what));
  };
  if (r.kind < static_cast<uint16_t>(VerdictKind::kProceed) ||
      r.kind > static_cast<uint16_t>(VerdictKind::kAbort)) {
    return fail(fmt::format("unknown verdict kind {}", r.kind));
  }
  if (r.payload.size() < kVerdictHeaderBytes) {
    return fail(fmt::format("{} payload bytes, shorter than the {}-byte verdict header",
                            r.payload.size(), kVerdictHeaderBytes));
  }
  Verdict v;
  v.kind = static_cast<VerdictKind>(r.kind);
  std::memcpy(&v.header, r.payload.data(), kVerdictHeaderBytes);
  v.data = r.payload.subspan(kVerdictHeaderBytes);
  // An abort ends the replica whatever event it names: the voter may abort a replica whose
  // record it rejected, and so does not know that event's sequence.
  if (v.header.event_seq != event_seq && v.kind != VerdictKind::kAbort) {
    return fail(fmt::format("answers event {}", v.header.event_seq));
  }
  return v;
}

}  // namespace vigil::replica
