// The voter's log of what a TMR group agreed since its last agreed checkpoint: for every event,
// the agreed digest, the verdict's argument and the bytes delivered with it (input, a system
// call's result). A replacement restarts from the checkpoint and is answered from here, its
// digests checked against the agreed ones, until it reaches the group (group.h, catch-up).
// Bounded: past `capacity` bytes the log is dropped until the next agreed checkpoint.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "vigil/replica/protocol.h"

namespace vigil::voter {

class CatchUpLog {
 public:
  struct Entry {
    uint64_t digest = 0;
    uint64_t arg = 0;
    replica::EventKind kind = replica::EventKind::kJoin;
    std::span<const std::byte> bytes;  // valid until the log changes
  };

  // `capacity`: bytes of entries and their data at most; 0 = no log (every Append fails).
  explicit CatchUpLog(uint64_t capacity) : capacity_(capacity) {}

  // Starts afresh after the agreed checkpoint at `event`: newcomers restart from there.
  void RestartAfter(uint64_t event);
  // Appends the next agreed event (number last() + 1). False, and the log dropped until the
  // next RestartAfter, when it would pass the capacity (or when it is already dropped).
  bool Append(uint64_t digest, uint64_t arg, replica::EventKind kind,
              std::span<const std::byte> bytes);
  // Forgets the events before `seq` (at an agreed checkpoint, those no lagging replica owes).
  // Keeps the storage.
  void DropBefore(uint64_t seq);
  // The group rolled back to the checkpoint at `event`: the events after it are forgotten.
  void RewindTo(uint64_t event);

  // Appending `bytes` more would grow the storage (an allocation): the log reuses its storage
  // once it has reached its high-water mark.
  bool Grows(size_t bytes) const {
    return entries_.size() == entries_.capacity() || data_.size() + bytes > data_.capacity();
  }
  // The agreed event `seq`, when the log holds it.
  std::optional<Entry> At(uint64_t seq) const;
  // True when a replica restarting from the checkpoint at `event` can be answered from here
  // up to the group's next event.
  bool Covers(uint64_t event) const { return capacity_ > 0 && ok_ && first_ <= event + 1; }
  bool ok() const { return ok_; }
  uint64_t first() const { return first_; }
  uint64_t last() const { return first_ + entries_.size() - 1; }  // first() - 1 when empty
  uint64_t capacity() const { return capacity_; }

 private:
  struct Stored {
    uint64_t digest = 0;
    uint64_t arg = 0;
    uint64_t offset = 0;  // of its bytes in data_
    uint64_t bytes = 0;
    replica::EventKind kind = replica::EventKind::kJoin;
  };
  void Clear();

  uint64_t capacity_;
  std::vector<Stored> entries_;
  std::vector<std::byte> data_;
  uint64_t first_ = 1;  // number of entries_[0]
  bool ok_ = true;      // false once over capacity, until the next RestartAfter
};

}  // namespace vigil::voter
