#include "vigil/voter/group.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "vigil/common/adaptive_wait.h"
#include "vigil/common/cli.h"
#include "vigil/common/cpu.h"
#include "vigil/common/hot_path.h"
#include "vigil/common/logging.h"
#include "vigil/replica/context.h"
#include "vigil/replica/process.h"
#include "vigil/replica/runner.h"
#include "vigil/replica/state_digest.h"
#include "vigil/security/nonce.h"

namespace vigil::voter {

using Clock = std::chrono::steady_clock;
using replica::EventKind;
using replica::VerdictKind;
using namespace std::chrono_literals;

namespace {
constexpr auto kCopyTimeout = 10s;
constexpr auto kReplyTimeout = 10s;
constexpr auto kPollSlice = 100ms;
constexpr auto kLivenessPeriod = 250ms;

std::shared_ptr<spdlog::logger> Log() { return log::Get("voter"); }
}  // namespace

Status ValidateGroupOptions(const GroupOptions& o) {
  if (o.deadline < 10ms || o.start_deadline < 10ms) {
    return InvalidArgument(
        fmt::format("group deadline = {} ms, start_deadline = {} ms: both must be >= 10 ms",
                    o.deadline.count(), o.start_deadline.count()));
  }
  if (o.replace_after == 0) return InvalidArgument("group replace_after must be >= 1");
  if (o.replace_window.count() <= 0) {
    return InvalidArgument(
        fmt::format("group replace_window = {} ms must be > 0", o.replace_window.count()));
  }
  if (o.max_incarnations == 0) return InvalidArgument("group max_incarnations must be >= 1");
  if (o.max_region_bytes < 4096) {
    return InvalidArgument(
        fmt::format("group max_region_bytes = {} must be >= 4096", o.max_region_bytes));
  }
  if (o.channel.max_payload < replica::kEventHeaderBytes + 64) {
    return InvalidArgument(
        fmt::format("channel max_payload = {} leaves no room for data", o.channel.max_payload));
  }
  return channel::ValidateChannelOptions(o.channel);
}

// ---- members ----

// A replica's event as voted: its header and data, and the digest it is voted by. Its storage is
// reserved once (max_payload) and reused: receiving an event allocates nothing.
struct ReceivedEvent {
  EventKind kind = EventKind::kJoin;
  replica::EventHeader h;
  std::vector<std::byte> data;
  uint64_t digest = 0;  // what is voted on: kind, sequence, state digest, arguments, data

  BallotKey key() const { return {kind, h.event_seq, digest}; }
};

// One incarnation's connection; shared with its thread, which outlives a replacement.
struct Link {
  std::shared_ptr<channel::VoterEnd> end;
  std::unique_ptr<transport::Connection> conn;
  transport::RemoteRegion state, checkpoint, input;
  std::atomic<bool> stop{false};
  // Verdict hand-off from the deciding thread (guarded by Group::mu_).
  std::atomic<bool> has_verdict{false};
  uint16_t verdict_kind = 0;
  std::vector<std::byte> verdict;
  std::vector<std::byte> sending;  // the verdict being sent (owned by the replying thread)
  // The event being received (owned by the receiving thread until it swaps it into its member).
  ReceivedEvent received;
  replica::EventKind last_kind = replica::EventKind::kJoin;  // of the last event submitted
};

// A member's I/O side; its standing, ballot presence and deadlines are the round machine's
// (round.h: RoundSlot).
struct Group::Member {
  uint16_t slot = 0;
  uint32_t incarnation = 0;
  uint64_t replayed = 0;  // events answered from the log while catching up
  std::shared_ptr<Link> link;
  std::thread thread;
  ReceivedEvent ballot;  // valid while round_.slot(slot).has_ballot
  std::optional<FailureBudget> faults;
};

namespace {
RoundOptions RoundOptionsOf(const GroupOptions& o) {
  return {o.mode, o.deadline, o.start_deadline, o.max_rollbacks, o.catch_up_pace, o.max_lag};
}
}  // namespace

Group::Group(GroupOptions options, transport::Transport& transport,
             transport::BootstrapServer& server, Launcher& launcher, std::FILE* input,
             std::FILE* output)
    : o_(std::move(options)),
      transport_(transport),
      server_(server),
      launcher_(launcher),
      input_(input),
      output_(output),
      log_(o_.catch_up_bytes),
      round_(RoundOptionsOf(o_)) {}

Group::~Group() {
  Cancel();
  poller_stop_ = true;
  if (poller_.joinable()) poller_.join();
  for (auto& m : members_) {
    if (m && m->thread.joinable()) m->thread.join();
  }
  for (auto& t : retired_) t.join();
}

void Group::Cancel() {
  MutexLock lock(mu_);
  if (!done_) cancelled_ = true;
  for (auto& m : members_) {
    if (m->link) m->link->stop = true;
  }
  cv_.notify_all();
}

Status Group::StartIncarnation(uint16_t slot) {
  Member& m = *members_[slot];
  // Only the process this incarnation is launched as learns its nonce: without it, nothing that
  // reaches the voter's ports can take the replica's slot or signal in its name.
  VIGIL_ASSIGN_OR_RETURN(std::string nonce, security::NewNonce());
  channel::ChannelOptions channel = o_.channel;
  channel.token = nonce;
  VIGIL_ASSIGN_OR_RETURN(std::shared_ptr<channel::VoterEnd> end,
                         channel::VoterEnd::Create(transport_, channel));
  const uint32_t inc = m.incarnation;
  const std::string service = replica::ServiceName(o_.group, slot, inc);
  server_.AddService(
      service,
      [this, slot, inc, end](std::unique_ptr<transport::Connection> conn,
                             const transport::PeerInfo& peer) {
        return Accept(slot, inc, end, std::move(conn), peer);
      },
      nonce);
  round_.Started(slot, Clock::now());
  LaunchSpec spec{o_.group, slot, inc, service, end->rpc_target(), nonce};
  Status st = launcher_.Start(spec);
  if (!st.ok()) server_.RemoveService(service);
  return st;
}

namespace {

// A replica's region must lie in [min, max] and, once the group knows the size (`group` != 0),
// have exactly that size.
Status CheckRegionLength(uint16_t slot, const char* what, uint64_t length, uint64_t min,
                         uint64_t max, uint64_t group) {
  if (length > max) {
    return ResourceExhausted(fmt::format(
        "replica {}: {} region of {} bytes exceeds this voter's cap of {} bytes per region "
        "(max_region_bytes, --max-region-mib)",
        slot, what, length, max));
  }
  if (length >= min && (group == 0 || length == group)) return Status::Ok();
  return InvalidArgument(
      fmt::format("replica {}: {} region of {} bytes (must be {}..{} bytes{})", slot, what, length,
                  min, max, group == 0 ? "" : fmt::format(" and equal the group's {}", group)));
}

}  // namespace

// The first replica fixes the group's size of a region; the voter registers a staging buffer of
// that size for copies through it.
Status Group::StageFor(uint64_t length, uint64_t& group_bytes,
                       std::optional<transport::RegisteredBuffer>& staging) {
  if (group_bytes != 0) return Status::Ok();
  VIGIL_ASSIGN_OR_RETURN(
      auto buf, transport::RegisteredBuffer::Allocate(transport_, length, transport::kLocalWrite));
  staging.emplace(std::move(buf));
  group_bytes = length;
  return Status::Ok();
}

Result<std::vector<transport::RemoteRegion>> Group::Accept(
    uint16_t slot, uint32_t inc, std::shared_ptr<channel::VoterEnd> end,
    std::unique_ptr<transport::Connection> conn, const transport::PeerInfo& peer) {
  MutexLock lock(mu_);
  server_.RemoveService(replica::ServiceName(o_.group, slot, inc));
  Member& m = *members_[slot];
  if (m.incarnation != inc || m.link || done_ || cancelled_) {
    return FailedPrecondition(
        fmt::format("replica {} incarnation {} is no longer expected", slot, inc));
  }
  VIGIL_ASSIGN_OR_RETURN(transport::RemoteRegion state, peer.Region("replica-state"));
  VIGIL_ASSIGN_OR_RETURN(transport::RemoteRegion ckpt, peer.Region("replica-checkpoint"));
  VIGIL_ASSIGN_OR_RETURN(transport::RemoteRegion input, peer.Region("replica-input"));
  // Everything is checked before anything is allocated for the group.
  const uint64_t max = o_.max_region_bytes;
  VIGIL_RETURN_IF_ERROR(
      CheckRegionLength(slot, "state", state.length, replica::kStateMetaBytes, max, state_bytes_));
  VIGIL_RETURN_IF_ERROR(
      CheckRegionLength(slot, "checkpoint", ckpt.length, state.length, max, state.length));
  VIGIL_RETURN_IF_ERROR(CheckRegionLength(slot, "input", input.length, 4096, max, input_bytes_));
  VIGIL_RETURN_IF_ERROR(StageFor(state.length, state_bytes_, staging_));
  VIGIL_RETURN_IF_ERROR(StageFor(input.length, input_bytes_, input_staging_));
  VIGIL_RETURN_IF_ERROR(end->Attach(*conn, peer));
  auto link = std::make_shared<Link>();
  link->end = end;
  link->conn = std::move(conn);
  link->state = state;
  link->checkpoint = ckpt;
  link->input = input;
  // Reserved once: receiving events and sending verdicts reuse this storage.
  const size_t payload = o_.channel.max_payload;
  link->received.data.reserve(payload);
  link->verdict.reserve(payload);
  link->sending.reserve(payload);
  m.link = link;
  round_.Connected(slot, Clock::now());
  if (m.thread.joinable()) retired_.push_back(std::move(m.thread));
  if (o_.channel.method != channel::Method::kPolling) {
    m.thread = std::thread([this, slot, inc, link] { MemberLoop(slot, inc, link); });
  }
  links_gen_.fetch_add(1, std::memory_order_release);
  Log()->info("group {}: replica {} incarnation {} connected from {} ({} signalling)", o_.group,
              slot, inc, peer.node_name, channel::MethodName(o_.channel.method));
  return end->regions();
}

bool Group::SubmitEvent(uint16_t slot, uint32_t inc, Link& link, const channel::Record& rec) {
  Result<replica::Event> ev = replica::DecodeEvent(rec, o_.group, slot);
  if (!ev.ok()) {
    ColdPath cold;
    FailMember(slot, inc, "rejected event record: " + ev.status().ToString(), true);
    return false;
  }
  // Into the link's own event (storage reserved at connection): no allocation, no lock.
  ReceivedEvent& b = link.received;
  b.kind = ev->kind;
  b.h = ev->header;
  b.data.assign(ev->data.begin(), ev->data.end());
  b.digest = EventDigest(static_cast<uint16_t>(b.kind), b.h.event_seq, b.h.state_digest, b.h.arg0,
                         b.h.arg1, b.data);
  link.last_kind = b.kind;
  // The thread that completes a round decides it: no hand-off to another thread on the hot path.
  MutexLock lock(mu_);
  if (link.stop) return false;  // not stopped: `link` is still members_[slot]'s
  const Standing standing = round_.slot(slot).standing;
  if (standing == Standing::kCatchingUp || standing == Standing::kLagging) {
    bool live = false;
    if (!Replay(slot, b, live)) return false;
    if (!live) {  // answered from the log (or held); a round may have waited for that
      if (round_.Complete(CanCatchUp())) Decide();
      return true;
    }
  }
  std::swap(members_[slot]->ballot, b);  // both keep their reserved storage
  round_.Cast(slot, members_[slot]->ballot.key());
  // A member due for repair waits for a live one blocked on its ballot, like this one.
  if (round_.slot(slot).standing == Standing::kLive &&
      !round_.InStanding(Standing::kRepairDue).empty()) {
    RepairFromCheckpoint(slot, true);
    if (done_) return true;
  }
  // Deadlines are the coordinator's: it looks at the round every 20 ms, so an event costs no
  // wake-up and no clock read.
  if (round_.Complete(CanCatchUp())) Decide();
  return true;
}

uint16_t Group::TakeVerdict(Link& link) {
  MutexLock lock(mu_);
  link.has_verdict.store(false, std::memory_order_relaxed);
  link.sending.swap(link.verdict);
  return link.verdict_kind;
}

bool Group::Sent(uint16_t slot, uint32_t inc, const Link& link, uint16_t kind, const Status& st) {
  if (!st.ok()) {
    ColdPath cold;
    FailMember(slot, inc, "cannot deliver verdict: " + st.ToString(), false);
    return false;
  }
  // After an abort, or the agreed exit, the replica is finished.
  return kind != static_cast<uint16_t>(VerdictKind::kAbort) &&
         !(link.last_kind == EventKind::kExit &&
           kind == static_cast<uint16_t>(VerdictKind::kProceed));
}

bool Group::DeliverVerdict(uint16_t slot, uint32_t inc, Link& link) {
  const uint16_t kind = TakeVerdict(link);
  return Sent(slot, inc, link, kind, link.end->channel().Reply(kind, link.sending, kReplyTimeout));
}

// notify and rpc: one thread per replica, which sleeps in NextEvent.
void Group::MemberLoop(uint16_t slot, uint32_t inc, std::shared_ptr<Link> link) {
  channel::VoterChannel& ch = link->end->channel();
  std::vector<std::byte> buf(ch.max_payload() + channel::kSlotOverhead);
  while (!link->stop) {
    Result<channel::Record> rec = ch.NextEvent(buf, kPollSlice);
    if (!rec.ok()) {
      if (rec.status().code() == StatusCode::kDeadlineExceeded) continue;
      const bool rejected = rec.status().code() == StatusCode::kDataLoss;
      FailMember(slot, inc, "event channel failed: " + rec.status().ToString(), rejected);
      // A replica whose record was rejected waits for a verdict: it gets the abort Replace left
      // (the link is stopped by then, so WaitForVerdict returns at once).
      if (rejected && WaitForVerdict(*link)) DeliverVerdict(slot, inc, *link);
      return;
    }
    if (!SubmitEvent(slot, inc, *link, *rec)) {
      // Replaced: it gets the abort Replace left (the link is stopped, so no waiting).
      if (WaitForVerdict(*link)) DeliverVerdict(slot, inc, *link);
      return;
    }
    if (!WaitForVerdict(*link)) return;
    if (!DeliverVerdict(slot, inc, *link)) return;
  }
}

// polling: one thread polls every replica's ring, decides and replies: the voter spins on the
// rings, and there is one busy-poller per group however many replicas it has.
void Group::PollerLoop() {
  struct Polled {
    uint16_t slot = 0;
    uint32_t inc = 0;
    std::shared_ptr<Link> link;
    bool awaiting = false;  // its event is in; its verdict not yet sent
    bool unsent = false;    // its verdict is taken (in link->sending) but did not fit yet
    uint16_t kind = 0;      // of that verdict
    bool finished = false;
    std::vector<std::byte> buf;
  };
  std::vector<Polled> polled;
  uint64_t seen = ~uint64_t{0};
  AdaptiveWait wait(o_.channel.spin_us);
  uint32_t idle_passes = 0;
  // Sends p's verdict without waiting: one replica whose verdict ring is full (its credit word
  // stale or corrupted) must not hold up the others' verdicts. false: not sent yet, try again;
  // the replica's deadline bounds how long (it is replaced, and its link let go, when it passes).
  auto deliver = [&](Polled& p) {
    if (!p.unsent) {
      p.kind = TakeVerdict(*p.link);
      p.unsent = true;
    }
    Result<bool> sent = p.link->end->channel().TryReply(p.kind, p.link->sending);
    if (sent.ok() && !*sent) return false;
    p.unsent = false;
    p.awaiting = false;
    if (!Sent(p.slot, p.inc, *p.link, p.kind, sent.status())) p.finished = true;
    return true;
  };
  auto has_verdict = [](const Polled& p) {
    return p.unsent || p.link->has_verdict.load(std::memory_order_acquire);
  };
  while (!poller_stop_.load(std::memory_order_relaxed)) {
    if (links_gen_.load(std::memory_order_acquire) != seen) {
      std::vector<Polled> retired;
      MutexLock lock(mu_);
      seen = links_gen_.load();
      std::vector<Polled> next;
      for (auto& m : members_) {
        if (!m->link) continue;
        auto it = std::find_if(polled.begin(), polled.end(),
                               [&](const Polled& p) { return p.link == m->link; });
        if (it != polled.end()) {
          next.push_back(std::move(*it));
        } else {
          Polled p;
          p.slot = m->slot;
          p.inc = m->incarnation;
          p.link = m->link;
          p.buf.resize(p.link->end->channel().max_payload() + channel::kSlotOverhead);
          next.push_back(std::move(p));
        }
      }
      for (Polled& p : polled) {
        if (p.link) retired.push_back(std::move(p));
      }
      polled.swap(next);
      lock.Unlock();
      // Links let go (their replica was replaced): one waiting for a verdict gets the abort
      // Replace left for it.
      for (Polled& p : retired) {
        if (p.awaiting && !p.finished && has_verdict(p)) deliver(p);
      }
    }
    bool progress = false;
    for (Polled& p : polled) {
      // From here to the verdict nothing allocates (common/hot_path.h; checked by
      // hot_path_test); handling a failure does, under ColdPath.
      HotPath hot;
      if (p.finished) continue;
      if (p.awaiting) {
        if (has_verdict(p) && deliver(p)) progress = true;
        continue;
      }
      if (p.link->stop.load(std::memory_order_relaxed)) continue;
      channel::Record rec;
      Result<bool> got = p.link->end->channel().TryNextEvent(p.buf, rec);
      if (!got.ok()) {
        ColdPath cold;
        const bool rejected = got.status().code() == StatusCode::kDataLoss;
        FailMember(p.slot, p.inc, "event channel failed: " + got.status().ToString(), rejected);
        // A replica whose record was rejected waits for a verdict: the abort Replace left for
        // it goes out like any verdict (above, or as its link is let go).
        if (rejected) {
          p.awaiting = true;
        } else {
          p.finished = true;
        }
        continue;
      }
      if (!*got) continue;
      progress = true;
      // Replaced meanwhile (SubmitEvent false), it waits for the abort Replace left: that goes
      // out as its link is let go.
      p.awaiting = true;
      if (SubmitEvent(p.slot, p.inc, *p.link, rec) &&
          p.link->has_verdict.load(std::memory_order_acquire)) {
        deliver(p);
      }
    }
    // Spin while busy; when idle longer than spin_us, yield, then sleep. The clock is read once
    // every 64 idle passes, never while events keep coming.
    if (progress) {
      idle_passes = 0;
      wait.Restart();
    } else if (++idle_passes % 64 == 0) {
      wait.Pause(Clock::now());
    }
  }
  // Last verdicts (the exit, an abort) still go out, given the time a blocking reply has.
  const auto until = Clock::now() + kReplyTimeout;
  for (Polled& p : polled) {
    if (!p.awaiting || p.finished || !has_verdict(p)) continue;
    while (!deliver(p) && Clock::now() < until) std::this_thread::sleep_for(50us);
  }
}

void Group::CheckLiveness() {
  // Replicas the group has been waiting on for a while: ask the launcher (without the lock:
  // it may be a gRPC call to a node) whether they still exist.
  const SlotSet waiting_slots = round_.Waiting(Clock::now(), kLivenessPeriod);
  if (waiting_slots.empty()) return;
  std::vector<std::pair<uint16_t, uint32_t>> waiting;
  for (uint16_t slot : waiting_slots) waiting.emplace_back(slot, members_[slot]->incarnation);
  mu_.unlock();
  std::vector<std::pair<uint16_t, uint32_t>> gone;
  for (auto [slot, inc] : waiting) {
    if (!launcher_.Alive(slot, inc)) gone.emplace_back(slot, inc);
  }
  mu_.lock();
  for (auto [slot, inc] : gone) {
    if (done_ || members_[slot]->incarnation != inc || round_.slot(slot).has_ballot) continue;
    ++report_.crashes;
    Replace(slot, "its process is gone (reported by the launcher)");
  }
  cv_.notify_all();
}

bool Group::WaitForVerdict(Link& link) {
  // Spin (the verdict usually follows within microseconds), then yield, then sleep on the
  // condition variable: waiting threads must not starve the replicas when cores are short.
  AdaptiveWait wait(o_.channel.spin_us);
  for (uint32_t i = 1;; ++i) {
    if (link.has_verdict.load(std::memory_order_acquire)) return true;
    // The run may end (stop) right after the last verdict was set, between these two loads:
    // that verdict (the exit, an abort) must still go out.
    if (link.stop.load(std::memory_order_acquire)) {
      return link.has_verdict.load(std::memory_order_acquire);
    }
    if ((i & 63) != 0) continue;
    const AdaptiveWait::Phase phase = wait.PhaseAt(Clock::now());
    if (phase == AdaptiveWait::Phase::kSpin) continue;
    if (phase == AdaptiveWait::Phase::kYield) {
      std::this_thread::yield();
      continue;
    }
    // Sleep on the condition variable: a decision wakes sleepers at once.
    MutexLock lock(mu_);
    ++sleepers_;
    cv_.wait_for(lock, 1ms, [&] { return link.has_verdict.load() || link.stop.load(); });
    --sleepers_;
  }
}

void Group::FailMember(uint16_t slot, uint32_t inc, const std::string& why, bool rejected) {
  MutexLock lock(mu_);
  Member& m = *members_[slot];
  if (m.incarnation != inc || done_ || cancelled_) return;
  if (rejected) ++report_.rejected_records;
  Replace(slot, why);
  cv_.notify_all();
}

std::string_view FaultName(Fault f) {
  switch (f) {
    case Fault::kKill:
      return "SIGKILL";
    case Fault::kStop:
      return "SIGSTOP (hang)";
    case Fault::kCont:
      return "SIGCONT";
    case Fault::kBitflip:
      return "state bit flip";
  }
  return "unknown fault";
}

bool Launcher::Alive(uint16_t, uint32_t) { return true; }

Status Launcher::Inject(uint16_t, uint32_t, Fault f, uint64_t) {
  return Unimplemented(fmt::format("this launcher cannot inject {}", FaultName(f)));
}

Status Group::InjectFault(uint16_t slot, Fault fault, uint64_t bit) {
  MutexLock lock(mu_);
  if (slot >= members_.size()) {
    return InvalidArgument(
        fmt::format("replica {} is not in group {} (0..{})", slot, o_.group, members_.size() - 1));
  }
  Log()->warn("group {}: fault injection: {} into replica {} incarnation {}", o_.group,
              FaultName(fault), slot, members_[slot]->incarnation);
  return launcher_.Inject(slot, members_[slot]->incarnation, fault, bit);
}

void Group::KillReplica(uint16_t slot) {
  MutexLock lock(mu_);
  if (slot >= members_.size()) return;
  Log()->warn("group {}: fault injection: killing replica {} incarnation {}", o_.group, slot,
              members_[slot]->incarnation);
  launcher_.Stop(slot, members_[slot]->incarnation);
}

void Group::Replace(uint16_t slot, const std::string& why) {
  ColdPath cold;
  Member& m = *members_[slot];
  Log()->warn("group {}: replica {} incarnation {} failed: {}", o_.group, slot, m.incarnation, why);
  if (m.link) {
    // If the incarnation waits for a verdict, it gets an abort saying why (its delivery thread
    // sends it before letting the link go), rather than waiting for its verdict timeout. A
    // process replica is also stopped by its launcher below.
    const std::string reason = "replica " + std::to_string(slot) + " replaced: " + why;
    Answer(slot, VerdictKind::kAbort, round_.slot(slot).has_ballot ? m.ballot.h.event_seq : 0, 0,
           std::as_bytes(std::span(reason)));
    m.link->stop = true;
    m.link.reset();
    links_gen_.fetch_add(1, std::memory_order_release);
  }
  if (m.thread.joinable()) retired_.push_back(std::move(m.thread));
  launcher_.Stop(slot, m.incarnation);
  server_.RemoveService(replica::ServiceName(o_.group, slot, m.incarnation));
  round_.Failed(slot);
  if (m.incarnation + 1 >= o_.max_incarnations) {
    FailGroup(fmt::format("replica {} failed {} times (max_incarnations); last: {}", slot,
                          m.incarnation + 1, why));
    return;
  }
  ++m.incarnation;
  ++report_.replacements;
  m.faults.reset();
  Log()->info(
      "group {}: starting replica {} incarnation {}; it joins with a healthy replica's "
      "state",
      o_.group, slot, m.incarnation);
  if (Status st = StartIncarnation(slot); !st.ok()) {
    FailGroup(fmt::format("cannot restart replica {}: {}", slot, st.ToString()));
  }
}

void Group::Answer(uint16_t slot, VerdictKind kind, uint64_t event_seq, uint64_t arg,
                   std::span<const std::byte> data) {
  Member& m = *members_[slot];
  round_.Answered(slot);
  if (!m.link) return;
  Link& l = *m.link;
  // An abort's data (its reason) is cut to what the channel carries; a syscall's is 8 bytes.
  data = data.first(
      std::min<size_t>(data.size(), o_.channel.max_payload - replica::kVerdictHeaderBytes));
  l.verdict.resize(replica::kVerdictHeaderBytes + data.size());
  Result<size_t> n = replica::EncodeVerdict(l.verdict, {event_seq, arg}, data);
  if (!n.ok()) {
    Log()->error("group {}: verdict for replica {}: {}", o_.group, slot, n.status().ToString());
    return;
  }
  l.verdict_kind = static_cast<uint16_t>(kind);
  l.has_verdict.store(true, std::memory_order_release);
}

void Group::FailGroup(const std::string& why) {
  ColdPath cold;
  if (done_) return;
  Log()->error("group {} failed: {}", o_.group, why);
  report_.failure = why;
  for (auto& m : members_) {
    if (round_.slot(m->slot).has_ballot) {
      Answer(m->slot, VerdictKind::kAbort, m->ballot.h.event_seq, 0, std::as_bytes(std::span(why)));
    }
  }
  done_ = true;
  cv_.notify_all();
}

void Group::RollbackAll(const std::string& why) {
  ColdPath cold;
  if (!round_.CountRollback()) {
    FailGroup(fmt::format("{}; still failing after {} rollbacks to the checkpoint at event {}", why,
                          o_.max_rollbacks, round_.checkpoint_event()));
    return;
  }
  if (!RollbackExecutor()) return;
  ++report_.rollbacks;
  Log()->warn("group {}: {}; rolling back to the checkpoint at event {} (attempt {} of {})",
              o_.group, why, round_.checkpoint_event(), round_.rollbacks_here(), o_.max_rollbacks);
  AnswerRollback();
}

void Group::AnswerRollback() {
  for (auto& m : members_) {
    const RoundSlot& r = round_.slot(m->slot);
    if (r.has_ballot && r.ballot.kind != EventKind::kJoin) {
      Answer(m->slot, VerdictKind::kRollback, m->ballot.h.event_seq, round_.checkpoint_event(), {});
    }
  }
  round_.RewindToCheckpoint();
  RewindLog();
}

bool Group::RollbackExecutor() {
  if (syscalls_ == nullptr) return true;
  if (Status st = syscalls_->Rollback(); !st.ok()) {
    FailGroup("cannot roll back the program's system calls: " + st.ToString());
    return false;
  }
  return true;
}

Status Group::CopyState(uint16_t from, bool from_checkpoint, uint16_t to, bool into_checkpoint,
                        const uint64_t* digest) {
  Link& src = *members_[from]->link;
  Link& dst = *members_[to]->link;
  const auto& mr = staging_->mr();
  VIGIL_ASSIGN_OR_RETURN(transport::RemoteAddr ra,
                         (from_checkpoint ? src.checkpoint : src.state).At(0, state_bytes_));
  VIGIL_RETURN_IF_ERROR(src.conn->PostRead(mr.Slice(0, state_bytes_), ra, 1));
  VIGIL_RETURN_IF_ERROR(transport::WaitSendOk(*src.conn, kCopyTimeout));
  if (digest != nullptr) {
    const uint64_t got = replica::StateDigest(std::span(staging_->data(), state_bytes_));
    if (got != *digest) {
      return DataLoss(fmt::format("state read from replica {} has digest {:016x}, it voted {:016x}",
                                  from, got, *digest));
    }
  }
  VIGIL_ASSIGN_OR_RETURN(transport::RemoteAddr wa,
                         (into_checkpoint ? dst.checkpoint : dst.state).At(0, state_bytes_));
  VIGIL_RETURN_IF_ERROR(dst.conn->PostWrite(mr.Slice(0, state_bytes_), wa, 2));
  return transport::WaitSendOk(*dst.conn, kCopyTimeout);
}

Result<uint64_t> Group::Apply(const ReceivedEvent& w) {
  switch (w.kind) {
    case EventKind::kInput: {
      // Read once, straight into the staging buffer; DeliverInput writes it to every replica.
      const auto want = static_cast<size_t>(std::min<uint64_t>(w.h.arg1, input_bytes_));
      VIGIL_ASSIGN_OR_RETURN(size_t n,
                             input_.ReadAt(w.h.arg0, std::span(input_staging_->data(), want)));
      return uint64_t{n};
    }
    case EventKind::kOutput: {
      // arg1 bytes: in the event, or (a large output) in the replicas' input buffers, the event
      // carrying their xxh3.
      const uint64_t off = w.h.arg0, len = w.h.arg1;
      const bool aside = len != w.data.size();
      if (aside && (w.data.size() != sizeof(uint64_t) || len <= sizeof(uint64_t))) {
        return DataLoss(fmt::format("output event {} says {} bytes, carries {}", w.h.event_seq, len,
                                    w.data.size()));
      }
      if (off > emitted_) {
        return DataLoss(
            fmt::format("output at offset {}, but {} bytes have been emitted", off, emitted_));
      }
      if (len <= emitted_ - off) return uint64_t{0};  // re-executed: already out
      if (off != emitted_) {
        return DataLoss(fmt::format("output of {} bytes at offset {} overlaps the {} bytes emitted",
                                    len, off, emitted_));
      }
      std::span<const std::byte> bytes = w.data;
      if (aside) {
        Aside a{len, 0};
        std::memcpy(&a.digest, w.data.data(), sizeof(a.digest));
        VIGIL_ASSIGN_OR_RETURN(bytes, FetchAside(w, a));
      }
      if (std::fwrite(bytes.data(), 1, len, output_) != len || std::fflush(output_) != 0) {
        return ErrnoStatus(StatusCode::kUnavailable, "writing job output", errno);
      }
      emitted_ += len;
      report_.output_bytes = emitted_;
      return uint64_t{0};
    }
    case EventKind::kCheckpoint:
      if (syscalls_ != nullptr) VIGIL_RETURN_IF_ERROR(syscalls_->Checkpoint());
      round_.Checkpointed(w.h.event_seq);
      input_.Trim(w.h.arg1);
      return uint64_t{0};
    case EventKind::kExit:
      report_.completed = true;
      report_.exit_code = static_cast<int>(w.h.arg0);
      done_ = true;
      return uint64_t{0};
    case EventKind::kSync:
      return uint64_t{0};
    case EventKind::kSyscall: {
      if (syscalls_ == nullptr) {
        return FailedPrecondition(
            fmt::format("system call event {} (call {}), but this job runs no unmodified program",
                        w.h.event_seq, w.h.arg0));
      }
      VIGIL_ASSIGN_OR_RETURN(std::optional<SyscallExecutor::Aside> aside,
                             syscalls_->BytesAside(w.data));
      std::span<const std::byte> aside_bytes;
      if (aside) {
        VIGIL_ASSIGN_OR_RETURN(aside_bytes, FetchAside(w, *aside));
      }
      VIGIL_ASSIGN_OR_RETURN(SyscallExecutor::Outcome r,
                             syscalls_->Execute(w.h.arg0, w.h.arg1, w.data, aside_bytes,
                                                std::span(input_staging_->data(), input_bytes_)));
      if (r.bytes > input_bytes_) {
        return Internal(fmt::format("system call {} returned {} result bytes, room for {}",
                                    w.h.arg0, r.bytes, input_bytes_));
      }
      syscall_bytes_ = r.bytes;
      return static_cast<uint64_t>(r.value);
    }
    case EventKind::kJoin:
      break;
  }
  return Internal("a join cannot win a vote");
}

Result<std::span<const std::byte>> Group::FetchAside(const ReceivedEvent& w, const Aside& aside) {
  if (aside.bytes == 0 || aside.bytes > input_bytes_) {
    return DataLoss(fmt::format("event {} leaves {} bytes aside; the input buffers hold {}",
                                w.h.event_seq, aside.bytes, input_bytes_));
  }
  if (!aside_staging_) {
    ColdPath once;  // registered at the group's first use, then reused
    VIGIL_ASSIGN_OR_RETURN(auto buf, transport::RegisteredBuffer::Allocate(transport_, input_bytes_,
                                                                           transport::kLocalWrite));
    aside_staging_.emplace(std::move(buf));
  }
  const auto n = static_cast<size_t>(aside.bytes);
  const std::span<const std::byte> bytes(aside_staging_->data(), n);
  // Any replica that voted for the call holds the bytes: the first one that can be read.
  Status last;  // the last failure (its message is only built when there is one)
  for (auto& m : members_) {
    if (!m->link || !round_.slot(m->slot).has_ballot || m->ballot.digest != w.digest) continue;
    Link& l = *m->link;
    Result<transport::RemoteAddr> src = l.input.At(0, n);
    Status st =
        src.ok() ? l.conn->PostRead(aside_staging_->mr().Slice(0, n), *src, 4) : src.status();
    if (st.ok()) st = transport::WaitSendOk(*l.conn, kCopyTimeout);
    if (st.ok() && XXH3_64bits(bytes.data(), n) != aside.digest) {
      ColdPath cold;
      st =
          DataLoss(fmt::format("the {} bytes read from replica {} do not match the digest it "
                               "voted ({:016x})",
                               n, m->slot, aside.digest));
    }
    if (st.ok()) {
      report_.aside_bytes += n;
      return bytes;
    }
    ColdPath cold;
    Log()->warn("group {}: event {}: cannot read the event's bytes from replica {}: {}", o_.group,
                w.h.event_seq, m->slot, st.ToString());
    last = st;
  }
  if (last.ok()) return Unavailable("no replica that voted for the call is connected");
  return last;
}

void Group::FailOverdue(Clock::time_point now) {
  for (uint16_t slot : round_.Overdue(now)) {
    ++report_.missed_deadlines;
    Replace(slot, round_.slot(slot).connected
                      ? fmt::format("no event within the {} ms deadline (waiting for event {})",
                                    o_.deadline.count(), round_.next_event())
                      : fmt::format("did not connect within the {} ms start deadline",
                                    o_.start_deadline.count()));
    if (done_) return;
  }
}

void Group::Decide() {
  // Deciding reads no clock unless asked to measure: it runs once per event on the hot path.
  const auto t0 = o_.measure ? Clock::now() : Clock::time_point{};
  const RoundPlan plan = round_.Plan(CanCatchUp());
  switch (plan.kind) {
    case RoundPlan::Kind::kWait:
      break;
    case RoundPlan::Kind::kAllLost: {
      ColdPath cold;
      FailGroup(fmt::format("every replica was lost before event {}: no state to recover from",
                            round_.next_event()));
      break;
    }
    case RoundPlan::Kind::kRecover:
      ++report_.rounds;
      RecoverFromCheckpoint(plan);
      break;
    case RoundPlan::Kind::kMismatch:
      ++report_.rounds;
      Mismatch();
      break;
    case RoundPlan::Kind::kAhead: {
      ColdPath cold;
      ++report_.rounds;
      FailGroup(fmt::format("the majority is at event {}, the voter expected {}",
                            members_[plan.source]->ballot.h.event_seq, round_.next_event()));
      break;
    }
    case RoundPlan::Kind::kAgree:
      ++report_.rounds;
      Agree(plan);
      break;
  }
  ++decisions_;
  if (o_.measure) report_.voter_ns += static_cast<uint64_t>((Clock::now() - t0).count());
  // Wake sleepers only if there are any (a futex call per round is not free).
  if (sleepers_ > 0 || done_) cv_.notify_all();
}

bool Group::Admit(uint16_t j, uint16_t from, bool from_checkpoint, const uint64_t* digest,
                  uint64_t at_event, const std::string& how) {
  if (Status st = CopyState(from, from_checkpoint, j, false, digest); !st.ok()) {
    Replace(j, "state transfer failed: " + st.ToString());
    return false;
  }
  Log()->info("group {}: replica {} {} (RDMA READ + WRITE of {} bytes)", o_.group, j, how,
              state_bytes_);
  round_.SetStanding(j, Standing::kLive);
  Answer(j, VerdictKind::kRepaired, 0, at_event, {});
  return true;
}

void Group::RecoverFromCheckpoint(const RoundPlan& plan) {
  ColdPath cold;
  const uint16_t survivor = plan.source;
  const uint64_t checkpoint = round_.checkpoint_event();
  if (!RollbackExecutor()) return;
  // Members due for repair get the survivor's checkpoint and roll back with it.
  RepairFromCheckpoint(survivor, false);
  if (done_) return;
  // Newcomers get the survivor's last agreed checkpoint (agreed by the vote, so trustworthy);
  // the survivors roll back to it.
  for (uint16_t j : plan.joiners) {
    if (!Admit(j, survivor, true, nullptr, checkpoint,
               fmt::format("recovered from replica {}'s checkpoint at event {}", survivor,
                           checkpoint))) {
      return;
    }
  }
  ++report_.rollbacks;
  AnswerRollback();
}

void Group::Mismatch() {
  ColdPath cold;
  ++report_.mismatches;
  if (o_.mode == Mode::kTmr) {
    RollbackAll(fmt::format("TMR: no two replicas agree at event {}", round_.next_event()));
    return;
  }
  std::string digests;
  for (auto& m : members_) {
    digests += fmt::format("{}{:016x}@{}", digests.empty() ? "" : " / ", m->ballot.digest,
                           m->ballot.h.event_seq);
  }
  RollbackAll(fmt::format("{} mismatch at event {} ({}): digest@event {}", ModeName(o_.mode),
                          round_.next_event(), replica::EventKindName(members_[0]->ballot.kind),
                          digests));
}

void Group::Agree(const RoundPlan& plan) {
  // Stays valid to the end: answering a member clears its round slot, not its event.
  const ReceivedEvent& winner = members_[plan.source]->ballot;
  SlotSet repaired;
  if (!plan.outvoted.empty() || !plan.diverged.empty()) {
    // Repairs first: they read the healthy replica's state before it moves on.
    repaired = HandleOutvoted(plan, winner);
    if (done_) return;
  }
  if (!plan.joiners.empty() && plan.admit != RoundPlan::Admit::kNone) AdmitJoiners(plan, winner);
  Result<uint64_t> arg = Apply(winner);
  if (!arg.ok()) {
    ColdPath cold;
    FailGroup(fmt::format("event {}: {}", winner.h.event_seq, arg.status().ToString()));
    return;
  }
  round_.Agreed(winner.h.event_seq);
  // Decided on the first two matching ballots: the third owes this event (logged next).
  for (uint16_t i : plan.lagging) {
    const RoundSlot& r = round_.slot(i);
    if (r.standing == Standing::kLive && !r.has_ballot) round_.FellBehind(i, winner.h.event_seq);
  }
  SlotSet to;  // who voted for the round and was not replaced since
  for (uint16_t i : plan.voters) {
    if (round_.slot(i).has_ballot) to.Add(i);
  }
  Conclude(winner, *arg, to, repaired);
}

bool Group::ReplacedIfFaultyTooOften(uint16_t slot, const std::string& what) {
  Member& m = *members_[slot];
  bool replace = o_.replace_after <= 1;
  if (!replace && !m.faults) {
    Result<FailureBudget> b =
        FailureBudget::Create(FailurePolicy{.initial_backoff = 1ms,
                                            .max_backoff = 1ms,
                                            .max_failures = o_.replace_after - 1,
                                            .window = o_.replace_window});
    if (b.ok()) m.faults.emplace(std::move(*b));
  }
  if (!replace) replace = !m.faults || !m.faults->OnFailure(Clock::now()).ok();
  if (replace) {
    Replace(slot, fmt::format("{}; faulty {} times within {} ms, replacing it", what,
                              o_.replace_after, o_.replace_window.count()));
  }
  return replace;
}

SlotSet Group::HandleOutvoted(const RoundPlan& plan, const ReceivedEvent& winner) {
  ColdPath cold;
  SlotSet repaired;
  for (uint16_t f : plan.outvoted | plan.diverged) {
    Member& m = *members_[f];
    ++report_.mismatches;
    const std::string what = fmt::format(
        "replica {} outvoted at event {} ({}): digest {:016x}, majority {:016x}", f,
        winner.h.event_seq, replica::EventKindName(winner.kind), m.ballot.digest, winner.digest);
    if (plan.diverged.Has(f)) {
      Replace(f, what + "; it diverged (kind or sequence), replacing it");
      continue;
    }
    if (ReplacedIfFaultyTooOften(f, what)) continue;
    Status st = CopyState(plan.source, false, f, false, &winner.h.state_digest);
    if (!st.ok()) {
      Replace(f, what + "; repair failed: " + st.ToString());
      continue;
    }
    ++report_.repairs;
    Log()->warn("group {}: {}; repaired from replica {} (RDMA READ + WRITE of {} bytes)", o_.group,
                what, plan.source, state_bytes_);
    repaired.Add(f);
  }
  return repaired;
}

void Group::AdmitJoiners(const RoundPlan& plan, const ReceivedEvent& winner) {
  ColdPath cold;
  const uint16_t from = plan.source;
  const uint64_t checkpoint = round_.checkpoint_event();
  for (uint16_t j : plan.joiners) {
    if (plan.admit == RoundPlan::Admit::kAtCheckpoint) {
      Admit(j, from, false, &winner.h.state_digest, winner.h.event_seq,
            fmt::format("joined at the checkpoint at event {} from replica {}", winner.h.event_seq,
                        from));
    } else if (Admit(j, from, true, nullptr, checkpoint,
                     fmt::format("restarts from replica {}'s checkpoint at event {} and catches "
                                 "up through event {} from the voter's log",
                                 from, checkpoint, winner.h.event_seq - 1))) {
      round_.SetStanding(j, Standing::kCatchingUp);
      members_[j]->replayed = 0;
    }
  }
}

void Group::Conclude(const ReceivedEvent& winner, uint64_t arg, SlotSet to, SlotSet repaired) {
  uint64_t bytes = 0;
  if (winner.kind == EventKind::kInput) bytes = arg;
  if (winner.kind == EventKind::kSyscall) bytes = syscall_bytes_;
  LogAgreed(winner, arg, bytes);
  DeliverInput(bytes, to);
  // A system call's verdict says how many result bytes were delivered.
  const std::span<const std::byte> data = winner.kind == EventKind::kSyscall
                                              ? std::as_bytes(std::span(&syscall_bytes_, 1))
                                              : std::span<const std::byte>{};
  for (uint16_t slot : to) {
    Answer(slot, repaired.Has(slot) ? VerdictKind::kRepaired : VerdictKind::kProceed,
           winner.h.event_seq, arg, data);
  }
}

bool Group::CanCatchUp() const {
  return o_.mode == Mode::kTmr && log_.Covers(round_.checkpoint_event());
}

void Group::LogAgreed(const ReceivedEvent& w, uint64_t arg, uint64_t bytes) {
  if (o_.mode != Mode::kTmr || o_.catch_up_bytes == 0) return;
  const SlotSet catching_up = round_.InStanding(Standing::kCatchingUp);
  const SlotSet lagging = round_.InStanding(Standing::kLagging);
  // At a checkpoint nobody catching up needs what came before: newcomers restart from it.
  const bool restart = w.kind == EventKind::kCheckpoint && catching_up.empty();
  if (restart && lagging.empty()) {
    log_.RestartAfter(w.h.event_seq);
    return;
  }
  if (!log_.ok()) return;
  // Growing to a new high-water mark allocates (rare: the log then reuses its storage).
  std::optional<ColdPath> growing;
  if (log_.Grows(bytes)) growing.emplace();
  if (!log_.Append(w.digest, arg, w.kind, std::span(input_staging_->data(), bytes))) {
    ColdPath cold;
    Log()->warn(
        "group {}: the catch-up log passed {} bytes at event {}: dropped until the next agreed "
        "checkpoint (newcomers join there)",
        o_.group, o_.catch_up_bytes, w.h.event_seq);
    const std::string why =
        fmt::format("it was behind the group when the log passed {} bytes", o_.catch_up_bytes);
    for (uint16_t slot : catching_up | lagging) Replace(slot, why);
    return;
  }
  if (restart) {
    // ... but lagging members still owe the events from their position on.
    uint64_t keep = w.h.event_seq;
    for (uint16_t slot : lagging) keep = std::min(keep, round_.slot(slot).position);
    log_.DropBefore(keep);
  }
}

void Group::RewindLog() {
  const SlotSet behind =
      round_.InStanding(Standing::kCatchingUp) | round_.InStanding(Standing::kLagging);
  if (!behind.empty()) {
    const std::string why = fmt::format("the group rolled back to event {} while it was behind",
                                        round_.checkpoint_event());
    for (uint16_t slot : behind) Replace(slot, why);
  }
  // Those due for repair were answered "roll back" with the others.
  for (uint16_t slot : round_.InStanding(Standing::kRepairDue)) {
    round_.SetStanding(slot, Standing::kLive);
  }
  log_.RewindTo(round_.checkpoint_event());
}

bool Group::Replay(uint16_t slot, ReceivedEvent& b, bool& live) {
  Member& m = *members_[slot];
  const bool lagging = round_.slot(slot).standing == Standing::kLagging;
  const uint64_t seq = b.h.event_seq;
  if (seq == round_.next_event()) {
    round_.SetStanding(slot, Standing::kLive);
    live = true;
    if (lagging) return true;  // back with the group: it votes this event
    ColdPath cold;
    ++report_.catch_ups;
    Log()->info(
        "group {}: replica {} caught up at event {} ({} agreed events replayed); it votes "
        "again",
        o_.group, slot, seq, m.replayed);
    return true;
  }
  const std::optional<CatchUpLog::Entry> a = log_.At(seq);
  if (!a || a->digest != b.digest) {
    ColdPath cold;
    // Held as its ballot, so that what answers it (an abort, a rollback) names its event.
    std::swap(m.ballot, b);
    round_.Cast(slot, m.ballot.key());
    const char* how = lagging ? "lagging" : "catching up";
    if (!a) {
      Replace(slot, fmt::format("{}, it sent event {}, which the log (events {} to {}) does not "
                                "hold",
                                how, seq, log_.first(), log_.last()));
      return false;
    }
    ++report_.mismatches;
    if (!lagging) {
      Replace(slot, fmt::format("catching up, it differs from the agreed event {} ({}): digest "
                                "{:016x}, agreed {:016x}",
                                seq, replica::EventKindName(a->kind), m.ballot.digest, a->digest));
      return false;
    }
    const std::string what = fmt::format(
        "replica {} outvoted at event {} ({}), found late: digest {:016x}, agreed {:016x}", slot,
        seq, replica::EventKindName(a->kind), m.ballot.digest, a->digest);
    if (ReplacedIfFaultyTooOften(slot, what)) return false;
    round_.SetStanding(slot, Standing::kRepairDue);
    Log()->warn("group {}: {}; it is repaired from a healthy replica's checkpoint", o_.group, what);
    // From a live member blocked on its ballot (its checkpoint region is still), now or as soon
    // as one casts (SubmitEvent).
    for (uint16_t i : round_.InStanding(Standing::kLive)) {
      if (round_.slot(i).has_ballot) {
        RepairFromCheckpoint(i, true);
        break;
      }
    }
    return true;
  }
  const uint64_t bytes = a->bytes.size();
  if (bytes > 0) {
    std::memcpy(input_staging_->data(), a->bytes.data(), bytes);
    SlotSet to;
    to.Add(slot);
    DeliverInput(bytes, to);
    if (to.empty()) return false;
  }
  if (lagging) {
    ++report_.late_ballots;
  } else {
    ++m.replayed;
    ++report_.replayed;
  }
  round_.Replayed(slot, Clock::now());
  const std::span<const std::byte> data = a->kind == EventKind::kSyscall
                                              ? std::as_bytes(std::span(&bytes, 1))
                                              : std::span<const std::byte>{};
  Answer(slot, VerdictKind::kProceed, seq, a->arg, data);
  return true;
}

void Group::RepairFromCheckpoint(uint16_t from, bool then_catch_up) {
  ColdPath cold;
  const uint64_t checkpoint = round_.checkpoint_event();
  for (uint16_t j : round_.InStanding(Standing::kRepairDue)) {
    Member& m = *members_[j];
    if (then_catch_up && !CanCatchUp()) {
      Replace(j,
              "it cannot be repaired: the catch-up log no longer holds the events since the "
              "last agreed checkpoint");
      if (done_) return;
      continue;
    }
    Status st = CopyState(from, true, j, true, nullptr);
    if (!st.ok()) {
      Replace(j, "repair failed: " + st.ToString());
      if (done_) return;
      continue;
    }
    ++report_.repairs;
    Log()->warn(
        "group {}: replica {} repaired from replica {}'s checkpoint at event {} (RDMA READ + "
        "WRITE of {} bytes into its checkpoint region){}",
        o_.group, j, from, checkpoint, state_bytes_,
        then_catch_up ? "; it rolls back to it and catches up from the voter's log" : "");
    if (then_catch_up) {
      Answer(j, VerdictKind::kRollback, m.ballot.h.event_seq, checkpoint, {});
      round_.SetStanding(j, Standing::kCatchingUp);
      m.replayed = 0;
    }
  }
}

void Group::DeliverInput(uint64_t n, SlotSet& to) {
  if (n == 0) return;
  SlotSet posted;
  for (uint16_t slot : to) {
    Link& l = *members_[slot]->link;
    Result<transport::RemoteAddr> dst = l.input.At(0, n);
    Status st =
        dst.ok() ? l.conn->PostWrite(input_staging_->mr().Slice(0, n), *dst, 3) : dst.status();
    if (st.ok()) {
      posted.Add(slot);
    } else {
      to.Remove(slot);
      Replace(slot, "cannot write input: " + st.ToString());
    }
  }
  // Every WRITE is complete (placed in the replica's memory) before any verdict goes out.
  for (uint16_t slot : posted) {
    Status st = transport::WaitSendOk(*members_[slot]->link->conn, kCopyTimeout);
    if (!st.ok()) {
      to.Remove(slot);
      Replace(slot, "input write failed: " + st.ToString());
    }
  }
}

Result<GroupReport> Group::Run() {
  VIGIL_RETURN_IF_ERROR(ValidateGroupOptions(o_));
  const auto n = static_cast<uint16_t>(ReplicasOf(o_.mode));
  MutexLock lock(mu_);
  round_.RoundStarts(Clock::now());
  for (uint16_t i = 0; i < n; ++i) {
    auto m = std::make_unique<Member>();
    m->slot = i;
    m->ballot.data.reserve(o_.channel.max_payload);  // swapped with links' received events
    members_.push_back(std::move(m));
  }
  for (uint16_t i = 0; i < n; ++i) {
    if (Status st = StartIncarnation(i); !st.ok()) {
      FailGroup(fmt::format("cannot start replica {}: {}", i, st.ToString()));
      break;
    }
  }
  if (o_.channel.method == channel::Method::kPolling) {
    poller_ = std::thread([this] {
      if (o_.voter_cpu >= 0) {
        if (Status st = PinThisThread(o_.voter_cpu); !st.ok()) {
          Log()->warn("group {}: voter thread not pinned: {}", o_.group, st.ToString());
        }
      }
      PollerLoop();
    });
  }
  auto next_liveness = Clock::now();
  uint64_t seen_decisions = 0;
  while (!done_ && !cancelled_) {
    const auto now = Clock::now();
    // A round's deadlines run from the coordinator's first look at it, normally within 20 ms of
    // the previous decision (never before it): the thread that decides reads no clock.
    if (decisions_ != seen_decisions) {
      seen_decisions = decisions_;
      round_.RoundStarts(now);
    }
    if (round_.Ready(now, CanCatchUp())) {
      FailOverdue(now);  // replicas that missed their deadline are failed first
      // What is left decides if its ballots are in (or nobody is left to wait for).
      if (!done_ && (round_.Complete(CanCatchUp()) || round_.LiveCount() == 0)) Decide();
    } else {
      cv_.wait_for(lock, 20ms);
    }
    if (Clock::now() >= next_liveness) {
      CheckLiveness();
      next_liveness = Clock::now() + kLivenessPeriod;
    }
  }
  if (cancelled_ && !done_) report_.failure = "cancelled";
  // Let answered replicas take their last verdict, then stop every link.
  for (auto& m : members_) {
    if (m->link) m->link->stop = true;
    server_.RemoveService(replica::ServiceName(o_.group, m->slot, m->incarnation));
  }
  std::vector<std::thread> threads;
  for (auto& m : members_) {
    if (m->thread.joinable()) threads.push_back(std::move(m->thread));
  }
  const GroupReport report = report_;
  cv_.notify_all();
  lock.Unlock();
  poller_stop_ = true;
  if (poller_.joinable()) poller_.join();
  for (std::thread& t : threads) t.join();
  return report;
}

Result<GroupReport> RunUntilShutdown(Group& group, double* seconds) {
  std::atomic<bool> finished{false};
  std::thread watch([&] {
    while (!finished && !cli::ShutdownRequested()) std::this_thread::sleep_for(50ms);
    if (!finished) group.Cancel();
  });
  const auto t0 = Clock::now();
  Result<GroupReport> r = group.Run();
  if (seconds != nullptr) *seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  finished = true;
  watch.join();
  return r;
}

}  // namespace vigil::voter
