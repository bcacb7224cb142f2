// The notification method: records travel as RDMA SENDs into receives the other side keeps
// posted, and the receiver sleeps on the completion channel until one lands (no busy-polling: the
// thread blocks in the kernel). Flow control is the RC receiver-not-ready mechanism: a sender
// that runs ahead of the posted receives is held back by the NIC until one is posted again.
//
// One NotifyEndpoint is one side of a connection; it both sends and receives. Records use the
// format of record.h and are validated before they are handed out.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>

#include "vigil/channel/record.h"
#include "vigil/common/status.h"
#include "vigil/transport/transport.h"

namespace vigil::channel {

struct NotifyConfig {
  uint32_t depth = 64;         // receives kept posted (<= the connection's rq_depth)
  uint32_t max_payload = 224;  // bytes per record payload
};

class NotifyEndpoint {
 public:
  static Result<std::unique_ptr<NotifyEndpoint>> Create(transport::Transport& transport,
                                                        const NotifyConfig& config);
  // Posts the receives. Call before the connection is connected (DialOptions::before_connect or
  // in the bootstrap acceptor), so nothing the peer sends finds the queue empty.
  Status Attach(transport::Connection* conn);

  // Sends the next record. Inline sends return at once; larger ones wait for their completion
  // (bounded by `timeout`) so the staging buffer can be reused.
  Status Send(uint16_t kind, uint16_t flags, std::span<const std::byte> payload,
              std::chrono::nanoseconds timeout);
  // Sleeps until the next record arrives (kDeadlineExceeded after `timeout`), validates it, copies
  // its payload into `buf` (at least max_payload bytes) and re-posts the receive.
  Result<Record> Receive(std::span<std::byte> buf, std::chrono::nanoseconds timeout);

  size_t max_payload() const { return config_.max_payload; }

 private:
  NotifyEndpoint() = default;
  size_t record_bytes() const { return kRecordHeaderBytes + config_.max_payload; }

  NotifyConfig config_;
  std::unique_ptr<transport::RegisteredBuffer> recv_;  // depth receive slots
  std::unique_ptr<transport::RegisteredBuffer> send_;  // one staging slot
  transport::Connection* conn_ = nullptr;
  uint64_t send_seq_ = 1;
  uint64_t recv_seq_ = 1;
};

}  // namespace vigil::channel
