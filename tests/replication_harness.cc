#include "replication_harness.h"

#include <fmt/format.h>

#include <cstdio>

#include "vigil/common/logging.h"

namespace vigil::testing {
namespace {

std::string ReadAll(std::FILE* f) {
  std::string s;
  std::rewind(f);
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) s.append(buf, n);
  return s;
}

}  // namespace

Result<JobResult> RunReplicatedJob(transport::Transport& voter_t, transport::Transport& replica_t,
                                   const JobSpec& spec) {
  transport::BootstrapServer server(voter_t, "voter", transport::ConnectionOptions{});
  VIGIL_RETURN_IF_ERROR(server.Start("127.0.0.1:0"));
  std::FILE* in = std::tmpfile();
  std::FILE* out = std::tmpfile();
  if (in == nullptr || out == nullptr) return Internal("tmpfile failed");
  std::fwrite(spec.input.data(), 1, spec.input.size(), in);
  std::rewind(in);
  JobResult result;
  {
    const std::string voter = fmt::format("127.0.0.1:{}", server.port());
    testing::ThreadLauncher launcher(
        replica_t, voter, spec.group.channel, spec.verdict_timeout,
        [&spec, &voter](const voter::LaunchSpec& s, std::shared_ptr<std::atomic<bool>> killed)
            -> Result<std::unique_ptr<replica::Program>> {
          if (spec.before_launch) spec.before_launch(s, voter);
          std::unique_ptr<replica::Program> program;
          if (spec.program) {
            program = spec.program(s.replica, s.incarnation);
          } else {
            VIGIL_ASSIGN_OR_RETURN(program,
                                   workloads::MakeWorkload(spec.workload, spec.susan_mode));
          }
          // The test's hook runs before each step; a "killed" thread replica fails its next step.
          return std::unique_ptr<replica::Program>(std::make_unique<replica::HookedProgram>(
              std::move(program),
              [&spec, s, killed](uint64_t step, replica::ReplicaContext& ctx) -> Status {
                if (spec.hook) {
                  spec.hook(s.replica, s.incarnation, step,
                            static_cast<replica::ChannelContext&>(ctx));
                }
                if (killed->load()) return Aborted("thread replica killed by the test");
                return Status::Ok();
              }));
        });
    launcher.set_input_bytes(spec.input_bytes);
    launcher.set_measure(spec.measure);
    voter::Group group(spec.group, voter_t, server, launcher, in, out);
    std::thread side;
    if (spec.while_running) side = std::thread([&] { spec.while_running(group); });
    Result<voter::GroupReport> r = group.Run();
    if (side.joinable()) side.join();
    result.replicas = launcher.Join();
    if (!r.ok()) return r.status();
    result.report = *r;
  }
  result.output = ReadAll(out);
  std::fclose(in);
  std::fclose(out);
  server.Shutdown();
  return result;
}

std::string PseudoRandomInput(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed;
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 23);
  }
  return s;
}

Result<std::string> RunUnreplicated(const std::string& workload, const std::string& susan_mode,
                                    const std::string& input) {
  VIGIL_ASSIGN_OR_RETURN(auto program, workloads::MakeWorkload(workload, susan_mode));
  std::FILE* in = std::tmpfile();
  std::FILE* out = std::tmpfile();
  if (in == nullptr || out == nullptr) return Internal("tmpfile failed");
  std::fwrite(input.data(), 1, input.size(), in);
  std::rewind(in);
  VIGIL_ASSIGN_OR_RETURN(auto ctx, replica::LocalContext::Create(program->state_bytes(), in, out));
  Status st = replica::RunProgram(*program, *ctx);
  std::fflush(out);
  std::string s = ReadAll(out);
  std::fclose(in);
  std::fclose(out);
  VIGIL_RETURN_IF_ERROR(st);
  return s;
}

}  // namespace vigil::testing
