// x86_64 registers that vigil-run's fault injection can flip a bit in (`--flip-target`): the
// callee-saved registers (live across a system call), the argument registers and the
// instruction pointer. Not rax and orig_rax (the restart of the interrupted call rewrites them;
// the result register is flipped through a call's answer instead, "result"), nor rcx and r11
// (the syscall instruction overwrites them).
#pragma once

#include <algorithm>
#include <array>
#include <string>
#include <string_view>

namespace vigil {

inline constexpr std::array<std::string_view, 14> kFlippableRegisters = {
    "rbx", "rbp", "rsp", "r12", "r13", "r14", "r15", "rdi", "rsi", "rdx", "r10", "r8", "r9", "rip"};

inline bool IsFlippableRegister(std::string_view name) {
  return std::find(kFlippableRegisters.begin(), kFlippableRegisters.end(), name) !=
         kFlippableRegisters.end();
}

// The exec workload's (vigil-run's) fault names: "flip" (a bit of the data a read returns),
// "flip-result" (of the result register as a call returns), "flip-memory" (a bit anywhere in the
// process's writable memory), "flip-REGISTER" (of that register, e.g. flip-rbx), and "crash" and
// "hang" (the replica dies or stops at the call).
inline bool IsExecFault(std::string_view fault) {
  return fault == "flip" || fault == "flip-result" || fault == "flip-memory" || fault == "crash" ||
         fault == "hang" || (fault.starts_with("flip-") && IsFlippableRegister(fault.substr(5)));
}

// The exec fault that `--flip-target TARGET` (vigil-run) names: data -> flip, crash and hang as
// they are, any other (result, memory, a register) -> flip-TARGET.
inline std::string ExecFaultFor(std::string_view target) {
  if (target == "data") return "flip";
  if (target == "crash" || target == "hang") return std::string(target);
  return "flip-" + std::string(target);
}

// The faults a replica of `workload` injects: exec takes the ones above; crc32 and susan take
// "flip" (a state bit), "crash" (SIGKILL) and "hang" (SIGSTOP). No fault always fits.
inline constexpr std::string_view kFaultChoices =
    "flip, crash or hang; for exec: flip, flip-result, flip-memory, flip-REGISTER, crash or hang";
inline bool FaultFits(std::string_view workload, std::string_view fault) {
  if (fault.empty()) return true;
  if (workload == "exec") return IsExecFault(fault);
  return fault == "flip" || fault == "crash" || fault == "hang";
}

}  // namespace vigil
