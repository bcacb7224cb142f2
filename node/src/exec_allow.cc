#include "vigil/node/exec_allow.h"

#include <fmt/format.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "vigil/common/find_program.h"

namespace vigil::node {
namespace {

Result<std::string> Resolve(const std::string& path) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf) == nullptr) {
    return ErrnoStatus(StatusCode::kNotFound, fmt::format("cannot resolve '{}'", path), errno);
  }
  return std::string(buf);
}

bool IsExecutableFile(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

}  // namespace

Result<ExecAllowList> ExecAllowList::Make(const std::vector<std::string>& entries) {
  ExecAllowList list;
  for (const std::string& e : entries) {
    if (e.empty() || e[0] != '/') {
      return InvalidArgument(fmt::format("exec allow-list entry '{}' is not an absolute path", e));
    }
    if (e.back() == '/') {
      struct stat st {};
      if (stat(e.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return InvalidArgument(
            fmt::format("exec allow-list entry '{}' ends in '/' but is not a directory", e));
      }
    }
    const Result<std::string> resolved = Resolve(e);
    if (!resolved.ok()) return resolved.status();
    if (e.back() == '/') {
      list.dirs_.push_back(*resolved == "/" ? *resolved : *resolved + "/");
    } else {
      if (!IsExecutableFile(*resolved)) {
        return InvalidArgument(fmt::format(
            "exec allow-list entry '{}' (resolved: '{}') is not an executable file", e, *resolved));
      }
      list.files_.push_back(*resolved);
    }
  }
  return list;
}

Result<std::string> ExecAllowList::Check(const std::string& program) const {
  if (empty()) {
    return PermissionDenied(fmt::format(
        "this node executes no programs (exec of '{}' refused): allow them with --exec-allow",
        program));
  }
  VIGIL_ASSIGN_OR_RETURN(const std::string found, FindProgram(program));
  VIGIL_ASSIGN_OR_RETURN(const std::string resolved, Resolve(found));
  if (!IsExecutableFile(resolved)) {
    return NotFound(fmt::format("cannot execute '{}' (resolved: '{}')", program, resolved));
  }
  if (std::find(files_.begin(), files_.end(), resolved) != files_.end()) return resolved;
  for (const std::string& d : dirs_) {
    if (resolved.size() > d.size() && resolved.compare(0, d.size(), d) == 0 &&
        resolved.find('/', d.size()) == std::string::npos) {
      return resolved;
    }
  }
  return PermissionDenied(fmt::format(
      "exec of '{}' (resolved: '{}') is not in this node's --exec-allow list", program, resolved));
}

}  // namespace vigil::node
