// The replica API: how a program written for vigil is replicated.
//
// A program keeps ALL of its mutable state in the context's state region (ctx.State<T>()), gets
// its input only through ctx.Read, emits output only through ctx.Write, and advances in Steps;
// after every step the runtime declares a checkpoint. Nothing else (clock, randomness, files) may
// influence it: given the same input, every replica computes the same state, and the voter
// compares state digests at each externalization point (input, output, checkpoint, exit).
//
// Contract for Step: after any ctx call returns, read what you need from the state again (the
// voter may have repaired it); when a ctx call fails, return the failure. If the voter ordered a
// rollback, the call fails with kAborted, the state is already the last agreed checkpoint, and the
// runtime re-runs the program from there.
//
// Two contexts: LocalContext runs the program unreplicated (plain files), ChannelContext runs it
// as one replica of a group over a signalling channel. The output is byte-identical.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "vigil/channel/channel.h"
#include "vigil/common/status.h"
#include "vigil/replica/protocol.h"
#include "vigil/replica/state_digest.h"
#include "vigil/transport/transport.h"

namespace vigil::replica {

// The runtime's bookkeeping at the start of the state region (part of the digest and of every
// checkpoint, so a rollback or a repair restores it together with the program's state).
struct StateMeta {
  uint64_t event_seq = 0;      // externalization points passed
  uint64_t input_offset = 0;   // input bytes consumed
  uint64_t output_offset = 0;  // output bytes emitted
  uint64_t checkpoints = 0;    // checkpoints declared
  uint64_t done = 0;           // 1 once the program finished
  int64_t exit_code = 0;       // the program's exit code, declared with the exit event
  uint64_t reserved[2] = {};
};
inline constexpr size_t kStateMetaBytes = 64;
static_assert(sizeof(StateMeta) == kStateMetaBytes);

// Default size of a replica's input buffer: the most input one Read returns.
inline constexpr size_t kDefaultInputBytes = 256 * 1024;

// The state region's size for a program with `program_bytes` of state (meta + program, rounded
// up to 64 bytes).
size_t StateRegionBytes(size_t program_bytes);

class ReplicaContext {
 public:
  virtual ~ReplicaContext() = default;

  // The program's part of the state region (zeroed at first start).
  std::span<std::byte> state() const { return region_.subspan(kStateMetaBytes); }
  template <typename T>
  T& State() const {
    static_assert(std::is_trivially_copyable_v<T>, "replica state must be plain data");
    return *reinterpret_cast<T*>(state().data());
  }
  const StateMeta& meta() const { return *reinterpret_cast<const StateMeta*>(region_.data()); }

  // Reads up to buf.size() bytes (at most max_read()) of input; 0 = end of input.
  Result<size_t> Read(std::span<std::byte> buf);
  // Emits output (any length). Up to max_io() bytes go in the event; more wait in aside() (the
  // input buffer) in pieces of its size, the event carrying their digest, for the voter to read.
  Status Write(std::span<const std::byte> data);
  // Declares a checkpoint: the state is voted on and, once agreed, becomes the rollback point.
  Status Checkpoint();
  // Declares the end of the program.
  Status Exit(int code);
  // Declares an externalization point without I/O whose arguments (at most max_io() bytes) are
  // voted on, e.g. a system call's.
  Status Sync(std::span<const std::byte> args);
  // A system call of an unmodified program (vigil-run): `record` (at most max_io() bytes: the
  // arguments and the bytes the call carries) is voted on and the voter answers with the call's
  // result; bytes the call returns (at most result.size(), at most max_read()) are copied into
  // `result`. `piece` numbers the events of one call that is sent in several.
  struct SyscallOutcome {
    int64_t value = 0;  // the call's return value, -errno on failure
    size_t bytes = 0;   // result bytes copied
  };
  Result<SyscallOutcome> Syscall(uint64_t nr, uint64_t piece, std::span<const std::byte> record,
                                 std::span<std::byte> result);
  // The exit code the exit event declares (RunProgram's Exit).
  void SetExitCode(int code) { mutable_meta().exit_code = code; }
  size_t max_io() const { return max_io_; }
  // A buffer the voter may RDMA-READ between this replica's next event and its verdict (the
  // input buffer, which the voter writes only when it answers): output or a system call's bytes
  // too large for one event wait there. Empty where there is none (LocalContext).
  virtual std::span<std::byte> aside() { return {}; }
  // Copies `bytes` (at most aside().size() of them) into aside() and returns their xxh3, which
  // the event carries in their place.
  uint64_t PutAside(std::span<const std::byte> bytes);
  // Largest input one Read returns (the input buffer the voter writes into).
  size_t max_read() const { return max_read_; }

  // True once after a call failed because of a rollback (the runtime re-runs from the state).
  bool TakeRollback() {
    const bool r = rolled_back_;
    rolled_back_ = false;
    return r;
  }

  // Events signalled.
  uint64_t events() const { return events_; }
  // Benchmarks: measure the overhead breakdown, the time spent waiting for verdicts, the
  // thread's CPU time spent signalling and keeping its state (digests and checkpoint copies).
  // That takes five clock reads per event (three of them system calls) and two per checkpoint,
  // so it is off by default: the polling path then reads no clock and makes no system call while
  // its verdicts come in.
  void set_measure(bool on) { measure_ = on; }
  uint64_t signal_wait_ns() const { return signal_wait_ns_; }
  uint64_t signal_cpu_ns() const { return signal_cpu_ns_; }
  uint64_t state_cpu_ns() const { return state_cpu_ns_; }

 protected:
  friend Status RunProgram(class Program& program, ReplicaContext& ctx);
  ReplicaContext(std::span<std::byte> region, size_t max_io, size_t max_read)
      : region_(region), max_io_(max_io), max_read_(max_read) {}
  StateMeta& mutable_meta() { return *reinterpret_cast<StateMeta*>(region_.data()); }
  std::span<std::byte> region() const { return region_; }

  // One externalization point: for input (and a system call's result), copies the agreed bytes
  // (at most in.size()) into `in` and returns their count; the verdict's argument is left in
  // last_verdict_arg_.
  virtual Result<size_t> Externalize(EventKind kind, uint64_t arg0, uint64_t arg1,
                                     std::span<const std::byte> out, std::span<std::byte> in) = 0;
  // After an agreed checkpoint: keep the state as the rollback point.
  virtual void Commit() = 0;

  bool rolled_back_ = false;
  uint64_t last_verdict_arg_ = 0;
  uint64_t signal_wait_ns_ = 0;
  uint64_t events_ = 0;
  bool measure_ = false;
  uint64_t signal_cpu_ns_ = 0;
  uint64_t state_cpu_ns_ = 0;  // with measure: state digests and checkpoint copies

 private:
  std::span<std::byte> region_;
  size_t max_io_;
  size_t max_read_;
};

// A program written against the replica API.
class Program {
 public:
  virtual ~Program() = default;
  virtual std::string name() const = 0;
  // Bytes of program state (ctx.state() is at least this long).
  virtual size_t state_bytes() const = 0;
  // Sets up the zeroed state (no ctx I/O here).
  virtual Status Init(ReplicaContext& ctx) = 0;
  // One step of work; true when the program has finished.
  virtual Result<bool> Step(ReplicaContext& ctx) = 0;
};

// A program with a hook run before each of its steps (fault injection, tests). The hook sees the
// step number (from 1, counted by this wrapper) and the context; a failure it returns fails the
// step as the program's own would.
class HookedProgram final : public Program {
 public:
  using Hook = std::function<Status(uint64_t step, ReplicaContext& ctx)>;
  HookedProgram(std::unique_ptr<Program> inner, Hook before_step)
      : inner_(std::move(inner)), before_(std::move(before_step)) {}
  std::string name() const override { return inner_->name(); }
  size_t state_bytes() const override { return inner_->state_bytes(); }
  Status Init(ReplicaContext& ctx) override { return inner_->Init(ctx); }
  Result<bool> Step(ReplicaContext& ctx) override {
    VIGIL_RETURN_IF_ERROR(before_(++steps_, ctx));
    return inner_->Step(ctx);
  }

 private:
  std::unique_ptr<Program> inner_;
  Hook before_;
  uint64_t steps_ = 0;
};

// Runs the program to its end: Init (unless the state already holds a checkpoint, as after a
// join), then Step + Checkpoint until done, then Exit(0). Rolled-back steps are re-run.
Status RunProgram(Program& program, ReplicaContext& ctx);

// Unreplicated: input from `in`, output to `out`, no voter. The reference the replicated output
// is compared against.
class LocalContext final : public ReplicaContext {
 public:
  static Result<std::unique_ptr<LocalContext>> Create(size_t program_bytes, std::FILE* in,
                                                      std::FILE* out, size_t max_io = 4096,
                                                      size_t max_read = kDefaultInputBytes);

 private:
  LocalContext(std::vector<std::byte> storage, std::FILE* in, std::FILE* out, size_t max_io,
               size_t max_read);
  Result<size_t> Externalize(EventKind kind, uint64_t arg0, uint64_t arg1,
                             std::span<const std::byte> out, std::span<std::byte> in) override;
  void Commit() override {}

  std::vector<std::byte> storage_;
  std::FILE* in_;
  std::FILE* out_;
};

// The regions a replica exposes to its voter: its state ("replica-state", read and written
// remotely for repairs), its last agreed checkpoint ("replica-checkpoint", read remotely) and
// its input buffer ("replica-input": the voter RDMA-WRITEs agreed input there).
struct ReplicaMemory {
  static Result<ReplicaMemory> Allocate(transport::Transport& transport, size_t program_bytes,
                                        size_t input_bytes = kDefaultInputBytes);
  std::vector<transport::RemoteRegion> regions() const;

  std::unique_ptr<transport::RegisteredBuffer> state;
  std::unique_ptr<transport::RegisteredBuffer> checkpoint;
  std::unique_ptr<transport::RegisteredBuffer> input;
};

struct ReplicaIdentity {
  uint32_t group = 0;
  uint16_t replica = 0;
};

// Replicated: every externalization point goes to the voter over `channel` and waits for the
// verdict (at most `verdict_timeout`).
class ChannelContext final : public ReplicaContext {
 public:
  ChannelContext(channel::ReplicaChannel& channel, ReplicaMemory& memory, ReplicaIdentity id,
                 std::chrono::nanoseconds verdict_timeout);

  // A replacement incarnation asks for the group's state; returns once the voter has written it.
  Status Join();
  // Test API (fault injection): flips bit `bit` (modulo the region's bits) of the state region.
  void FlipStateBit(uint64_t bit);
  // A flag that, once raised, makes the next event fail with kAborted instead of being sent
  // (a thread replica stopped by its launcher). nullptr: none.
  void set_stopped(const std::atomic<bool>* stopped) { stopped_ = stopped; }
  std::span<std::byte> aside() override { return {memory_.input->data(), memory_.input->size()}; }

 private:
  Result<size_t> Externalize(EventKind kind, uint64_t arg0, uint64_t arg1,
                             std::span<const std::byte> out, std::span<std::byte> in) override;
  void Commit() override;
  std::span<std::byte> checkpoint() const {
    return {memory_.checkpoint->data(), memory_.state->size()};
  }

  channel::ReplicaChannel& channel_;
  ReplicaMemory& memory_;
  ReplicaIdentity id_;
  std::chrono::nanoseconds timeout_;
  std::vector<std::byte> send_;
  std::vector<std::byte> recv_;
  StateDigester digester_;
  const std::atomic<bool>* stopped_ = nullptr;
};

}  // namespace vigil::replica
