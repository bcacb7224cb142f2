// Not part of any build: thread_safety_check.sh compiles it to show that the check can fail.
// Each function below breaks one rule; clang's -Wthread-safety must report every one of them.
#include "vigil/common/thread_annotations.h"

namespace {

class Counter {
 public:
  void UnlockedWrite() { n_ = 1; }     // writes a guarded field without its mutex
  void CallsWithoutLock() { Bump(); }  // calls a REQUIRES function without the mutex
  void TakesTwice() VIGIL_REQUIRES(mu_) { vigil::MutexLock lock(mu_); }  // takes it while held

 private:
  void Bump() VIGIL_REQUIRES(mu_) { ++n_; }
  vigil::Mutex mu_;
  int n_ VIGIL_GUARDED_BY(mu_) = 0;
};

}  // namespace

int main() {
  Counter c;
  c.UnlockedWrite();
  c.CallsWithoutLock();
  return 0;
}
