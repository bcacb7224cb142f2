// What the cells of `vigil-bench faults` share: the outcome of one injection.
#pragma once

#include <cstdint>
#include <memory>

#include "harness.h"

namespace vigil::bench {

enum class Outcome { kMasked, kCorrected, kRolledBack, kRecovered, kFailedClosed, kSdc, kNotFired };
inline constexpr const char* kOutcomeNames[] = {
    "masked", "corrected", "rolled back", "recovered", "failed closed", "SDC", "not fired"};
inline constexpr int kOutcomes = 7;

// The SSR cell (workload kv, fault ssr-slot): an SSR store and a kv server in this process, on the
// campaign's transport; each injection runs three model-checking clients and flips one bit of one
// client's SSR (in the header or the record of either slot) before one of their calls.
// Outcomes: masked (every answer right), failed closed (the server found the corruption and reset
// that client's session: DATA_LOSS, the client starts over; every other answer right), SDC (any
// answer the clients' models disagree with, without a reset).
class SsrCell {
 public:
  static Result<std::unique_ptr<SsrCell>> Start(BenchSetup& setup);
  ~SsrCell();
  // Calls in one injection (the range of `at`), and the clients making them (of `victim`).
  static constexpr uint64_t kCalls = 60;
  static constexpr uint16_t kClients = 3;
  // One injection: the flip goes in before call `at` (1-based, over all clients' calls), at bit
  // `bit` modulo the victim's region; `seed` draws the calls. Without a flip when `at` is 0.
  Result<Outcome> Run(uint64_t seed, uint64_t at, uint64_t bit, uint16_t victim);

 private:
  struct Parts;
  explicit SsrCell(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> p_;
};

}  // namespace vigil::bench
