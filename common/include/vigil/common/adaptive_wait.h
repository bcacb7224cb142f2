// How vigil's busy-pollers wait: spin, then yield, then sleep. A poller that has waited longer
// than `spin_us` gives its core away (yield), and after 16x that long sleeps between checks, so
// idle pollers do not starve busy threads when there are fewer cores than pollers. spin_us = 0:
// spin forever (every poller has a core of its own).
#pragma once

#include <chrono>
#include <cstdint>
#include <thread>

namespace vigil {

class AdaptiveWait {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Phase { kSpin, kYield, kSleep };

  explicit AdaptiveWait(uint32_t spin_us, Clock::time_point start = Clock::now())
      : spin_(std::chrono::microseconds(spin_us)), start_(start) {}

  // Waiting starts again (the poller made progress).
  void Restart(Clock::time_point now) { start_ = now; }

  Phase PhaseAt(Clock::time_point now) const {
    if (spin_.count() == 0) return Phase::kSpin;
    const auto waited = now - start_;
    if (waited < spin_) return Phase::kSpin;
    return waited < 16 * spin_ ? Phase::kYield : Phase::kSleep;
  }

  // Does what the phase says: nothing, yield, or sleep 50 us.
  void Pause(Clock::time_point now) const {
    switch (PhaseAt(now)) {
      case Phase::kSpin:
        return;
      case Phase::kYield:
        std::this_thread::yield();
        return;
      case Phase::kSleep:
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        return;
    }
  }

 private:
  std::chrono::microseconds spin_;
  Clock::time_point start_;
};

}  // namespace vigil
