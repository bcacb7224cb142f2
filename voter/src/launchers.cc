#include "vigil/voter/launchers.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include "vigil/common/logging.h"
#include "vigil/node/v1/node.grpc.pb.h"
#include "vigil/replica/context.h"
#include "vigil/security/tls.h"

namespace vigil::voter {

namespace pb = vigil::node::v1;

replica::ReplicaLaunch MakeLaunch(const LaunchSpec& s, const ReplicaProgram& p) {
  replica::ReplicaLaunch l;
  l.key = {s.group, s.replica, s.incarnation};
  l.voter = p.voter;
  l.service = s.service;
  l.rpc_target = s.rpc_target;
  l.nonce = s.nonce;
  l.signal = p.signal;
  l.workload = p.workload;
  l.susan_mode = p.susan_mode;
  l.exec_argv = p.exec_argv;
  l.exec_env = p.exec_env;
  if (!p.fault.empty() && s.replica == p.fault_replica && s.incarnation == 0) {
    l.fault = p.fault;
    l.fault_step = p.fault_step;
    l.flip_bit = p.flip_bit;
  }
  return l;
}

// ---- LocalLauncher ----

LocalLauncher::LocalLauncher(std::string replica_binary, ReplicaProgram program, std::string device,
                             std::vector<int> cpus)
    : program_(std::move(program)),
      device_(std::move(device)),
      cpus_(std::move(cpus)),
      table_(std::move(replica_binary)) {}

Status LocalLauncher::Start(const LaunchSpec& spec) {
  group_ = spec.group;
  replica::ReplicaLaunch l = MakeLaunch(spec, program_);
  // The replicas are this process's own: they dial it with its TLS settings (a voter's
  // certificate, or --insecure on loopback).
  l.tls = security::ProcessTls();
  l.device = device_;
  if (!cpus_.empty()) l.cpu = cpus_[spec.replica % cpus_.size()];
  return table_.Start(l).status();
}

void LocalLauncher::Stop(uint16_t replica, uint32_t incarnation) {
  table_.Kill({group_, replica, incarnation});
}

Status LocalLauncher::Inject(uint16_t replica, uint32_t incarnation, Fault fault, uint64_t bit) {
  const replica::ReplicaKey key{group_, replica, incarnation};
  switch (fault) {
    case Fault::kKill:
      return table_.Signal(key, SIGKILL);
    case Fault::kStop:
      return table_.Signal(key, SIGSTOP);
    case Fault::kCont:
      return table_.Signal(key, SIGCONT);
    case Fault::kBitflip:
      return table_.FlipBit(key, bit);
  }
  return InvalidArgument("unknown fault");
}

bool LocalLauncher::Alive(uint16_t replica, uint32_t incarnation) {
  return table_.Alive({group_, replica, incarnation});
}

// ---- NodeLauncher ----

struct NodeLauncher::Stub {
  std::string address;
  std::unique_ptr<pb::NodeAgent::Stub> stub;  // null when no channel could be made (error)
  Status error;
};

namespace {

constexpr auto kRpcTimeout = std::chrono::seconds(10);

void SetDeadline(grpc::ClientContext& ctx) {
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
}

void SetId(pb::ReplicaId* id, uint32_t group, uint16_t replica, uint32_t incarnation) {
  id->set_group(group);
  id->set_replica(replica);
  id->set_incarnation(incarnation);
}

}  // namespace

NodeLauncher::NodeLauncher(std::vector<std::string> nodes, ReplicaProgram program)
    : program_(std::move(program)) {
  for (auto& a : nodes) {
    auto s = std::make_unique<Stub>();
    s->address = a;
    auto channel = security::Channel(security::ProcessTls(), a, security::Role::kNode);
    if (channel.ok()) {
      s->stub = pb::NodeAgent::NewStub(*channel);
    } else {
      s->error = channel.status().WithContext(fmt::format("node {}", a));
    }
    nodes_.push_back(std::move(s));
  }
}

NodeLauncher::~NodeLauncher() = default;

Status NodeLauncher::Start(const LaunchSpec& spec) {
  if (nodes_.empty()) return FailedPrecondition("no worker nodes to start replicas on");
  const size_t n = (spec.replica + spec.incarnation) % nodes_.size();
  const replica::ReplicaLaunch l = MakeLaunch(spec, program_);
  pb::StartReplicaRequest req;
  SetId(req.mutable_id(), spec.group, spec.replica, spec.incarnation);
  req.set_voter(l.voter);
  req.set_service(l.service);
  req.set_rpc_target(l.rpc_target);
  req.set_nonce(l.nonce);
  req.set_signal(l.signal);
  req.set_workload(l.workload);
  req.set_susan_mode(l.susan_mode);
  req.set_fault(l.fault);
  req.set_fault_step(l.fault_step);
  req.set_flip_bit(l.flip_bit);
  for (const auto& a : l.exec_argv) req.add_exec_argv(a);
  for (const auto& e : l.exec_env) req.add_exec_env(e);
  if (!nodes_[n]->stub) return nodes_[n]->error;
  pb::StartReplicaResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status st = nodes_[n]->stub->StartReplica(&ctx, req, &resp);
  if (!st.ok()) {
    return Unavailable(fmt::format("node {} refused replica {} incarnation {}: {}",
                                   nodes_[n]->address, spec.replica, spec.incarnation,
                                   st.error_message()));
  }
  log::Get("voter")->info("replica {} incarnation {} placed on node '{}' ({}), pid {}",
                          spec.replica, spec.incarnation, resp.node(), nodes_[n]->address,
                          resp.pid());
  MutexLock lock(mu_);
  group_ = spec.group;
  placement_[{spec.replica, spec.incarnation}] = n;
  return Status::Ok();
}

bool NodeLauncher::Alive(uint16_t replica, uint32_t incarnation) {
  size_t n;
  {
    MutexLock lock(mu_);
    auto it = placement_.find({replica, incarnation});
    if (it == placement_.end()) return true;  // being placed
    n = it->second;
  }
  pb::HealthResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (!nodes_[n]->stub || !nodes_[n]->stub->Health(&ctx, pb::HealthRequest{}, &resp).ok()) {
    return false;
  }
  for (const auto& r : resp.replicas()) {
    if (r.id().group() == group_ && r.id().replica() == replica &&
        r.id().incarnation() == incarnation) {
      return r.state() == "running" || r.state() == "stopped";
    }
  }
  return false;
}

std::string NodeLauncher::NodeOf(uint16_t replica, uint32_t incarnation) {
  MutexLock lock(mu_);
  auto it = placement_.find({replica, incarnation});
  return it == placement_.end() ? "" : nodes_[it->second]->address;
}

void NodeLauncher::Stop(uint16_t replica, uint32_t incarnation) {
  size_t n;
  {
    MutexLock lock(mu_);
    auto it = placement_.find({replica, incarnation});
    if (it == placement_.end()) return;
    n = it->second;
  }
  pb::StopReplicaRequest req;
  SetId(req.mutable_id(), group_, replica, incarnation);
  if (!nodes_[n]->stub) return;
  pb::StopReplicaResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status st = nodes_[n]->stub->StopReplica(&ctx, req, &resp);
  if (!st.ok()) {
    // The node itself may be gone: the replica is treated as failed either way.
    log::Get("voter")->warn("node {}: cannot stop replica {} incarnation {}: {}",
                            nodes_[n]->address, replica, incarnation, st.error_message());
  }
}

Status NodeLauncher::Inject(uint16_t replica, uint32_t incarnation, Fault fault, uint64_t bit) {
  size_t n;
  {
    MutexLock lock(mu_);
    auto it = placement_.find({replica, incarnation});
    if (it == placement_.end()) {
      return NotFound(
          fmt::format("replica {} incarnation {} was not placed", replica, incarnation));
    }
    n = it->second;
  }
  pb::InjectFaultRequest req;
  SetId(req.mutable_id(), group_, replica, incarnation);
  req.set_kind(fault == Fault::kKill   ? pb::FAULT_KILL
               : fault == Fault::kStop ? pb::FAULT_STOP
               : fault == Fault::kCont ? pb::FAULT_CONT
                                       : pb::FAULT_BITFLIP);
  req.set_bit(bit);
  if (!nodes_[n]->stub) return nodes_[n]->error;
  pb::InjectFaultResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  grpc::Status st = nodes_[n]->stub->InjectFault(&ctx, req, &resp);
  if (!st.ok()) {
    return Unavailable(fmt::format("node {}: fault injection refused: {}", nodes_[n]->address,
                                   st.error_message()));
  }
  return Status::Ok();
}

}  // namespace vigil::voter
