#include "vigil/channel/endpoints.h"

#include <fmt/format.h>

namespace vigil::channel {
namespace {

using transport::Connection;
using transport::PeerInfo;
using transport::RemoteRegion;

RingConfig RingFor(const ChannelOptions& o) {
  return RingConfig{
      .slots = o.slots,
      .slot_bytes = (o.max_payload + static_cast<uint32_t>(kSlotOverhead) + 7) / 8 * 8,
      .spin_us = o.spin_us,
      .cancel = o.cancel,
      .implicit_credit = true};  // request/response: see PollingReplica/PollingVoter
}

// Both ends of the polling method hold a reader (incoming ring) and a writer (outgoing ring).
struct RingPair {
  static Result<RingPair> Create(transport::Transport& t, const ChannelOptions& o) {
    RingPair p;
    VIGIL_ASSIGN_OR_RETURN(p.in, RingReader::Create(t, RingFor(o)));
    VIGIL_ASSIGN_OR_RETURN(p.out, RingWriter::Create(t, RingFor(o)));
    return p;
  }
  std::vector<RemoteRegion> regions() const { return {in->ring_region(), out->credit_region()}; }
  Status Attach(Connection& c, const PeerInfo& peer) {
    VIGIL_ASSIGN_OR_RETURN(RemoteRegion credit, peer.Region("ring-credit"));
    VIGIL_ASSIGN_OR_RETURN(RemoteRegion ring, peer.Region("signal-ring"));
    in->Attach(&c, credit);
    out->Attach(&c, ring);
    return Status::Ok();
  }
  std::unique_ptr<RingReader> in;
  std::unique_ptr<RingWriter> out;
};

class PollingVoterEnd final : public VoterEnd {
 public:
  explicit PollingVoterEnd(RingPair rings) : rings_(std::move(rings)) {}
  std::vector<RemoteRegion> regions() const override { return rings_.regions(); }
  Status Attach(Connection& c, const PeerInfo& peer) override {
    VIGIL_RETURN_IF_ERROR(rings_.Attach(c, peer));
    channel_ = PollingVoter(*rings_.in, *rings_.out);
    return Status::Ok();
  }
  VoterChannel& channel() override { return *channel_; }

 private:
  RingPair rings_;
  std::unique_ptr<VoterChannel> channel_;
};

class PollingReplicaEnd final : public ReplicaEnd {
 public:
  explicit PollingReplicaEnd(RingPair rings) : rings_(std::move(rings)) {}
  std::vector<RemoteRegion> regions() const override { return rings_.regions(); }
  Status Attach(Connection& c, const PeerInfo& peer) override {
    VIGIL_RETURN_IF_ERROR(rings_.Attach(c, peer));
    channel_ = PollingReplica(*rings_.out, *rings_.in);
    return Status::Ok();
  }
  ReplicaChannel& channel() override { return *channel_; }

 private:
  RingPair rings_;
  std::unique_ptr<ReplicaChannel> channel_;
};

NotifyConfig NotifyFor(const ChannelOptions& o) {
  return NotifyConfig{.depth = o.slots, .max_payload = o.max_payload};
}

class NotifyVoterEnd final : public VoterEnd {
 public:
  explicit NotifyVoterEnd(std::unique_ptr<NotifyEndpoint> e) : e_(std::move(e)) {}
  std::vector<RemoteRegion> regions() const override { return {}; }
  Status Attach(Connection& c, const PeerInfo&) override {
    VIGIL_RETURN_IF_ERROR(e_->Attach(&c));
    channel_ = NotifyVoter(*e_);
    return Status::Ok();
  }
  VoterChannel& channel() override { return *channel_; }

 private:
  std::unique_ptr<NotifyEndpoint> e_;
  std::unique_ptr<VoterChannel> channel_;
};

class NotifyReplicaEnd final : public ReplicaEnd {
 public:
  NotifyReplicaEnd(std::unique_ptr<NotifyEndpoint> e, const std::atomic<bool>* cancel)
      : e_(std::move(e)), channel_(NotifyReplica(*e_, cancel)) {}
  std::vector<RemoteRegion> regions() const override { return {}; }
  Status Prepare(Connection& c) override { return e_->Attach(&c); }
  Status Attach(Connection&, const PeerInfo&) override { return Status::Ok(); }
  ReplicaChannel& channel() override { return *channel_; }

 private:
  std::unique_ptr<NotifyEndpoint> e_;
  std::unique_ptr<ReplicaChannel> channel_;
};

// rpc: the RDMA connection still exists (the voter repairs state through it); events go over
// gRPC.
class RpcVoterEnd final : public VoterEnd {
 public:
  RpcVoterEnd(std::unique_ptr<VoterChannel> ch, std::string target)
      : channel_(std::move(ch)), target_(std::move(target)) {}
  std::vector<RemoteRegion> regions() const override { return {}; }
  Status Attach(Connection&, const PeerInfo&) override { return Status::Ok(); }
  VoterChannel& channel() override { return *channel_; }
  std::string rpc_target() const override { return target_; }

 private:
  std::unique_ptr<VoterChannel> channel_;
  std::string target_;
};

class RpcReplicaEnd final : public ReplicaEnd {
 public:
  explicit RpcReplicaEnd(std::unique_ptr<ReplicaChannel> ch) : channel_(std::move(ch)) {}
  std::vector<RemoteRegion> regions() const override { return {}; }
  Status Attach(Connection&, const PeerInfo&) override { return Status::Ok(); }
  ReplicaChannel& channel() override { return *channel_; }

 private:
  std::unique_ptr<ReplicaChannel> channel_;
};

}  // namespace

Result<Method> ParseMethod(std::string_view name) {
  if (name == "polling") return Method::kPolling;
  if (name == "notify") return Method::kNotify;
  if (name == "rpc") return Method::kRpc;
  return InvalidArgument(
      fmt::format("signalling method '{}' is not one of polling, notify, rpc", name.substr(0, 32)));
}

std::string_view MethodName(Method m) {
  switch (m) {
    case Method::kPolling:
      return "polling";
    case Method::kNotify:
      return "notify";
    case Method::kRpc:
      return "rpc";
  }
  return "unknown";
}

Status ValidateChannelOptions(const ChannelOptions& o) {
  if (o.max_payload < 64 || o.max_payload > 65536 - kSlotOverhead) {
    return InvalidArgument(fmt::format("channel max_payload = {} outside [64, {}]", o.max_payload,
                                       65536 - kSlotOverhead));
  }
  if (o.method == Method::kPolling) return ValidateRingConfig(RingFor(o));
  if (o.slots == 0 || o.slots > 4096) {
    return InvalidArgument(fmt::format("channel slots = {} outside [1, 4096]", o.slots));
  }
  return Status::Ok();
}

Result<std::unique_ptr<VoterEnd>> VoterEnd::Create(transport::Transport& t,
                                                   const ChannelOptions& o) {
  VIGIL_RETURN_IF_ERROR(ValidateChannelOptions(o));
  switch (o.method) {
    case Method::kPolling: {
      VIGIL_ASSIGN_OR_RETURN(RingPair rings, RingPair::Create(t, o));
      return std::unique_ptr<VoterEnd>(new PollingVoterEnd(std::move(rings)));
    }
    case Method::kNotify: {
      VIGIL_ASSIGN_OR_RETURN(auto e, NotifyEndpoint::Create(t, NotifyFor(o)));
      return std::unique_ptr<VoterEnd>(new NotifyVoterEnd(std::move(e)));
    }
    case Method::kRpc: {
      VIGIL_ASSIGN_OR_RETURN(auto ch, RpcVoter(o.rpc_listen, o.max_payload, o.token));
      const std::string host = o.rpc_listen.substr(0, o.rpc_listen.rfind(':'));
      const std::string target = fmt::format("{}:{}", host, RpcVoterPort(*ch));
      return std::unique_ptr<VoterEnd>(new RpcVoterEnd(std::move(ch), target));
    }
  }
  return Internal("unknown method");
}

Result<std::unique_ptr<ReplicaEnd>> ReplicaEnd::Create(transport::Transport& t,
                                                       const ChannelOptions& o,
                                                       const std::string& rpc_target) {
  VIGIL_RETURN_IF_ERROR(ValidateChannelOptions(o));
  switch (o.method) {
    case Method::kPolling: {
      VIGIL_ASSIGN_OR_RETURN(RingPair rings, RingPair::Create(t, o));
      return std::unique_ptr<ReplicaEnd>(new PollingReplicaEnd(std::move(rings)));
    }
    case Method::kNotify: {
      VIGIL_ASSIGN_OR_RETURN(auto e, NotifyEndpoint::Create(t, NotifyFor(o)));
      return std::unique_ptr<ReplicaEnd>(new NotifyReplicaEnd(std::move(e), o.cancel));
    }
    case Method::kRpc: {
      if (rpc_target.empty()) return InvalidArgument("rpc method: no voter address to call");
      VIGIL_ASSIGN_OR_RETURN(auto ch, RpcReplica(rpc_target, o.max_payload, o.token, o.cancel));
      return std::unique_ptr<ReplicaEnd>(new RpcReplicaEnd(std::move(ch)));
    }
  }
  return Internal("unknown method");
}

}  // namespace vigil::channel
