#include "vigil/run/executor_wire.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace vigil::run::wire {
namespace {

template <typename T>
Result<T> Header(std::span<const std::byte> bytes, uint32_t magic, const char* what) {
  T h;
  if (bytes.size() < sizeof(h)) {
    return DataLoss(
        fmt::format("executor {}: {} bytes, a header has {}", what, bytes.size(), sizeof(h)));
  }
  std::memcpy(&h, bytes.data(), sizeof(h));
  if (h.magic != magic) {
    return DataLoss(fmt::format("executor {}: magic {:#x}, not {:#x}", what, h.magic, magic));
  }
  return h;
}

Status Bound(const char* what, const char* field, uint64_t value, uint64_t most) {
  if (value <= most) return Status::Ok();
  return DataLoss(fmt::format("executor {}: {} {} (at most {})", what, field, value, most));
}

}  // namespace

Result<Request> DecodeRequest(std::span<const std::byte> bytes) {
  VIGIL_ASSIGN_OR_RETURN(Request r, Header<Request>(bytes, kRequestMagic, "request"));
  VIGIL_RETURN_IF_ERROR(Bound("request", "local_calls", r.local_calls, kMaxLocalCalls));
  switch (static_cast<Op>(r.op)) {
    case Op::kExecute:
      VIGIL_RETURN_IF_ERROR(Bound("request", "record_bytes", r.record_bytes, kMaxRecordBytes));
      VIGIL_RETURN_IF_ERROR(Bound("request", "aside_bytes", r.aside_bytes, kMaxDataBytes));
      VIGIL_RETURN_IF_ERROR(Bound("request", "result_room", r.result_room, kMaxDataBytes));
      VIGIL_RETURN_IF_ERROR(Bound("request", "completed", r.completed, 0));
      return r;
    case Op::kCheckpoint:
    case Op::kRollback:
    case Op::kFinish:
      if (r.nr != 0 || r.piece != 0 || r.record_bytes != 0 || r.aside_bytes != 0 ||
          r.result_room != 0 || r.completed > 1) {
        return DataLoss(fmt::format(
            "executor request: operation {} with call fields set (nr {}, piece {}, {} record "
            "bytes, {} aside, room {}, completed {})",
            r.op, r.nr, r.piece, r.record_bytes, r.aside_bytes, r.result_room, r.completed));
      }
      return r;
  }
  return DataLoss(fmt::format("executor request: unknown operation {}", r.op));
}

Result<Reply> DecodeReply(std::span<const std::byte> bytes, uint64_t result_room) {
  VIGIL_ASSIGN_OR_RETURN(Reply r, Header<Reply>(bytes, kReplyMagic, "reply"));
  if (r.code < 0 || r.code > static_cast<int32_t>(StatusCode::kUnauthenticated)) {
    return DataLoss(fmt::format("executor reply: status code {}", r.code));
  }
  VIGIL_RETURN_IF_ERROR(Bound("reply", "message_bytes", r.message_bytes, kMaxMessageBytes));
  VIGIL_RETURN_IF_ERROR(Bound("reply", "result_bytes", r.result_bytes, result_room));
  if (r.code != 0 && (r.result_bytes != 0 || r.message_bytes == 0)) {
    return DataLoss(
        fmt::format("executor reply: an error (code {}) with {} result bytes and a {}-byte message",
                    r.code, r.result_bytes, r.message_bytes));
  }
  return r;
}

Status ReplyStatus(const Reply& r, std::string message) {
  if (r.code == 0) return Status::Ok();
  return Status(static_cast<StatusCode>(r.code), std::move(message));
}

Status SendAll(int fd, std::initializer_list<std::span<const std::byte>> parts) {
  std::array<iovec, 4> iov{};
  if (parts.size() > iov.size()) return Internal(fmt::format("{} parts to send", parts.size()));
  size_t n = 0;
  for (auto p : parts) {
    if (!p.empty()) iov[n++] = {const_cast<std::byte*>(p.data()), p.size()};
  }
  size_t first = 0;
  while (first < n) {
    msghdr m{};
    m.msg_iov = &iov[first];
    m.msg_iovlen = n - first;
    const ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(StatusCode::kAborted, "sending on the executor's socket", errno);
    }
    size_t left = static_cast<size_t>(w);
    while (first < n && left >= iov[first].iov_len) left -= iov[first++].iov_len;
    if (first < n) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return Status::Ok();
}

Status ReadAll(int fd, std::span<std::byte> dst, int timeout_ms) {
  size_t got = 0;
  while (got < dst.size()) {
    if (timeout_ms >= 0) {
      pollfd p{fd, POLLIN, 0};
      const int rc = poll(&p, 1, timeout_ms);
      if (rc == 0) return DeadlineExceeded(fmt::format("no answer in {} ms", timeout_ms));
      if (rc < 0 && errno != EINTR) return ErrnoStatus(StatusCode::kAborted, "poll", errno);
      if (rc < 0) continue;
    }
    const ssize_t r = read(fd, dst.data() + got, dst.size() - got);
    if (r == 0) return Aborted("the other end closed the executor's socket");
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(StatusCode::kAborted, "reading the executor's socket", errno);
    }
    got += static_cast<size_t>(r);
  }
  return Status::Ok();
}

}  // namespace vigil::run::wire
