// The client side of a restartable server. Every call carries the client's id and a request id;
// when the server dies or the connection drops, the call is suspended and retried (same request
// id) until the server answers or the call's deadline passes, so a restart is seen as a delay,
// never as an error, and the server executes each request exactly once.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "vigil/common/status.h"
#include "vigil/security/tls.h"

namespace vigil::server {

struct ClientOptions {
  std::string server;                         // host:port
  uint64_t client_id = 0;                     // 0: a random one
  std::chrono::milliseconds deadline{30000};  // per call, waiting out restarts included
  std::chrono::milliseconds attempt_timeout{5000};
  // With TLS, client_id must be the number the certificate names (vigil://client/42).
  security::TlsSetting tls;  // unset: the process's
};

// What the last call went through.
struct CallInfo {
  uint32_t attempts = 0;
  bool replayed = false;  // answered from the reply recorded before a restart
  bool reset = false;     // the server reset this client's session (its state was corrupted)
  uint64_t epoch = 0;     // the server's epoch that answered
  std::chrono::microseconds suspended{0};  // time spent waiting for the server to come back
};

class Client {
 public:
  static Result<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  ~Client();

  uint64_t id() const { return options_.client_id; }
  // The service's answer: its status (OK or the service's error) and body. kUnavailable only
  // when the server did not answer within the deadline (it stayed down or restarting); kDataLoss
  // (with last().reset) when the server had to reset this client's session.
  Result<std::string> Call(std::string_view body);
  const CallInfo& last() const { return last_; }
  // Ends the session: the server frees the client's SSR.
  Status Bye();

 private:
  struct Stub;
  explicit Client(ClientOptions options);
  ClientOptions options_;
  std::unique_ptr<Stub> stub_;
  uint64_t next_request_ = 1;
  uint64_t last_recorded_ = 0;  // the newest request the server recorded an answer to
  CallInfo last_;
};

}  // namespace vigil::server
