#include "vigil/replica/state_digest.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

namespace vigil::replica {
namespace {

size_t PageCount(size_t bytes) {
  return (bytes + kStateDigestPageBytes - 1) / kStateDigestPageBytes;
}

}  // namespace

uint64_t StateDigest(std::span<const std::byte> region) {
  // A digester that knows no checkpoint page hashes every page and never reads `base`: one
  // definition of the digest for the voter and the replicas.
  return StateDigester(region.size()).Digest(region, {});
}

StateDigester::StateDigester(size_t region_bytes)
    : bytes_(region_bytes),
      base_hash_(PageCount(region_bytes)),
      base_known_(PageCount(region_bytes)),
      hash_(PageCount(region_bytes)),
      differed_(PageCount(region_bytes)) {}

std::span<const std::byte> StateDigester::Page(std::span<const std::byte> region, size_t p) const {
  const size_t off = p * kStateDigestPageBytes;
  return region.subspan(off, std::min(kStateDigestPageBytes, bytes_ - off));
}

uint64_t StateDigester::Digest(std::span<const std::byte> state, std::span<const std::byte> base) {
  for (size_t p = 0; p < hash_.size(); ++p) {
    const auto s = Page(state, p);
    const bool same =
        base_known_[p] != 0 && std::memcmp(s.data(), Page(base, p).data(), s.size()) == 0;
    differed_[p] = same ? 0 : 1;
    if (same) {
      hash_[p] = base_hash_[p];
    } else {
      hash_[p] = XXH3_64bits(s.data(), s.size());
      ++pages_hashed_;
    }
  }
  list_holds_ = true;
  return XXH3_64bits(hash_.data(), hash_.size() * sizeof(uint64_t));
}

void StateDigester::ForgetCheckpoint() {
  std::fill(base_known_.begin(), base_known_.end(), uint8_t{0});
  list_holds_ = false;
}

void StateDigester::CommitPage(std::span<const std::byte> state, std::span<std::byte> base,
                               size_t p) {
  const auto s = Page(state, p);
  std::byte* b = base.data() + p * kStateDigestPageBytes;
  std::memcpy(b, s.data(), s.size());
  base_hash_[p] = XXH3_64bits(b, s.size());
  base_known_[p] = 1;
  ++pages_copied_;
  ++pages_hashed_;
}

void StateDigester::Commit(std::span<const std::byte> state, std::span<std::byte> base) {
  for (size_t p = 0; p < hash_.size(); ++p) {
    bool copy;
    if (list_holds_) {
      copy = differed_[p] != 0;
    } else {
      const auto s = Page(state, p);
      copy = base_known_[p] == 0 || std::memcmp(s.data(), Page(base, p).data(), s.size()) != 0;
    }
    if (copy) CommitPage(state, base, p);
  }
  list_holds_ = false;
}

}  // namespace vigil::replica
