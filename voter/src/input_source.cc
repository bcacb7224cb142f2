#include "vigil/voter/input_source.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vigil::voter {

Result<size_t> InputSource::ReadAt(uint64_t offset, std::span<std::byte> dst) {
  if (offset < base_) {
    return OutOfRange(fmt::format(
        "input offset {} lies before the last agreed checkpoint's offset {}", offset, base_));
  }
  const uint64_t want = offset > UINT64_MAX - dst.size() ? UINT64_MAX : offset + dst.size();
  while (!eof_ && base_ + held() < want) {
    // Straight into the buffer's tail: what is missing, 64 KiB .. 4 MiB at a time.
    const size_t chunk = static_cast<size_t>(
        std::clamp<uint64_t>(want - (base_ + held()), uint64_t{64} << 10, uint64_t{4} << 20));
    const size_t old = buf_.size();
    buf_.resize(old + chunk);
    const size_t n = std::fread(buf_.data() + old, 1, chunk, in_);
    buf_.resize(old + n);
    if (n < chunk) {  // fread returns short only at the end of input or on an error
      if (std::ferror(in_))
        return ErrnoStatus(StatusCode::kUnavailable, "reading job input", errno);
      eof_ = true;
    }
  }
  const uint64_t end = std::min<uint64_t>(want, base_ + held());
  if (end <= offset) return size_t{0};
  std::memcpy(dst.data(), buf_.data() + head_ + (offset - base_), end - offset);
  return static_cast<size_t>(end - offset);
}

void InputSource::Trim(uint64_t offset) {
  if (offset <= base_) return;
  const uint64_t n = std::min<uint64_t>(offset - base_, held());
  head_ += n;
  base_ += n;
  if (head_ > buf_.size() / 2) {  // each byte moves at most once on average
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<ptrdiff_t>(head_));
    head_ = 0;
  }
}

}  // namespace vigil::voter
