// The voter's decision at one externalization point: compare the replicas' event digests.
//
// DMR (2 replicas): equal digests -> agree; otherwise (or a replica missing) -> roll back.
// TMR (3 replicas): a digest held by at least two replicas wins; the others (different digest or
// missing) are outvoted and must be repaired; no two equal -> no majority.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "vigil/common/status.h"

namespace vigil::voter {

// kSimplex: one replica, nothing to compare: its events pass through the voter (input once,
// output once, checkpoints) without fault tolerance. The baseline for what the voter's path
// costs, and the mode for programs that only need mediation.
enum class Mode { kDmr, kTmr, kSimplex };
size_t ReplicasOf(Mode mode);
std::string_view ModeName(Mode mode);  // "dmr" | "tmr" | "simplex"
Result<Mode> ParseMode(std::string_view name);

// A set of replica slots (0..15; a group has at most 3). Fixed-size: deciding a round allocates
// nothing.
class SlotSet {
 public:
  static constexpr uint32_t kCapacity = 16;
  constexpr SlotSet() = default;
  // Slots past kCapacity are not representable; Decide refuses them before adding.
  constexpr void Add(uint32_t slot) { bits_ = static_cast<uint16_t>(bits_ | (1u << slot)); }
  constexpr void Remove(uint32_t slot) { bits_ = static_cast<uint16_t>(bits_ & ~(1u << slot)); }
  constexpr bool Has(uint32_t slot) const { return slot < kCapacity && (bits_ >> slot) & 1u; }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr size_t size() const { return static_cast<size_t>(__builtin_popcount(bits_)); }
  constexpr SlotSet operator|(SlotSet o) const {
    SlotSet u;
    u.bits_ = static_cast<uint16_t>(bits_ | o.bits_);
    return u;
  }
  // The slots in increasing order (for tests and messages).
  std::vector<uint32_t> ToVector() const;
  constexpr bool operator==(const SlotSet&) const = default;

  // for (uint16_t slot : set): iterates a snapshot, so the loop may change the set.
  class Iterator {
   public:
    constexpr explicit Iterator(uint16_t bits) : bits_(bits) {}
    constexpr uint16_t operator*() const { return static_cast<uint16_t>(std::countr_zero(bits_)); }
    constexpr Iterator& operator++() {
      bits_ = static_cast<uint16_t>(bits_ & (bits_ - 1));
      return *this;
    }
    constexpr bool operator==(const Iterator&) const = default;

   private:
    uint16_t bits_;
  };
  constexpr Iterator begin() const { return Iterator(bits_); }
  constexpr Iterator end() const { return Iterator(0); }

 private:
  uint16_t bits_ = 0;
};

struct Ballot {
  uint32_t replica = 0;
  bool present = false;  // false: the replica missed its deadline (crash, hang, node loss)
  uint64_t digest = 0;   // digest of the event record (kind, arguments, payload)
};

struct Verdict {
  enum class Kind {
    kAgree,       // every replica present and equal
    kMajority,    // TMR: `digest` won; `faulty` were outvoted or missing
    kRollback,    // DMR: mismatch or a missing replica: roll back to the last agreed checkpoint
    kNoMajority,  // TMR: no two replicas agree
  };
  Kind kind = Kind::kAgree;
  uint64_t digest = 0;  // the agreed/winning digest (kAgree, kMajority)
  SlotSet faulty;       // replicas that disagreed with the outcome or were missing
};

// The digest a replica's event is voted by: its kind, sequence, state digest, arguments and data
// (xxh3; computed once per event on the voter's hot path).
uint64_t EventDigest(uint16_t kind, uint64_t event_seq, uint64_t state_digest, uint64_t arg0,
                     uint64_t arg1, std::span<const std::byte> data);

// Rejects a ballot count that does not match the mode, replica ids past SlotSet::kCapacity and
// duplicate ids. Allocates nothing unless it rejects.
Result<Verdict> Decide(Mode mode, std::span<const Ballot> ballots);

}  // namespace vigil::voter
