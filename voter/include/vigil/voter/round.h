// The round machine: what a group's voter decides at each externalization point, from the
// members' ballots, deadlines and standing. No I/O, no clock of its own (callers pass `now`), no
// locking and no allocation: Group (group.h) feeds it what arrives and carries out its plans
// (answers, repairs, replacements, rollbacks, admissions) with the transport, the launcher and
// the catch-up log.
//
// A round is decided when every ballot it needs is in (Complete), or a member without one is
// past its deadline (Overdue: the caller replaces it first). Plan() then says what the ballots
// mean; the caller reports back what it did (Agreed, CountRollback + RewindToCheckpoint, ...).
//
// TMR decides on the first two matching ballots (when the caller keeps a log of agreed events):
// the third live member, if its ballot is not in yet, falls behind (kLagging). Its ballots are
// then checked against the logged agreed ones as they arrive, up to `max_lag` events late, and
// it votes again once it reaches the group's next event. Two live ballots that differ wait for
// the laggards (they break the tie). The exit waits for every member behind (lagging or
// catching up): it ends their runs, so they reach it and vote on it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

#include "vigil/replica/protocol.h"
#include "vigil/voter/vote.h"

namespace vigil::voter {

using RoundClock = std::chrono::steady_clock;

// kJoining: a new incarnation (its ballot, when in, is a join); kCatchingUp: admitted at the last
// agreed checkpoint, replaying the logged events since (group.h); kLagging: live, but a round was
// decided without its ballot (its events are checked against the log as they arrive, from
// `position` on); kRepairDue: a lagging member whose ballot differed from the agreed one, held
// until a healthy member's checkpoint can be copied into it (one blocked on its ballot).
enum class Standing { kLive, kJoining, kCatchingUp, kLagging, kRepairDue };

// What a ballot is voted by; the bytes stay with the caller.
struct BallotKey {
  replica::EventKind kind = replica::EventKind::kJoin;
  uint64_t event_seq = 0;
  uint64_t digest = 0;
};

struct RoundSlot {
  Standing standing = Standing::kLive;
  bool connected = false;  // false: started, not connected yet (start deadline applies)
  bool has_ballot = false;
  BallotKey ballot;
  uint32_t replayed_this_round = 0;  // catching up: events answered from the log this round
  uint64_t position = 0;             // lagging: the next event it owes (answered from the log)
  RoundClock::time_point since{};    // started, connected, or last answered while catching up
};

struct RoundOptions {
  Mode mode = Mode::kTmr;
  std::chrono::milliseconds deadline{20000};
  std::chrono::milliseconds start_deadline{60000};
  uint32_t max_rollbacks = 2;
  uint32_t catch_up_pace = 2;
  // TMR: how many agreed events a live member may owe before rounds wait for it (0: every round
  // waits for every live member's ballot).
  uint32_t max_lag = 8;
};

struct RoundPlan {
  enum class Kind {
    kWait,      // nothing to decide yet
    kAllLost,   // no live replica left: no state to recover from (the group fails)
    kRecover,   // too few to vote: newcomers (and members due for repair) get `source`'s
                // checkpoint, the others roll back
    kAgree,     // `source`'s ballot won; outvoted/diverged members are handled first
    kMismatch,  // DMR mismatch, or TMR without two equal: roll back (CountRollback)
    kAhead,     // TMR: the majority (`source`) is at another event than expected (group fails)
  };
  enum class Admit { kNone, kAtCheckpoint, kCatchUp };
  Kind kind = Kind::kWait;
  uint16_t source = 0;
  SlotSet voters;    // kAgree: whose ballot counted (the answered ones, less any replaced)
  SlotSet outvoted;  // TMR: the winner's kind and sequence, another digest: repair or replace
  SlotSet diverged;  // TMR: another kind or sequence than the winner: replace
  SlotSet joiners;   // members whose ballot is a join
  SlotSet lagging;   // kAgree (TMR): live members without a ballot, decided without (kLagging)
  Admit admit = Admit::kNone;  // kAgree (TMR): how the joiners come in
};

class RoundMachine {
 public:
  static constexpr size_t kMaxMembers = 3;

  explicit RoundMachine(const RoundOptions& o);

  size_t size() const { return size_; }
  const RoundSlot& slot(uint16_t i) const { return slots_[i]; }
  uint64_t next_event() const { return next_event_; }
  uint64_t checkpoint_event() const { return checkpoint_event_; }
  uint32_t rollbacks_here() const { return rollbacks_here_; }
  RoundClock::time_point round_start() const { return round_start_; }

  // ---- what happened to members ----
  void Started(uint16_t i, RoundClock::time_point now);  // an incarnation was launched
  void Connected(uint16_t i, RoundClock::time_point now);
  void Failed(uint16_t i);  // replaced: its ballot is void and its successor joins
  void Cast(uint16_t i, const BallotKey& b);
  void Answered(uint16_t i) { slots_[i].has_ballot = false; }
  void SetStanding(uint16_t i, Standing s) { slots_[i].standing = s; }
  // A member catching up or lagging was answered from the log at `now`.
  void Replayed(uint16_t i, RoundClock::time_point now);
  // A live member the round at `event_seq` was decided without: it owes that event.
  void FellBehind(uint16_t i, uint64_t event_seq);

  // ---- the round ----
  // The coordinator first looked at the current round (its deadlines run from here).
  void RoundStarts(RoundClock::time_point now) { round_start_ = now; }
  size_t LiveCount() const;
  // Every ballot the round needs is in (deadlines aside). `can_lag`: the caller logs agreed
  // events, so TMR may decide on the first two matching ballots.
  bool Complete(bool can_lag) const;
  RoundClock::time_point DeadlineOf(uint16_t i) const;
  // Members without a ballot past their deadline at `now`.
  SlotSet Overdue(RoundClock::time_point now) const;
  bool Ready(RoundClock::time_point now, bool can_lag) const {
    return Complete(can_lag) || !Overdue(now).empty();
  }
  SlotSet InStanding(Standing s) const;
  // Members without a ballot the round has waited on for longer than `period`.
  SlotSet Waiting(RoundClock::time_point now, RoundClock::duration period) const;

  // What the ballots in decide. `can_catch_up`: the log holds the events since the last agreed
  // checkpoint (joiners can restart from it and catch up).
  RoundPlan Plan(bool can_catch_up) const;

  // ---- what the caller did ----
  void Agreed(uint64_t event_seq);  // the event at event_seq was carried out
  void Checkpointed(uint64_t event_seq) { checkpoint_event_ = event_seq; }
  // A mismatch at the expected event: false once it has rolled back max_rollbacks times there
  // (the group fails).
  bool CountRollback();
  void RewindToCheckpoint() { next_event_ = checkpoint_event_ + 1; }

 private:
  RoundPlan PlanAll(const RoundPlan& base) const;  // DMR / simplex: every replica votes
  RoundPlan PlanTmr(const RoundPlan& base, bool can_catch_up) const;
  // TMR: two live ballots match and every laggard is within max_lag (round.h, top).
  bool FirstTwoDecide() const;

  RoundOptions o_;
  size_t size_;
  std::array<RoundSlot, kMaxMembers> slots_{};
  uint64_t next_event_ = 1;
  uint64_t checkpoint_event_ = 0;  // event seq of the last agreed checkpoint
  uint64_t rollback_event_ = 0;    // event that caused the last rollbacks
  uint32_t rollbacks_here_ = 0;
  RoundClock::time_point round_start_{};
};

}  // namespace vigil::voter
