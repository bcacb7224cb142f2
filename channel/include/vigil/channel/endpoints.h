// Setting up either end of a replica's signalling channel, for any method, around a bootstrap
// connection (bootstrap.h): what each end advertises, what it does before the connection is up
// (notify posts its receives) and after (rings learn where to write). The voter and the replica
// runtime both use this, so a method is chosen by a name in a config or on a command line.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/channel/channel.h"
#include "vigil/transport/bootstrap.h"

namespace vigil::channel {

enum class Method { kPolling, kNotify, kRpc };
Result<Method> ParseMethod(std::string_view name);  // "polling" | "notify" | "rpc"
std::string_view MethodName(Method m);

struct ChannelOptions {
  Method method = Method::kPolling;
  uint32_t slots = 16;          // polling: ring slots; notify: receives kept posted
  uint32_t max_payload = 4136;  // bytes of record payload each way
  uint32_t spin_us = 20;        // spin before yielding (ring.h)
  // rpc: where the voter's gRPC server listens ("host:0" picks a port); the replica calls
  // rpc_target() of the voter end.
  std::string rpc_listen = "127.0.0.1:0";
  // A flag that, raised, ends the replica's blocking waits (RingConfig::cancel; notify and rpc
  // end a wait for a verdict kCancelGrace later).
  const std::atomic<bool>* cancel = nullptr;
  // rpc: the replica incarnation's nonce, sent with every event and required by the voter end.
  std::string token = {};
};
Status ValidateChannelOptions(const ChannelOptions& o);

class VoterEnd {
 public:
  virtual ~VoterEnd() = default;
  static Result<std::unique_ptr<VoterEnd>> Create(transport::Transport& transport,
                                                  const ChannelOptions& options);
  virtual std::vector<transport::RemoteRegion> regions() const = 0;
  // Once the connection exists (in the bootstrap acceptor), before answering the replica.
  virtual Status Attach(transport::Connection& conn, const transport::PeerInfo& peer) = 0;
  virtual VoterChannel& channel() = 0;
  // rpc: "host:port" the replica calls; empty for the RDMA methods.
  virtual std::string rpc_target() const { return {}; }
};

class ReplicaEnd {
 public:
  virtual ~ReplicaEnd() = default;
  static Result<std::unique_ptr<ReplicaEnd>> Create(transport::Transport& transport,
                                                    const ChannelOptions& options,
                                                    const std::string& rpc_target);
  virtual std::vector<transport::RemoteRegion> regions() const = 0;
  // Before the connection is connected (DialOptions::before_connect).
  virtual Status Prepare(transport::Connection&) { return Status::Ok(); }
  // After Dial returned.
  virtual Status Attach(transport::Connection& conn, const transport::PeerInfo& peer) = 0;
  virtual ReplicaChannel& channel() = 0;
};

}  // namespace vigil::channel
