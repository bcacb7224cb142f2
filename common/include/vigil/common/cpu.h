// CPU placement: whether this process may run on a CPU, and pinning the calling thread to one
// (the voter's busy poller, replica processes).
#pragma once

#include "vigil/common/status.h"

namespace vigil {

// OK if this process may run on `cpu` (so a child pinned there can run); otherwise an error
// naming the CPUs it may use.
Status CheckCpu(int cpu);
// Pins the calling thread to `cpu`.
Status PinThisThread(int cpu);

}  // namespace vigil
