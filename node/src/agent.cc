#include "vigil/node/agent.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include "vigil/common/logging.h"
#include "vigil/node/v1/node.grpc.pb.h"
#include "vigil/security/address.h"
#include "vigil/security/grpc_status.h"
#include "vigil/security/permissions.h"

namespace vigil::node {
namespace {

namespace pb = vigil::node::v1;

using security::ToGrpc;

Result<replica::ReplicaKey> KeyFrom(const pb::ReplicaId& id) {
  if (id.replica() > 2) {
    return InvalidArgument(fmt::format("replica index {} (0..2)", id.replica()));
  }
  return replica::ReplicaKey{id.group(), id.replica(), id.incarnation()};
}

}  // namespace

class NodeAgent::Service final : public pb::NodeAgent::Service {
 public:
  explicit Service(NodeAgent& owner) : owner_(owner) {}

  grpc::Status StartReplica(grpc::ServerContext* ctx, const pb::StartReplicaRequest* req,
                            pb::StartReplicaResponse* resp) override {
    if (auto st = security::AuthorizeCall(*ctx, "/vigil.node.v1.NodeAgent/StartReplica");
        !st.ok()) {
      return st;
    }
    auto key = KeyFrom(req->id());
    if (!key.ok()) return ToGrpc(key.status());
    // The replicas dial back whatever the request names: only the calling voter's own host, so
    // that a request cannot point them (and their state) at a third party.
    for (const auto& [what, address] : {std::pair{"voter address", req->voter()},
                                        std::pair{"rpc signalling target", req->rpc_target()}}) {
      if (address.empty()) continue;
      if (Status st = security::CheckCallersAddress(what, address, ctx->peer()); !st.ok()) {
        log::Get("node")->warn("refused to start replica {}/{}/{}: {}", key->group, key->replica,
                               key->incarnation, st.ToString());
        return ToGrpc(st);
      }
    }
    replica::ReplicaLaunch l;
    l.key = *key;
    l.voter = req->voter();
    l.service = req->service();
    l.rpc_target = req->rpc_target();
    l.nonce = req->nonce();
    l.signal = req->signal();
    l.workload = req->workload();
    l.susan_mode = req->susan_mode().empty() ? "edges" : req->susan_mode();
    l.device = owner_.options_.device;
    l.log_level = owner_.options_.replica_log_level;
    l.tls = security::OrProcessTls(owner_.options_.tls);
    if (!owner_.options_.cpus.empty()) {
      l.cpu = owner_.options_.cpus[owner_.next_cpu_++ % owner_.options_.cpus.size()];
    }
    l.fault = req->fault();
    l.fault_step = req->fault_step();
    l.flip_bit = req->flip_bit();
    l.exec_argv.assign(req->exec_argv().begin(), req->exec_argv().end());
    l.exec_env.assign(req->exec_env().begin(), req->exec_env().end());
    if (l.workload == "exec" && !l.exec_argv.empty()) {
      Result<std::string> path = owner_.options_.exec_allow.Check(l.exec_argv[0]);
      if (!path.ok()) {
        log::Get("node")->warn("refused to start replica {}/{}/{}: {}", l.key.group, l.key.replica,
                               l.key.incarnation, path.status().ToString());
        return ToGrpc(path.status());
      }
      l.exec_path = *path;
    }
    Result<pid_t> pid = owner_.processes_->Start(l);
    if (!pid.ok()) {
      log::Get("node")->warn("refused to start replica {}/{}/{}: {}", l.key.group, l.key.replica,
                             l.key.incarnation, pid.status().ToString());
      return ToGrpc(pid.status());
    }
    log::Get("node")->info("started replica {}/{}/{} ({} over {}) as pid {}", l.key.group,
                           l.key.replica, l.key.incarnation, l.workload, l.signal, *pid);
    resp->set_pid(static_cast<uint32_t>(*pid));
    resp->set_node(owner_.options_.node_name);
    return grpc::Status::OK;
  }

  grpc::Status StopReplica(grpc::ServerContext* ctx, const pb::StopReplicaRequest* req,
                           pb::StopReplicaResponse*) override {
    if (auto st = security::AuthorizeCall(*ctx, "/vigil.node.v1.NodeAgent/StopReplica"); !st.ok()) {
      return st;
    }
    auto key = KeyFrom(req->id());
    if (!key.ok()) return ToGrpc(key.status());
    owner_.processes_->Kill(*key);
    log::Get("node")->info("stopped replica {}/{}/{}", key->group, key->replica, key->incarnation);
    return grpc::Status::OK;
  }

  grpc::Status InjectFault(grpc::ServerContext* ctx, const pb::InjectFaultRequest* req,
                           pb::InjectFaultResponse* resp) override {
    if (auto st = security::AuthorizeCall(*ctx, "/vigil.node.v1.NodeAgent/InjectFault"); !st.ok()) {
      return st;
    }
    auto key = KeyFrom(req->id());
    if (!key.ok()) return ToGrpc(key.status());
    Status st;
    std::string what;
    switch (req->kind()) {
      case pb::FAULT_KILL:
        st = owner_.processes_->Signal(*key, SIGKILL);
        what = "SIGKILL";
        break;
      case pb::FAULT_STOP:
        st = owner_.processes_->Signal(*key, SIGSTOP);
        what = "SIGSTOP (hang)";
        break;
      case pb::FAULT_CONT:
        st = owner_.processes_->Signal(*key, SIGCONT);
        what = "SIGCONT";
        break;
      case pb::FAULT_BITFLIP:
        st = owner_.processes_->FlipBit(*key, req->bit());
        what = fmt::format("flip of state bit {}", req->bit());
        break;
      default:
        return ToGrpc(
            InvalidArgument(fmt::format("fault kind {} is not one of kill, stop, cont, "
                                        "bitflip",
                                        static_cast<int>(req->kind()))));
    }
    if (!st.ok()) return ToGrpc(st);
    const std::string done =
        fmt::format("fault injection: {} to replica {}/{}/{} on node {}", what, key->group,
                    key->replica, key->incarnation, owner_.options_.node_name);
    log::Get("node")->warn("{}", done);
    resp->set_done(done);
    return grpc::Status::OK;
  }

  grpc::Status Health(grpc::ServerContext* ctx, const pb::HealthRequest*,
                      pb::HealthResponse* resp) override {
    if (auto st = security::AuthorizeCall(*ctx, "/vigil.node.v1.NodeAgent/Health"); !st.ok()) {
      return st;
    }
    resp->set_node(owner_.options_.node_name);
    for (const replica::ProcessStatus& p : owner_.processes_->List()) {
      auto* r = resp->add_replicas();
      r->mutable_id()->set_group(p.key.group);
      r->mutable_id()->set_replica(p.key.replica);
      r->mutable_id()->set_incarnation(p.key.incarnation);
      r->set_pid(static_cast<uint32_t>(p.pid));
      r->set_state(p.state);
    }
    for (const auto& s : owner_.servers_) {
      auto* o = resp->add_servers();
      o->set_name(s->name());
      o->set_pid(static_cast<uint32_t>(s->pid()));
      o->set_restarts(s->restarts());
      o->set_gave_up(s->gave_up());
    }
    return grpc::Status::OK;
  }

 private:
  NodeAgent& owner_;
};

NodeAgent::NodeAgent(AgentOptions options) : options_(std::move(options)) {
  if (options_.replica_binary.empty()) options_.replica_binary = replica::DefaultReplicaBinary();
  processes_ =
      std::make_unique<replica::ProcessTable>(options_.replica_binary, options_.max_replicas);
}

NodeAgent::~NodeAgent() { Shutdown(); }

Status NodeAgent::Supervise(SupervisedProgram program) {
  VIGIL_ASSIGN_OR_RETURN(auto s, Supervisor::Start(std::move(program)));
  servers_.push_back(std::move(s));
  return Status::Ok();
}

Status NodeAgent::Start(const std::string& address) {
  service_ = std::make_unique<Service>(*this);
  grpc::ServerBuilder b;
  VIGIL_RETURN_IF_ERROR(
      security::AddPort(b, security::OrProcessTls(options_.tls), address, &port_));
  b.RegisterService(service_.get());
  server_ = b.BuildAndStart();
  if (!server_ || port_ == 0) {
    server_.reset();
    return Unavailable(
        fmt::format("node agent '{}' cannot listen on '{}' (address in use or "
                    "malformed?)",
                    options_.node_name, address));
  }
  log::Get("node")->info("node '{}' serving on port {} (replicas: {})", options_.node_name, port_,
                         options_.replica_binary);
  return Status::Ok();
}

void NodeAgent::Shutdown(std::chrono::milliseconds grace) {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + grace);
    server_.reset();
    processes_->KillAll();  // replicas do not outlive their node agent
  }
  servers_.clear();  // each supervisor stops its server
}

}  // namespace vigil::node
