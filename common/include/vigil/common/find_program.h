// A program's file, found as execvp would find it.
#pragma once

#include <string>

#include "vigil/common/status.h"

namespace vigil {

// `name` itself if it contains '/', else the first executable regular file of that name in PATH
// (default /usr/local/bin:/usr/bin:/bin). kNotFound names the program and the reason.
Result<std::string> FindProgram(const std::string& name);

}  // namespace vigil
