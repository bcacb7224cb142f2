#include "vigil/voter/catch_up_log.h"

namespace vigil::voter {

void CatchUpLog::Clear() {
  entries_.clear();
  data_.clear();
}

void CatchUpLog::RestartAfter(uint64_t event) {
  Clear();
  first_ = event + 1;
  ok_ = true;
}

bool CatchUpLog::Append(uint64_t digest, uint64_t arg, replica::EventKind kind,
                        std::span<const std::byte> bytes) {
  if (!ok_) return false;
  if (data_.size() + bytes.size() + sizeof(Stored) * (entries_.size() + 1) > capacity_) {
    ok_ = false;
    Clear();
    return false;
  }
  entries_.push_back({digest, arg, data_.size(), bytes.size(), kind});
  data_.insert(data_.end(), bytes.begin(), bytes.end());
  return true;
}

void CatchUpLog::DropBefore(uint64_t seq) {
  if (seq <= first_) return;
  const uint64_t drop = seq - first_;
  if (drop >= entries_.size()) {
    Clear();
  } else {
    const uint64_t off = entries_[drop].offset;
    data_.erase(data_.begin(), data_.begin() + static_cast<std::ptrdiff_t>(off));
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(drop));
    for (Stored& e : entries_) e.offset -= off;
  }
  first_ = seq;
}

void CatchUpLog::RewindTo(uint64_t event) {
  if (event + 1 < first_) {
    Clear();
    first_ = event + 1;
  } else if (event + 1 - first_ < entries_.size()) {
    const auto keep = static_cast<size_t>(event + 1 - first_);
    data_.resize(entries_[keep].offset);
    entries_.resize(keep);
  }
}

std::optional<CatchUpLog::Entry> CatchUpLog::At(uint64_t seq) const {
  if (!ok_ || seq < first_ || seq - first_ >= entries_.size()) return std::nullopt;
  const Stored& s = entries_[seq - first_];
  return Entry{s.digest, s.arg, s.kind, std::span(data_).subspan(s.offset, s.bytes)};
}

}  // namespace vigil::voter
