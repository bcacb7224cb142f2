// The replica's side of vigil-run: an unmodified program run as a replica (a replica::Program
// whose one step is the whole program). Every system call it makes stops (InterceptedProcess,
// intercept_all) and becomes a kSyscall event through the replica context: voted, then either
// executed by the voter once (the result value and bytes copied into the program's memory) or
// executed here by the program itself (syscalls.h has the classes).
//
// A rollback (DMR mismatch) restarts the program from its first instruction: its only agreed
// checkpoint is its start, and the voter replays stdin and suppresses output already written.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "vigil/replica/context.h"
#include "vigil/run/intercept.h"

namespace vigil::run {

struct ExecOptions {
  std::vector<std::string> argv;
  std::string program = {};      // the file to execute (empty: argv[0], looked up in PATH)
  std::vector<std::string> env;  // the program's whole environment (same in every replica)
  // Fault injection, first execution only, at intercepted call `fault_at` (1 = the first call;
  // 0 = none):
  //   kData    flip bit `flip_bit` (modulo their size) of the data the first read (or pread64)
  //            at or after that call returns, in the program's memory: a memory fault in the
  //            data it computes on;
  //   kResult  flip bit `flip_bit` (modulo 64) of the result register (rax) the first call at
  //            or after it that the voter executes returns to the program: a register fault;
  //   kRegister flip bit `flip_bit` (modulo 64) of register `flip_register` (rbx, r12, rip...:
  //            common/registers.h) at that call, through ptrace: the call is then made again
  //            with the flipped register (intercept.h, FlipRegister);
  //   kMemory  flip one bit of the process's writable private memory (heap, stack, data, bss,
  //            anonymous mappings) at that call: bit `flip_bit` modulo their total size, counted
  //            through the mappings in address order. A memory fault at a random place;
  //   kCrash   the replica dies at that call, the program with it: a thread replica (`killed`
  //            set) ends with an error, a replica process kills itself (SIGKILL);
  //   kHang    the replica stops at that call and sends nothing more: a thread replica waits
  //            until `killed` is raised, a replica process stops itself (SIGSTOP).
  enum class Fault { kData, kResult, kRegister, kMemory, kCrash, kHang };
  uint64_t fault_at = 0;
  uint64_t flip_bit = 0;
  Fault fault = Fault::kData;
  std::string flip_register = {};
  // Raised by a thread launcher to stop the replica (a thread cannot be killed).
  std::shared_ptr<std::atomic<bool>> killed = nullptr;
  // Raised here when the fault was injected (a fault campaign counts only those).
  std::shared_ptr<std::atomic<bool>> injected = nullptr;
};

// The injected fault that a launch's fault name (common/registers.h, IsExecFault) selects, set in
// `o`; false for any other name.
bool SetExecFault(std::string_view fault, ExecOptions& o);

class ExecProgram final : public replica::Program {
 public:
  explicit ExecProgram(ExecOptions options) : o_(std::move(options)) {}
  std::string name() const override;
  size_t state_bytes() const override { return sizeof(State); }
  Status Init(replica::ReplicaContext&) override { return Status::Ok(); }
  Result<bool> Step(replica::ReplicaContext& ctx) override;

  uint64_t executions() const { return executions_; }

 private:
  // Voted with every event (part of the state region's digest).
  struct State {
    uint64_t calls = 0;  // intercepted calls so far in this execution
  };
  Status Handle(replica::ReplicaContext& ctx, const SyscallStop& stop, uint64_t call);
  Status HandleWrite(replica::ReplicaContext& ctx, const SyscallStop& stop);
  // Answers the stop with a result (negative: -errno).
  Status Answer(const SyscallStop& stop, int64_t value);
  // True when the injected fault of this kind is due at `call` (once, first execution only).
  bool FaultDue(ExecOptions::Fault kind, uint64_t call) const;
  Status FlipMemory(const SyscallStop& stop, uint64_t call);
  // kCrash or kHang: the replica dies or stops here.
  Status Fail(const SyscallStop& stop, uint64_t call);
  void Injected();  // the fault is injected (once)

  ExecOptions o_;
  std::optional<InterceptedProcess> proc_;
  std::set<int> local_fds_;  // descriptors the program holds a local copy of (read-only files)
  std::vector<std::byte> result_;
  std::vector<std::byte> record_;
  uint64_t executions_ = 0;
  bool injected_ = false;
};

}  // namespace vigil::run
