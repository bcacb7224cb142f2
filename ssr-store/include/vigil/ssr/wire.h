// Messages between a server and the SSR store, carried by RDMA SEND on the server's own session
// connection (one queue pair in a protection domain of its own). Fixed sizes, little-endian; every
// field is validated on arrival and nothing in a message is trusted further than that.
//
// The first request on a session is kOpen (service name, instance name); it binds the session to
// the service and starts a new epoch for it. Then, per request the server handles:
//   kGrant(client, create?) -> the SSR's address, length and an rkey registered for exactly that
//                              SSR in the session's protection domain (usable by no other QP);
//   kRelease(grant)         -> the registration is destroyed: the key is dead from then on;
//   kFree(client)           -> the client is gone: its SSR is returned to the arena;
//   kList(after)            -> client ids of the service with an SSR, in pages.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/common/status.h"

namespace vigil::ssr {
// The bootstrap service name servers dial to open a session with the store.
inline constexpr std::string_view kBootstrapService = "ssr";
}  // namespace vigil::ssr

namespace vigil::ssr::wire {

inline constexpr uint32_t kRequestMagic = 0x51525353;  // "SSRQ"
inline constexpr uint32_t kReplyMagic = 0x50525353;    // "SSRP"
inline constexpr uint16_t kVersion = 1;
inline constexpr size_t kRequestBytes = 136;
inline constexpr size_t kReplyBytes = 296;
inline constexpr size_t kMaxName = 47;          // service and instance names
inline constexpr size_t kMaxListed = 16;        // client ids per kList reply
inline constexpr size_t kMaxReplyMessage = 96;  // error text carried back

// kClose: the server is done; the store answers, revokes the session's grants and ends it.
enum class Op : uint16_t { kOpen = 1, kGrant = 2, kRelease = 3, kFree = 4, kList = 5, kClose = 6 };
std::string_view OpName(Op op);

struct Request {
  Op op = Op::kGrant;
  uint64_t seq = 0;        // echoed in the reply
  uint64_t client_id = 0;  // kGrant, kFree; kList: list ids greater than this
  uint64_t grant_id = 0;   // kRelease
  bool create = false;     // kGrant: allocate the SSR if the client has none
  bool no_reply = false;   // kRelease only: the store sends no reply (errors are logged there)
  std::string name;        // kOpen: service name
  std::string instance;    // kOpen: server instance name (a restarted server reuses it)
};

struct Reply {
  Op op = Op::kGrant;
  uint64_t seq = 0;
  StatusCode code = StatusCode::kOk;
  std::string message;  // why, when code != kOk
  // kOpen
  uint32_t service_id = 0;
  uint64_t epoch = 0;
  // kGrant
  uint64_t grant_id = 0;
  uint64_t addr = 0;
  uint64_t length = 0;
  uint32_t rkey = 0;
  uint32_t capacity = 0;
  bool created = false;
  // kList
  std::vector<uint64_t> clients;
  bool more = false;

  Status ToStatus() const;
};

// Printable ASCII, 1..kMaxName characters.
Status CheckName(std::string_view what, std::string_view name);

void Encode(const Request& r, std::span<std::byte, kRequestBytes> out);
Result<Request> DecodeRequest(std::span<const std::byte> in);
void Encode(const Reply& r, std::span<std::byte, kReplyBytes> out);
Result<Reply> DecodeReply(std::span<const std::byte> in);

}  // namespace vigil::ssr::wire
