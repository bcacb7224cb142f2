#include "vigil/common/histogram.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace vigil {
namespace {

// Nearest-rank: the smallest sample with at least p of the samples at or below it.
double Rank(const std::vector<uint64_t>& sorted, double p) {
  const size_t n = sorted.size();
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(n)));
  rank = std::clamp<size_t>(rank, 1, n);
  return static_cast<double>(sorted[rank - 1]) / 1000.0;
}

}  // namespace

LatencySummary LatencySamples::Summarize() const {
  LatencySummary s;
  if (ns_.empty()) return s;
  std::vector<uint64_t> sorted = ns_;
  std::sort(sorted.begin(), sorted.end());
  s.count = sorted.size();
  s.min_us = static_cast<double>(sorted.front()) / 1000.0;
  s.max_us = static_cast<double>(sorted.back()) / 1000.0;
  s.p50_us = Rank(sorted, 0.50);
  s.p99_us = Rank(sorted, 0.99);
  s.p999_us = Rank(sorted, 0.999);
  const long double total = std::accumulate(sorted.begin(), sorted.end(), 0.0L);
  s.mean_us = static_cast<double>(total / static_cast<long double>(s.count) / 1000.0L);
  return s;
}

}  // namespace vigil
