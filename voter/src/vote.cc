#include "vigil/voter/vote.h"

#include <fmt/format.h>
#include <xxhash.h>

namespace vigil::voter {

size_t ReplicasOf(Mode mode) { return mode == Mode::kTmr ? 3 : mode == Mode::kDmr ? 2 : 1; }

std::string_view ModeName(Mode mode) {
  return mode == Mode::kTmr ? "tmr" : mode == Mode::kDmr ? "dmr" : "simplex";
}

Result<Mode> ParseMode(std::string_view name) {
  if (name == "dmr") return Mode::kDmr;
  if (name == "tmr") return Mode::kTmr;
  if (name == "simplex") return Mode::kSimplex;
  return InvalidArgument(
      fmt::format("mode '{}' is not one of dmr, tmr, simplex", name.substr(0, 32)));
}

uint64_t EventDigest(uint16_t kind, uint64_t event_seq, uint64_t state_digest, uint64_t arg0,
                     uint64_t arg1, std::span<const std::byte> data) {
  const uint64_t fields[5] = {kind, event_seq, state_digest, arg0, arg1};
  return XXH3_64bits_withSeed(data.data(), data.size(), XXH3_64bits(fields, sizeof(fields)));
}

std::vector<uint32_t> SlotSet::ToVector() const {
  std::vector<uint32_t> out;
  for (uint16_t s : *this) out.push_back(s);
  return out;
}

Result<Verdict> Decide(Mode mode, std::span<const Ballot> ballots) {
  const size_t want = ReplicasOf(mode);
  if (ballots.size() != want) {
    return InvalidArgument(fmt::format("{} vote needs {} ballots, got {}",
                                       mode == Mode::kTmr   ? "TMR"
                                       : mode == Mode::kDmr ? "DMR"
                                                            : "simplex",
                                       want, ballots.size()));
  }
  for (const Ballot& b : ballots) {
    if (b.replica >= SlotSet::kCapacity) {
      return InvalidArgument(
          fmt::format("replica {} is past the {} a group can have", b.replica, SlotSet::kCapacity));
    }
  }
  if (mode == Mode::kSimplex) {
    Verdict v;
    v.kind = ballots[0].present ? Verdict::Kind::kAgree : Verdict::Kind::kRollback;
    v.digest = ballots[0].digest;
    if (!ballots[0].present) v.faulty.Add(ballots[0].replica);
    return v;
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
    for (const Ballot& b : ballots) v.faulty.Add(b.replica);
    return v;
  }
  v.digest = winner->digest;
  for (const Ballot& b : ballots) {
    if (!b.present || b.digest != winner->digest) v.faulty.Add(b.replica);
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
