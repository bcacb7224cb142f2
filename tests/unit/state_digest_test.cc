// The state digest: its definition (the voter and every replica must compute the same value) and
// the incremental StateDigester, which must always give exactly what StateDigest gives.
#include "vigil/replica/state_digest.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

namespace vigil::replica {
namespace {

using Bytes = std::vector<std::byte>;

// Three full pages and a short one: the last page's length must count too.
constexpr size_t kRegion = 3 * kStateDigestPageBytes + 192;

Bytes Random(std::mt19937_64& rng, size_t n) {
  Bytes b(n);
  for (auto& x : b) x = std::byte{static_cast<uint8_t>(rng())};
  return b;
}

void Flip(Bytes& b, uint64_t bit) {
  b[bit / 8] ^= std::byte{static_cast<uint8_t>(1u << (bit % 8))};
}

// A random state, committed: the checkpoint copy equals it and its page hashes are known.
struct Committed {
  Bytes state, base;
  StateDigester d{kRegion};
};
Committed MakeCommitted(uint64_t seed) {
  std::mt19937_64 rng(seed);
  Committed c{Random(rng, kRegion), Bytes(kRegion)};
  c.d.Digest(c.state, c.base);
  c.d.Commit(c.state, c.base);
  return c;
}

TEST(StateDigest, IsTheXxh3OfThePagesXxh3Values) {
  std::mt19937_64 rng(1);
  for (size_t n :
       {size_t{0}, size_t{64}, kStateDigestPageBytes, kRegion, 70 * kStateDigestPageBytes + 8}) {
    const Bytes r = Random(rng, n);
    std::vector<uint64_t> pages;
    for (size_t off = 0; off < n; off += kStateDigestPageBytes) {
      pages.push_back(XXH3_64bits(r.data() + off, std::min(kStateDigestPageBytes, n - off)));
    }
    EXPECT_EQ(StateDigest(r), XXH3_64bits(pages.data(), pages.size() * sizeof(uint64_t)))
        << n << " bytes";
  }
}

TEST(StateDigest, EveryBitCounts) {
  std::mt19937_64 rng(2);
  Bytes r = Random(rng, kRegion);
  const uint64_t clean = StateDigest(r);
  for (uint64_t bit = 0; bit < kRegion * 8; bit += 61) {
    Flip(r, bit);
    EXPECT_NE(StateDigest(r), clean) << "bit " << bit;
    Flip(r, bit);
  }
  EXPECT_EQ(StateDigest(r), clean);
}

TEST(StateDigester, HashesOnlyThePagesThatDifferFromTheCheckpoint) {
  std::mt19937_64 rng(3);
  Bytes state = Random(rng, kRegion), base(kRegion);
  StateDigester d(kRegion);
  // Nothing is known about the checkpoint yet: every page is hashed, then copied.
  EXPECT_EQ(d.Digest(state, base), StateDigest(state));
  EXPECT_EQ(d.pages_hashed(), 4u);
  d.Commit(state, base);
  EXPECT_EQ(base, state);
  EXPECT_EQ(d.pages_copied(), 4u);

  // Unchanged: no page hashed, none copied.
  const uint64_t hashed = d.pages_hashed();
  EXPECT_EQ(d.Digest(state, base), StateDigest(state));
  EXPECT_EQ(d.pages_hashed(), hashed);
  d.Commit(state, base);
  EXPECT_EQ(d.pages_copied(), 4u);

  // One byte of the short last page written: that page alone is hashed and copied.
  state[kRegion - 1] ^= std::byte{0x5a};
  EXPECT_EQ(d.Digest(state, base), StateDigest(state));
  EXPECT_EQ(d.pages_hashed(), hashed + 1);
  d.Commit(state, base);
  EXPECT_EQ(base, state);
  EXPECT_EQ(d.pages_copied(), 5u);
}

TEST(StateDigester, AFlipAnywhereShowsInTheNextDigest) {
  auto [state, base, d] = MakeCommitted(4);
  const uint64_t clean = StateDigest(state);
  for (uint64_t bit = 0; bit < kRegion * 8; bit += 97) {
    Flip(state, bit);  // a flip in the state, where the program did not write
    EXPECT_NE(d.Digest(state, base), clean) << "state bit " << bit;
    Flip(state, bit);
    Flip(base, bit);  // a flip in the checkpoint copy must not change the state's digest
    EXPECT_EQ(d.Digest(state, base), clean) << "checkpoint bit " << bit;
    Flip(base, bit);
  }
}

// A flip between a Digest and its Commit, in a page that had not changed: the Commit copies only
// the pages on its list, so the checkpoint keeps the agreed bytes and the next Digest still sees
// the flip.
TEST(StateDigester, AFlipBetweenDigestAndCommitIsNotHidden) {
  auto [state, base, d] = MakeCommitted(5);
  state[10] ^= std::byte{1};  // page 0 written by the program
  const Bytes agreed = state;
  EXPECT_EQ(d.Digest(state, base), StateDigest(agreed));
  Flip(state, 8 * (2 * kStateDigestPageBytes + 5));  // page 2, after the digest
  d.Commit(state, base);
  EXPECT_EQ(base, agreed);
  EXPECT_EQ(d.Digest(state, base), StateDigest(state));
  EXPECT_NE(StateDigest(state), StateDigest(agreed));
}

// A bit flipped in the checkpoint copy, then restored into the state by a rollback: the state now
// differs from what was agreed, and the digest must say so.
TEST(StateDigester, AFlippedCheckpointRestoredByARollbackShows) {
  auto [state, base, d] = MakeCommitted(7);
  const uint64_t agreed = StateDigest(state);
  Flip(base, 8 * kStateDigestPageBytes + 3);
  state = base;
  d.ForgetCheckpoint();
  EXPECT_NE(d.Digest(state, base), agreed);
  EXPECT_EQ(d.Digest(state, base), StateDigest(state));
}

// Whatever happens to the state and the checkpoint, a Digest equals StateDigest and a Commit
// leaves an exact copy: the program writes, the voter repairs the state (Forget), the replica
// rolls back (state = checkpoint, Forget), bits flip in either region.
TEST(StateDigester, AgreesWithTheFullDigestUnderRandomHistories) {
  std::mt19937_64 rng(6);
  Bytes state(kRegion), base(kRegion);
  StateDigester d(kRegion);
  for (int i = 0; i < 4000; ++i) {
    switch (rng() % 6) {
      case 0: {  // the program writes a few bytes
        const size_t off = rng() % kRegion;
        const size_t len = std::min<size_t>(1 + rng() % 300, kRegion - off);
        for (size_t k = 0; k < len; ++k) state[off + k] = std::byte{static_cast<uint8_t>(rng())};
        break;
      }
      case 1:  // a repair: the voter writes the whole state
        state = Random(rng, kRegion);
        d.Forget();
        break;
      case 2:  // a rollback
        state = base;
        d.ForgetCheckpoint();
        break;
      case 3:
        Flip(rng() % 2 ? state : base, rng() % (kRegion * 8));
        break;
      default:
        break;
    }
    ASSERT_EQ(d.Digest(state, base), StateDigest(state)) << "step " << i;
    if (rng() % 3 == 0) {
      if (rng() % 4 == 0) {  // repaired while waiting for the checkpoint's verdict
        state = Random(rng, kRegion);
        d.Forget();
      }
      d.Commit(state, base);
      ASSERT_EQ(base, state) << "step " << i;
    }
  }
}

}  // namespace
}  // namespace vigil::replica
