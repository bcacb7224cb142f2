// A server's session with the SSR store: one queue pair (the store puts its end in a protection
// domain of its own), small request/reply messages by SEND (wire.h), and the client SSRs read and
// written one-sided with RDMA READ/WRITE while the server holds a grant for them.
//
// Threads: one thread at a time (the server framework serializes requests on a session).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/common/status.h"
#include "vigil/security/tls.h"
#include "vigil/ssr/slot.h"
#include "vigil/ssr/wire.h"
#include "vigil/transport/transport.h"

namespace vigil::ssr {

struct SessionOptions {
  std::string store;     // host:port of the store's bootstrap server
  std::string service;   // which service's SSRs (1..47 printable characters)
  std::string instance;  // this server instance; a restarted server reuses it
  transport::ConnectionOptions connection;
  std::chrono::milliseconds timeout{10000};  // per request to the store, and per RDMA operation
  uint32_t spin_us = 20;                     // poll this long before sleeping on a completion
  // With TLS the certificate must be vigil://server/SERVICE: a session serves only its own.
  security::TlsSetting tls;  // unset: the process's
};

// The right to reach one client's SSR until it is released (or revoked by the store).
struct Grant {
  uint64_t id = 0;
  uint64_t client = 0;
  transport::RemoteRegion region;  // exactly the client's SSR: both slots
  bool created = false;            // the SSR was allocated by this grant (no state yet)
};

class StoreSession {
 public:
  static Result<std::unique_ptr<StoreSession>> Open(transport::Transport& transport,
                                                    const SessionOptions& options);
  // Closes the session if it still works (waiting at most a second for the store).
  ~StoreSession();
  // Tells the store this session is done: its grants are revoked and the store ends it at once
  // (a server that simply disappears keeps its session at the store until its instance opens a
  // new one or the store's liveness probe finds it gone). Waits at most `timeout` for the answer;
  // the session is unusable afterwards.
  Status Close(std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));

  // Drops the connection without telling the store, as a server whose process died would (the
  // store finds out by its liveness probe). The session is unusable afterwards.
  void Abandon();

  uint32_t service_id() const { return service_id_; }
  uint64_t epoch() const { return epoch_; }  // grows with every session the service opens
  uint32_t capacity() const { return capacity_; }
  size_t region_bytes() const { return RegionBytes(capacity_); }
  Identity identity(uint64_t client) const { return {service_id_, client}; }
  // True once an operation failed on the connection: open a new session.
  bool broken() const { return !broken_.ok(); }

  Result<Grant> Acquire(uint64_t client, bool create);
  // wait=false returns once the request is posted (the store handles requests in order, so the
  // next request on this session sees it done); wait=true returns after the store confirmed.
  Status Release(const Grant& grant, bool wait = false);
  Status Free(uint64_t client);
  Result<std::vector<uint64_t>> Clients();

  // RDMA READ of the whole SSR into `mirror` (region_bytes() long).
  Status Load(const Grant& grant, std::span<std::byte> mirror);
  // Writes `payload` as the next version into `mirror` (which must hold the SSR's current bytes)
  // and RDMA-WRITEs the changed slot; returns when the WRITE completed.
  Result<Written> Save(const Grant& grant, std::span<std::byte> mirror,
                       std::span<const std::byte> payload);

  // Test hook: one RDMA WRITE of `len` bytes to any address and key; returns the completion's
  // status (what the NIC said), or an error if it could not be posted.
  Result<transport::WcStatus> ProbeWrite(transport::RemoteAddr dst, size_t len);

 private:
  StoreSession() = default;
  Status Post(wire::Request& req);
  Result<wire::Reply> Call(wire::Request req);
  // The next send (or receive) completion: polled for spin_us, then waited for on the
  // completion channel, up to the timeout.
  Result<transport::Completion> NextCompletion(bool send, std::string_view what);
  Result<transport::Completion> AwaitSend(uint64_t wr_id);
  Status Fail(Status st);

  SessionOptions options_;
  std::unique_ptr<transport::Connection> conn_;
  std::unique_ptr<transport::RegisteredBuffer> msgs_;     // request + reply slots
  std::unique_ptr<transport::RegisteredBuffer> staging_;  // RDMA READ/WRITE of SSR bytes
  uint32_t service_id_ = 0;
  uint64_t epoch_ = 0;
  uint32_t capacity_ = 0;
  uint64_t next_seq_ = 1;
  uint64_t next_wr_ = 1;
  size_t unanswered_ = 0;  // requests posted whose reply has not been consumed
  // Requests posted since the last reply arrived: request buffers are reused round-robin, and a
  // buffer may be rewritten only once a later reply proves the store received its request.
  size_t posted_since_reply_ = 0;
  Status broken_;
};

}  // namespace vigil::ssr
