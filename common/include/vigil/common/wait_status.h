// How a child process ended, in words, from its waitpid(2) status.
#pragma once

#include <string>

namespace vigil {

// "exited with status N", "killed by signal N (Name)", or "ended (wait status 0x...)".
std::string DescribeWaitStatus(int status);

}  // namespace vigil
