#include "vigil/voter/round.h"

#include <algorithm>

namespace vigil::voter {

using replica::EventKind;

RoundMachine::RoundMachine(const RoundOptions& o)
    : o_(o), size_(std::min(ReplicasOf(o.mode), kMaxMembers)) {}

void RoundMachine::Started(uint16_t i, RoundClock::time_point now) {
  slots_[i].connected = false;
  slots_[i].since = now;
}

void RoundMachine::Connected(uint16_t i, RoundClock::time_point now) {
  slots_[i].connected = true;
  slots_[i].since = now;  // the event deadline counts from the connection
}

void RoundMachine::Failed(uint16_t i) {
  RoundSlot& s = slots_[i];
  s.has_ballot = false;
  s.connected = false;
  s.standing = Standing::kJoining;
  s.replayed_this_round = 0;
}

void RoundMachine::Cast(uint16_t i, const BallotKey& b) {
  slots_[i].ballot = b;
  slots_[i].has_ballot = true;
}

void RoundMachine::Replayed(uint16_t i, RoundClock::time_point now) {
  ++slots_[i].replayed_this_round;
  ++slots_[i].position;
  slots_[i].since = now;  // a catching-up member's deadline counts from each answer
}

void RoundMachine::FellBehind(uint16_t i, uint64_t event_seq) {
  slots_[i].standing = Standing::kLagging;
  slots_[i].position = event_seq;
}

size_t RoundMachine::LiveCount() const { return InStanding(Standing::kLive).size(); }

bool RoundMachine::Complete(bool can_lag) const {
  // DMR, and TMR with fewer than two live replicas, need every replica (an event or a join) to
  // decide; TMR otherwise decides among the live ones and newcomers wait for a checkpoint.
  const bool need_all = o_.mode != Mode::kTmr || LiveCount() < 2;
  bool all_in = true, lagging = false, behind = false, exiting = false;
  for (size_t i = 0; i < size_; ++i) {
    const RoundSlot& s = slots_[i];
    // A replica catching up gets its replay steps first (catch_up_pace).
    if (s.standing == Standing::kCatchingUp && s.replayed_this_round < o_.catch_up_pace) {
      return false;
    }
    lagging = lagging || s.standing == Standing::kLagging;
    behind = behind || s.standing == Standing::kLagging || s.standing == Standing::kCatchingUp;
    exiting = exiting ||
              (s.standing == Standing::kLive && s.has_ballot && s.ballot.kind == EventKind::kExit);
    if ((need_all || s.standing == Standing::kLive) && !s.has_ballot) all_in = false;
  }
  // The exit ends every replica's run: those behind reach it first (within their deadlines).
  if (exiting && behind) return false;
  if (all_in && !lagging) return true;
  return !need_all && can_lag && o_.max_lag > 0 && FirstTwoDecide();
}

bool RoundMachine::FirstTwoDecide() const {
  for (uint16_t i = 0; i < size_; ++i) {
    const RoundSlot& s = slots_[i];
    if (s.standing == Standing::kLagging && next_event_ - s.position >= o_.max_lag) return false;
  }
  for (uint16_t i = 0; i < size_; ++i) {
    const RoundSlot& a = slots_[i];
    if (a.standing != Standing::kLive || !a.has_ballot) continue;
    // Every live member must reach the exit (it ends their runs); a join is never voted.
    if (a.ballot.kind == EventKind::kExit || a.ballot.kind == EventKind::kJoin) continue;
    for (uint16_t j = i + 1; j < size_; ++j) {
      const RoundSlot& b = slots_[j];
      if (b.standing == Standing::kLive && b.has_ballot && b.ballot.digest == a.ballot.digest &&
          b.ballot.kind == a.ballot.kind && b.ballot.event_seq == a.ballot.event_seq) {
        return true;
      }
    }
  }
  return false;
}

RoundClock::time_point RoundMachine::DeadlineOf(uint16_t i) const {
  const RoundSlot& s = slots_[i];
  if (!s.connected) return s.since + o_.start_deadline;
  return std::max(round_start_, s.since) + o_.deadline;
}

SlotSet RoundMachine::Overdue(RoundClock::time_point now) const {
  SlotSet late;
  for (uint16_t i = 0; i < size_; ++i) {
    if (!slots_[i].has_ballot && now > DeadlineOf(i)) late.Add(i);
  }
  return late;
}

SlotSet RoundMachine::InStanding(Standing standing) const {
  SlotSet in;
  for (uint16_t i = 0; i < size_; ++i) {
    if (slots_[i].standing == standing) in.Add(i);
  }
  return in;
}

SlotSet RoundMachine::Waiting(RoundClock::time_point now, RoundClock::duration period) const {
  SlotSet waiting;
  for (uint16_t i = 0; i < size_; ++i) {
    const RoundSlot& s = slots_[i];
    if (!s.has_ballot && now - std::max(round_start_, s.since) > period) waiting.Add(i);
  }
  return waiting;
}

RoundPlan RoundMachine::Plan(bool can_catch_up) const {
  RoundPlan p;
  if (LiveCount() == 0) {
    p.kind = RoundPlan::Kind::kAllLost;
    return p;
  }
  bool any_event = false, all = true;
  for (uint16_t i = 0; i < size_; ++i) {
    const RoundSlot& s = slots_[i];
    if (!s.has_ballot) {
      all = false;
    } else if (s.ballot.kind == EventKind::kJoin) {
      p.joiners.Add(i);
    } else if (s.standing == Standing::kLive) {
      any_event = true;
    }
  }
  if (o_.mode == Mode::kTmr && LiveCount() >= 2) return any_event ? PlanTmr(p, can_catch_up) : p;
  // Too few replicas to vote: wait for every replacement, then restart from the last agreed
  // checkpoint (members due for repair get it too); DMR and simplex decide once every replica's
  // event is in.
  if (!all) return p;
  if (!p.joiners.empty() || !InStanding(Standing::kRepairDue).empty()) {
    for (uint16_t i = 0; i < size_; ++i) {
      // The survivor is live (a member due for repair holds a ballot too, but no agreed state).
      if (slots_[i].standing == Standing::kLive && slots_[i].ballot.kind != EventKind::kJoin) {
        p.kind = RoundPlan::Kind::kRecover;
        p.source = i;
        return p;
      }
    }
    p.kind = RoundPlan::Kind::kAllLost;  // only joins: nobody holds an agreed state
    return p;
  }
  return o_.mode == Mode::kTmr ? p : PlanAll(p);
}

RoundPlan RoundMachine::PlanAll(const RoundPlan& base) const {
  RoundPlan p = base;
  std::array<Ballot, kMaxMembers> ballots{};
  for (uint16_t i = 0; i < size_; ++i) {
    ballots[i] = {i, slots_[i].ballot.event_seq == next_event_, slots_[i].ballot.digest};
  }
  // The ballots are well formed by construction (one per slot); a refusal would still roll back.
  Result<Verdict> v = Decide(o_.mode, std::span(ballots.data(), size_));
  if (!v.ok() || v->kind != Verdict::Kind::kAgree) {
    p.kind = RoundPlan::Kind::kMismatch;
    return p;
  }
  p.kind = RoundPlan::Kind::kAgree;
  p.source = 0;
  for (uint16_t i = 0; i < size_; ++i) p.voters.Add(i);
  return p;
}

RoundPlan RoundMachine::PlanTmr(const RoundPlan& base, bool can_catch_up) const {
  RoundPlan p = base;
  std::array<Ballot, kMaxMembers> ballots{};
  for (uint16_t i = 0; i < size_; ++i) {
    const RoundSlot& s = slots_[i];
    const bool present =
        s.standing == Standing::kLive && s.has_ballot && s.ballot.kind != EventKind::kJoin;
    ballots[i] = {i, present, present ? s.ballot.digest : 0};
    if (present) p.voters.Add(i);
  }
  Result<Verdict> v = Decide(Mode::kTmr, std::span(ballots.data(), size_));
  if (!v.ok() || v->kind == Verdict::Kind::kNoMajority) {
    p.kind = RoundPlan::Kind::kMismatch;
    return p;
  }
  for (uint16_t i = 0; i < size_; ++i) {
    if (ballots[i].present && ballots[i].digest == v->digest) p.source = i;
  }
  const BallotKey& winner = slots_[p.source].ballot;
  if (winner.event_seq != next_event_) {
    p.kind = RoundPlan::Kind::kAhead;
    return p;
  }
  for (uint16_t f = 0; f < size_; ++f) {
    if (!v->faulty.Has(f) || !ballots[f].present) continue;  // joining, or failed before
    const BallotKey& bad = slots_[f].ballot;
    if (bad.kind != winner.kind || bad.event_seq != winner.event_seq) {
      p.diverged.Add(f);
    } else {
      p.outvoted.Add(f);
    }
  }
  p.kind = RoundPlan::Kind::kAgree;
  for (uint16_t i = 0; i < size_; ++i) {
    if (slots_[i].standing == Standing::kLive && !slots_[i].has_ballot) p.lagging.Add(i);
  }
  // Newcomers join at an agreed checkpoint, with the state every healthy replica holds there;
  // or, with the log of what was agreed since the last one, they restart from that checkpoint
  // and catch up.
  if (winner.kind == EventKind::kCheckpoint) {
    p.admit = RoundPlan::Admit::kAtCheckpoint;
  } else if (can_catch_up) {
    p.admit = RoundPlan::Admit::kCatchUp;
  }
  return p;
}

void RoundMachine::Agreed(uint64_t event_seq) {
  if (rollback_event_ < event_seq) rollbacks_here_ = 0;
  next_event_ = event_seq + 1;
  for (RoundSlot& s : slots_) s.replayed_this_round = 0;
}

bool RoundMachine::CountRollback() {
  if (rollback_event_ == next_event_) {
    ++rollbacks_here_;
  } else {
    rollback_event_ = next_event_;
    rollbacks_here_ = 1;
  }
  return rollbacks_here_ <= o_.max_rollbacks;
}

}  // namespace vigil::voter
