#include "vigil/run/program.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "vigil/common/logging.h"
#include "vigil/common/proc_maps.h"
#include "vigil/common/registers.h"
#include "vigil/run/syscalls.h"

namespace vigil::run {
namespace {

constexpr int kPollMs = 100;
constexpr size_t kPage = 4096;
constexpr uint64_t kMaxIovecs = 1024;

std::shared_ptr<spdlog::logger> Log() { return log::Get("run"); }

// A NUL-terminated string of the program's (at most PATH_MAX bytes), read page by page so that a
// string near the end of a mapping is read without touching the next page.
Result<std::string> ReadString(InterceptedProcess& p, const SyscallStop& stop, uint64_t addr) {
  std::string s;
  while (s.size() < PATH_MAX) {
    const size_t n = kPage - (addr + s.size()) % kPage;
    VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, p.ReadMemory(stop, addr + s.size(), n));
    auto nul = std::find(bytes.begin(), bytes.end(), 0);
    s.append(bytes.begin(), nul);
    if (nul != bytes.end()) return s;
  }
  return OutOfRange(
      fmt::format("{}: path at {:#x} longer than PATH_MAX", SyscallName(stop.nr), addr));
}

// The result bytes a call has room for in the program: its length argument, or a fixed size.
size_t ResultRoom(const SyscallSpec& s, const SyscallStop& stop) {
  if (s.out_buf < 0) return 0;
  if (s.out_len >= 0)
    return static_cast<size_t>(std::min<uint64_t>(stop.args[s.out_len], SIZE_MAX));
  if (stop.nr == SYS_ioctl) return IoctlResultBytes(stop.args[1]);
  return s.out_size;
}

const uint64_t (&ArgsOf(const SyscallStop& stop))[6] {
  return *reinterpret_cast<const uint64_t(*)[6]>(stop.args.data());
}

}  // namespace

bool SetExecFault(std::string_view fault, ExecOptions& o) {
  if (!IsExecFault(fault)) return false;
  if (fault == "flip") {
    o.fault = ExecOptions::Fault::kData;
  } else if (fault == "crash") {
    o.fault = ExecOptions::Fault::kCrash;
  } else if (fault == "hang") {
    o.fault = ExecOptions::Fault::kHang;
  } else if (fault == "flip-result") {
    o.fault = ExecOptions::Fault::kResult;
  } else if (fault == "flip-memory") {
    o.fault = ExecOptions::Fault::kMemory;
  } else {
    o.fault = ExecOptions::Fault::kRegister;
    o.flip_register = std::string(fault.substr(5));
  }
  return true;
}

std::string ExecProgram::name() const { return o_.argv.empty() ? "exec" : "exec:" + o_.argv[0]; }

Status ExecProgram::Answer(const SyscallStop& stop, int64_t value) {
  return value < 0 ? proc_->Return(stop, -1, static_cast<int>(-value)) : proc_->Return(stop, value);
}

Result<bool> ExecProgram::Step(replica::ReplicaContext& ctx) {
  // A step is the whole program; a second one is a re-execution after a rollback.
  proc_.reset();
  local_fds_.clear();
  result_.resize(ctx.max_read());
  const int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) return ErrnoStatus(StatusCode::kInternal, "opening /dev/null", errno);
  SpawnOptions so;
  so.argv = o_.argv;
  so.program = o_.program;
  so.env = o_.env;
  so.intercept_all = true;
  so.disable_aslr = true;
  // The program's own descriptors 0-2 lead nowhere: its reads and writes go through the voter.
  so.stdin_fd = so.stdout_fd = so.stderr_fd = devnull;
  Result<InterceptedProcess> p = InterceptedProcess::Spawn(so);
  close(devnull);
  if (!p.ok()) return p.status();
  proc_.emplace(std::move(*p));
  ++executions_;
  auto& state = ctx.State<State>();
  state.calls = 0;
  for (;;) {
    if (o_.killed && o_.killed->load()) return Aborted("replica stopped");
    Result<std::optional<SyscallStop>> next = proc_->Next(kPollMs);
    if (!next.ok() && next.status().code() == StatusCode::kDeadlineExceeded) continue;
    if (!next.ok()) return next.status();
    if (!next->has_value()) {
      const int ws = proc_->wait_status();
      const int code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
      if (WIFSIGNALED(ws)) {
        Log()->warn("{}: killed by signal {} ({})", name(), WTERMSIG(ws), strsignal(WTERMSIG(ws)));
      }
      ctx.SetExitCode(code);
      return true;
    }
    // The state region may have been rolled back or repaired by the voter meanwhile: re-read.
    const uint64_t call = ++ctx.State<State>().calls;
    if (FaultDue(ExecOptions::Fault::kRegister, call)) {
      Result<InterceptedProcess::RegisterFlip> f =
          proc_->FlipRegister(**next, o_.flip_register, static_cast<unsigned>(o_.flip_bit));
      if (!f.ok()) return f.status();
      Injected();
      Log()->warn("fault injection: flipped bit {} of {} at {} (call {}): {:#x} -> {:#x}",
                  o_.flip_bit % 64, o_.flip_register, SyscallName((*next)->nr), call, f->before,
                  f->after);
      --ctx.State<State>().calls;  // the program makes this call again, with the flipped register
      continue;
    }
    if (FaultDue(ExecOptions::Fault::kMemory, call))
      VIGIL_RETURN_IF_ERROR(FlipMemory(**next, call));
    if (FaultDue(ExecOptions::Fault::kCrash, call) || FaultDue(ExecOptions::Fault::kHang, call)) {
      VIGIL_RETURN_IF_ERROR(Fail(**next, call));
    }
    VIGIL_RETURN_IF_ERROR(Handle(ctx, **next, call));
  }
}

Status ExecProgram::Handle(replica::ReplicaContext& ctx, const SyscallStop& stop, uint64_t call) {
  const SyscallSpec* s = FindSyscall(stop.nr);
  if (s != nullptr && s->in_buf >= 0) return HandleWrite(ctx, stop);
  SyscallRecord r;
  VotedArguments(stop.nr, ArgsOf(stop), r.args);
  r.instruction_pointer = stop.instruction_pointer;
  std::string blob;
  if (s != nullptr && s->cls == SyscallClass::kVoter) {
    for (int8_t arg : {s->path, s->path2}) {
      if (arg < 0) continue;
      Result<std::string> path = ReadString(*proc_, stop, stop.args[arg]);
      if (!path.ok()) {
        // A bad pointer is the program's own: the kernel would say EFAULT. (A replica that got
        // here by a fault diverges at its next call, which the vote catches.)
        Log()->debug("{}: {}", name(), path.status().ToString());
        return Answer(stop, -EFAULT);
      }
      blob.append(*path);
      blob.push_back('\0');
    }
  }
  if (stop.nr == SYS_mmap && (stop.args[3] & MAP_ANONYMOUS) == 0 &&
      local_fds_.count(static_cast<int>(stop.args[4])) != 0) {
    r.flags |= kRecordLocalFd;
  }
  r.blob_bytes = static_cast<uint32_t>(blob.size());
  record_.resize(kSyscallRecordBytes + blob.size());
  std::memcpy(record_.data(), &r, sizeof(r));
  std::memcpy(record_.data() + kSyscallRecordBytes, blob.data(), blob.size());
  const size_t room = s != nullptr ? std::min(ResultRoom(*s, stop), result_.size()) : size_t{0};
  VIGIL_ASSIGN_OR_RETURN(
      replica::ReplicaContext::SyscallOutcome out,
      ctx.Syscall(static_cast<uint64_t>(stop.nr), 0, record_, std::span(result_).first(room)));
  if (s == nullptr || s->cls == SyscallClass::kUnsupported) {
    return Internal(fmt::format("the voter let unsupported {} proceed", SyscallName(stop.nr)));
  }
  if (s->cls == SyscallClass::kLocal) {
    if (stop.nr == SYS_exit_group || stop.nr == SYS_exit) {
      ctx.SetExitCode(static_cast<int>(stop.args[0] & 0xff));
    }
    // The program executes it itself. If it died meanwhile, the next stop reports the exit.
    if (Status st = proc_->Execute(stop); !st.ok()) Log()->debug("{}", st.ToString());
    return Status::Ok();
  }
  if (out.bytes > 0) {
    if (FaultDue(ExecOptions::Fault::kData, call) &&
        (stop.nr == SYS_read || stop.nr == SYS_pread64)) {
      const uint64_t bit = o_.flip_bit % (out.bytes * 8);
      result_[bit / 8] ^= std::byte{static_cast<uint8_t>(1u << (bit % 8))};
      Injected();
      Log()->warn(
          "fault injection: flipped bit {} of the {} bytes {} (call {}) returned, in the "
          "program's memory at {:#x}",
          bit, out.bytes, SyscallName(stop.nr), call, stop.args[s->out_buf]);
    }
    VIGIL_RETURN_IF_ERROR(
        proc_->WriteMemory(stop, stop.args[s->out_buf],
                           std::span(reinterpret_cast<const uint8_t*>(result_.data()), out.bytes)));
  }
  const int flags = static_cast<int>(stop.args[stop.nr == SYS_openat ? 2 : 1]);
  const bool at_cwd = stop.nr == SYS_open || static_cast<int>(stop.args[0]) == AT_FDCWD ||
                      (!blob.empty() && blob[0] == '/');
  if ((stop.nr == SYS_open || stop.nr == SYS_openat) && out.value >= 0 &&
      (flags & O_ACCMODE) == O_RDONLY && at_cwd) {
    // A local copy of a file opened read-only, at the voter's descriptor number, so that the
    // program (and the loader) can mmap it. Reads still come from the voter.
    // Only the flags that select what is opened: never create or truncate anything here.
    const int keep = O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_LARGEFILE;
    const int local = open(blob.c_str(), (flags & keep) | O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (local >= 0) {
      Status st =
          proc_->InstallFd(stop, local, static_cast<int>(out.value), (flags & O_CLOEXEC) != 0);
      close(local);
      VIGIL_RETURN_IF_ERROR(st);
      local_fds_.insert(static_cast<int>(out.value));
    }
  }
  if (stop.nr == SYS_close && out.value == 0 &&
      local_fds_.erase(static_cast<int>(stop.args[0])) != 0) {
    // Close the local copy too: the kernel executes the close the program made.
    if (Status st = proc_->Execute(stop); !st.ok()) Log()->debug("{}", st.ToString());
    return Status::Ok();
  }
  if ((stop.nr == SYS_dup2 || stop.nr == SYS_dup3) && out.value >= 0) {
    local_fds_.erase(static_cast<int>(out.value));  // no longer the file copied here
  }
  if (FaultDue(ExecOptions::Fault::kResult, call)) {
    const uint64_t bit = o_.flip_bit % 64;
    const auto flipped = static_cast<int64_t>(static_cast<uint64_t>(out.value) ^ (1ull << bit));
    Injected();
    Log()->warn("fault injection: flipped bit {} of the result register of {} (call {}): {} -> {}",
                bit, SyscallName(stop.nr), call, out.value, flipped);
    // The program sees the flipped rax: a value, or (negative) an error.
    return proc_->Return(stop, flipped);
  }
  return Answer(stop, out.value);
}

Status ExecProgram::FlipMemory(const SyscallStop& stop, uint64_t call) {
  // The writable private mappings, in address order.
  std::vector<std::pair<uint64_t, uint64_t>> writable;  // [start, end)
  uint64_t total = 0;
  for (const Mapping& m : ReadMappings(proc_->pid())) {
    if (!m.writable() || !m.is_private() || m.name.starts_with("[vvar") || m.name == "[vsyscall]") {
      continue;
    }
    writable.emplace_back(m.start, m.end);
    total += m.end - m.start;
  }
  if (total == 0) return Internal(fmt::format("{}: no writable mapping to flip a bit in", name()));
  uint64_t bit = o_.flip_bit % (total * 8);
  for (auto [start, end] : writable) {
    if (bit >= (end - start) * 8) {
      bit -= (end - start) * 8;
      continue;
    }
    const uint64_t addr = start + bit / 8;
    VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> b, proc_->ReadMemory(stop, addr, 1));
    if (b.size() != 1) return Internal(fmt::format("{}: cannot read {:#x}", name(), addr));
    b[0] ^= static_cast<uint8_t>(1u << (bit % 8));
    VIGIL_RETURN_IF_ERROR(proc_->WriteMemory(stop, addr, b));
    Injected();
    Log()->warn(
        "fault injection: flipped bit {} of the byte at {:#x} (mapping {:#x}-{:#x}) at {} "
        "(call {})",
        bit % 8, addr, start, end, SyscallName(stop.nr), call);
    return Status::Ok();
  }
  return Internal("flip position outside the mappings");
}

Status ExecProgram::Fail(const SyscallStop& stop, uint64_t call) {
  const bool crash = o_.fault == ExecOptions::Fault::kCrash;
  Injected();
  Log()->warn("fault injection: the replica {} at {} (call {})", crash ? "crashes" : "hangs",
              SyscallName(stop.nr), call);
  if (!o_.killed) {
    // A replica process: as the other workloads' crash and hang (the node or the voter ends a
    // stopped one when it is replaced; one continued goes on with the call).
    Log()->flush();
    raise(crash ? SIGKILL : SIGSTOP);
    return Status::Ok();
  }
  if (crash) return Aborted("injected crash");
  // A thread replica cannot stop itself: it waits, sending nothing, until the launcher stops it.
  while (!o_.killed->load()) usleep(10'000);
  return Aborted("replica stopped");
}

void ExecProgram::Injected() {
  injected_ = true;
  if (o_.injected) o_.injected->store(true);
}

bool ExecProgram::FaultDue(ExecOptions::Fault kind, uint64_t call) const {
  return o_.fault_at > 0 && o_.fault == kind && !injected_ && executions_ == 1 &&
         call >= o_.fault_at;
}

Status ExecProgram::HandleWrite(replica::ReplicaContext& ctx, const SyscallStop& stop) {
  // The bytes the call writes: one buffer, or (writev) the iovec array's buffers in order.
  std::vector<uint8_t> bytes;
  if (stop.nr == SYS_writev) {
    const uint64_t n = stop.args[2];
    if (n > kMaxIovecs) return Answer(stop, -EINVAL);
    Result<std::vector<uint8_t>> iov = proc_->ReadMemory(stop, stop.args[1], n * sizeof(iovec));
    if (!iov.ok()) return Answer(stop, -EFAULT);
    for (uint64_t i = 0; i < n; ++i) {
      iovec v;
      std::memcpy(&v, iov->data() + i * sizeof(iovec), sizeof(v));
      const size_t len = std::min(v.iov_len, InterceptedProcess::kMaxTransfer - bytes.size());
      Result<std::vector<uint8_t>> part =
          proc_->ReadMemory(stop, reinterpret_cast<uint64_t>(v.iov_base), len);
      if (!part.ok()) return Answer(stop, bytes.empty() ? -EFAULT : 0);
      bytes.insert(bytes.end(), part->begin(), part->end());
    }
  } else {
    const size_t len = std::min<uint64_t>(stop.args[2], InterceptedProcess::kMaxTransfer);
    Result<std::vector<uint8_t>> b = proc_->ReadMemory(stop, stop.args[1], len);
    if (!b.ok()) return Answer(stop, -EFAULT);
    bytes = std::move(*b);
  }
  // Bytes that fit in one event travel in it. Larger writes leave theirs in the input buffer,
  // in pieces of its size, and the event carries their digest: the voter votes on that and
  // RDMA-READs the bytes of one replica that voted for them. Without that buffer, they are sent
  // in pieces of what one event carries. Each piece is voted and written by the voter.
  const size_t inline_max = ctx.max_io() - kSyscallRecordBytes;
  const std::span<std::byte> aside = ctx.aside();
  const bool use_aside = bytes.size() > inline_max && aside.size() > inline_max;
  const size_t piece_max = use_aside ? aside.size() : inline_max;
  int64_t written = 0;
  for (uint64_t piece = 0, off = 0; piece == 0 || off < bytes.size(); ++piece) {
    const size_t len = std::min(piece_max, bytes.size() - off);
    SyscallRecord r;
    VotedArguments(stop.nr, ArgsOf(stop), r.args);
    r.args[2] = stop.nr == SYS_writev ? stop.args[2] : len;
    if (stop.nr == SYS_pwrite64) r.args[3] = stop.args[3] + off;
    r.instruction_pointer = stop.instruction_pointer;
    if (use_aside) {
      const BytesAside a{len, ctx.PutAside(std::as_bytes(std::span(bytes).subspan(off, len)))};
      r.flags |= kRecordBytesAside;
      r.blob_bytes = sizeof(a);
      record_.resize(kSyscallRecordBytes + sizeof(a));
      std::memcpy(record_.data(), &r, sizeof(r));
      std::memcpy(record_.data() + kSyscallRecordBytes, &a, sizeof(a));
    } else {
      r.blob_bytes = static_cast<uint32_t>(len);
      record_.resize(kSyscallRecordBytes + len);
      std::memcpy(record_.data(), &r, sizeof(r));
      std::memcpy(record_.data() + kSyscallRecordBytes, bytes.data() + off, len);
    }
    VIGIL_ASSIGN_OR_RETURN(
        replica::ReplicaContext::SyscallOutcome out,
        ctx.Syscall(static_cast<uint64_t>(stop.nr), piece, record_, std::span<std::byte>{}));
    if (out.value < 0) return Answer(stop, written > 0 ? written : out.value);
    written += out.value;
    off += len;
    if (static_cast<size_t>(out.value) < len) break;  // a short write ends the call
  }
  return Answer(stop, written);
}

}  // namespace vigil::run
