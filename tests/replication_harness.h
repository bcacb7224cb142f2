// Runs a replicated job in one process for the tests: the voter's Group, and replicas as threads
// (testing::ThreadLauncher) over any transport. Thread replicas are in-process stand-ins for
// replica processes: "killing" one makes its program fail at its next step, "hanging" one blocks
// it, as the tests' fault hooks arrange. The process path (SIGKILL/SIGSTOP) is tested with
// vigil-voter and vigil-node in the rxe tier.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "vigil/replica/runner.h"
#include "vigil/testing/thread_launcher.h"
#include "vigil/transport/bootstrap.h"
#include "vigil/voter/group.h"
#include "vigil/workloads/workloads.h"

namespace vigil::testing {

// Called before each step of a thread replica (slot, incarnation, step number starting at 1).
using StepHook = std::function<void(uint16_t replica, uint32_t incarnation, uint64_t step,
                                    replica::ChannelContext& ctx)>;

struct JobSpec {
  voter::GroupOptions group;
  std::string workload = "crc32";
  std::string susan_mode = "edges";
  std::string input;
  StepHook hook;  // optional
  // Optional: builds each replica incarnation's program instead of `workload`.
  std::function<std::unique_ptr<replica::Program>(uint16_t replica, uint32_t incarnation)> program;
  std::function<void(voter::Group&)> while_running;  // optional, runs on its own thread
  // Optional: runs before each incarnation is started, with the voter's bootstrap address
  // (e.g. an impostor trying to take the incarnation's slot first).
  std::function<void(const voter::LaunchSpec&, const std::string& voter)> before_launch;
  std::chrono::milliseconds verdict_timeout{10000};
  // Small input buffers: many input events per job, as a program reading in small pieces would.
  size_t input_bytes = 16 * 1024;
  // The replicas measure their breakdown (ThreadReplicaResult's CPU times and signalling wait).
  bool measure = false;
};

struct JobResult {
  voter::GroupReport report;
  std::string output;
  std::vector<testing::ThreadReplicaResult> replicas;  // how each incarnation ended
};

// Flips bit 2 of output pixel 1000 of susan's image in replica `victim`'s state before step
// `at`. SusanState holds eight uint32_t, the raw input (64 + 256 * 256 bytes), then the output
// image, whose header for a 200x150 image ("P5\n200 150\n255\n") takes 15 bytes.
inline StepHook FlipSusanOutputBit(uint16_t victim, uint64_t at, uint64_t pixel = 1000) {
  const uint64_t byte = replica::kStateMetaBytes + 8 * 4 + 64 + 256 * 256 + 15 + pixel;
  return [victim, at, byte](uint16_t r, uint32_t inc, uint64_t step, replica::ChannelContext& ctx) {
    if (r == victim && inc == 0 && step == at) ctx.FlipStateBit(byte * 8 + 2);
  };
}

// `voter_t` hosts the voter; `replica_t` the replicas (may be the same transport).
Result<JobResult> RunReplicatedJob(transport::Transport& voter_t, transport::Transport& replica_t,
                                   const JobSpec& spec);
// `n` pseudo-random bytes from `seed` (a linear congruential generator): job inputs for tests.
std::string PseudoRandomInput(size_t n, uint32_t seed = 12345);

// The same workload unreplicated (LocalContext): the reference output.
Result<std::string> RunUnreplicated(const std::string& workload, const std::string& susan_mode,
                                    const std::string& input);

}  // namespace vigil::testing
