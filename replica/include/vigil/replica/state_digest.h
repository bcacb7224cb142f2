// The state digest a replica votes with at every event, and how a replica keeps it cheap.
//
// The digest of a state region is the xxh3 of the sequence of its pages' xxh3 values (64-bit,
// little-endian), a page being kStateDigestPageBytes (the last one may be shorter). Every byte
// counts, so two regions differing anywhere differ in digest (up to hash collisions), and the
// voter computes it over a region it has read with StateDigest.
//
// A replica would hash the whole region at every event; StateDigester instead compares each page
// with the replica's last committed checkpoint (a memcmp costs a fraction of a hash) and hashes
// only the pages that differ, reusing the checkpoint's page hashes for the rest. Nothing is
// trusted to say which pages were written: a bit flipped anywhere in the state makes its page
// differ from the checkpoint and is hashed into the digest like a program's write.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace vigil::replica {

inline constexpr size_t kStateDigestPageBytes = 4096;

// The digest of a whole region, computed from scratch (the voter; the reference in tests).
uint64_t StateDigest(std::span<const std::byte> region);

// Owned by one replica thread. `state` and `base` (the checkpoint copy) have the size given at
// construction.
class StateDigester {
 public:
  explicit StateDigester(size_t region_bytes);

  // StateDigest(state), hashing only the pages that differ from `base` or whose hash in `base`
  // is not known yet (`base` is read only where it is known). Remembers which pages differed,
  // for the Commit that may follow.
  uint64_t Digest(std::span<const std::byte> state, std::span<const std::byte> base);

  // Makes `base` a copy of `state` and learns its page hashes (hashed from `base` after the
  // copy, so they describe what `base` holds). Copies only the pages that differed at the last
  // Digest if that list still holds, else compares every page.
  void Commit(std::span<const std::byte> state, std::span<std::byte> base);

  // Someone else wrote the state (a repair, a rollback, a join) since the last Digest: the next
  // Commit must compare every page.
  void Forget() { list_holds_ = false; }

  // The state was restored from `base` (a rollback): distrust base's page hashes as well. A bit
  // flipped in the checkpoint copy since it was hashed is now in the state, and must show.
  void ForgetCheckpoint();

  // Pages hashed, and pages copied into `base`, since construction (for benchmarks and tests).
  uint64_t pages_hashed() const { return pages_hashed_; }
  uint64_t pages_copied() const { return pages_copied_; }

 private:
  std::span<const std::byte> Page(std::span<const std::byte> region, size_t p) const;
  void CommitPage(std::span<const std::byte> state, std::span<std::byte> base, size_t p);

  size_t bytes_;
  std::vector<uint64_t> base_hash_;  // xxh3 of each page of base, where base_known_
  std::vector<uint8_t> base_known_;
  std::vector<uint64_t> hash_;     // scratch: the page hashes of the last Digest
  std::vector<uint8_t> differed_;  // pages that differed from base at the last Digest
  bool list_holds_ = false;
  uint64_t pages_hashed_ = 0;
  uint64_t pages_copied_ = 0;
};

}  // namespace vigil::replica
