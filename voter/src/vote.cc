#include "vigil/voter/vote.h"

#include <fmt/format.h>

namespace vigil::voter {

Result<Verdict> Decide(Mode mode, std::span<const Ballot> ballots) {
  const size_t want = mode == Mode::kDmr ? 2 : 3;
  if (ballots.size() != want) {
    return InvalidArgument(fmt::format("{} vote needs {} ballots, got {}",
                                       mode == Mode::kDmr ? "DMR" : "TMR", want, ballots.size()));
  }
  for (size_t i = 0; i < ballots.size(); ++i) {
    for (size_t j = i + 1; j < ballots.size(); ++j) {
      if (ballots[i].replica == ballots[j].replica) {
        return InvalidArgument(fmt::format("replica {} voted twice", ballots[i].replica));
      }
    }
  }
  Verdict v;
  // Two equal present ballots decide: all of DMR's two, a majority of TMR's three.
  constexpr size_t kQuorum = 2;
  const Ballot* winner = nullptr;
  size_t votes = 0;
  for (const Ballot& b : ballots) {
    if (!b.present) continue;
    size_t same = 0;
    for (const Ballot& o : ballots) same += (o.present && o.digest == b.digest) ? 1 : 0;
    if (same > votes) {
      votes = same;
      winner = &b;
    }
  }
  if (winner == nullptr || votes < kQuorum) {
    v.kind = mode == Mode::kDmr ? Verdict::Kind::kRollback : Verdict::Kind::kNoMajority;
    for (const Ballot& b : ballots) v.faulty.push_back(b.replica);
    return v;
  }
  v.digest = winner->digest;
  for (const Ballot& b : ballots) {
    if (!b.present || b.digest != winner->digest) v.faulty.push_back(b.replica);
  }
  if (v.faulty.empty()) {
    v.kind = Verdict::Kind::kAgree;
  } else {
    // DMR cannot tell which side is right: both roll back. TMR repairs the outvoted one.
    v.kind = mode == Mode::kDmr ? Verdict::Kind::kRollback : Verdict::Kind::kMajority;
  }
  return v;
}

}  // namespace vigil::voter
