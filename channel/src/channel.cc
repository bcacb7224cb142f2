// The polling and notify methods behind the channel interface.
#include "vigil/channel/channel.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace vigil::channel {
namespace {

// Copies a record's payload into the caller's buffer and repoints the record at it.
Result<Record> CopyOut(Record r, std::span<std::byte> buf) {
  if (r.payload.size() > buf.size()) {
    return InvalidArgument(fmt::format("buffer of {} bytes cannot hold a {}-byte payload",
                                       buf.size(), r.payload.size()));
  }
  if (!r.payload.empty()) std::memcpy(buf.data(), r.payload.data(), r.payload.size());
  r.payload = buf.first(r.payload.size());
  return r;
}

// Hands out a record read into `buf` (direct) or the scratch copy (copied out into `buf`), and
// releases its slot.
Result<Record> Deliver(RingReader& ring, const Record& r, bool direct, std::span<std::byte> buf) {
  auto out = direct ? Result<Record>(r) : CopyOut(r, buf);
  VIGIL_RETURN_IF_ERROR(ring.Release());
  return out;
}

// Reads the next record of `ring` into `buf` through a slot-sized scratch copy, then releases it.
Result<Record> ReadRing(RingReader& ring, std::vector<std::byte>& scratch, std::span<std::byte> buf,
                        std::chrono::nanoseconds timeout) {
  // A caller buffer that holds a whole slot takes the validated copy directly (the payload then
  // sits at the record header's offset in it); a smaller one gets the payload copied out.
  const bool direct = buf.size() >= ring.config().slot_bytes;
  VIGIL_ASSIGN_OR_RETURN(Record r,
                         ring.Read(direct ? buf : std::span<std::byte>(scratch), timeout));
  return Deliver(ring, r, direct, buf);
}

// The non-blocking form of ReadRing: one look at the next slot.
Result<bool> TryReadRing(RingReader& ring, std::vector<std::byte>& scratch,
                         std::span<std::byte> buf, Record& out) {
  const bool direct = buf.size() >= ring.config().slot_bytes;
  Record r;
  VIGIL_ASSIGN_OR_RETURN(bool got, ring.TryRead(direct ? buf : std::span<std::byte>(scratch), r));
  if (!got) return false;
  VIGIL_ASSIGN_OR_RETURN(out, Deliver(ring, r, direct, buf));
  return true;
}

class PollingReplicaImpl final : public ReplicaChannel {
 public:
  PollingReplicaImpl(RingWriter& events, RingReader& verdicts)
      : events_(events), verdicts_(verdicts), scratch_(verdicts.config().slot_bytes) {}
  std::string_view method() const override { return "polling"; }
  size_t max_payload() const override {
    return std::min(events_.max_payload(), verdicts_.max_payload());
  }
  Result<Record> Signal(uint16_t kind, std::span<const std::byte> payload, std::span<std::byte> buf,
                        std::chrono::nanoseconds timeout) override {
    VIGIL_RETURN_IF_ERROR(events_.Write(kind, 0, payload, timeout));
    Result<Record> verdict = ReadRing(verdicts_, scratch_, buf, timeout);
    // One verdict per event: the voter has consumed as many events as verdicts came back.
    if (verdict.ok()) events_.Consumed(verdicts_.next_seq() - 1);
    return verdict;
  }

 private:
  RingWriter& events_;
  RingReader& verdicts_;
  std::vector<std::byte> scratch_;
};

}  // namespace

Result<bool> VoterChannel::TryNextEvent(std::span<std::byte> buf, Record& out) {
  Result<Record> r = NextEvent(buf, std::chrono::nanoseconds(0));
  if (r.ok()) {
    out = *r;
    return true;
  }
  if (r.status().code() == StatusCode::kDeadlineExceeded) return false;
  return r.status();
}

Result<bool> VoterChannel::TryReply(uint16_t kind, std::span<const std::byte> payload) {
  Status st = Reply(kind, payload, std::chrono::nanoseconds(0));
  if (st.ok()) return true;
  if (st.code() == StatusCode::kDeadlineExceeded) return false;
  return st;
}

namespace {

class PollingVoterImpl final : public VoterChannel {
 public:
  PollingVoterImpl(RingReader& events, RingWriter& verdicts)
      : events_(events), verdicts_(verdicts), scratch_(events.config().slot_bytes) {}
  std::string_view method() const override { return "polling"; }
  size_t max_payload() const override {
    return std::min(verdicts_.max_payload(), events_.max_payload());
  }
  Result<Record> NextEvent(std::span<std::byte> buf, std::chrono::nanoseconds timeout) override {
    Result<Record> event = ReadRing(events_, scratch_, buf, timeout);
    if (event.ok()) VerdictsConsumed();
    return event;
  }
  Result<bool> TryNextEvent(std::span<std::byte> buf, Record& out) override {
    // One look at the next slot: no spinning, so one thread can serve many rings.
    Result<bool> got = TryReadRing(events_, scratch_, buf, out);
    if (got.ok() && *got) VerdictsConsumed();
    return got;
  }
  Status Reply(uint16_t kind, std::span<const std::byte> payload,
               std::chrono::nanoseconds timeout) override {
    return verdicts_.Write(kind, 0, payload, timeout);
  }
  Result<bool> TryReply(uint16_t kind, std::span<const std::byte> payload) override {
    return verdicts_.TryWrite(kind, 0, payload);
  }

 private:
  // A replica sends its next event only after reading the verdict for the last one: with n events
  // in, it has consumed n - 1 verdicts. (A replica that does otherwise overwrites only its own
  // unread verdicts.)
  void VerdictsConsumed() {
    const uint64_t events_in = events_.next_seq() - 1;
    verdicts_.Consumed(events_in - 1);
  }

  RingReader& events_;
  RingWriter& verdicts_;
  std::vector<std::byte> scratch_;
};

class NotifyReplicaImpl final : public ReplicaChannel {
 public:
  NotifyReplicaImpl(NotifyEndpoint& e, const std::atomic<bool>* cancel) : e_(e), cancel_(cancel) {}
  std::string_view method() const override { return "notify"; }
  size_t max_payload() const override { return e_.max_payload(); }
  Result<Record> Signal(uint16_t kind, std::span<const std::byte> payload, std::span<std::byte> buf,
                        std::chrono::nanoseconds timeout) override {
    VIGIL_RETURN_IF_ERROR(e_.Send(kind, 0, payload, timeout));
    if (cancel_ == nullptr) return e_.Receive(buf, timeout);
    // In slices, looking at the cancel flag between them (a receive not yet completed stays
    // posted: the next slice takes it).
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + timeout;
    CancelGrace cancel(cancel_);
    for (;;) {
      if (cancel.Expired()) return Aborted("notify: wait for the verdict cancelled");
      const auto now = Clock::now();
      Result<Record> r = e_.Receive(buf, std::clamp<Clock::duration>(deadline - now, {}, kSlice));
      if (r.ok() || r.status().code() != StatusCode::kDeadlineExceeded) return r;
      if (Clock::now() >= deadline) return r;
    }
  }

 private:
  static constexpr std::chrono::milliseconds kSlice{50};
  NotifyEndpoint& e_;
  const std::atomic<bool>* cancel_;
};

class NotifyVoterImpl final : public VoterChannel {
 public:
  explicit NotifyVoterImpl(NotifyEndpoint& e) : e_(e) {}
  std::string_view method() const override { return "notify"; }
  size_t max_payload() const override { return e_.max_payload(); }
  Result<Record> NextEvent(std::span<std::byte> buf, std::chrono::nanoseconds timeout) override {
    return e_.Receive(buf, timeout);
  }
  Status Reply(uint16_t kind, std::span<const std::byte> payload,
               std::chrono::nanoseconds timeout) override {
    return e_.Send(kind, 0, payload, timeout);
  }

 private:
  NotifyEndpoint& e_;
};

}  // namespace

std::unique_ptr<ReplicaChannel> PollingReplica(RingWriter& events, RingReader& verdicts) {
  return std::make_unique<PollingReplicaImpl>(events, verdicts);
}
std::unique_ptr<VoterChannel> PollingVoter(RingReader& events, RingWriter& verdicts) {
  return std::make_unique<PollingVoterImpl>(events, verdicts);
}
std::unique_ptr<ReplicaChannel> NotifyReplica(NotifyEndpoint& e, const std::atomic<bool>* cancel) {
  return std::make_unique<NotifyReplicaImpl>(e, cancel);
}
std::unique_ptr<VoterChannel> NotifyVoter(NotifyEndpoint& e) {
  return std::make_unique<NotifyVoterImpl>(e);
}

}  // namespace vigil::channel
