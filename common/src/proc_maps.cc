#include "vigil/common/proc_maps.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

namespace vigil {

std::vector<Mapping> ReadMappings(pid_t pid) {
  std::ifstream maps(pid == 0 ? std::string("/proc/self/maps") : fmt::format("/proc/{}/maps", pid));
  std::vector<Mapping> out;
  for (std::string line; std::getline(maps, line);) {
    // start-end perms offset dev inode [name]
    std::istringstream fields(line);
    std::string range, offset, dev, inode;
    Mapping m;
    if (!(fields >> range >> m.perms >> offset >> dev >> inode)) continue;
    const size_t dash = range.find('-');
    if (dash == std::string::npos) continue;
    m.start = std::stoull(range.substr(0, dash), nullptr, 16);
    m.end = std::stoull(range.substr(dash + 1), nullptr, 16);
    std::getline(fields >> std::ws, m.name);
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace vigil
