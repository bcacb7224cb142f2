// The supervisor's view of one server incarnation's liveness: the Restartable/Health call with a
// deadline, and what its answers mean (node/src only). Called by the supervisor's thread only.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "vigil/node/supervisor.h"

namespace vigil::node {

class HealthProbe {
 public:
  using Clock = std::chrono::steady_clock;
  HealthProbe(const std::string& target, const ProbePolicy& policy, Clock::time_point started);
  ~HealthProbe();

  // Probes once at `now`: empty while the server is alive, else why it is hung.
  std::string Check(Clock::time_point now);
  bool answered() const { return answered_; }  // at least one probe was answered

 private:
  struct Stub;
  std::unique_ptr<Stub> stub_;
  std::string target_;
  ProbePolicy policy_;
  Clock::time_point started_;
  bool answered_ = false;
  uint32_t missed_ = 0;  // in a row
  uint64_t completed_ = 0;
  std::optional<Clock::time_point> stalled_since_;  // calls in flight, none completed since
  std::string error_;                               // why there is no stub
};

}  // namespace vigil::node
