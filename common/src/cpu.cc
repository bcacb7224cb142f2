#include "vigil/common/cpu.h"

#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>

#include <cerrno>
#include <string>

namespace vigil {

Status CheckCpu(int cpu) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
    return ErrnoStatus(StatusCode::kUnavailable, "sched_getaffinity", errno);
  }
  if (cpu >= 0 && cpu < CPU_SETSIZE && CPU_ISSET(cpu, &allowed)) return Status::Ok();
  std::string list;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &allowed)) continue;
    if (!list.empty()) list += ',';
    list += std::to_string(c);
  }
  return InvalidArgument(fmt::format("cpu {} is not available here (allowed: {})", cpu, list));
}

Status PinThisThread(int cpu) {
  VIGIL_RETURN_IF_ERROR(CheckCpu(cpu));
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  const int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  if (rc != 0) return ErrnoStatus(StatusCode::kUnavailable, "pthread_setaffinity_np", rc);
  return Status::Ok();
}

}  // namespace vigil
