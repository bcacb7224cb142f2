// The slot ring behind the polling channel: a writer (replica) RDMA-WRITEs records into the slots
// of a ring in the reader's (voter's) registered memory; the reader busy-polls the next slot.
//
// A slot of S bytes holds an event record (record.h: a 24-byte header whose first word is the
// sequence number, then the payload, padded to 8 bytes) followed at once by an 8-byte trailer
// holding the sequence number again (mixed with a constant: see ring.cc). One WRITE carries exactly
// that (WireBytes: sized to the content, inline when it fits), not the whole slot. The reader polls
// the header's sequence word; when it shows the expected sequence it bounds the length, looks for
// the trailer right after the payload, copies the record out and validates the copy (header seq,
// len <= S-32, reserved zero, crc32c over header and payload) before anyone sees it: nothing from
// the wire is trusted. Credits: the reader RDMA-WRITEs its consumed count into the writer's memory;
// the writer never has more than `slots` records outstanding. A credit word that goes backwards or
// past what was written is not believed (the last good one stands), and is an error once it
// persists: a corrupted credit must not stall or overrun the ring.
//
// Threads: one thread drives a RingWriter, one a RingReader. Their polling paths take no lock,
// allocate nothing and do not log.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>

#include "vigil/channel/record.h"
#include "vigil/common/status.h"
#include "vigil/transport/transport.h"

namespace vigil::channel {

inline constexpr size_t kSlotOverhead = 32;  // 24-byte header + 8-byte trailer

// Bytes one WRITE of a record with `payload` bytes carries: header, payload padded to 8, trailer.
constexpr size_t WireBytes(size_t payload) {
  return kRecordHeaderBytes + (payload + 7) / 8 * 8 + 8;
}

struct RingConfig {
  uint32_t slots = 64;        // power of two, 2..65536
  uint32_t slot_bytes = 256;  // multiple of 8, 64..65536; payload up to slot_bytes - 32
  uint32_t credit_batch = 0;  // report consumption every this many records; 0 = slots / 4
  // Blocking reads and writes spin this long, then yield, then (after 16x) sleep 50 us between
  // checks, so pollers share cores when there are more of them than cores. 0 = always spin
  // (every poller has a dedicated core).
  uint32_t spin_us = 20;
  // When set and raised, a blocking Write gives up at its next clock check, a blocking Read
  // kCancelGrace later (a record on its way, such as the abort telling a stopped replica why,
  // still arrives); both kAborted. A replica thread stopped by its launcher so ends without
  // waiting out its timeout.
  const std::atomic<bool>* cancel = nullptr;
  // The reader writes no credit: the writer learns what was consumed from elsewhere
  // (RingWriter::Consumed). The polling channel is request/response: a verdict says its event
  // was consumed, and the next event says the previous verdict was; no credit WRITE is needed.
  bool implicit_credit = false;
};
// How long a replica's wait for a verdict goes on once its cancel flag is raised (every method).
inline constexpr std::chrono::milliseconds kCancelGrace{200};

// A cancel flag as one wait sees it: Expired() once the flag has been up for more than
// kCancelGrace (a record on its way still arrives meanwhile). The clock is read only once the
// flag is up; no flag never expires.
class CancelGrace {
 public:
  explicit CancelGrace(const std::atomic<bool>* flag) : flag_(flag) {}
  bool Expired() {
    if (flag_ == nullptr || !flag_->load(std::memory_order_relaxed)) return false;
    const auto now = std::chrono::steady_clock::now();
    if (!raised_) {
      raised_ = true;
      raised_at_ = now;
    }
    return now - raised_at_ > kCancelGrace;
  }

 private:
  const std::atomic<bool>* flag_;
  bool raised_ = false;
  std::chrono::steady_clock::time_point raised_at_{};
};

Status ValidateRingConfig(const RingConfig& config);

class RingReader {
 public:
  static Result<std::unique_ptr<RingReader>> Create(transport::Transport& transport,
                                                    const RingConfig& config);
  // What the writer needs: the ring ("signal-ring").
  transport::RemoteRegion ring_region() const;
  // Binds the connection to the writer and where its credit word lives ("ring-credit").
  void Attach(transport::Connection* conn, transport::RemoteRegion writer_credit);

  // Non-blocking. true: the next record was copied into `buf` (at least slot_bytes long) and
  // validated; call Release() when done with it. false: nothing yet. Error: the next slot holds a
  // corrupted or out-of-sequence record (kDataLoss, naming slot, sequence and what is wrong);
  // Release() skips it.
  Result<bool> TryRead(std::span<std::byte> buf, Record& out);
  // Spins on TryRead until a record arrives or `timeout` passes (kDeadlineExceeded naming the
  // sequence waited for).
  Result<Record> Read(std::span<std::byte> buf, std::chrono::nanoseconds timeout);
  // Consumes the current record; returns credit to the writer every credit_batch records (none
  // with implicit_credit).
  Status Release();

  uint64_t next_seq() const { return next_; }
  const RingConfig& config() const { return config_; }
  size_t max_payload() const { return config_.slot_bytes - kSlotOverhead; }

 private:
  RingReader() = default;
  RingConfig config_;
  std::unique_ptr<transport::RegisteredBuffer> ring_;
  std::unique_ptr<transport::RegisteredBuffer> credit_src_;  // 8-byte source of credit writes
  transport::Connection* conn_ = nullptr;
  transport::RemoteRegion writer_credit_;
  uint64_t next_ = 1;
  uint64_t reported_ = 0;
  uint64_t anomaly_value_ = 0;
  uint32_t anomaly_polls_ = 0;
  uint32_t invalid_polls_ = 0;  // consecutive polls where the next record failed validation
  uint32_t torn_polls_ = 0;     // consecutive polls that found its header but not its trailer
};

class RingWriter {
 public:
  static Result<std::unique_ptr<RingWriter>> Create(transport::Transport& transport,
                                                    const RingConfig& config);
  // What the reader needs: where to write credits ("ring-credit").
  transport::RemoteRegion credit_region() const;
  void Attach(transport::Connection* conn, transport::RemoteRegion ring);

  size_t max_payload() const { return config_.slot_bytes - kSlotOverhead; }
  // Non-blocking. true: posted. false: no credit (the ring is full). Error: bad payload size, the
  // connection failed, or the credit word has held an impossible count for kAnomalyPolls looks
  // (kDataLoss naming it).
  Result<bool> TryWrite(uint16_t kind, uint16_t flags, std::span<const std::byte> payload);
  // Spins for credit until `timeout` (kDeadlineExceeded), then writes.
  Status Write(uint16_t kind, uint16_t flags, std::span<const std::byte> payload,
               std::chrono::nanoseconds timeout);
  // The caller knows the reader has consumed `count` records (implicit credit): the count never
  // goes back, nor past what was written.
  void Consumed(uint64_t count) { consumed_ = std::clamp(count, consumed_, next_ - 1); }

  uint64_t next_seq() const { return next_; }

 private:
  RingWriter() = default;
  RingConfig config_;
  std::unique_ptr<transport::RegisteredBuffer> staging_;  // mirror of the ring
  std::unique_ptr<transport::RegisteredBuffer> credit_;   // the reader writes consumed here
  transport::Connection* conn_ = nullptr;
  transport::RemoteRegion ring_;
  uint64_t next_ = 1;
  uint64_t consumed_ = 0;          // the last credit believed
  uint32_t credit_anomalies_ = 0;  // consecutive looks at an impossible credit word
};

}  // namespace vigil::channel
