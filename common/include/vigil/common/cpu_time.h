// CPU time of the calling thread. CLOCK_THREAD_CPUTIME_ID is a system call (no vDSO), so the
// signalling path reads it only when a benchmark asks for the breakdown.
#pragma once

#include <time.h>

#include <cstdint>

namespace vigil {

inline uint64_t ThreadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace vigil
