// Restartable servers whose per-client state lives in Server State Regions (SSRs) in the SSR
// store. A service implements Service; RestartableServer runs it behind the gRPC service
// vigil.server.v1.Restartable and does the rest:
//   - per call: grant of the calling client's SSR, an RDMA READ of it and validation of what it
//     holds, the request executed once (a retried request id is answered from the reply recorded
//     in the SSR), the new state and reply saved to the SSR by RDMA WRITE before the reply
//     leaves, release, and the framework's copies of the state zeroed;
//   - isolation: between calls the server holds no client's state. A client's state is in the
//     server's memory only while that client's call runs, so a stray write while serving client
//     B cannot reach client A's state, nor be saved into A's SSR (A's SSR is written only under
//     A's grant, from state read from A's SSR in that same call);
//   - start-up: per-client services need nothing; all-clients services read and validate every
//     client's SSR before serving and keep only the table they derive from them (e.g. which
//     client holds which lock). A client whose state conflicts with another's (adopted in client
//     id order) gets a reset record in its SSR, under its own grant and before any call is
//     served: the only write to an SSR outside a call of its client;
//   - a client's SSR that fails validation resets that client's session only (the call answers
//     with `reset` set and code DATA_LOSS); every other client continues untouched.
// Fail-stop: when saving to the store fails, the server exits (code 75); its supervisor
// restarts it and the new instance recovers from the SSRs, so nothing half-done survives.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/common/status.h"
#include "vigil/common/thread_annotations.h"
#include "vigil/security/tls.h"
#include "vigil/ssr/session.h"
#include "vigil/transport/transport.h"

namespace grpc {
class Server;
}

namespace vigil::server {

enum class Recovery { kPerClient, kAllClients };

class Service {
 public:
  virtual ~Service() = default;
  virtual std::string_view name() const = 0;
  virtual Recovery recovery() const = 0;
  // Range checks on a client's recovered state (the SSR's CRC has already passed). An error
  // resets that client's session.
  virtual Status Validate(uint64_t client, std::string_view state) = 0;
  // All-clients services: called at start-up with every client's validated state. An error
  // (e.g. a lock already owned by another client) resets that client's session.
  virtual Status Adopt(uint64_t client, std::string_view state) {
    static_cast<void>(client);
    static_cast<void>(state);
    return Status::Ok();
  }
  // Executes one request against the client's state (changed in place; it must stay within
  // `state_limit` bytes, and `reply` within kMaxReply). The returned status is the service's
  // answer (sent to the client); `reply` is its body. A service must not keep `state` (or
  // anything derived from it beyond what all-clients recovery derives) after it returns.
  virtual Status Handle(uint64_t client, std::string& state, std::string_view request,
                        std::string& reply, size_t state_limit) = 0;
  // The client is gone (its SSR is about to be freed), or its session was reset: drop what was
  // derived from its state.
  virtual void Forget(uint64_t client) { static_cast<void>(client); }
};

// State limit of a server run without a store (benchmark baseline).
inline constexpr uint32_t kVolatileCapacity = 4096;

struct ServerOptions {
  std::string listen = "127.0.0.1:0";  // gRPC address for clients
  // .service is filled from the Service. An empty .store address runs the server WITHOUT an
  // SSR store: state in process memory only, lost on a crash (the benchmark's baseline).
  ssr::SessionOptions store;
  size_t max_request = 64 << 10;
  // Fault injection for campaigns (vigil-server --inject-crash-after-save): the probability
  // that the server SIGKILLs itself right after a call's new record reached the client's SSR and
  // before the reply leaves, the window in which exactly-once rests on the recorded reply.
  double crash_after_save = 0;
  security::TlsSetting tls;  // the listening port's (unset: the process's)
};

struct ServerStats {
  uint64_t calls = 0;
  uint64_t executed = 0;
  uint64_t replayed = 0;
  uint64_t resets = 0;
  uint64_t loads = 0;  // client states read from SSRs (at start-up and one per call)
  std::chrono::microseconds startup_recovery{0};  // all-clients: time to read every SSR
  // Time spent waiting for the store, summed: the grant round trips (one per call), the RDMA
  // READs and validation of SSRs (one per call; `loads` counts them) and the RDMA WRITEs of new
  // records (one per executed call).
  std::chrono::nanoseconds grant_time{0}, load_time{0}, save_time{0};
};

// The record the framework keeps in a client's SSR payload: the last request's id, status and
// reply (for exactly-once), then the service's state. Public for tests.
inline constexpr size_t kRecordHeaderBytes = 24;
inline constexpr size_t kMaxError = 200;
inline constexpr size_t kMaxReply = 2048;
// The state a service may keep per client in an SSR of `capacity` payload bytes.
size_t StateLimit(uint32_t capacity);

struct Record {
  uint64_t request_id = 0;
  StatusCode code = StatusCode::kOk;
  std::string error;
  std::string reply;
  std::string state;
};
std::string EncodeRecord(const Record& r);
Result<Record> DecodeRecord(std::string_view bytes);

class RestartableServer {
 public:
  // `transport` reaches the SSR store; null only for a server without one (options.store.store
  // empty: the benchmarks' baseline).
  static Result<std::unique_ptr<RestartableServer>> Start(transport::Transport* transport,
                                                          std::unique_ptr<Service> service,
                                                          ServerOptions options);
  ~RestartableServer();
  int port() const { return port_; }
  uint64_t instance() const { return instance_; }  // random, drawn at start (Health)
  uint64_t epoch() const;
  uint32_t capacity() const;
  ServerStats Stats() const;
  void Shutdown();

 private:
  class Rpc;
  struct Reply {
    uint64_t request_id = 0;
    StatusCode code = StatusCode::kOk;
    std::string error;
    std::string body;
    bool replayed = false;
    bool reset = false;
    bool recorded = false;  // the answer is the client's record (executed or replayed)
  };
  // One client's state while the server serves it (or reads it at start-up): the SSR's bytes
  // and the record decoded from them. Reused from call to call, zeroed in between.
  struct Visit {
    std::vector<std::byte> mirror;
    Record record;
    void Wipe();
  };
  RestartableServer(std::unique_ptr<Service> service, ServerOptions options);
  Status RecoverAll() VIGIL_EXCLUDES(mu_);
  Status Listen();
  // Reads the client's SSR (granted) into `v`, resetting the record when it does not validate.
  Status LoadClient(const ssr::Grant& grant, Visit& v) VIGIL_REQUIRES(mu_);
  // A record that says the client's session was reset and the client has not been told yet.
  static bool ResetPending(const Record& r);
  // Replaces the client's record by a pending reset, saying `what` went wrong and why.
  void MarkReset(uint64_t client, Record& r, std::string_view what, const Status& why)
      VIGIL_REQUIRES(mu_);
  // RDMA-WRITEs `r` as the client's next SSR version (`v.mirror` updated).
  Status SaveRecord(const ssr::Grant& grant, Visit& v, const Record& r) VIGIL_REQUIRES(mu_);
  Result<Reply> Call(uint64_t client, uint64_t request_id, uint64_t last_recorded,
                     std::string_view body) VIGIL_EXCLUDES(mu_);
  // The protocol of one call against the client's record `rec`, wherever it is kept: replay,
  // refusal of an old request, a reset reported, or the request executed. Sets `next` to the
  // record to keep when `save` comes back true.
  Reply Decide(uint64_t client, Record& rec, uint64_t request_id, uint64_t last_recorded,
               std::string_view body, Record& next, bool& save) VIGIL_REQUIRES(mu_);
  Status Bye(uint64_t client) VIGIL_EXCLUDES(mu_);
  [[noreturn]] void FailStop(const Status& why);

  std::unique_ptr<Service> service_;
  ServerOptions options_;
  std::unique_ptr<ssr::StoreSession> session_;
  std::unique_ptr<Rpc> rpc_;
  std::unique_ptr<grpc::Server> grpc_;
  int port_ = 0;
  uint64_t instance_ = 0;

  mutable Mutex mu_;  // one request at a time (the session is single-threaded)
  // For the supervisor's Health probe, read without mu_ (gRPC threads).
  std::atomic<uint64_t> completed_{0};
  std::atomic<uint32_t> in_flight_{0};
  Visit visit_ VIGIL_GUARDED_BY(mu_);  // the client being served; empty between calls
  std::minstd_rand crash_rng_ VIGIL_GUARDED_BY(mu_);  // for options_.crash_after_save
  // Without a store only (the benchmarks' baseline): every client's record, in process memory.
  std::map<uint64_t, Record> volatile_ VIGIL_GUARDED_BY(mu_);
  ServerStats stats_ VIGIL_GUARDED_BY(mu_);
};

}  // namespace vigil::server
