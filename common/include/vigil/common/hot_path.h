// Marks code that must not allocate: the voter's polling path from a record's arrival to its
// verdict (voter/src/group.cc). A test's counting `operator new` (tests/unit/hot_path_test.cc)
// reads InHotPath() and fails on any allocation made inside; ColdPath lifts the mark where a
// fault is handled (logging, replacements, repairs), which may allocate.
//
// The mark is a thread-local counter: two increments per event, nothing else.
#pragma once

namespace vigil {

namespace internal {
inline thread_local int hot_path_depth = 0;
}  // namespace internal

inline bool InHotPath() noexcept { return internal::hot_path_depth > 0; }

class HotPath {
 public:
  HotPath() noexcept { ++internal::hot_path_depth; }
  ~HotPath() { --internal::hot_path_depth; }
  HotPath(const HotPath&) = delete;
  HotPath& operator=(const HotPath&) = delete;
};

class ColdPath {
 public:
  ColdPath() noexcept : saved_(internal::hot_path_depth) { internal::hot_path_depth = 0; }
  ~ColdPath() { internal::hot_path_depth = saved_; }
  ColdPath(const ColdPath&) = delete;
  ColdPath& operator=(const ColdPath&) = delete;

 private:
  int saved_;
};

}  // namespace vigil
