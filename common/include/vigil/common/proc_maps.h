// The memory mappings of a process, as /proc/PID/maps lists them (used by fault injection: bit
// flips into a replica's memory, and the tests' memory faults).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vigil {

struct Mapping {
  uint64_t start = 0, end = 0;  // [start, end)
  std::string perms;            // e.g. "rw-p"
  std::string name;             // path or [heap], [stack], ...; empty for anonymous memory
  bool writable() const { return perms.size() > 1 && perms[1] == 'w'; }
  bool is_private() const { return perms.size() > 3 && perms[3] == 'p'; }
};

// The mappings of process `pid` (0: this process), in address order; empty when they cannot be
// read.
std::vector<Mapping> ReadMappings(pid_t pid);

}  // namespace vigil
