#include "vigil/channel/notify.h"

#include <fmt/format.h>

#include <cstring>

namespace vigil::channel {

Result<std::unique_ptr<NotifyEndpoint>> NotifyEndpoint::Create(transport::Transport& t,
                                                               const NotifyConfig& config) {
  if (config.depth == 0 || config.depth > 16384) {
    return InvalidArgument(fmt::format("notify depth = {} must be in [1, 16384]", config.depth));
  }
  if (config.max_payload > 65536) {
    return InvalidArgument(
        fmt::format("notify max_payload = {} exceeds 65536", config.max_payload));
  }
  std::unique_ptr<NotifyEndpoint> e(new NotifyEndpoint());
  e->config_ = config;
  VIGIL_ASSIGN_OR_RETURN(auto recv,
                         transport::RegisteredBuffer::Allocate(t, config.depth * e->record_bytes(),
                                                               transport::kLocalWrite));
  VIGIL_ASSIGN_OR_RETURN(auto send, transport::RegisteredBuffer::Allocate(t, e->record_bytes(),
                                                                          transport::kLocalWrite));
  e->recv_ = std::make_unique<transport::RegisteredBuffer>(std::move(recv));
  e->send_ = std::make_unique<transport::RegisteredBuffer>(std::move(send));
  return e;
}

Status NotifyEndpoint::Attach(transport::Connection* conn) {
  conn_ = conn;
  for (uint32_t i = 0; i < config_.depth; ++i) {
    VIGIL_RETURN_IF_ERROR(
        conn_->PostRecv(recv_->mr().Slice(i * record_bytes(), record_bytes()), i));
  }
  return Status::Ok();
}

Status NotifyEndpoint::Send(uint16_t kind, uint16_t flags, std::span<const std::byte> payload,
                            std::chrono::nanoseconds timeout) {
  if (conn_ == nullptr)
    return FailedPrecondition("notify endpoint is not attached to a connection");
  if (payload.size() > config_.max_payload) {
    return OutOfRange(
        fmt::format("event payload of {} bytes exceeds the notify capacity of {} bytes",
                    payload.size(), config_.max_payload));
  }
  const size_t n =
      EncodeRecord(std::span(send_->data(), send_->size()), send_seq_, kind, flags, payload);
  const bool inline_send = n <= conn_->max_inline();
  transport::SendFlags f;
  f.signaled = !inline_send;  // an inline payload is copied at post time: no need to wait
  VIGIL_RETURN_IF_ERROR(transport::PostWhenQueueHasRoom(
      *conn_, [&] { return conn_->PostSend(send_->mr().Slice(0, n), send_seq_, f); }));
  if (!inline_send) VIGIL_RETURN_IF_ERROR(transport::WaitSendOk(*conn_, timeout));
  ++send_seq_;
  return Status::Ok();
}

Result<Record> NotifyEndpoint::Receive(std::span<std::byte> buf, std::chrono::nanoseconds timeout) {
  if (conn_ == nullptr)
    return FailedPrecondition("notify endpoint is not attached to a connection");
  if (buf.size() < config_.max_payload) {
    return InvalidArgument(fmt::format("receive buffer of {} bytes is smaller than max_payload {}",
                                       buf.size(), config_.max_payload));
  }
  VIGIL_ASSIGN_OR_RETURN(transport::Completion c, transport::WaitRecvOk(*conn_, timeout));
  if (c.wr_id >= config_.depth || c.byte_len > record_bytes()) {
    return Internal(
        fmt::format("notify: receive completion wr_id {} / {} bytes does not match any "
                    "posted slot",
                    c.wr_id, c.byte_len));
  }
  const size_t slot = c.wr_id * record_bytes();
  // The slot cannot change until it is posted again: validating it in place is safe.
  auto rec = DecodeRecord(std::span<const std::byte>(recv_->data() + slot, c.byte_len), recv_seq_,
                          config_.max_payload, "notify receive");
  Record out;
  if (rec.ok()) {
    out = *rec;
    std::memcpy(buf.data(), rec->payload.data(), rec->payload.size());
    out.payload = buf.first(rec->payload.size());
  }
  // Consume the sequence and re-post even for a rejected record, so the stream continues.
  ++recv_seq_;
  VIGIL_RETURN_IF_ERROR(conn_->PostRecv(recv_->mr().Slice(slot, record_bytes()), c.wr_id));
  if (!rec.ok()) return rec.status();
  return out;
}

}  // namespace vigil::channel
