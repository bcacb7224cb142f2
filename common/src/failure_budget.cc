#include "vigil/common/failure_budget.h"

#include <fmt/format.h>

#include <algorithm>

namespace vigil {

Result<FailureBudget> FailureBudget::Create(const FailurePolicy& p) {
  if (p.initial_backoff.count() <= 0 || p.max_backoff < p.initial_backoff) {
    return InvalidArgument(
        fmt::format("restart backoff: initial {} ms must be > 0 and <= max {} ms",
                    p.initial_backoff.count(), p.max_backoff.count()));
  }
  if (p.max_failures == 0 || p.window.count() <= 0) {
    return InvalidArgument(
        fmt::format("failure budget: max_failures {} and window {} ms must be > 0", p.max_failures,
                    p.window.count()));
  }
  return FailureBudget(p);
}

void FailureBudget::Expire(Clock::time_point now) {
  while (!failures_.empty() && now - failures_.front() >= policy_.window) failures_.pop_front();
}

size_t FailureBudget::failures_in_window(Clock::time_point now) {
  Expire(now);
  return failures_.size();
}

Result<std::chrono::milliseconds> FailureBudget::OnFailure(Clock::time_point now) {
  Expire(now);
  failures_.push_back(now);
  if (failures_.size() > policy_.max_failures) {
    return ResourceExhausted(fmt::format("{} failures within {} ms exceed the budget of {}",
                                         failures_.size(), policy_.window.count(),
                                         policy_.max_failures));
  }
  // Backoff doubles with each failure still inside the window.
  const size_t shift = std::min<size_t>(failures_.size() - 1, 30);
  const auto backoff = policy_.initial_backoff * (int64_t{1} << shift);
  return std::min<std::chrono::milliseconds>(backoff, policy_.max_backoff);
}

}  // namespace vigil
