#include "vigil/common/wait_status.h"

#include <fmt/format.h>
#include <sys/wait.h>

#include <cstring>

namespace vigil {

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return fmt::format("killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  }
  return fmt::format("ended (wait status {:#x})", status);
}

}  // namespace vigil
