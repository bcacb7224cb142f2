// The voter's interface to what carries out an unmodified program's agreed system calls
// (vigil-run's executor implements it); no dependency on the group itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "vigil/common/status.h"

namespace vigil::voter {

// Bytes an agreed event carries that the replicas left in their input buffers instead of
// sending them in the event (a large output or write): how many, and their xxh3 digest, which
// the event (and so the vote) carries. The voter RDMA-READs them from a replica that voted for
// them.
struct Aside {
  uint64_t bytes = 0;
  uint64_t digest = 0;
};

// What the voter does with the agreed system calls of an unmodified program (vigil-run; the
// implementation is run/executor.h). Called with the group's lock held, one call at a time.
class SyscallExecutor {
 public:
  virtual ~SyscallExecutor() = default;
  struct Outcome {
    int64_t value = 0;  // the call's result, -errno on failure
    size_t bytes = 0;   // result bytes placed in `result` (delivered into every replica)
  };
  // nullopt: the record carries its bytes itself.
  using Aside = voter::Aside;
  virtual Result<std::optional<Aside>> BytesAside(std::span<const std::byte> record) = 0;
  // Executes (or decides) the agreed call once; `aside` holds the bytes BytesAside announced
  // (RDMA-read from a replica that voted for the call, digest checked), else it is empty. An
  // error fails the group: an unsupported call, a malformed record; the message names the call.
  virtual Result<Outcome> Execute(uint64_t nr, uint64_t piece, std::span<const std::byte> record,
                                  std::span<const std::byte> aside,
                                  std::span<std::byte> result) = 0;
  // The replicas agreed on a checkpoint; a later rollback returns to it.
  virtual Status Checkpoint() = 0;
  // The replicas roll back to the last agreed checkpoint (an error fails the group).
  virtual Status Rollback() = 0;
};

}  // namespace vigil::voter
