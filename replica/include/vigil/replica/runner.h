// Runs a Program as one replica of a group: connects to the voter's bootstrap server under the
// service name the voter registered for this incarnation, sets up the signalling channel and
// the state regions, joins if it replaces an earlier incarnation, and runs the program.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "vigil/channel/endpoints.h"
#include "vigil/replica/context.h"
#include "vigil/transport/transport.h"

namespace vigil::replica {

struct ReplicaRunOptions {
  std::string voter;       // "host:port" of the voter's bootstrap server
  std::string service;     // the voter's name for this incarnation (ServiceName)
  std::string rpc_target;  // rpc method: where to call the voter
  std::string nonce;  // the incarnation's nonce from the voter: its hello and rpc events carry it
  uint32_t group = 0;
  uint16_t replica = 0;
  uint32_t incarnation = 0;  // > 0: a replacement, which joins the running group
  channel::ChannelOptions channel;
  transport::ConnectionOptions connection;
  std::chrono::milliseconds verdict_timeout{120000};
  size_t input_bytes = kDefaultInputBytes;  // the input buffer: the most one Read returns
  bool measure = false;  // fill ReplicaRunStats' signal_wait_ns and CPU times (benchmarks)
  // Raised by the launcher of a thread replica (which cannot be killed) to stop it: the replica
  // sends no further event, and a polling verdict wait ends at its next check (kAborted).
  std::shared_ptr<const std::atomic<bool>> stopped;
};

// The bootstrap service name of one replica incarnation.
std::string ServiceName(uint32_t group, uint16_t replica, uint32_t incarnation);

struct ReplicaRunStats {
  uint64_t setup_ns = 0;        // memory registration, channel set-up and connecting to the voter
  uint64_t signal_wait_ns = 0;  // with measure: waiting for verdicts
  uint64_t events = 0;
  uint64_t work_cpu_ns = 0;   // with measure: the program's CPU time outside signalling
  uint64_t state_cpu_ns = 0;  // with measure: the part of work_cpu_ns spent on state digests and
                              // checkpoint copies
};

// `on_ready` (optional) sees the context once it is connected, e.g. to arm fault injection;
// `stats` (optional) receives the context's counters when the run ends.
Status RunReplica(transport::Transport& transport, const ReplicaRunOptions& options,
                  Program& program, const std::function<void(ChannelContext&)>& on_ready = nullptr,
                  ReplicaRunStats* stats = nullptr);

}  // namespace vigil::replica
