#include "vigil/replica/context.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "vigil/common/cpu_time.h"
#include "vigil/common/logging.h"
#include "vigil/common/text.h"

namespace vigil::replica {

using Clock = std::chrono::steady_clock;

size_t StateRegionBytes(size_t program_bytes) {
  return (kStateMetaBytes + program_bytes + 63) / 64 * 64;
}

Result<size_t> ReplicaContext::Read(std::span<std::byte> buf) {
  const size_t len = std::min(buf.size(), max_read_);
  VIGIL_ASSIGN_OR_RETURN(
      size_t n, Externalize(EventKind::kInput, meta().input_offset, len, {}, buf.first(len)));
  mutable_meta().input_offset += n;
  return n;
}

uint64_t ReplicaContext::PutAside(std::span<const std::byte> bytes) {
  std::memcpy(aside().data(), bytes.data(), bytes.size());
  return XXH3_64bits(bytes.data(), bytes.size());
}

Status ReplicaContext::Write(std::span<const std::byte> data) {
  const std::span<std::byte> room = aside();
  while (!data.empty()) {
    if (data.size() > max_io_ && room.size() > max_io_) {
      // Too large for one event: the bytes wait in the input buffer and the event carries their
      // length (arg1) and xxh3 (its data); once agreed, the voter RDMA-READs them from one
      // replica that voted for them.
      const auto piece = data.first(std::min(data.size(), room.size()));
      const uint64_t digest = PutAside(piece);
      VIGIL_RETURN_IF_ERROR(Externalize(EventKind::kOutput, meta().output_offset, piece.size(),
                                        std::as_bytes(std::span(&digest, 1)), {})
                                .status());
      mutable_meta().output_offset += piece.size();
      data = data.subspan(piece.size());
      continue;
    }
    const auto piece = data.first(std::min(data.size(), max_io_));
    VIGIL_RETURN_IF_ERROR(
        Externalize(EventKind::kOutput, meta().output_offset, piece.size(), piece, {}).status());
    mutable_meta().output_offset += piece.size();
    data = data.subspan(piece.size());
  }
  return Status::Ok();
}

Status ReplicaContext::Checkpoint() {
  mutable_meta().checkpoints += 1;
  VIGIL_RETURN_IF_ERROR(
      Externalize(EventKind::kCheckpoint, meta().checkpoints, meta().input_offset, {}, {})
          .status());
  Commit();
  return Status::Ok();
}

Status ReplicaContext::Exit(int code) {
  return Externalize(EventKind::kExit, static_cast<uint64_t>(code), 0, {}, {}).status();
}

Status ReplicaContext::Sync(std::span<const std::byte> args) {
  if (args.size() > max_io_) {
    return InvalidArgument(
        fmt::format("sync arguments of {} bytes exceed {} bytes", args.size(), max_io_));
  }
  return Externalize(EventKind::kSync, args.size(), 0, args, {}).status();
}

Result<ReplicaContext::SyscallOutcome> ReplicaContext::Syscall(uint64_t nr, uint64_t piece,
                                                               std::span<const std::byte> record,
                                                               std::span<std::byte> result) {
  if (record.size() > max_io_) {
    return InvalidArgument(fmt::format("system call {} record of {} bytes exceeds {} bytes", nr,
                                       record.size(), max_io_));
  }
  VIGIL_ASSIGN_OR_RETURN(size_t n, Externalize(EventKind::kSyscall, nr, piece, record,
                                               result.first(std::min(result.size(), max_read_))));
  return SyscallOutcome{static_cast<int64_t>(last_verdict_arg_), n};
}

Status RunProgram(Program& program, ReplicaContext& ctx) {
  if (ctx.state().size() < program.state_bytes()) {
    return InvalidArgument(fmt::format("{}: state region of {} bytes, program needs {}",
                                       program.name(), ctx.state().size(), program.state_bytes()));
  }
  for (;;) {
    Status st;
    if (ctx.meta().done != 0) {
      st = ctx.Exit(static_cast<int>(ctx.meta().exit_code));
      if (st.ok()) return st;
    } else if (ctx.meta().checkpoints == 0) {
      st = program.Init(ctx);
      if (st.ok()) st = ctx.Checkpoint();
    } else {
      Result<bool> done = program.Step(ctx);
      st = done.status();
      if (done.ok()) {
        if (*done) {
          // Marked before the checkpoint, so the agreed checkpoint records it.
          ctx.mutable_meta().done = 1;
        }
        st = ctx.Checkpoint();
      }
    }
    if (!st.ok() && !ctx.TakeRollback()) return st;
  }
}

// ---- LocalContext ----

Result<std::unique_ptr<LocalContext>> LocalContext::Create(size_t program_bytes, std::FILE* in,
                                                           std::FILE* out, size_t max_io,
                                                           size_t max_read) {
  if (in == nullptr || out == nullptr) {
    return InvalidArgument("LocalContext needs input and output");
  }
  if (max_io == 0 || max_read == 0) {
    return InvalidArgument("LocalContext: max_io and max_read must be > 0");
  }
  return std::unique_ptr<LocalContext>(new LocalContext(
      std::vector<std::byte>(StateRegionBytes(program_bytes)), in, out, max_io, max_read));
}

LocalContext::LocalContext(std::vector<std::byte> storage, std::FILE* in, std::FILE* out,
                           size_t max_io, size_t max_read)
    // The span is taken before the move, which keeps the vector's buffer.
    : ReplicaContext(std::span(storage), max_io, max_read),
      storage_(std::move(storage)),
      in_(in),
      out_(out) {}

Result<size_t> LocalContext::Externalize(EventKind kind, uint64_t, uint64_t arg1,
                                         std::span<const std::byte> out, std::span<std::byte> in) {
  mutable_meta().event_seq += 1;
  ++events_;
  switch (kind) {
    case EventKind::kInput: {
      const size_t n = std::fread(in.data(), 1, std::min<size_t>(arg1, in.size()), in_);
      if (n == 0 && std::ferror(in_))
        return ErrnoStatus(StatusCode::kUnavailable, "read input", errno);
      return n;
    }
    case EventKind::kOutput:
      if (std::fwrite(out.data(), 1, out.size(), out_) != out.size()) {
        return ErrnoStatus(StatusCode::kUnavailable, "write output", errno);
      }
      return size_t{0};
    case EventKind::kSyscall:
      return Unimplemented("system calls of an unmodified program need a voter (vigil-run)");
    default:
      return size_t{0};
  }
}

// ---- ReplicaMemory ----

Result<ReplicaMemory> ReplicaMemory::Allocate(transport::Transport& transport, size_t program_bytes,
                                              size_t input_bytes) {
  if (input_bytes < 4096 || input_bytes > (size_t{1} << 30)) {
    return InvalidArgument(
        fmt::format("replica input buffer of {} bytes (4 KiB .. 1 GiB)", input_bytes));
  }
  const size_t n = StateRegionBytes(program_bytes);
  ReplicaMemory m;
  VIGIL_ASSIGN_OR_RETURN(
      auto state, transport::RegisteredBuffer::Allocate(transport, n, transport::kAllAccess));
  // The voter reads a healthy replica's checkpoint (a newcomer's copy) and writes one into a
  // replica whose late ballot differed (it then rolls back to it: voter/group.h).
  VIGIL_ASSIGN_OR_RETURN(
      auto ckpt,
      transport::RegisteredBuffer::Allocate(
          transport, n, transport::kLocalWrite | transport::kRemoteRead | transport::kRemoteWrite));
  m.state = std::make_unique<transport::RegisteredBuffer>(std::move(state));
  m.checkpoint = std::make_unique<transport::RegisteredBuffer>(std::move(ckpt));
  VIGIL_ASSIGN_OR_RETURN(
      auto input, transport::RegisteredBuffer::Allocate(
                      transport, input_bytes,
                      transport::kLocalWrite | transport::kRemoteWrite | transport::kRemoteRead));
  m.input = std::make_unique<transport::RegisteredBuffer>(std::move(input));
  return m;
}

std::vector<transport::RemoteRegion> ReplicaMemory::regions() const {
  return {state->mr().Describe("replica-state"), checkpoint->mr().Describe("replica-checkpoint"),
          input->mr().Describe("replica-input")};
}

// ---- ChannelContext ----

ChannelContext::ChannelContext(channel::ReplicaChannel& channel, ReplicaMemory& memory,
                               ReplicaIdentity id, std::chrono::nanoseconds verdict_timeout)
    : ReplicaContext(std::span(memory.state->data(), memory.state->size()),
                     channel.max_payload() - kEventHeaderBytes, memory.input->size()),
      channel_(channel),
      memory_(memory),
      id_(id),
      timeout_(verdict_timeout),
      send_(channel.max_payload()),
      recv_(channel.max_payload() + channel::kSlotOverhead),
      digester_(memory.state->size()) {}

void ChannelContext::FlipStateBit(uint64_t bit) {
  const uint64_t b = bit % (region().size() * 8);
  region()[b / 8] ^= std::byte{static_cast<uint8_t>(1u << (b % 8))};
}

void ChannelContext::Commit() {
  const uint64_t cpu0 = measure_ ? ThreadCpuNs() : 0;
  digester_.Commit(region(), checkpoint());
  if (measure_) state_cpu_ns_ += ThreadCpuNs() - cpu0;
}

Status ChannelContext::Join() {
  digester_.Forget();
  VIGIL_RETURN_IF_ERROR(Externalize(EventKind::kJoin, 0, 0, {}, {}).status());
  Commit();
  return Status::Ok();
}

Result<size_t> ChannelContext::Externalize(EventKind kind, uint64_t arg0, uint64_t arg1,
                                           std::span<const std::byte> out,
                                           std::span<std::byte> in) {
  EventHeader h;
  h.group = id_.group;
  h.replica = id_.replica;
  // Measuring costs clock reads (system calls for the CPU time), so only benchmarks do it.
  const uint64_t state_cpu0 = measure_ ? ThreadCpuNs() : 0;
  if (kind != EventKind::kJoin) {
    mutable_meta().event_seq += 1;
    h.event_seq = meta().event_seq;
    h.state_digest = digester_.Digest(region(), checkpoint());
  }
  const uint64_t cpu0 = measure_ ? ThreadCpuNs() : 0;
  if (measure_) state_cpu_ns_ += cpu0 - state_cpu0;
  h.arg0 = arg0;
  h.arg1 = arg1;
  VIGIL_ASSIGN_OR_RETURN(size_t n, EncodeEvent(send_, h, out));
  if (stopped_ != nullptr && stopped_->load(std::memory_order_relaxed)) {
    return Aborted(fmt::format("replica {} of group {} was stopped before event {}", id_.replica,
                               id_.group, h.event_seq));
  }
  const auto t0 = measure_ ? Clock::now() : Clock::time_point{};
  Result<channel::Record> rec =
      channel_.Signal(static_cast<uint16_t>(kind), std::span(send_).first(n), recv_, timeout_);
  if (measure_) {
    signal_wait_ns_ += static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
    signal_cpu_ns_ += ThreadCpuNs() - cpu0;
  }
  ++events_;
  if (!rec.ok()) {
    return Status(rec.status().code(),
                  fmt::format("replica {} of group {}, {} event {}: {}", id_.replica, id_.group,
                              EventKindName(kind), h.event_seq, rec.status().message()));
  }
  VIGIL_ASSIGN_OR_RETURN(Verdict v, DecodeVerdict(*rec, h.event_seq));
  switch (v.kind) {
    case VerdictKind::kAbort:
      return Aborted(fmt::format(
          "voter aborted group {}: {}", id_.group,
          Escaped(std::string_view(reinterpret_cast<const char*>(v.data.data()), v.data.size()),
                  v.data.size())));
    case VerdictKind::kRollback:
      std::memcpy(memory_.state->data(), memory_.checkpoint->data(), memory_.state->size());
      digester_.ForgetCheckpoint();
      rolled_back_ = true;
      log::Get("replica")->info("replica {} of group {}: rolled back to checkpoint at event {}",
                                id_.replica, id_.group, v.header.arg);
      return Aborted("rolled back");
    case VerdictKind::kRepaired:
      digester_.Forget();  // the voter wrote the state while this replica waited
      if (kind == EventKind::kJoin) {
        log::Get("replica")->info(
            "replica {} of group {}: joined with a healthy replica's state at event {}",
            id_.replica, id_.group, v.header.arg);
      } else {
        log::Get("replica")->info("replica {} of group {}: state repaired by the voter at event {}",
                                  id_.replica, id_.group, h.event_seq);
      }
      [[fallthrough]];
    case VerdictKind::kProceed:
      last_verdict_arg_ = v.header.arg;
      if (kind == EventKind::kSyscall) {
        // arg = the call's result; data = how many result bytes the voter RDMA-wrote.
        uint64_t bytes = 0;
        if (v.data.size() != sizeof(bytes)) {
          return DataLoss(
              fmt::format("verdict for system call event {} carries {} data bytes, "
                          "expected {}",
                          h.event_seq, v.data.size(), sizeof(bytes)));
        }
        std::memcpy(&bytes, v.data.data(), sizeof(bytes));
        if (bytes > in.size()) {
          return DataLoss(
              fmt::format("verdict for system call event {} announces {} result "
                          "bytes, the call has room for {}",
                          h.event_seq, bytes, in.size()));
        }
        if (bytes > 0) std::memcpy(in.data(), memory_.input->data(), bytes);
        return static_cast<size_t>(bytes);
      }
      if (kind != EventKind::kInput) return size_t{0};
      // The voter has RDMA-written the agreed input into the input buffer; arg = its length.
      if (v.header.arg > in.size()) {
        return DataLoss(
            fmt::format("verdict for input event {} announces {} bytes, {} were asked for",
                        h.event_seq, v.header.arg, in.size()));
      }
      std::memcpy(in.data(), memory_.input->data(), v.header.arg);
      return static_cast<size_t>(v.header.arg);
  }
  return Internal("unreachable verdict kind");
}

}  // namespace vigil::replica
