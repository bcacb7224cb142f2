#include "vigil/testing/thread_launcher.h"

#include "vigil/common/cpu.h"
#include "vigil/common/logging.h"
#include "vigil/replica/process.h"

namespace vigil::testing {

ThreadLauncher::ThreadLauncher(
    transport::Transport& transport, std::string voter, channel::ChannelOptions channel,
    std::chrono::milliseconds verdict_timeout, ProgramFactory factory,
    std::function<void(const voter::LaunchSpec&, replica::ChannelContext&)> on_ready)
    : transport_(transport),
      voter_(std::move(voter)),
      channel_(std::move(channel)),
      verdict_timeout_(verdict_timeout),
      factory_(std::move(factory)),
      on_ready_(std::move(on_ready)) {}

ThreadLauncher::~ThreadLauncher() { Join(); }

std::vector<ThreadReplicaResult> ThreadLauncher::Join() {
  std::vector<std::thread> threads;
  {
    MutexLock lock(mu_);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
  MutexLock lock(mu_);
  return results_;
}

Status ThreadLauncher::Start(const voter::LaunchSpec& s) {
  auto killed = std::make_shared<std::atomic<bool>>(false);
  VIGIL_ASSIGN_OR_RETURN(std::unique_ptr<replica::Program> program, factory_(s, killed));
  MutexLock lock(mu_);
  killed_[{s.replica, s.incarnation}] = killed;
  threads_.emplace_back([this, s, killed, program = std::move(program)]() mutable {
    replica::ReplicaRunOptions o;
    o.voter = voter_;
    o.service = s.service;
    o.rpc_target = s.rpc_target;
    o.nonce = s.nonce;
    o.group = s.group;
    o.replica = s.replica;
    o.incarnation = s.incarnation;
    o.channel = channel_;
    o.verdict_timeout = verdict_timeout_;
    o.input_bytes = input_bytes_;
    o.measure = measure_;
    o.stopped = killed;
    ThreadReplicaResult r;
    r.spec = s;
    if (!cpus_.empty()) {
      if (Status st = PinThisThread(cpus_[s.replica % cpus_.size()]); !st.ok()) {
        log::Get("replica")->warn("thread replica {} not pinned: {}", s.replica, st.ToString());
      }
    }
    replica::ReplicaRunStats stats;
    const auto t0 = std::chrono::steady_clock::now();
    r.status = replica::RunReplica(
        transport_, o, *program,
        [&](replica::ChannelContext& ctx) {
          if (on_ready_) on_ready_(s, ctx);
        },
        &stats);
    r.wall_ns = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
            .count());
    r.setup_ns = stats.setup_ns;
    r.work_cpu_ns = stats.work_cpu_ns;
    r.state_cpu_ns = stats.state_cpu_ns;
    r.signal_wait_ns = stats.signal_wait_ns;
    r.events = stats.events;
    log::Get("replica")->debug("thread replica {} incarnation {} ended: {}", s.replica,
                               s.incarnation, r.status.ToString());
    MutexLock l(mu_);
    results_.push_back(std::move(r));
  });
  return Status::Ok();
}

bool ThreadLauncher::Alive(uint16_t replica, uint32_t incarnation) {
  MutexLock lock(mu_);
  for (const auto& r : results_) {
    if (r.spec.replica == replica && r.spec.incarnation == incarnation) return false;
  }
  return true;
}

void ThreadLauncher::Stop(uint16_t replica, uint32_t incarnation) {
  MutexLock lock(mu_);
  auto it = killed_.find({replica, incarnation});
  if (it != killed_.end()) *it->second = true;
}

}  // namespace vigil::testing
