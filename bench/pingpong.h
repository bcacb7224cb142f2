// RDMA WRITE ping-pong through vigil's transport, measured like perftest's ib_write_lat: each
// side writes a message into the other's memory and spins on the 8-byte sequence number in its
// last bytes. The client records the round trip of every iteration.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "vigil/common/histogram.h"
#include "vigil/transport/transport.h"

namespace vigil::bench {

inline constexpr size_t kMaxPingPongBytes = 64 * 1024;

struct PingPongOptions {
  std::vector<uint32_t> sizes{8, 64, 256, 1024, 4096};
  uint64_t iterations = 10000;
  uint64_t warmup = 1000;
  std::chrono::milliseconds stall_timeout{20000};  // no progress for this long: the peer is gone
};

struct PingPongResult {
  uint32_t bytes;
  LatencySummary rtt;
};

// The memory one side of the ping-pong uses: [0, 64K) landing area for the peer's writes,
// [64K, 128K) outgoing messages, then two 64-byte control slots (receive, send).
class PingPongBuffer {
 public:
  static Result<PingPongBuffer> Allocate(transport::Transport& t);
  transport::RemoteRegion Landing() const;
  const transport::RegisteredBuffer& buffer() const { return buf_; }

 private:
  explicit PingPongBuffer(transport::RegisteredBuffer buf) : buf_(std::move(buf)) {}
  transport::RegisteredBuffer buf_;
};

Status ValidateSizes(const std::vector<uint32_t>& sizes);

// Prepares a connection's receive side before it connects (the first control message).
Status PrepareReceive(transport::Connection& conn, const PingPongBuffer& buf);

// Client: runs every size in `opts` and returns the round-trip summaries.
Result<std::vector<PingPongResult>> RunClient(transport::Connection& conn,
                                              const PingPongBuffer& buf,
                                              const transport::RemoteRegion& peer_landing,
                                              const PingPongOptions& opts);

// Server: answers rounds until the client sends the end marker.
Status Serve(transport::Connection& conn, const PingPongBuffer& buf,
             const transport::RemoteRegion& peer_landing, std::chrono::milliseconds stall_timeout);

}  // namespace vigil::bench
