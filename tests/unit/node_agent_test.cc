// vigil-node's agent over gRPC with a stand-in replica binary (a shell script that sleeps): what
// it accepts, what it refuses and why, and the faults it injects into real processes.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "vigil/node/agent.h"
#include "vigil/node/supervisor.h"
#include "vigil/node/v1/node.grpc.pb.h"

namespace vigil {
namespace {

namespace pb = vigil::node::v1;
using namespace std::chrono_literals;

TEST(ReplicaLaunch, CheckNamesTheBadField) {
  node::ReplicaLaunch l;
  l.voter = "127.0.0.1:1";
  l.service = "replica/1/0/0";
  EXPECT_TRUE(l.Check().ok());
  auto bad = l;
  bad.key.replica = 3;
  EXPECT_NE(bad.Check().message().find("replica index 3"), std::string::npos);
  bad = l;
  bad.signal = "pigeon";
  EXPECT_NE(bad.Check().message().find("signal 'pigeon'"), std::string::npos);
  bad = l;
  bad.service = "a b";
  EXPECT_NE(bad.Check().message().find("service"), std::string::npos);
  bad = l;
  bad.voter.clear();
  EXPECT_NE(bad.Check().message().find("voter is empty"), std::string::npos);
  bad = l;
  bad.signal = "rpc";
  EXPECT_NE(bad.Check().message().find("rpc_target is empty"), std::string::npos);
  bad = l;
  bad.workload = "doom";
  EXPECT_FALSE(bad.Check().ok());
  const auto argv = node::ReplicaArgv("/x/vigil-replica", l);
  EXPECT_EQ(argv.front(), "/x/vigil-replica");
  EXPECT_NE(std::find(argv.begin(), argv.end(), "replica/1/0/0"), argv.end());
}

TEST(ReplicaLaunch, ExecLaunchesCarryTheProgramAfterDoubleDash) {
  node::ReplicaLaunch l;
  l.voter = "127.0.0.1:1";
  l.service = "replica/1/0/0";
  l.workload = "exec";
  EXPECT_NE(l.Check().message().find("program arguments"), std::string::npos);
  l.exec_argv = {"sort", "--parallel=1", "a file with spaces"};
  l.exec_env = {"LC_ALL=C"};
  EXPECT_TRUE(l.Check().ok()) << l.Check().ToString();
  for (const char* fault : {"flip", "flip-result", "flip-rbx", "flip-rip"}) {
    auto f = l;
    f.fault = fault;
    f.fault_step = 30;
    EXPECT_TRUE(f.Check().ok()) << fault << ": " << f.Check().ToString();
  }
  auto bad = l;
  bad.fault = "crash";  // exec takes the flips only
  bad.fault_step = 3;
  EXPECT_NE(bad.Check().message().find("fault 'crash'"), std::string::npos);
  bad.fault = "flip-rax";  // the restart of the interrupted call rewrites rax
  EXPECT_NE(bad.Check().message().find("fault 'flip-rax'"), std::string::npos);
  bad = l;
  bad.workload = "crc32";
  EXPECT_FALSE(bad.Check().ok());  // program arguments without exec
  bad = l;
  bad.exec_env = {"NO_EQUALS_SIGN"};
  EXPECT_NE(bad.Check().message().find("has no '='"), std::string::npos);
  bad = l;
  bad.exec_argv[0] = std::string(5000, 'x');
  EXPECT_NE(bad.Check().message().find("at most 4096"), std::string::npos);
  auto crc = l;
  crc.workload = "crc32";
  crc.exec_argv.clear();
  crc.exec_env.clear();
  crc.fault = "flip-result";
  crc.fault_step = 2;
  EXPECT_FALSE(crc.Check().ok());
  crc.fault = "flip-rbx";
  EXPECT_FALSE(crc.Check().ok());
  const auto argv = node::ReplicaArgv("/x/vigil-replica", l);
  const auto dd = std::find(argv.begin(), argv.end(), "--");
  ASSERT_NE(dd, argv.end());
  EXPECT_EQ(std::vector<std::string>(dd + 1, argv.end()), l.exec_argv);
  EXPECT_NE(std::find(argv.begin(), dd, "LC_ALL=C"), dd);
}

class NodeAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/vigil-node-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    script_ = dir_ + "/fake-replica";
    std::ofstream(script_) << "#!/bin/sh\nexec sleep 30\n";
    chmod(script_.c_str(), 0755);
    node::AgentOptions o;
    o.node_name = "worker-t";
    o.replica_binary = script_;
    agent_ = std::make_unique<node::NodeAgent>(o);
    ASSERT_TRUE(agent_->Start("127.0.0.1:0").ok());
    stub_ = pb::NodeAgent::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(agent_->port()), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    agent_.reset();
    std::remove(script_.c_str());
    rmdir(dir_.c_str());
  }
  pb::StartReplicaRequest Valid() {
    pb::StartReplicaRequest r;
    r.mutable_id()->set_group(1);
    r.mutable_id()->set_replica(2);
    r.set_voter("127.0.0.1:9");
    r.set_service("replica/1/2/0");
    r.set_signal("polling");
    r.set_workload("crc32");
    return r;
  }
  grpc::Status Inject(pb::FaultKind kind, uint32_t incarnation = 0) {
    pb::InjectFaultRequest req;
    req.mutable_id()->set_group(1);
    req.mutable_id()->set_replica(2);
    req.mutable_id()->set_incarnation(incarnation);
    req.set_kind(kind);
    pb::InjectFaultResponse resp;
    grpc::ClientContext ctx;
    return stub_->InjectFault(&ctx, req, &resp);
  }
  std::string StateOf() {
    pb::HealthResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(stub_->Health(&ctx, pb::HealthRequest{}, &resp).ok());
    EXPECT_EQ(resp.node(), "worker-t");
    return resp.replicas_size() == 1 ? resp.replicas(0).state() : "";
  }
  // Polls Health until the replica reaches `want` (process state changes are asynchronous).
  bool WaitFor(const std::string& want) {
    for (int i = 0; i < 200; ++i) {
      if (StateOf() == want) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  std::string dir_, script_;
  std::unique_ptr<node::NodeAgent> agent_;
  std::unique_ptr<pb::NodeAgent::Stub> stub_;
};

TEST_F(NodeAgentTest, RefusesBadStartRequestsWithTheReason) {
  auto req = Valid();
  req.set_signal("smoke");
  pb::StartReplicaResponse resp;
  grpc::ClientContext c1;
  grpc::Status st = stub_->StartReplica(&c1, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("signal 'smoke'"), std::string::npos) << st.error_message();
  req = Valid();
  req.mutable_id()->set_replica(7);
  grpc::ClientContext c2;
  st = stub_->StartReplica(&c2, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("replica index 7"), std::string::npos);
  EXPECT_EQ(StateOf(), "");  // nothing was started
  EXPECT_EQ(Inject(pb::FAULT_KILL).error_code(), grpc::NOT_FOUND);
  EXPECT_EQ(Inject(pb::FAULT_UNSPECIFIED).error_code(), grpc::INVALID_ARGUMENT);
}

TEST_F(NodeAgentTest, StartsReplicasAndInjectsStopContKill) {
  pb::StartReplicaResponse resp;
  grpc::ClientContext c1;
  ASSERT_TRUE(stub_->StartReplica(&c1, Valid(), &resp).ok());
  EXPECT_GT(resp.pid(), 0u);
  EXPECT_EQ(resp.node(), "worker-t");
  grpc::ClientContext c2;
  EXPECT_EQ(stub_->StartReplica(&c2, Valid(), &resp).error_code(), grpc::FAILED_PRECONDITION);
  EXPECT_TRUE(WaitFor("running"));
  ASSERT_TRUE(Inject(pb::FAULT_STOP).ok());
  EXPECT_TRUE(WaitFor("stopped"));
  ASSERT_TRUE(Inject(pb::FAULT_CONT).ok());
  EXPECT_TRUE(WaitFor("running"));
  EXPECT_EQ(Inject(pb::FAULT_KILL, /*incarnation=*/5).error_code(), grpc::NOT_FOUND);
  ASSERT_TRUE(Inject(pb::FAULT_KILL).ok());
  EXPECT_TRUE(WaitFor("killed by signal 9"));
}

TEST_F(NodeAgentTest, PinsReplicasToTheConfiguredCpus) {
  node::AgentOptions o;
  o.node_name = "worker-p";
  o.replica_binary = script_;
  o.cpus = {0};
  node::NodeAgent pinned(o);
  ASSERT_TRUE(pinned.Start("127.0.0.1:0").ok());
  auto stub = pb::NodeAgent::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(pinned.port()), grpc::InsecureChannelCredentials()));
  pb::StartReplicaResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub->StartReplica(&ctx, Valid(), &resp).ok());
  // The child pins itself between fork and exec: poll until it has.
  std::string allowed;
  for (int i = 0; i < 200 && allowed != "0"; ++i) {
    std::ifstream status("/proc/" + std::to_string(resp.pid()) + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("Cpus_allowed_list:", 0) == 0) {
        allowed = line.substr(line.find_first_not_of(" \t", line.find(':') + 1));
      }
    }
    if (allowed != "0") std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(allowed, "0");
  EXPECT_NE(node::CheckCpu(100000).message().find("cpu 100000 is not available"),
            std::string::npos);
}

// Waits until the supervised program runs under a pid other than `old` (0: any).
pid_t WaitForPid(const node::Supervisor& s, pid_t old) {
  for (int i = 0; i < 500; ++i) {
    const pid_t p = s.pid();
    if (p != 0 && p != old) return p;
    std::this_thread::sleep_for(10ms);
  }
  return 0;
}

TEST(Supervisor, RestartsAKilledProgramInPlaceAndGivesUpPastItsBudget) {
  auto program = node::ParseSupervised("sleeper=/bin/sleep 600");
  ASSERT_TRUE(program.ok()) << program.status();
  EXPECT_EQ(program->argv, (std::vector<std::string>{"/bin/sleep", "600"}));
  program->policy.initial_backoff = 10ms;
  program->policy.max_failures = 2;
  auto s = node::Supervisor::Start(*program);
  ASSERT_TRUE(s.ok()) << s.status();
  pid_t pid = WaitForPid(**s, 0);
  ASSERT_NE(pid, 0);
  for (int kill_no = 1; kill_no <= 2; ++kill_no) {
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    const pid_t next = WaitForPid(**s, pid);
    ASSERT_NE(next, 0) << "not restarted after kill " << kill_no;
    pid = next;
    EXPECT_EQ((*s)->restarts(), static_cast<uint64_t>(kill_no));
    // Same command line: a server restarted in place keeps its address. The pid is known from
    // fork on; the command line changes at exec, so poll for it.
    const std::string want = std::string("/bin/sleep") + '\0' + "600" + '\0';
    std::string args;
    for (int i = 0; i < 200 && args != want; ++i) {
      std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
      args.assign(std::istreambuf_iterator<char>(cmdline), {});
      if (args != want) std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(args, want);
  }
  ASSERT_EQ(kill(pid, SIGKILL), 0);  // the third failure within the window: over budget
  for (int i = 0; i < 500 && !(*s)->gave_up(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE((*s)->gave_up());
  EXPECT_EQ((*s)->pid(), 0);
}

// Voluntary context switches of every thread of this process so far.
uint64_t VoluntarySwitches() {
  uint64_t n = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream status(task.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) n += std::stoull(line.substr(24));
    }
  }
  return n;
}

TEST(Supervisor, SleepsWhileTheProgramRunsAndWakesWhenItEnds) {
  auto program = node::ParseSupervised("sleeper=/bin/sleep 600");
  ASSERT_TRUE(program.ok()) << program.status();
  program->policy.initial_backoff = 1ms;
  auto s = node::Supervisor::Start(*program);
  ASSERT_TRUE(s.ok()) << s.status();
  const pid_t pid = WaitForPid(**s, 0);
  ASSERT_NE(pid, 0);
  // A supervisor that checked every 5 ms would switch about 100 times in these 500 ms; one that
  // sleeps until the program ends, not at all (this thread's sleep adds one).
  const uint64_t before = VoluntarySwitches();
  std::this_thread::sleep_for(500ms);
  EXPECT_LT(VoluntarySwitches() - before, 10u);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  EXPECT_NE(WaitForPid(**s, pid), 0) << "not restarted";
  EXPECT_EQ((*s)->restarts(), 1u);
}

TEST(Supervisor, ReadsServersFromAFileAndNamesTheBadLine) {
  const std::string path = ::testing::TempDir() + "vigil-servers-" + std::to_string(getpid());
  {
    std::ofstream f(path);
    f << "# supervised servers\n\n  sleeper=/bin/sleep 600  \nother=/bin/true\n";
  }
  auto specs = node::ReadServersFile(path);
  ASSERT_TRUE(specs.ok()) << specs.status();
  EXPECT_EQ(*specs, (std::vector<std::string>{"sleeper=/bin/sleep 600", "other=/bin/true"}));
  {
    std::ofstream f(path, std::ios::app);
    f << "broken line\n";
  }
  auto bad = node::ReadServersFile(path);
  EXPECT_NE(bad.status().message().find(":5: 'broken line'"), std::string::npos) << bad.status();
  std::remove(path.c_str());
}

TEST(Supervisor, TheAgentReportsItsSupervisedServers) {
  node::AgentOptions o;
  o.node_name = "worker-s";
  node::NodeAgent agent(o);
  auto program = node::ParseSupervised("kv=/bin/sleep 600");
  ASSERT_TRUE(program.ok());
  ASSERT_TRUE(agent.Supervise(*program).ok());
  ASSERT_TRUE(agent.Start("127.0.0.1:0").ok());
  auto stub = pb::NodeAgent::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(agent.port()), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  pb::HealthResponse resp;
  ASSERT_TRUE(stub->Health(&ctx, pb::HealthRequest{}, &resp).ok());
  ASSERT_EQ(resp.servers_size(), 1);
  EXPECT_EQ(resp.servers(0).name(), "kv");
  EXPECT_GT(resp.servers(0).pid(), 0u);
  EXPECT_EQ(resp.servers(0).restarts(), 0u);
  EXPECT_FALSE(resp.servers(0).gave_up());
  const pid_t pid = static_cast<pid_t>(resp.servers(0).pid());
  agent.Shutdown();  // stops the server with the node
  EXPECT_NE(kill(pid, 0), 0) << "server pid " << pid << " outlived its node";
}

TEST(Supervisor, RefusesMalformedSpecsByName) {
  EXPECT_NE(node::ParseSupervised("no-equals").status().message().find("NAME=PROGRAM"),
            std::string::npos);
  EXPECT_NE(node::ParseSupervised("x=").status().message().find("no program"), std::string::npos);
  EXPECT_NE(node::ParseSupervised("x=/nonexistent/prog --flag")
                .status()
                .message()
                .find("'/nonexistent/prog' is not executable"),
            std::string::npos);
}

}  // namespace
}  // namespace vigil
