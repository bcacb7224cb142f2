// Concurrency rules as checked annotations: clang's -Wthread-safety analysis reads these (the
// check `thread_safety_check` compiles the annotated files with it and fails on a violation);
// other compilers see empty macros.
//
//   vigil::Mutex mu_;
//   int n_ VIGIL_GUARDED_BY(mu_);             // read or written only with mu_ held
//   void Bump() VIGIL_REQUIRES(mu_);          // callers hold mu_
//   void Poll() VIGIL_EXCLUDES(mu_);          // callers must not hold mu_ (it takes it)
//   { vigil::MutexLock lock(mu_); ... }       // held for the scope
//
// std::mutex carries no annotations in libstdc++, hence the thin Mutex/MutexLock wrappers. A
// condition variable waits on a MutexLock through std::condition_variable_any; the analysis
// treats the wait as keeping the lock (it is held again when the wait returns).
#pragma once

#include <mutex>

#if defined(__clang__)
#define VIGIL_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define VIGIL_THREAD_ANNOTATION(x)
#endif

#define VIGIL_CAPABILITY(x) VIGIL_THREAD_ANNOTATION(capability(x))
#define VIGIL_SCOPED_CAPABILITY VIGIL_THREAD_ANNOTATION(scoped_lockable)
#define VIGIL_GUARDED_BY(x) VIGIL_THREAD_ANNOTATION(guarded_by(x))
#define VIGIL_PT_GUARDED_BY(x) VIGIL_THREAD_ANNOTATION(pt_guarded_by(x))
#define VIGIL_REQUIRES(...) VIGIL_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define VIGIL_EXCLUDES(...) VIGIL_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define VIGIL_ACQUIRE(...) VIGIL_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define VIGIL_RELEASE(...) VIGIL_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define VIGIL_TRY_ACQUIRE(...) VIGIL_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define VIGIL_RETURN_CAPABILITY(x) VIGIL_THREAD_ANNOTATION(lock_returned(x))
#define VIGIL_ASSERT_CAPABILITY(x) VIGIL_THREAD_ANNOTATION(assert_capability(x))
// Only where the analysis cannot follow (say why next to it).
#define VIGIL_NO_THREAD_SAFETY_ANALYSIS VIGIL_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace vigil {

class VIGIL_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() VIGIL_ACQUIRE() { mu_.lock(); }
  void unlock() VIGIL_RELEASE() { mu_.unlock(); }
  bool try_lock() VIGIL_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // Tells the analysis that the caller holds this mutex where it cannot see it (the same mutex
  // reached through another object); checks nothing at run time.
  void AssertHeld() const VIGIL_ASSERT_CAPABILITY(this) {}

 private:
  std::mutex mu_;
};

// Holds `mu` from construction to destruction; Unlock()/Lock() release and retake it in between
// (for blocking work that must not hold it). BasicLockable, so std::condition_variable_any can
// wait on it.
class VIGIL_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) VIGIL_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() VIGIL_RELEASE() {
    if (held_) mu_.unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() VIGIL_RELEASE() {
    held_ = false;
    mu_.unlock();
  }
  void Lock() VIGIL_ACQUIRE() {
    mu_.lock();
    held_ = true;
  }
  // For std::condition_variable_any, which releases and retakes the lock inside its wait.
  void lock() VIGIL_ACQUIRE() { Lock(); }
  void unlock() VIGIL_RELEASE() { Unlock(); }

 private:
  Mutex& mu_;
  bool held_ = true;
};

}  // namespace vigil
