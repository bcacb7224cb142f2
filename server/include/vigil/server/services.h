// The two demo services of the restartable-server framework.
//
// kv (per-client recovery): a client's session is a set of keys and values plus an open cursor.
//   put K V | get K | del K | incr K (K's value as a signed integer, +1; returns it) |
//   next (the key after the cursor; advances it; empty at the end, which rewinds) | count
// lock (all-clients recovery: the lock table is rebuilt from every client's SSR at start-up):
//   acquire L (granted | FAILED_PRECONDITION "held by client N") | release L | held
// Keys and lock names: 1..64 printable characters without spaces; values up to 256 bytes.
#pragma once

#include <memory>
#include <string_view>

#include "vigil/common/status.h"
#include "vigil/server/framework.h"

namespace vigil::server {

inline constexpr size_t kMaxKey = 64;
inline constexpr size_t kMaxValue = 256;
inline constexpr size_t kMaxLocksPerClient = 24;

std::unique_ptr<Service> MakeKvService();
std::unique_ptr<Service> MakeLockService();
// "kv" or "lock"; kInvalidArgument naming the choices otherwise.
Result<std::unique_ptr<Service>> MakeService(std::string_view name);

}  // namespace vigil::server
