// What vigil-run's executor process (vigil-executor) gives up before it executes anything a
// replicated program asked for, in this order:
//
//   1. DropPrivileges: started as root, it becomes an ordinary user (setgroups, setresgid,
//      setresuid): the owner of the sandbox's root directory, or `nobody` when root owns it, or
//      the user named by vigil-run --executor-user. Any user: every capability is dropped
//      (effective, permitted, inheritable, ambient and, when it may, the bounding set), no new
//      privileges (PR_SET_NO_NEW_PRIVS: no set-user-ID program or file capability can give them
//      back) and not dumpable (no process of the same user may ptrace it).
//   2. RestrictFileSystem (Landlock, when the kernel has it): changes to the file system only
//      beneath the given directories (the sandbox's root and the undo journal's); reading stays
//      allowed (the Sandbox decides what may be read); no TCP bind or connect and no signals to
//      processes outside the executor (on kernels whose Landlock ABI has them).
//   3. RestrictSystemCalls (seccomp): an allow-list of the system calls the executor needs to
//      carry out the calls it executes (file I/O, descriptors, the constant queries) and to run
//      (memory, futex, signals to itself, its socket to vigil-run), with ioctl limited to the two
//      requests it answers (TCGETS, TIOCGWINSZ) and tgkill to itself. Anything else (execve,
//      clone, socket, ptrace, mount, setuid...) kills it with a message naming the call; vigil-run
//      then fails the job (files fail closed as for any failed job).
//
// Each returns what it did, for the executor's hello ("uid 65534 (nobody), no capabilities, ...").
#pragma once

#include <string>
#include <vector>

#include "vigil/common/status.h"

namespace vigil::run {

// `root`: the sandbox's root; `user`: empty, or the user to become when started as root (a
// name or a numeric uid). An error names the user and the step that failed.
Result<std::string> DropPrivileges(const std::string& root, const std::string& user);
Result<std::string> RestrictFileSystem(const std::vector<std::string>& writable);
Result<std::string> RestrictSystemCalls();

}  // namespace vigil::run
