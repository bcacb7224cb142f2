#include "vigil/channel/ring.h"

#include <fmt/format.h>

#include <cstring>

#include "vigil/common/adaptive_wait.h"

namespace vigil::channel {
namespace {

using Clock = std::chrono::steady_clock;

// An unexpected header sequence (or a credit word, or a record that does not validate) must look
// the same this many polls in a row before it is reported, so one caught mid-write is never
// mistaken for an overrun or corruption.
constexpr uint32_t kAnomalyPolls = 1024;
// A record whose header has landed but whose trailer has not is still arriving (a large record
// lands packet by packet): only once it stays so this many polls is it reported as torn. Far more
// than the landing of any record takes, however slow the host; the replica's deadline bounds a
// stall before that on the voter's side.
constexpr uint32_t kTornPolls = uint32_t{1} << 22;

// The trailer holds the sequence number mixed with this constant. A record no longer covers its
// whole slot, so the bytes where the next record's trailer goes may hold an older record's
// payload, and payloads carry counters: a plain sequence number there could be mistaken for a
// trailer that has landed. (A writer that forges one harms only its own records.)
constexpr uint64_t kTrailerMix = 0x9E3779B97F4A7C15;
uint64_t TrailerOf(uint64_t seq) { return seq ^ kTrailerMix; }

// Blocking reads and writes look at the clock once every this many polls (early enough that a
// poller sharing its core starts yielding soon after spin_us), and a blocking read drains its
// send completions every kPollsPerDrain polls (often enough to keep the send queue moving;
// draining is not free, and more often lengthened the tail of round trips).
constexpr uint32_t kPollsPerCheck = 256;
constexpr uint32_t kPollsPerDrain = 1024;

// The wait of a blocking read or write that did not succeed at once. The clock is first read
// at the first check, kPollsPerCheck polls in, and the timeout runs from there: a record or a
// credit that is already there, or arrives within those polls, costs no clock read.
class LateWait {
 public:
  LateWait(uint32_t spin_us, std::chrono::nanoseconds timeout)
      : wait_(spin_us), deadline_(timeout) {}
  // Spins, yields or sleeps as the wait's phase says; true once the timeout has passed.
  bool Expired() {
    const auto now = Clock::now();
    wait_.Pause(now);
    return deadline_.LeftAt(now) < Clock::duration::zero();
  }

 private:
  AdaptiveWait wait_;
  LazyDeadline deadline_;
};

bool Cancelled(const RingConfig& c) {
  return c.cancel != nullptr && c.cancel->load(std::memory_order_relaxed);
}

// Posts an unsignaled WRITE, waiting for room in the send queue.
Status PostQuiet(transport::Connection& conn, const transport::LocalSlice& src,
                 transport::RemoteAddr dst, uint64_t wr_id) {
  transport::SendFlags quiet;
  quiet.signaled = false;
  return transport::PostWhenQueueHasRoom(conn,
                                         [&] { return conn.PostWrite(src, dst, wr_id, quiet); });
}

}  // namespace

Status ValidateRingConfig(const RingConfig& c) {
  if (c.slots < 2 || c.slots > 65536 || (c.slots & (c.slots - 1)) != 0) {
    return InvalidArgument(
        fmt::format("ring slots = {} must be a power of two in [2, 65536]", c.slots));
  }
  if (c.slot_bytes < 64 || c.slot_bytes > 65536 || c.slot_bytes % 8 != 0) {
    return InvalidArgument(
        fmt::format("ring slot_bytes = {} must be a multiple of 8 in [64, 65536]", c.slot_bytes));
  }
  if (c.credit_batch > c.slots) {
    return InvalidArgument(
        fmt::format("ring credit_batch = {} exceeds slots = {}", c.credit_batch, c.slots));
  }
  return Status::Ok();
}

// ------------------------------------------------------------------------------------ reader --

Result<std::unique_ptr<RingReader>> RingReader::Create(transport::Transport& t,
                                                       const RingConfig& config) {
  VIGIL_RETURN_IF_ERROR(ValidateRingConfig(config));
  std::unique_ptr<RingReader> r(new RingReader());
  r->config_ = config;
  if (r->config_.credit_batch == 0)
    r->config_.credit_batch = std::max<uint32_t>(1, config.slots / 4);
  VIGIL_ASSIGN_OR_RETURN(auto ring, transport::RegisteredBuffer::Allocate(
                                        t, size_t{config.slots} * config.slot_bytes,
                                        transport::kLocalWrite | transport::kRemoteWrite));
  VIGIL_ASSIGN_OR_RETURN(auto src,
                         transport::RegisteredBuffer::Allocate(t, 8, transport::kLocalWrite));
  r->ring_ = std::make_unique<transport::RegisteredBuffer>(std::move(ring));
  r->credit_src_ = std::make_unique<transport::RegisteredBuffer>(std::move(src));
  return r;
}

transport::RemoteRegion RingReader::ring_region() const {
  return ring_->mr().Describe("signal-ring");
}

void RingReader::Attach(transport::Connection* conn, transport::RemoteRegion writer_credit) {
  conn_ = conn;
  writer_credit_ = std::move(writer_credit);
}

Result<bool> RingReader::TryRead(std::span<std::byte> buf, Record& out) {
  const size_t s = config_.slot_bytes;
  if (buf.size() < s) {
    return InvalidArgument(
        fmt::format("read buffer of {} bytes is smaller than a slot ({})", buf.size(), s));
  }
  const size_t index = (next_ - 1) & (config_.slots - 1);
  const std::byte* slot = ring_->data() + index * s;
  const uint64_t head = transport::LoadPolled64(slot);  // the header's sequence word
  if (head != next_) {
    // Expected states: never written (0) or the previous lap's record. Anything else, if it
    // persists, means the writer overran its credits or the memory was corrupted.
    const uint64_t previous = next_ > config_.slots ? next_ - config_.slots : 0;
    if (head == previous) {
      anomaly_polls_ = 0;
      return false;
    }
    if (head != anomaly_value_) {
      anomaly_value_ = head;
      anomaly_polls_ = 0;
    }
    if (++anomaly_polls_ < kAnomalyPolls) return false;
    anomaly_polls_ = 0;
    return DataLoss(
        fmt::format("signal ring slot {}: header sequence {}, expected {} (or {} from the previous "
                    "lap): the writer overran its credits or the slot is corrupted",
                    index, head, next_, previous));
  }
  // The length comes from the wire: bounded before it says where the trailer is.
  uint32_t len = 0;
  std::memcpy(&len, slot + 8, sizeof(len));
  const size_t record = len <= max_payload() ? WireBytes(len) - 8 : s - 8;
  const uint64_t trailer = TrailerOf(next_);
  if (len <= max_payload() && transport::LoadPolled64(slot + record) != trailer) {
    // The header is there, the rest is still landing (or was lost or corrupted: reported once
    // that has lasted kTornPolls polls).
    if (++torn_polls_ < kTornPolls) return false;
    torn_polls_ = 0;
    return DataLoss(fmt::format(
        "signal ring slot {} sequence {}: the trailer after its {}-byte payload says sequence {}: "
        "the record is torn or corrupted",
        index, next_, len, transport::LoadPolled64(slot + record) ^ kTrailerMix));
  }
  torn_polls_ = 0;
  // Copy first, validate the copy: the writer cannot change what we check after checking it.
  std::memcpy(buf.data(), slot, record);
  if (transport::LoadPolled64(slot) != next_ ||
      (len <= max_payload() && transport::LoadPolled64(slot + record) != trailer)) {
    return false;  // overwritten while copying: look again
  }
  // Placement order inside one RDMA WRITE is not guaranteed: the trailer may land before the
  // rest of the record. A record that does not validate yet is therefore re-read until the
  // failure has persisted for kAnomalyPolls polls; only then is it corruption, and only then is
  // the reason formatted (re-reading a torn record allocates nothing).
  std::optional<Record> rec = TryDecodeRecord(buf.first(record), next_, max_payload());
  if (!rec) {
    if (++invalid_polls_ < kAnomalyPolls) return false;
    invalid_polls_ = 0;
    Result<Record> why = DecodeRecord(buf.first(record), next_, max_payload(), "signal ring",
                                      static_cast<int64_t>(index));
    if (!why.ok()) return why.status();
    rec = *why;  // it validated on this last look after all
  }
  invalid_polls_ = 0;
  out = *rec;
  return true;
}

Result<Record> RingReader::Read(std::span<std::byte> buf, std::chrono::nanoseconds timeout) {
  Record r;
  LateWait late(config_.spin_us, timeout);
  CancelGrace cancel(config_.cancel);
  for (uint32_t spins = 1;; ++spins) {
    VIGIL_ASSIGN_OR_RETURN(bool got, TryRead(buf, r));
    if (got) return r;
    if (spins % kPollsPerCheck != 0) continue;
    if (conn_ != nullptr && spins % kPollsPerDrain == 0) {
      VIGIL_RETURN_IF_ERROR(transport::DrainSendCompletions(*conn_));
    }
    // Cancelled: a record already on its way (a stopped replica's abort verdict, saying why)
    // still gets kCancelGrace to arrive.
    if (cancel.Expired()) {
      return Aborted(fmt::format("signal ring: wait for sequence {} cancelled", next_));
    }
    if (late.Expired()) {
      return DeadlineExceeded(
          fmt::format("signal ring: no record with sequence {} within {} ms", next_,
                      std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()));
    }
  }
}

Status RingReader::Release() {
  ++next_;
  const uint64_t consumed = next_ - 1;
  if (config_.implicit_credit || consumed - reported_ < config_.credit_batch) return Status::Ok();
  if (conn_ == nullptr)
    return FailedPrecondition("signal ring reader is not attached to a connection");
  VIGIL_ASSIGN_OR_RETURN(transport::RemoteAddr dst, writer_credit_.At(0, 8));
  std::memcpy(credit_src_->data(), &consumed, 8);
  if (conn_->max_inline() >= 8) {
    // Inline: the source is copied at post time, so the next credit may reuse it at once.
    VIGIL_RETURN_IF_ERROR(PostQuiet(*conn_, credit_src_->mr().Slice(0, 8), dst, consumed));
  } else {
    VIGIL_RETURN_IF_ERROR(conn_->PostWrite(credit_src_->mr().Slice(0, 8), dst, consumed));
    VIGIL_RETURN_IF_ERROR(transport::WaitSendOk(*conn_, std::chrono::seconds(30)));
  }
  reported_ = consumed;
  return Status::Ok();
}

// ------------------------------------------------------------------------------------ writer --

Result<std::unique_ptr<RingWriter>> RingWriter::Create(transport::Transport& t,
                                                       const RingConfig& config) {
  VIGIL_RETURN_IF_ERROR(ValidateRingConfig(config));
  std::unique_ptr<RingWriter> w(new RingWriter());
  w->config_ = config;
  VIGIL_ASSIGN_OR_RETURN(auto staging,
                         transport::RegisteredBuffer::Allocate(
                             t, size_t{config.slots} * config.slot_bytes, transport::kLocalWrite));
  VIGIL_ASSIGN_OR_RETURN(auto credit, transport::RegisteredBuffer::Allocate(
                                          t, 8, transport::kLocalWrite | transport::kRemoteWrite));
  w->staging_ = std::make_unique<transport::RegisteredBuffer>(std::move(staging));
  w->credit_ = std::make_unique<transport::RegisteredBuffer>(std::move(credit));
  return w;
}

transport::RemoteRegion RingWriter::credit_region() const {
  return credit_->mr().Describe("ring-credit");
}

void RingWriter::Attach(transport::Connection* conn, transport::RemoteRegion ring) {
  conn_ = conn;
  ring_ = std::move(ring);
}

Result<bool> RingWriter::TryWrite(uint16_t kind, uint16_t flags,
                                  std::span<const std::byte> payload) {
  if (conn_ == nullptr)
    return FailedPrecondition("signal ring writer is not attached to a connection");
  if (payload.size() > max_payload()) {
    return OutOfRange(fmt::format("event payload of {} bytes exceeds the slot capacity of {} bytes",
                                  payload.size(), max_payload()));
  }
  // The reader's count only grows, and never past what was written. Anything else is a corrupted
  // (or forged) credit word, or one caught mid-write: the last good count stands, and a value
  // that persists is reported. (Implicit credit: the count comes from Consumed, not the wire.)
  const uint64_t credit =
      config_.implicit_credit ? consumed_ : transport::LoadPolled64(credit_->data());
  if (credit >= consumed_ && credit <= next_ - 1) {
    consumed_ = credit;
    credit_anomalies_ = 0;
  } else if (++credit_anomalies_ >= kAnomalyPolls) {
    credit_anomalies_ = 0;
    return DataLoss(fmt::format(
        "signal ring credit word holds {}, but {} records were written and {} already consumed: "
        "the credit is corrupted",
        credit, next_ - 1, consumed_));
  }
  if (next_ - 1 - consumed_ >= config_.slots) {
    VIGIL_RETURN_IF_ERROR(transport::DrainSendCompletions(*conn_));
    return false;
  }
  const size_t s = config_.slot_bytes;
  const size_t index = (next_ - 1) & (config_.slots - 1);
  // The staging slot is free: the reader consumed its previous occupant (credit above).
  std::byte* slot = staging_->data() + index * s;
  const size_t wire = WireBytes(payload.size());
  const size_t record = EncodeRecord(std::span(slot, wire - 8), next_, kind, flags, payload);
  std::memset(slot + record, 0, wire - 8 - record);  // the padding: nothing of an older record
  const uint64_t trailer = TrailerOf(next_);
  std::memcpy(slot + wire - 8, &trailer, 8);
  // Only the record goes on the wire (inline when the connection can), not the whole slot.
  VIGIL_ASSIGN_OR_RETURN(transport::RemoteAddr dst, ring_.At(index * s, wire));
  VIGIL_RETURN_IF_ERROR(PostQuiet(*conn_, staging_->mr().Slice(index * s, wire), dst, next_));
  ++next_;
  return true;
}

Status RingWriter::Write(uint16_t kind, uint16_t flags, std::span<const std::byte> payload,
                         std::chrono::nanoseconds timeout) {
  LateWait late(config_.spin_us, timeout);
  for (uint32_t spins = 1;; ++spins) {
    VIGIL_ASSIGN_OR_RETURN(bool posted, TryWrite(kind, flags, payload));
    if (posted) return Status::Ok();
    if (spins % kPollsPerCheck != 0) continue;
    if (Cancelled(config_)) {
      return Aborted(fmt::format("signal ring: wait for credit for sequence {} cancelled", next_));
    }
    if (late.Expired()) {
      return DeadlineExceeded(fmt::format(
          "signal ring: no credit for sequence {} within {} ms "
          "(reader stalled or gone)",
          next_, std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()));
    }
  }
}

}  // namespace vigil::channel
