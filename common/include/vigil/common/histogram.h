// Latency samples with exact percentiles. Record() never allocates once constructed with enough
// capacity, so it may be called from a measured loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vigil {

struct LatencySummary {
  size_t count = 0;
  double min_us = 0, p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0, mean_us = 0;
};

class LatencySamples {
 public:
  explicit LatencySamples(size_t capacity) { ns_.reserve(capacity); }

  // Drops the sample when full (capacity is fixed up front to keep Record allocation-free).
  void Record(uint64_t ns) {
    if (ns_.size() < ns_.capacity()) ns_.push_back(ns);
  }
  size_t size() const { return ns_.size(); }
  void Clear() { ns_.clear(); }

  // Nearest-rank percentiles over all recorded samples. Sorts a copy; not for hot paths.
  LatencySummary Summarize() const;

 private:
  std::vector<uint64_t> ns_;
};

}  // namespace vigil
