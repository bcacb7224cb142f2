// How vigil's busy-pollers wait: spin, then yield, then sleep. A poller that has waited longer
// than `spin_us` gives its core away (yield), and after 16x that long sleeps between checks, so
// idle pollers do not starve busy threads when there are fewer cores than pollers. spin_us = 0:
// spin forever (every poller has a core of its own).
//
// Waiting starts at the first check (PhaseAt or Pause), not at construction, so a poller whose
// first polls succeed never reads the clock: clock reads are not free (a system call where the
// clock source has no vDSO path, as in a qemu guest with an unstable TSC). LazyDeadline is a
// timeout that starts the same way.
#pragma once

#include <chrono>
#include <cstdint>
#include <thread>

namespace vigil {

class AdaptiveWait {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Phase { kSpin, kYield, kSleep };

  explicit AdaptiveWait(uint32_t spin_us) : spin_(std::chrono::microseconds(spin_us)) {}

  // Waiting starts again at the next check (the poller made progress).
  void Restart() { started_ = false; }

  // The phase `now`; the first check after construction or Restart() starts the wait.
  Phase PhaseAt(Clock::time_point now) {
    if (spin_.count() == 0) return Phase::kSpin;
    if (!started_) {
      start_ = now;
      started_ = true;
    }
    const auto waited = now - start_;
    if (waited < spin_) return Phase::kSpin;
    return waited < 16 * spin_ ? Phase::kYield : Phase::kSleep;
  }

  // Does what the phase says: nothing, yield, or sleep 50 us.
  void Pause(Clock::time_point now) {
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
  Clock::time_point start_{};
  bool started_ = false;
};

// A timeout that runs from its first check, so that a poll loop reads the clock only once what
// it waits for is late.
class LazyDeadline {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LazyDeadline(Clock::duration timeout) : timeout_(timeout) {}

  // The time left `now`, zero or less once the timeout has passed; the first call starts it.
  Clock::duration LeftAt(Clock::time_point now) {
    if (!started_) {
      deadline_ = now + timeout_;
      started_ = true;
    }
    return deadline_ - now;
  }

 private:
  Clock::duration timeout_;
  Clock::time_point deadline_{};
  bool started_ = false;
};

}  // namespace vigil
