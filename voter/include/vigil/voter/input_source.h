// The job's input as the voter reads it (once) and hands it to the replicas by offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <vector>

#include "vigil/common/status.h"

namespace vigil::voter {

// The job's input, read once: replicas ask by offset; bytes since the last agreed checkpoint
// are kept for re-execution after a rollback (so pipes work too).
class InputSource {
 public:
  explicit InputSource(std::FILE* in) : in_(in) {}
  // Copies up to dst.size() bytes at `offset` into `dst` (fewer at end of input); returns the
  // count.
  Result<size_t> ReadAt(uint64_t offset, std::span<std::byte> dst);
  // Bytes before `offset` will not be asked for again.
  void Trim(uint64_t offset);

 private:
  size_t held() const { return buf_.size() - head_; }

  std::FILE* in_;
  std::vector<std::byte> buf_;  // buf_[head_..] holds the input from offset base_ on
  size_t head_ = 0;             // trimmed bytes at the front, dropped once they are half
  uint64_t base_ = 0;
  bool eof_ = false;
};

}  // namespace vigil::voter
