#include "pingpong.h"

#include <fmt/format.h>

#include <cstring>

#include "vigil/common/cli.h"

namespace vigil::bench {
namespace {

using Clock = std::chrono::steady_clock;
using transport::Connection;

constexpr size_t kOut = kMaxPingPongBytes;
constexpr size_t kCtlRecv = 2 * kMaxPingPongBytes;
constexpr size_t kCtlSend = kCtlRecv + 64;
constexpr size_t kTotal = kCtlSend + 64;
constexpr std::chrono::seconds kControlTimeout{60};

struct Control {
  uint32_t bytes;  // 0 ends the session
  uint32_t pad;
  uint64_t iterations;
  uint64_t seq_base;
};

// Spins until the 8 bytes at `p` equal `want`. No allocation, lock or log on this path; the
// clock and shutdown flag are read only every 4096 spins.
Status SpinFor(const std::byte* p, uint64_t want, Connection& conn,
               std::chrono::milliseconds stall) {
  Clock::time_point deadline{};
  for (uint32_t spins = 0;; ++spins) {
    if (transport::LoadPolled64(p) == want) return Status::Ok();
    if ((spins & 4095) == 4095) {
      VIGIL_RETURN_IF_ERROR(transport::DrainSendCompletions(conn));
      const auto now = Clock::now();
      if (deadline == Clock::time_point{}) deadline = now + stall;
      if (now > deadline) {
        return DeadlineExceeded(
            fmt::format("{}: ping-pong stalled waiting for sequence {} for {} ms "
                        "(peer gone?)",
                        conn.name(), want, stall.count()));
      }
      if (cli::ShutdownRequested()) return Aborted("interrupted by signal");
    }
  }
}

Status SendMessage(Connection& conn, const PingPongBuffer& buf, transport::RemoteAddr dst,
                   uint32_t bytes, uint64_t seq) {
  std::byte* out = buf.buffer().data() + kOut;
  std::memcpy(out + bytes - 8, &seq, 8);
  transport::SendFlags quiet;
  quiet.signaled = false;
  return transport::PostWhenQueueHasRoom(
      conn, [&] { return conn.PostWrite(buf.buffer().mr().Slice(kOut, bytes), dst, seq, quiet); });
}

Status SendControl(Connection& conn, const PingPongBuffer& buf, const Control& c) {
  std::memcpy(buf.buffer().data() + kCtlSend, &c, sizeof(c));
  VIGIL_RETURN_IF_ERROR(conn.PostSend(buf.buffer().mr().Slice(kCtlSend, sizeof(c)), 1));
  return transport::WaitSendOk(conn, kControlTimeout);
}

Result<Control> ReceiveControl(Connection& conn, const PingPongBuffer& buf) {
  VIGIL_ASSIGN_OR_RETURN(transport::Completion c, transport::WaitRecvOk(conn, kControlTimeout));
  if (c.byte_len != sizeof(Control)) {
    return InvalidArgument(fmt::format("{}: control message of {} bytes, expected {}", conn.name(),
                                       c.byte_len, sizeof(Control)));
  }
  Control ctl;
  std::memcpy(&ctl, buf.buffer().data() + kCtlRecv, sizeof(ctl));
  VIGIL_RETURN_IF_ERROR(PrepareReceive(conn, buf));
  return ctl;
}

}  // namespace

Result<PingPongBuffer> PingPongBuffer::Allocate(transport::Transport& t) {
  VIGIL_ASSIGN_OR_RETURN(auto buf,
                         transport::RegisteredBuffer::Allocate(t, kTotal, transport::kAllAccess));
  return PingPongBuffer(std::move(buf));
}

transport::RemoteRegion PingPongBuffer::Landing() const {
  auto r = buf_.mr().Describe("pingpong");
  r.length = kMaxPingPongBytes;
  return r;
}

Status ValidateSizes(const std::vector<uint32_t>& sizes) {
  if (sizes.empty()) return InvalidArgument("no message sizes given");
  for (uint32_t s : sizes) {
    if (s < 8 || s > kMaxPingPongBytes || s % 8 != 0) {
      return InvalidArgument(
          fmt::format("message size {} must be a multiple of 8 in [8, {}]", s, kMaxPingPongBytes));
    }
  }
  return Status::Ok();
}

Status PrepareReceive(Connection& conn, const PingPongBuffer& buf) {
  return conn.PostRecv(buf.buffer().mr().Slice(kCtlRecv, 64), 0);
}

Result<std::vector<PingPongResult>> RunClient(Connection& conn, const PingPongBuffer& buf,
                                              const transport::RemoteRegion& peer_landing,
                                              const PingPongOptions& opts) {
  VIGIL_RETURN_IF_ERROR(ValidateSizes(opts.sizes));
  if (opts.iterations == 0) return InvalidArgument("iterations must be > 0");
  std::vector<PingPongResult> results;
  uint64_t seq = 0;
  LatencySamples samples(opts.iterations);
  for (uint32_t bytes : opts.sizes) {
    VIGIL_ASSIGN_OR_RETURN(transport::RemoteAddr dst, peer_landing.At(0, bytes));
    const uint64_t total = opts.warmup + opts.iterations;
    VIGIL_RETURN_IF_ERROR(SendControl(conn, buf, Control{bytes, 0, total, seq}));
    VIGIL_ASSIGN_OR_RETURN(Control ready, ReceiveControl(conn, buf));
    if (ready.bytes != bytes || ready.seq_base != seq) {
      return Internal(fmt::format("ping-pong server acknowledged size {} seq {}, expected {} {}",
                                  ready.bytes, ready.seq_base, bytes, seq));
    }
    samples.Clear();
    const std::byte* land = buf.buffer().data() + bytes - 8;
    for (uint64_t i = 0; i < total; ++i) {
      ++seq;
      const auto t0 = Clock::now();
      VIGIL_RETURN_IF_ERROR(SendMessage(conn, buf, dst, bytes, seq));
      VIGIL_RETURN_IF_ERROR(SpinFor(land, seq, conn, opts.stall_timeout));
      const auto t1 = Clock::now();
      if (i >= opts.warmup) {
        samples.Record(static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
      }
    }
    results.push_back({bytes, samples.Summarize()});
  }
  VIGIL_RETURN_IF_ERROR(SendControl(conn, buf, Control{0, 0, 0, seq}));
  return results;
}

Status Serve(Connection& conn, const PingPongBuffer& buf,
             const transport::RemoteRegion& peer_landing, std::chrono::milliseconds stall_timeout) {
  for (;;) {
    VIGIL_ASSIGN_OR_RETURN(Control ctl, ReceiveControl(conn, buf));
    if (ctl.bytes == 0) return Status::Ok();
    VIGIL_RETURN_IF_ERROR(ValidateSizes({ctl.bytes}));  // never trust a size from the wire
    VIGIL_ASSIGN_OR_RETURN(transport::RemoteAddr dst, peer_landing.At(0, ctl.bytes));
    VIGIL_RETURN_IF_ERROR(SendControl(conn, buf, ctl));
    const std::byte* land = buf.buffer().data() + ctl.bytes - 8;
    for (uint64_t i = 1; i <= ctl.iterations; ++i) {
      VIGIL_RETURN_IF_ERROR(SpinFor(land, ctl.seq_base + i, conn, stall_timeout));
      VIGIL_RETURN_IF_ERROR(SendMessage(conn, buf, dst, ctl.bytes, ctl.seq_base + i));
    }
  }
}

}  // namespace vigil::bench
