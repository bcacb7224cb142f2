// Programs' files: one found as execvp would find it, and vigil's own helpers.
#pragma once

#include <string>

#include "vigil/common/status.h"

namespace vigil {

// `name` itself if it contains '/', else the first executable regular file of that name in PATH
// (default /usr/local/bin:/usr/bin:/bin). kNotFound names the program and the reason.
Result<std::string> FindProgram(const std::string& name);

// One of vigil's own helper programs (vigil-replica, vigil-executor): next to the running
// program, in its ../libexec/vigil/ (the package's layout), or in the build tree's `build_dir`
// (for programs and tests run from the build tree); else `name` (looked up in PATH).
std::string HelperProgram(const std::string& name, const std::string& build_dir);

}  // namespace vigil
