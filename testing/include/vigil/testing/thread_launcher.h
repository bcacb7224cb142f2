// Replicas as threads of the voter's process, each with the replica runtime's full path (its
// own bootstrap connection, channel end and registered state regions on `transport`). For tests
// and vigil-bench, where separate processes would add nothing but start-up time. A thread cannot
// be killed: Stop() raises the incarnation's `killed` flag. The replica runtime then sends no
// further event and ends a verdict wait 200 ms later on every method (channel::kCancelGrace: a
// verdict already on its way still arrives); a program (made by the factory) that runs long
// between events is expected to check the flag too.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "vigil/common/thread_annotations.h"
#include "vigil/replica/runner.h"
#include "vigil/voter/group.h"

namespace vigil::testing {

struct ThreadReplicaResult {
  voter::LaunchSpec spec;
  Status status;
  uint64_t wall_ns = 0;         // from start to end of the replica's run
  uint64_t setup_ns = 0;        // registering memory and connecting, before the program ran
  uint64_t work_cpu_ns = 0;     // with set_measure: the program's CPU time outside signalling
  uint64_t state_cpu_ns = 0;    // with set_measure: the part of it spent on state digests and
                                // checkpoint copies
  uint64_t signal_wait_ns = 0;  // with set_measure: time spent waiting for verdicts
  uint64_t events = 0;
};

class ThreadLauncher final : public voter::Launcher {
 public:
  using ProgramFactory = std::function<Result<std::unique_ptr<replica::Program>>(
      const voter::LaunchSpec&, std::shared_ptr<std::atomic<bool>> killed)>;
  // `on_ready` (optional) sees each replica's context once connected.
  ThreadLauncher(
      transport::Transport& transport, std::string voter, channel::ChannelOptions channel,
      std::chrono::milliseconds verdict_timeout, ProgramFactory factory,
      std::function<void(const voter::LaunchSpec&, replica::ChannelContext&)> on_ready = {});
  ~ThreadLauncher() override;  // raises every killed flag and joins the threads

  Status Start(const voter::LaunchSpec& spec) override;
  void Stop(uint16_t replica, uint32_t incarnation) override;
  bool Alive(uint16_t replica, uint32_t incarnation) override;  // its thread has not ended
  // Pin replica r's thread to cpus[r % size] (empty: not pinned).
  void set_cpus(std::vector<int> cpus) { cpus_ = std::move(cpus); }
  // Size of each replica's input buffer (default replica::kDefaultInputBytes).
  void set_input_bytes(size_t n) { input_bytes_ = n; }
  // Replicas measure their signalling wait and CPU time outside signalling (clock reads and
  // system calls per event).
  void set_measure(bool on) { measure_ = on; }
  // Joins the replica threads and returns what each incarnation reported.
  std::vector<ThreadReplicaResult> Join();

 private:
  transport::Transport& transport_;
  std::string voter_;
  channel::ChannelOptions channel_;
  std::chrono::milliseconds verdict_timeout_;
  size_t input_bytes_ = replica::kDefaultInputBytes;
  bool measure_ = false;
  std::vector<int> cpus_;
  ProgramFactory factory_;
  std::function<void(const voter::LaunchSpec&, replica::ChannelContext&)> on_ready_;
  Mutex mu_;
  std::map<std::pair<uint16_t, uint32_t>, std::shared_ptr<std::atomic<bool>>> killed_
      VIGIL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ VIGIL_GUARDED_BY(mu_);
  std::vector<ThreadReplicaResult> results_ VIGIL_GUARDED_BY(mu_);
};

}  // namespace vigil::testing
