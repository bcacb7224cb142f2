// The round machine: what a group's voter decides at each externalization point, from the
// members' ballots, deadlines and standing. No I/O, no clock of its own (callers pass `now`), no
// locking and no allocation: Group (group.h) feeds it what arrives and carries out its plans
// (answers, repairs, replacements, rollbacks, admissions) with the transport, the launcher and
// the catch-up log.
//
// A round is decided when every ballot it needs is in (Complete), or a member without one is
// past its deadline (Overdue: the caller replaces it first). Plan() then says what the ballots
// mean; the caller reports back what it did (Agreed, CountRollback + RewindToCheckpoint, ...).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

#include "vigil/replica/protocol.h"
#include "vigil/voter/vote.h"

namespace vigil::voter {

using RoundClock = std::chrono::steady_clock;

// kJoining: a new incarnation (its ballot, when in, is a join); kCatchingUp: admitted at the last
// agreed checkpoint, replaying the logged events since (group.h).
enum class Standing { kLive, kJoining, kCatchingUp };

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
  RoundClock::time_point since{};    // started, connected, or last answered while catching up
};

struct RoundOptions {
  Mode mode = Mode::kTmr;
  std::chrono::milliseconds deadline{20000};
  std::chrono::milliseconds start_deadline{60000};
  uint32_t max_rollbacks = 2;
  uint32_t catch_up_pace = 2;
};

struct RoundPlan {
  enum class Kind {
    kWait,      // nothing to decide yet
    kAllLost,   // no live replica left: no state to recover from (the group fails)
    kRecover,   // too few to vote: newcomers get `source`'s checkpoint, the others roll back
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
  // A member catching up was answered from the log at `now`.
  void Replayed(uint16_t i, RoundClock::time_point now);

  // ---- the round ----
  // The coordinator first looked at the current round (its deadlines run from here).
  void RoundStarts(RoundClock::time_point now) { round_start_ = now; }
  size_t LiveCount() const;
  // Every ballot the round needs is in (deadlines aside).
  bool Complete() const;
  RoundClock::time_point DeadlineOf(uint16_t i) const;
  // Members without a ballot past their deadline at `now`.
  SlotSet Overdue(RoundClock::time_point now) const;
  bool Ready(RoundClock::time_point now) const { return Complete() || !Overdue(now).empty(); }
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
