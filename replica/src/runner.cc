#include "vigil/replica/runner.h"

#include <fmt/format.h>

#include "vigil/common/cpu_time.h"
#include "vigil/common/logging.h"
#include "vigil/transport/bootstrap.h"

namespace vigil::replica {

std::string ServiceName(uint32_t group, uint16_t replica, uint32_t incarnation) {
  return fmt::format("replica/{}/{}/{}", group, replica, incarnation);
}

Status RunReplica(transport::Transport& transport, const ReplicaRunOptions& o, Program& program,
                  const std::function<void(ChannelContext&)>& on_ready, ReplicaRunStats* stats) {
  const auto t0 = std::chrono::steady_clock::now();
  VIGIL_ASSIGN_OR_RETURN(ReplicaMemory memory,
                         ReplicaMemory::Allocate(transport, program.state_bytes(), o.input_bytes));
  channel::ChannelOptions channel = o.channel;
  channel.cancel = o.stopped.get();
  channel.token = o.nonce;
  VIGIL_ASSIGN_OR_RETURN(auto end, channel::ReplicaEnd::Create(transport, channel, o.rpc_target));
  transport::DialOptions dial;
  dial.target = o.voter;
  dial.server_role = security::Role::kVoter;
  dial.service = o.service;
  dial.token = o.nonce;
  dial.node_name = fmt::format("replica-{}-{}-{}", o.group, o.replica, o.incarnation);
  dial.connection = o.connection;
  dial.connection.name = dial.node_name;
  dial.regions = memory.regions();
  for (auto& r : end->regions()) dial.regions.push_back(r);
  dial.before_connect = [&](transport::Connection& c) { return end->Prepare(c); };
  VIGIL_ASSIGN_OR_RETURN(transport::Dialed d, transport::Dial(transport, dial));
  VIGIL_RETURN_IF_ERROR(end->Attach(*d.connection, d.peer));
  ChannelContext ctx(end->channel(), memory, ReplicaIdentity{o.group, o.replica},
                     o.verdict_timeout);
  log::Get("replica")->info("replica {} of group {} (incarnation {}) connected to {} over {}",
                            o.replica, o.group, o.incarnation, o.voter,
                            channel::MethodName(o.channel.method));
  ctx.set_stopped(o.stopped.get());
  if (on_ready) on_ready(ctx);
  const auto setup = std::chrono::steady_clock::now() - t0;
  ctx.set_measure(o.measure);
  const uint64_t cpu0 = o.measure ? ThreadCpuNs() : 0;
  Status st = o.incarnation > 0 ? ctx.Join() : Status::Ok();
  if (st.ok()) st = RunProgram(program, ctx);
  if (stats != nullptr) {
    *stats = {
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(setup).count()),
        ctx.signal_wait_ns(), ctx.events(),
        o.measure ? ThreadCpuNs() - cpu0 - ctx.signal_cpu_ns() : 0, ctx.state_cpu_ns()};
  }
  return st;
}

}  // namespace vigil::replica
