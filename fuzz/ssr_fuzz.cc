// Fuzzes what a server and the SSR store read from each other and from remote memory: the SSR
// request and reply messages (ssr::wire) and an SSR's two slots (ssr::Read).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "vigil/ssr/slot.h"
#include "vigil/ssr/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vigil;
  const auto bytes = std::as_bytes(std::span(data, size));
  static_cast<void>(ssr::wire::DecodeRequest(bytes));
  static_cast<void>(ssr::wire::DecodeReply(bytes));
  // The bytes as an SSR region of a small capacity (short input: zero-filled, as never written).
  constexpr size_t kCapacity = 64;
  std::vector<std::byte> region(ssr::RegionBytes(kCapacity));
  std::memcpy(region.data(), data, std::min(size, region.size()));
  auto s = ssr::Read(region, kCapacity, ssr::Identity{3, 42});
  if (s.ok() && s->payload.size() > kCapacity) std::abort();
  return 0;
}
