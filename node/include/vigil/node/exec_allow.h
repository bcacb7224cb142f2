// Which programs a node lets the voter execute as replicas (workload exec: vigil-run). Without a
// list nothing is executed: a node is not a remote shell for whoever reaches its port.
//
// Entries are absolute paths: a program, or a directory ending in '/' (any program directly in
// it). Both are resolved when the list is made (symbolic links followed, '..' removed), and so is
// a request's program (looked up in the node's PATH when it has no '/'): the resolved path must
// be an entry or lie directly in one. The replica then executes that resolved path, never looking
// the name up again.
#pragma once

#include <string>
#include <vector>

#include "vigil/common/status.h"

namespace vigil::node {

class ExecAllowList {
 public:
  ExecAllowList() = default;  // empty: exec refused
  // An entry that is relative, missing, or not an executable file (or a directory for "DIR/")
  // is an error naming it.
  static Result<ExecAllowList> Make(const std::vector<std::string>& entries);

  bool empty() const { return files_.empty() && dirs_.empty(); }
  // The program's resolved absolute path, or PERMISSION_DENIED naming what was asked and what it
  // resolved to (NOT_FOUND when it resolves to nothing executable).
  Result<std::string> Check(const std::string& program) const;

 private:
  std::vector<std::string> files_;
  std::vector<std::string> dirs_;  // with a trailing '/'
};

}  // namespace vigil::node
