// How often something may fail before it is given up on, and how long to wait before the next
// restart: exponential backoff, and at most `max_failures` within a sliding `window`. Used for
// restarting servers in place and for replacing a replica that is faulty K times in a window.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>

#include "vigil/common/status.h"

namespace vigil {

struct FailurePolicy {
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{10000};
  uint32_t max_failures = 5;  // within `window`
  std::chrono::milliseconds window{60000};
};

class FailureBudget {
 public:
  using Clock = std::chrono::steady_clock;

  static Result<FailureBudget> Create(const FailurePolicy& policy);

  // Records a failure at `now` (time is injected: tests drive it). Returns the delay before the
  // next restart, or kResourceExhausted once more than max_failures fall inside the window.
  Result<std::chrono::milliseconds> OnFailure(Clock::time_point now);
  // Failures inside the window ending at `now`. A failure-free stretch as long as the window
  // empties it, which also resets the backoff.
  size_t failures_in_window(Clock::time_point now);

 private:
  explicit FailureBudget(const FailurePolicy& p) : policy_(p) {}
  void Expire(Clock::time_point now);

  FailurePolicy policy_;
  std::deque<Clock::time_point> failures_;
};

}  // namespace vigil
