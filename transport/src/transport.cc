#include "vigil/transport/transport.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace vigil::transport {

Result<RemoteAddr> RemoteRegion::At(uint64_t offset, uint64_t len) const {
  if (offset > length || len > length - offset) {
    return OutOfRange(fmt::format("remote region '{}' ({} bytes): [{}, +{}) is out of bounds",
                                  purpose, length, offset, len));
  }
  return RemoteAddr{addr + offset, rkey};
}

RemoteRegion MemoryRegion::Describe(std::string purpose) const {
  return RemoteRegion{reinterpret_cast<uint64_t>(data_), size_, rkey_, std::move(purpose)};
}

std::string_view OpcodeName(Opcode op) {
  switch (op) {
    case Opcode::kWrite:
      return "RDMA_WRITE";
    case Opcode::kWriteWithImm:
      return "RDMA_WRITE_WITH_IMM";
    case Opcode::kSend:
      return "SEND";
    case Opcode::kRead:
      return "RDMA_READ";
    case Opcode::kRecv:
      return "RECV";
    case Opcode::kRecvWithImm:
      return "RECV_RDMA_WITH_IMM";
    case Opcode::kOther:
      return "OTHER";
  }
  return "OTHER";
}

Status Completion::ToStatus(std::string_view connection) const {
  if (ok()) return Status::Ok();
  StatusCode code = StatusCode::kInternal;
  switch (status) {
    case WcStatus::kRemoteAccessError:
      code = StatusCode::kPermissionDenied;
      break;
    case WcStatus::kRetryExceeded:
    case WcStatus::kPeerTimeout:
    case WcStatus::kRnrRetryExceeded:
      code = StatusCode::kUnavailable;
      break;
    case WcStatus::kFlushed:
      code = StatusCode::kAborted;
      break;
    case WcStatus::kLocalLengthError:
    case WcStatus::kLocalProtectionError:
    case WcStatus::kRemoteInvalidRequest:
      code = StatusCode::kInvalidArgument;
      break;
    default:
      break;
  }
  std::string hint;
  if (status == WcStatus::kRetryExceeded || status == WcStatus::kPeerTimeout)
    hint = " (peer not acknowledging: gone or unreachable)";
  if (status == WcStatus::kRemoteAccessError) hint = " (bad rkey, out of bounds or no permission)";
  return Status(code, fmt::format("{}: {} wr_id={} failed: {}{} (vendor_err {:#x})", connection,
                                  OpcodeName(opcode), wr_id, status_text, hint, vendor_err));
}

std::chrono::milliseconds EffectivePeerTimeout(const ConnectionOptions& opts) {
  if (opts.peer_timeout_ms != 0) return std::chrono::milliseconds(opts.peer_timeout_ms);
  const double retry_budget_ms = 4.096e-3 *
                                 static_cast<double>(1ull << std::min<int>(opts.ack_timeout, 31)) *
                                 (opts.retry_count + 1);
  return std::chrono::milliseconds(
      std::max<int64_t>(5000, static_cast<int64_t>(4 * retry_budget_ms)));
}

void RegisteredBuffer::Free::operator()(std::byte* p) const { std::free(p); }

Result<RegisteredBuffer> RegisteredBuffer::Allocate(Transport& transport, size_t size,
                                                    uint32_t access) {
  return AllocateWith(
      [&](void* a, size_t n, uint32_t acc) { return transport.Register(a, n, acc); }, size, access);
}

Result<RegisteredBuffer> RegisteredBuffer::Allocate(ProtectionDomain& domain, size_t size,
                                                    uint32_t access) {
  return AllocateWith([&](void* a, size_t n, uint32_t acc) { return domain.Register(a, n, acc); },
                      size, access);
}

Result<RegisteredBuffer> RegisteredBuffer::AllocateWith(const RegisterFn& reg, size_t size,
                                                        uint32_t access) {
  if (size == 0) return InvalidArgument("cannot allocate a registered buffer of 0 bytes");
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (size > std::numeric_limits<size_t>::max() - page) {
    return InvalidArgument(fmt::format("registered buffer size {} is too large", size));
  }
  const size_t rounded = (size + page - 1) / page * page;
  void* mem = std::aligned_alloc(page, rounded);
  if (mem == nullptr) {
    return ResourceExhausted(fmt::format("out of memory allocating {} bytes", rounded));
  }
  std::memset(mem, 0, rounded);
  RegisteredBuffer buf;
  buf.mem_.reset(static_cast<std::byte*>(mem));
  VIGIL_ASSIGN_OR_RETURN(buf.mr_, reg(mem, size, access));
  return buf;
}

Status CheckLocalSlice(const LocalSlice& s, std::string_view connection, std::string_view op) {
  if (s.mr == nullptr) {
    return InvalidArgument(fmt::format("{}: {} without a memory region", connection, op));
  }
  if (s.offset > s.mr->size() || s.length > s.mr->size() - s.offset) {
    return OutOfRange(fmt::format("{}: {} local slice [{}, +{}) is outside its {}-byte region",
                                  connection, op, s.offset, s.length, s.mr->size()));
  }
  if (s.length > UINT32_MAX) {
    return InvalidArgument(
        fmt::format("{}: {} of {} bytes exceeds 4 GiB", connection, op, s.length));
  }
  return Status::Ok();
}

Status DrainSendCompletions(Connection& conn) {
  Completion cs[8];
  const size_t n = conn.PollSend(cs);
  for (size_t i = 0; i < n; ++i) VIGIL_RETURN_IF_ERROR(cs[i].ToStatus(conn.name()));
  return Status::Ok();
}

Status WaitSendOk(Connection& conn, std::chrono::nanoseconds timeout) {
  VIGIL_ASSIGN_OR_RETURN(Completion c, conn.WaitSend(timeout));
  return c.ToStatus(conn.name());
}

Result<Completion> WaitRecvOk(Connection& conn, std::chrono::nanoseconds timeout) {
  VIGIL_ASSIGN_OR_RETURN(Completion c, conn.WaitRecv(timeout));
  if (!c.ok()) return c.ToStatus(conn.name());
  return c;
}

}  // namespace vigil::transport
