// The SSR store: one arena of Server State Regions and the sessions of the servers that use them.
//
// Arena: a header, a service table (name, id, epoch), an entry table (which service and client
// owns SSR i) and the SSRs themselves, packed densely (every SSR has the same payload capacity;
// two slots of 48-byte header + capacity each, see slot.h). Anonymous memory, or a file mapped
// shared so that the store's state survives a restart of the store process.
//
// Sessions: every server connects to the bootstrap service "ssr" and gets a queue pair in a
// protection domain of its own. A grant registers exactly one client's SSR in that domain and
// hands the key to the server; release deregisters it. So a server can reach a client's SSR only
// through its own connection, only between grant and release, and never outside that SSR: the
// NIC enforces all three. A later grant of the same SSR to another session revokes the earlier
// one. A session whose connection breaks (a remote access error breaks both ends) is closed and
// all its grants revoked; the server opens a new session. An idle session is probed now and then
// (StoreOptions::probe_idle_ms), so that one whose server vanished without closing ends too.
// Nothing a server sends is trusted: the store reads only fixed-size messages, validated field by
// field.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "vigil/common/status.h"
#include "vigil/common/thread_annotations.h"
#include "vigil/ssr/wire.h"
#include "vigil/transport/bootstrap.h"
#include "vigil/transport/transport.h"

namespace vigil::ssr {

struct StoreOptions {
  size_t arena_bytes = 64ull << 20;  // the whole arena, tables included
  uint32_t capacity = 4096;          // payload bytes per slot of every SSR
  uint32_t max_services = 64;
  // SSRs one service may hold (a grant that would create one more is RESOURCE_EXHAUSTED);
  // 0: no quota but the arena's size.
  uint32_t max_ssrs_per_service = 0;
  // Server sessions open at once (each holds a queue pair and a thread); one more is refused
  // with RESOURCE_EXHAUSTED naming the cap.
  uint32_t max_sessions = 256;
  // A session that sent nothing for this long is probed: the store posts a zero-length RDMA
  // WRITE on its queue pair (the server's side does nothing; its NIC acknowledges). A server that
  // is gone (its process ended without closing, its host died) does not acknowledge: the session
  // ends and its grants are revoked, freeing its slot under max_sessions. 0: never probe.
  uint32_t probe_idle_ms = 30000;
  std::string arena_file;  // empty: anonymous memory (lost when the store stops)
  std::string node_name = "ssr-store";
  // After each request, a session polls for the next one this long before it sleeps on the
  // completion channel (0: always sleep). Trades CPU for grant latency.
  uint32_t poll_us = 200;
};

struct ServiceStat {
  std::string name;
  uint32_t id = 0;
  uint64_t epoch = 0;
  size_t clients = 0;
};

struct SessionStat {
  uint64_t id = 0;
  std::string peer, service, instance;
  size_t grants = 0;
};

struct StoreStats {
  size_t arena_bytes = 0;
  size_t ssr_bytes = 0;       // bytes one SSR occupies (both slots)
  size_t entries = 0;         // SSRs the arena can hold
  size_t used = 0;            // SSRs allocated
  size_t overhead_bytes = 0;  // per SSR: slot headers, padding and the entry-table row
  size_t sessions = 0;
  size_t grants = 0;  // live
  uint64_t grants_total = 0;
  uint64_t revoked_by_steal = 0;  // grants revoked because another session was granted the SSR
  uint64_t sessions_broken = 0;   // sessions closed because their connection failed
  uint64_t probes = 0;            // liveness probes of idle sessions (probe_idle_ms)
  uint64_t probes_failed = 0;     // ... that found the server gone (counted in sessions_broken)
  uint64_t bad_requests = 0;
  // Time the store spent handling grants and releases (registration and deregistration).
  std::chrono::nanoseconds grant_time{0}, release_time{0};
  uint64_t releases_total = 0;
  std::vector<ServiceStat> services;
  std::vector<SessionStat> session_list;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Create(transport::Transport& transport,
                                               const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Accepts sessions through `server` (service kBootstrapService) and serves the control
  // service vigil.ssr.v1.SsrStore on its port. Call before server.Start().
  void Attach(transport::BootstrapServer& server);
  // Closes every session (revoking all grants). Idempotent; the destructor calls it.
  void Shutdown();

  StoreStats Stats() const;
  uint32_t capacity() const { return capacity_; }
  bool restored() const { return restored_; }

  // The raw bytes of a client's SSR, for operators' inspection and corruption tests.
  Result<std::span<std::byte>> RegionOf(std::string_view service, uint64_t client);

 private:
  class Session;
  class Control;
  struct ServiceRow;  // the arena's service table
  Store(transport::Transport& transport, const StoreOptions& options);
  Status Map();
  Status Format() VIGIL_REQUIRES(mu_);
  Status Load() VIGIL_REQUIRES(mu_);
  Result<std::vector<transport::RemoteRegion>> Accept(
      std::unique_ptr<transport::ProtectionDomain> domain,
      std::unique_ptr<transport::Connection> conn, const transport::PeerInfo& peer);

  // Called on a session's thread.
  wire::Reply Handle(Session& s, std::span<const std::byte> in, bool& reply_wanted);
  Status Dispatch(Session& s, const wire::Request& req, wire::Reply& r);
  void SessionBroken();
  void Probed(bool alive);
  void SessionEnded(Session& s, const std::string& why);
  // With mu_ held: every grant of `s` deregistered; returns how many there were.
  size_t RevokeAll(Session& s) VIGIL_REQUIRES(mu_);
  ServiceRow* ServiceRows() const;
  // The id of the service called `name`, or 0.
  uint32_t FindService(std::string_view name) const;
  // With mu_ held: a service row for `name`, new or reclaimed (one that holds no SSR and serves
  // no session); the table's size if every row is taken.
  size_t TakeServiceRow(std::string_view name) VIGIL_REQUIRES(mu_);
  std::byte* RegionAt(size_t index) const;

  transport::Transport& transport_;
  StoreOptions options_;
  std::unique_ptr<Control> control_;
  uint32_t capacity_;
  size_t region_bytes_ = 0;
  size_t entries_ = 0;
  std::byte* arena_ = nullptr;
  size_t mapped_bytes_ = 0;
  int fd_ = -1;
  bool restored_ = false;
  // Offsets of the tables inside the arena.
  size_t services_off_ = 0;
  size_t entries_off_ = 0;
  size_t regions_off_ = 0;

  mutable Mutex mu_;  // everything below, and the tables in the arena
  std::map<std::pair<uint32_t, uint64_t>, size_t> index_
      VIGIL_GUARDED_BY(mu_);                             // (service, client) -> entry
  std::vector<size_t> free_ VIGIL_GUARDED_BY(mu_);       // free entries (stack)
  std::vector<Session*> holders_ VIGIL_GUARDED_BY(mu_);  // per entry: session holding a grant
  std::vector<size_t> ssrs_ VIGIL_GUARDED_BY(mu_);       // per service row: SSRs it holds
  std::map<uint64_t, std::unique_ptr<Session>> sessions_ VIGIL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Session>> closed_
      VIGIL_GUARDED_BY(mu_);  // joined lazily, outside the lock
  uint64_t next_session_ VIGIL_GUARDED_BY(mu_) = 1;
  uint64_t next_grant_ VIGIL_GUARDED_BY(mu_) = 1;
  StoreStats counters_ VIGIL_GUARDED_BY(mu_);
  bool shut_down_ VIGIL_GUARDED_BY(mu_) = false;
};

}  // namespace vigil::ssr
