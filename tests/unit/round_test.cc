// The round machine (voter/round.h) on its own: plans for every mode, deadlines, catch-up pacing
// and the rollback budget, and an exhaustive sweep of small TMR rounds against the invariants a
// plan must keep. No transport, no threads, no clock: time is passed in.
#include "vigil/voter/round.h"

#include <gtest/gtest.h>

namespace vigil::voter {
namespace {

using namespace std::chrono_literals;
using replica::EventKind;
using Kind = RoundPlan::Kind;

const RoundClock::time_point kT0 = RoundClock::time_point{} + 1h;

RoundOptions Opts(Mode mode) {
  RoundOptions o;
  o.mode = mode;
  o.deadline = 100ms;
  o.start_deadline = 1000ms;
  o.max_rollbacks = 2;
  o.catch_up_pace = 2;
  return o;
}

// A machine whose members all started and connected at kT0.
RoundMachine Connected(Mode mode) {
  RoundMachine m(Opts(mode));
  m.RoundStarts(kT0);
  for (uint16_t i = 0; i < m.size(); ++i) {
    m.Started(i, kT0);
    m.Connected(i, kT0);
  }
  return m;
}

BallotKey Event(uint64_t seq, uint64_t digest, EventKind kind = EventKind::kSync) {
  return {kind, seq, digest};
}

TEST(SlotSet, IteratesItsSlotsInOrderOverASnapshot) {
  SlotSet s;
  for (uint32_t slot : {9u, 0u, 15u, 3u}) s.Add(slot);
  std::vector<uint32_t> seen;
  for (uint16_t slot : s) {
    seen.push_back(slot);
    s.Remove(slot);  // the loop may change the set
  }
  EXPECT_EQ(seen, (std::vector<uint32_t>{0, 3, 9, 15}));
  EXPECT_TRUE(s.empty());
  SlotSet a, b;
  a.Add(1);
  b.Add(2);
  EXPECT_EQ((a | b).ToVector(), (std::vector<uint32_t>{1, 2}));
}

TEST(RoundMachine, SizesFollowTheMode) {
  EXPECT_EQ(RoundMachine(Opts(Mode::kSimplex)).size(), 1u);
  EXPECT_EQ(RoundMachine(Opts(Mode::kDmr)).size(), 2u);
  EXPECT_EQ(RoundMachine(Opts(Mode::kTmr)).size(), 3u);
}

TEST(RoundMachine, DmrDecidesOnceBothAreInAndAgreesOnlyOnEqualInSequenceEvents) {
  RoundMachine m = Connected(Mode::kDmr);
  m.Cast(0, Event(1, 0xA));
  EXPECT_FALSE(m.Complete(false));
  EXPECT_EQ(m.Plan(false).kind, Kind::kWait);
  m.Cast(1, Event(1, 0xA));
  ASSERT_TRUE(m.Complete(false));
  RoundPlan p = m.Plan(false);
  EXPECT_EQ(p.kind, Kind::kAgree);
  EXPECT_EQ(p.source, 0);
  EXPECT_EQ(p.voters.ToVector(), (std::vector<uint32_t>{0, 1}));
  EXPECT_TRUE(p.outvoted.empty());

  m.Cast(1, Event(1, 0xB));  // differs
  EXPECT_EQ(m.Plan(false).kind, Kind::kMismatch);
  m.Cast(0, Event(2, 0xB));  // equal digests, but not the expected event
  m.Cast(1, Event(2, 0xB));
  EXPECT_EQ(m.Plan(false).kind, Kind::kMismatch);
  m.Agreed(1);
  EXPECT_EQ(m.next_event(), 2u);
  EXPECT_EQ(m.Plan(false).kind, Kind::kAgree);
}

TEST(RoundMachine, SimplexPassesItsOneReplicasInSequenceEvent) {
  RoundMachine m = Connected(Mode::kSimplex);
  m.Cast(0, Event(1, 7));
  EXPECT_EQ(m.Plan(false).kind, Kind::kAgree);
  m.Cast(0, Event(5, 7));
  EXPECT_EQ(m.Plan(false).kind, Kind::kMismatch);
}

TEST(RoundMachine, TmrOutvotesRepairableReplicasAndReplacesDivergedOnes) {
  RoundMachine m = Connected(Mode::kTmr);
  m.Cast(0, Event(1, 0xA));
  m.Cast(1, Event(1, 0xB));  // same kind and event, other digest: repairable
  m.Cast(2, Event(1, 0xA));
  RoundPlan p = m.Plan(false);
  ASSERT_EQ(p.kind, Kind::kAgree);
  EXPECT_EQ(m.slot(p.source).ballot.digest, 0xAu);
  EXPECT_EQ(p.outvoted.ToVector(), std::vector<uint32_t>{1});
  EXPECT_TRUE(p.diverged.empty());
  EXPECT_EQ(p.voters.size(), 3u);

  m.Cast(1, Event(1, 0xB, EventKind::kOutput));  // another kind: diverged
  p = m.Plan(false);
  EXPECT_TRUE(p.outvoted.empty());
  EXPECT_EQ(p.diverged.ToVector(), std::vector<uint32_t>{1});

  m.Cast(1, Event(1, 0xC));
  m.Cast(2, Event(1, 0xD));
  EXPECT_EQ(m.Plan(false).kind, Kind::kMismatch);  // no two agree

  m.Cast(0, Event(3, 0xE));
  m.Cast(1, Event(3, 0xE));
  m.Cast(2, Event(3, 0xE));
  p = m.Plan(false);
  EXPECT_EQ(p.kind, Kind::kAhead);  // the majority is not at the expected event
  EXPECT_EQ(m.slot(p.source).ballot.event_seq, 3u);
}

TEST(RoundMachine, TmrDecidesAmongTwoLiveAndAdmitsTheJoinerAtACheckpointOrByCatchUp) {
  RoundMachine m = Connected(Mode::kTmr);
  m.Failed(2);
  m.Started(2, kT0);
  m.Cast(0, Event(1, 0xA));
  EXPECT_FALSE(m.Complete(false));
  m.Cast(1, Event(1, 0xA));
  EXPECT_TRUE(m.Complete(false));  // the newcomer is not waited for
  RoundPlan p = m.Plan(true);
  EXPECT_EQ(p.kind, Kind::kAgree);
  EXPECT_TRUE(p.joiners.empty());  // it has not sent its join yet
  m.Connected(2, kT0);
  m.Cast(2, Event(0, 0, EventKind::kJoin));
  p = m.Plan(true);
  EXPECT_EQ(p.joiners.ToVector(), std::vector<uint32_t>{2});
  EXPECT_EQ(p.voters.ToVector(), (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(p.admit, RoundPlan::Admit::kCatchUp);
  EXPECT_EQ(m.Plan(false).admit, RoundPlan::Admit::kNone);  // no log: wait for a checkpoint
  m.Cast(0, Event(1, 0xA, EventKind::kCheckpoint));
  m.Cast(1, Event(1, 0xA, EventKind::kCheckpoint));
  EXPECT_EQ(m.Plan(false).admit, RoundPlan::Admit::kAtCheckpoint);
}

TEST(RoundMachine, WithOneLiveReplicaEveryoneIsWaitedForAndTheGroupRecovers) {
  RoundMachine m = Connected(Mode::kTmr);
  m.Failed(0);
  m.Failed(2);
  m.Cast(1, Event(4, 0xA));
  EXPECT_FALSE(m.Complete(false));
  m.Cast(0, Event(0, 0, EventKind::kJoin));
  m.Cast(2, Event(0, 0, EventKind::kJoin));
  ASSERT_TRUE(m.Complete(false));
  RoundPlan p = m.Plan(true);
  EXPECT_EQ(p.kind, Kind::kRecover);
  EXPECT_EQ(p.source, 1);
  EXPECT_EQ(p.joiners.ToVector(), (std::vector<uint32_t>{0, 2}));

  RoundMachine dmr = Connected(Mode::kDmr);
  dmr.Failed(1);
  dmr.Cast(0, Event(2, 0xA));
  dmr.Cast(1, Event(0, 0, EventKind::kJoin));
  EXPECT_EQ(dmr.Plan(false).kind, Kind::kRecover);
}

TEST(RoundMachine, NoLiveReplicaMeansNothingToRecoverFrom) {
  RoundMachine m = Connected(Mode::kDmr);
  m.Failed(0);
  m.Failed(1);
  EXPECT_EQ(m.Plan(false).kind, Kind::kAllLost);
}

TEST(RoundMachine, DeadlinesRunFromTheStartTheConnectionAndTheRound) {
  RoundMachine m(Opts(Mode::kDmr));
  m.RoundStarts(kT0);
  m.Started(0, kT0);
  m.Started(1, kT0);
  EXPECT_EQ(m.DeadlineOf(0), kT0 + 1000ms);  // not connected: the start deadline
  m.Connected(0, kT0 + 10ms);
  EXPECT_EQ(m.DeadlineOf(0), kT0 + 110ms);
  m.RoundStarts(kT0 + 50ms);  // a later round: from its start
  EXPECT_EQ(m.DeadlineOf(0), kT0 + 150ms);
  EXPECT_TRUE(m.Overdue(kT0 + 150ms).empty());  // "past", not "at"
  EXPECT_EQ(m.Overdue(kT0 + 151ms).ToVector(), std::vector<uint32_t>{0});
  EXPECT_FALSE(m.Ready(kT0 + 151ms - 1ms, false));
  EXPECT_TRUE(m.Ready(kT0 + 151ms, false));
  m.Cast(0, Event(1, 1));  // a member with its ballot in is never overdue
  EXPECT_TRUE(m.Overdue(kT0 + 151ms).empty());
  EXPECT_EQ(m.Overdue(kT0 + 1001ms).ToVector(), std::vector<uint32_t>{1});
  EXPECT_EQ(m.Waiting(kT0 + 400ms, 250ms).ToVector(), std::vector<uint32_t>{1});
  EXPECT_TRUE(m.Waiting(kT0 + 200ms, 250ms).empty());
}

TEST(RoundMachine, ACatchingUpMemberGetsItsReplayStepsBeforeTheRoundIsDecided) {
  RoundMachine m = Connected(Mode::kTmr);
  m.SetStanding(2, Standing::kCatchingUp);
  m.Cast(0, Event(9, 0xA));
  m.Cast(1, Event(9, 0xA));
  EXPECT_FALSE(m.Complete(false));  // catch_up_pace = 2
  m.Replayed(2, kT0 + 1ms);
  EXPECT_FALSE(m.Complete(false));
  m.Replayed(2, kT0 + 2ms);
  EXPECT_TRUE(m.Complete(false));
  EXPECT_EQ(m.slot(2).since, kT0 + 2ms);  // its deadline counts from the last answer
  m.Agreed(9);
  EXPECT_EQ(m.slot(2).replayed_this_round, 0u);  // a new round: new steps owed
}

TEST(RoundMachine, TmrDecidesOnTheFirstTwoMatchingBallotsAndBoundsTheLag) {
  RoundOptions o = Opts(Mode::kTmr);
  o.max_lag = 2;
  RoundMachine m(o);
  m.RoundStarts(kT0);
  for (uint16_t i = 0; i < 3; ++i) m.Connected(i, kT0);
  m.Cast(0, Event(1, 0xA));
  m.Cast(1, Event(1, 0xA));
  EXPECT_FALSE(m.Complete(false));  // without a log, the third is waited for
  ASSERT_TRUE(m.Complete(true));
  RoundPlan p = m.Plan(true);
  ASSERT_EQ(p.kind, Kind::kAgree);
  EXPECT_EQ(p.voters.ToVector(), (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(p.lagging.ToVector(), std::vector<uint32_t>{2});
  EXPECT_TRUE(p.outvoted.empty() && p.diverged.empty());
  m.Agreed(1);
  m.FellBehind(2, 1);
  m.Answered(0);
  m.Answered(1);
  EXPECT_EQ(m.LiveCount(), 2u);

  // Event 2: the laggard owes one event (< max_lag): the first two decide again.
  m.Cast(0, Event(2, 0xB));
  m.Cast(1, Event(2, 0xB));
  EXPECT_TRUE(m.Complete(true));
  m.Agreed(2);
  m.Answered(0);
  m.Answered(1);
  // Event 3: it owes two (events 1 and 2): the round waits until it is answered one.
  m.Cast(0, Event(3, 0xC));
  m.Cast(1, Event(3, 0xC));
  EXPECT_FALSE(m.Complete(true));
  m.Replayed(2, kT0 + 1ms);
  EXPECT_EQ(m.slot(2).position, 2u);
  EXPECT_TRUE(m.Complete(true));

  // Two that differ wait for the laggard: it breaks the tie once it votes again.
  m.Cast(1, Event(3, 0xD));
  EXPECT_FALSE(m.Complete(true));
  m.Replayed(2, kT0 + 2ms);
  EXPECT_FALSE(m.Complete(true));  // back at the group's event, but no ballot yet
  m.SetStanding(2, Standing::kLive);
  m.Cast(2, Event(3, 0xC));
  ASSERT_TRUE(m.Complete(true));
  p = m.Plan(true);
  ASSERT_EQ(p.kind, Kind::kAgree);
  EXPECT_EQ(p.outvoted.ToVector(), std::vector<uint32_t>{1});
  EXPECT_TRUE(p.lagging.empty());
}

TEST(RoundMachine, TheExitWaitsForEveryMemberBehindAndDueRepairsDoNotBlockIt) {
  RoundMachine m = Connected(Mode::kTmr);
  m.FellBehind(2, 5);
  m.Agreed(5);
  m.Cast(0, Event(6, 0xE, EventKind::kExit));
  m.Cast(1, Event(6, 0xE, EventKind::kExit));
  EXPECT_FALSE(m.Complete(true));  // lagging: it must reach the exit
  m.SetStanding(2, Standing::kCatchingUp);
  m.Replayed(2, kT0);
  m.Replayed(2, kT0);
  EXPECT_FALSE(m.Complete(true));  // catching up, past its pace: still behind the exit
  m.SetStanding(2, Standing::kRepairDue);
  m.Cast(2, Event(5, 0xF));  // held: its late ballot differed
  EXPECT_TRUE(m.Complete(true));
  RoundPlan p = m.Plan(true);
  EXPECT_EQ(p.kind, Kind::kAgree);
  EXPECT_EQ(p.voters.ToVector(), (std::vector<uint32_t>{0, 1}));  // it does not vote
}

TEST(RoundMachine, WithOneLiveReplicaTheSurvivorIsNeverAMemberDueForRepair) {
  RoundMachine m = Connected(Mode::kTmr);
  m.SetStanding(0, Standing::kRepairDue);
  m.Cast(0, Event(3, 0xF));
  m.Failed(2);
  m.Cast(1, Event(4, 0xA));
  m.Cast(2, Event(0, 0, EventKind::kJoin));
  ASSERT_TRUE(m.Complete(true));
  RoundPlan p = m.Plan(true);
  EXPECT_EQ(p.kind, Kind::kRecover);
  EXPECT_EQ(p.source, 1);
}

TEST(RoundMachine, RollbacksAreCountedPerEventUpToTheBudget) {
  RoundMachine m = Connected(Mode::kDmr);
  m.Checkpointed(4);
  m.Agreed(6);  // next is 7
  EXPECT_TRUE(m.CountRollback());
  m.RewindToCheckpoint();
  EXPECT_EQ(m.next_event(), 5u);
  m.Agreed(5);
  m.Agreed(6);
  EXPECT_TRUE(m.CountRollback());  // event 7 again: the second
  EXPECT_EQ(m.rollbacks_here(), 2u);
  EXPECT_FALSE(m.CountRollback());  // a third at the same event passes max_rollbacks = 2
  m.RewindToCheckpoint();
  for (uint64_t e = 5; e <= 7; ++e) m.Agreed(e);
  EXPECT_EQ(m.rollbacks_here(), 3u);  // event 7 itself passing does not reset the count...
  m.Agreed(8);
  EXPECT_EQ(m.rollbacks_here(), 0u);  // ...the next one does
  EXPECT_TRUE(m.CountRollback());
}

// Every TMR round over three members (each live or joining; a ballot or not; digest A, B or C;
// the expected event or the next; sync or checkpoint): the plan keeps its invariants, and a round
// decided on the first two matching ballots is one.
TEST(RoundMachine, EveryTmrRoundOfThreeKeepsThePlanInvariants) {
  struct Choice {
    bool live, has;
    uint64_t digest, seq;
    EventKind kind;
  };
  std::vector<Choice> choices;
  for (bool live : {true, false}) {
    for (bool has : {true, false}) {
      for (uint64_t d : {0xAu, 0xBu, 0xCu}) {
        for (uint64_t seq : {1u, 2u}) {
          for (EventKind k : {EventKind::kSync, EventKind::kCheckpoint}) {
            choices.push_back({live, has, d, seq, live ? k : EventKind::kJoin});
          }
        }
      }
    }
  }
  size_t plans = 0, agreements = 0, first_two = 0;
  for (const Choice& a : choices) {
    for (const Choice& b : choices) {
      for (const Choice& c : choices) {
        const Choice pick[3] = {a, b, c};
        RoundMachine m = Connected(Mode::kTmr);
        for (uint16_t i = 0; i < 3; ++i) {
          if (!pick[i].live) m.SetStanding(i, Standing::kJoining);
          if (pick[i].has) m.Cast(i, {pick[i].kind, pick[i].seq, pick[i].digest});
        }
        for (bool log : {false, true}) {
          const RoundPlan p = m.Plan(log);
          ++plans;
          // Deciding on the first two (complete with a log, not without): two live members'
          // equal, non-exit events, and the one left without a ballot lags.
          if (log && m.Complete(true) && !m.Complete(false)) {
            ++first_two;
            EXPECT_TRUE(p.kind == Kind::kAgree || p.kind == Kind::kAhead);
            EXPECT_EQ(p.voters.size(), 2u);
            for (uint16_t i : p.voters) {
              EXPECT_EQ(m.slot(i).ballot.digest, m.slot(p.source).ballot.digest);
            }
            if (p.kind == Kind::kAgree) {
              for (uint16_t i = 0; i < 3; ++i) {
                EXPECT_EQ(p.lagging.Has(i), pick[i].live && !pick[i].has);
              }
              EXPECT_EQ(p.lagging.size(), 1u);
            }
          }
          size_t live = 0;
          for (const Choice& x : pick) live += x.live ? 1 : 0;
          if (live == 0) {
            EXPECT_EQ(p.kind, Kind::kAllLost);
            continue;
          }
          for (uint16_t i = 0; i < 3; ++i) {
            // Voters are live members with an event; joiners are members with a join.
            if (p.voters.Has(i)) {
              EXPECT_TRUE(pick[i].live && pick[i].has);
            }
            EXPECT_EQ(p.joiners.Has(i), !pick[i].live && pick[i].has);
            EXPECT_FALSE(p.outvoted.Has(i) && p.diverged.Has(i));
          }
          if (p.kind != Kind::kAgree) {
            EXPECT_TRUE(p.outvoted.empty() && p.diverged.empty());
            continue;
          }
          ++agreements;
          const BallotKey& w = m.slot(p.source).ballot;
          EXPECT_EQ(w.event_seq, m.next_event());
          EXPECT_GE(live, 2u);  // fewer: every ballot is waited for, then recovery
          EXPECT_TRUE(p.voters.Has(p.source));
          size_t same = 0;
          for (uint16_t i = 0; i < 3; ++i) {
            if (!p.voters.Has(i)) continue;
            const BallotKey& k = m.slot(i).ballot;
            if (k.digest == w.digest) {
              ++same;
              EXPECT_FALSE(p.outvoted.Has(i) || p.diverged.Has(i));
            } else {
              // Every dissenting voter is handled: repaired (same shape) or replaced.
              const bool same_shape = k.kind == w.kind && k.event_seq == w.event_seq;
              EXPECT_EQ(p.outvoted.Has(i), same_shape);
              EXPECT_EQ(p.diverged.Has(i), !same_shape);
            }
          }
          EXPECT_GE(same, 2u);
          const RoundPlan::Admit want = w.kind == EventKind::kCheckpoint
                                            ? RoundPlan::Admit::kAtCheckpoint
                                        : log ? RoundPlan::Admit::kCatchUp
                                              : RoundPlan::Admit::kNone;
          EXPECT_EQ(p.admit, want);
        }
      }
    }
  }
  EXPECT_EQ(plans, 2u * 48 * 48 * 48);
  EXPECT_GT(agreements, 1000u);
  EXPECT_GT(first_two, 100u);
}

// Every TMR round of three members where some are behind the group (lagging, due for repair,
// catching up) or joining, with or without a log: a complete round never leaves the caller with
// nothing to do, the exit never leaves a member behind, and a member behind never votes.
TEST(RoundMachine, EveryTmrRoundWithMembersBehindKeepsTheInvariants) {
  enum class Pick {
    kVoteA,
    kVoteB,
    kExit,
    kLiveNoBallot,
    kLag1,
    kLag8,
    kRepairDue,
    kCatchUp0,
    kCatchUp2,
    kJoinIn,
    kJoinOut
  };
  const std::vector<Pick> picks = {Pick::kVoteA,        Pick::kVoteB,    Pick::kExit,
                                   Pick::kLiveNoBallot, Pick::kLag1,     Pick::kLag8,
                                   Pick::kRepairDue,    Pick::kCatchUp0, Pick::kCatchUp2,
                                   Pick::kJoinIn,       Pick::kJoinOut};
  constexpr uint64_t kNext = 10;
  size_t complete = 0;
  for (Pick a : picks) {
    for (Pick b : picks) {
      for (Pick c : picks) {
        const Pick pick[3] = {a, b, c};
        RoundMachine m = Connected(Mode::kTmr);
        for (uint64_t e = 1; e < kNext; ++e) m.Agreed(e);
        bool exiting = false, behind = false;
        for (uint16_t i = 0; i < 3; ++i) {
          switch (pick[i]) {
            case Pick::kVoteA:
              m.Cast(i, Event(kNext, 0xA));
              break;
            case Pick::kVoteB:
              m.Cast(i, Event(kNext, 0xB));
              break;
            case Pick::kExit:
              m.Cast(i, Event(kNext, 0xE, EventKind::kExit));
              exiting = true;
              break;
            case Pick::kLiveNoBallot:
              break;
            case Pick::kLag1:
            case Pick::kLag8:
              m.FellBehind(i, pick[i] == Pick::kLag1 ? kNext - 1 : kNext - 8);
              behind = true;
              break;
            case Pick::kRepairDue:
              m.SetStanding(i, Standing::kRepairDue);
              m.Cast(i, Event(kNext - 2, 0xF));
              break;
            case Pick::kCatchUp0:
            case Pick::kCatchUp2:
              m.SetStanding(i, Standing::kCatchingUp);
              if (pick[i] == Pick::kCatchUp2) {
                m.Replayed(i, kT0);
                m.Replayed(i, kT0);
              }
              behind = true;
              break;
            case Pick::kJoinIn:
              m.Failed(i);
              m.Cast(i, Event(0, 0, EventKind::kJoin));
              break;
            case Pick::kJoinOut:
              m.Failed(i);
              break;
          }
        }
        for (bool log : {false, true}) {
          if (!m.Complete(log)) continue;
          ++complete;
          const RoundPlan p = m.Plan(log);
          EXPECT_FALSE(exiting && behind) << "the exit decided with a member behind";
          for (uint16_t i = 0; i < 3; ++i) {
            if (m.slot(i).standing != Standing::kLive) {
              EXPECT_FALSE(p.voters.Has(i)) << "a member behind or joining voted";
            }
            if (m.slot(i).standing == Standing::kRepairDue) {
              EXPECT_FALSE(p.kind == Kind::kRecover && p.source == i);
            }
          }
          if (p.kind == Kind::kAgree) {
            size_t same = 0;
            for (uint16_t i : p.voters) {
              same += m.slot(i).ballot.digest == m.slot(p.source).ballot.digest ? 1 : 0;
            }
            EXPECT_GE(same, 2u);
          }
          // Complete with nothing to do would leave the round stuck (nobody is overdue: every
          // ballot it waits for is in).
          EXPECT_NE(p.kind, Kind::kWait)
              << int(a) << " " << int(b) << " " << int(c) << " log " << log;
        }
      }
    }
  }
  EXPECT_GT(complete, 100u);
}

}  // namespace
}  // namespace vigil::voter
