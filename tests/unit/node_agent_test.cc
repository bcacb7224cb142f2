// vigil-node's agent over gRPC with a stand-in replica binary (a shell script that sleeps): what
// it accepts, what it refuses and why, and the faults it injects into real processes.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "loopback_channel.h"
#include "vigil/common/cpu.h"
#include "vigil/node/agent.h"
#include "vigil/node/supervisor.h"
#include "vigil/node/v1/node.grpc.pb.h"
#include "vigil/server/v1/restartable.grpc.pb.h"

namespace vigil {
namespace {

namespace pb = vigil::node::v1;
using namespace std::chrono_literals;

const std::string kNonce = "0123456789abcdef0123456789abcdef";

TEST(ReplicaLaunch, CheckNamesTheBadField) {
  replica::ReplicaLaunch l;
  l.voter = "127.0.0.1:1";
  l.service = "replica/1/0/0";
  l.nonce = kNonce;
  EXPECT_TRUE(l.Check().ok());
  auto bad = l;
  for (const char* nonce : {"", "0123456789ABCDEF0123456789ABCDEF", "0123"}) {
    bad.nonce = nonce;
    EXPECT_NE(bad.Check().message().find("nonce must be 32 lowercase hex digits"),
              std::string::npos)
        << nonce;
  }
  bad = l;
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
  const auto argv = replica::ReplicaArgv("/x/vigil-replica", l);
  EXPECT_EQ(argv.front(), "/x/vigil-replica");
  EXPECT_NE(std::find(argv.begin(), argv.end(), "replica/1/0/0"), argv.end());
  for (const auto& a : argv) EXPECT_EQ(a.find(kNonce), std::string::npos) << a;
}

TEST(ReplicaLaunch, ExecLaunchesCarryTheProgramAfterDoubleDash) {
  replica::ReplicaLaunch l;
  l.voter = "127.0.0.1:1";
  l.service = "replica/1/0/0";
  l.nonce = kNonce;
  l.workload = "exec";
  EXPECT_NE(l.Check().message().find("program arguments"), std::string::npos);
  l.exec_argv = {"sort", "--parallel=1", "a file with spaces"};
  l.exec_env = {"LC_ALL=C"};
  EXPECT_TRUE(l.Check().ok()) << l.Check().ToString();
  for (const char* fault :
       {"flip", "flip-result", "flip-memory", "flip-rbx", "flip-rip", "crash", "hang"}) {
    auto f = l;
    f.fault = fault;
    f.fault_step = 30;
    EXPECT_TRUE(f.Check().ok()) << fault << ": " << f.Check().ToString();
  }
  auto bad = l;
  bad.fault = "state";  // not a fault of exec's
  bad.fault_step = 3;
  EXPECT_NE(bad.Check().message().find("fault 'state'"), std::string::npos);
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
  const auto argv = replica::ReplicaArgv("/x/vigil-replica", l);
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
    // The fake replica records its nonce and command line, then waits to be stopped.
    std::ofstream(script_) << "#!/bin/sh\nprintf '%s' \"$VIGIL_REPLICA_NONCE\" > " << dir_
                           << "/nonce\nprintf '%s\\n' \"$@\" > " << dir_ << "/args\n"
                           << "exec sleep 30\n";
    chmod(script_.c_str(), 0755);
    StartAgent({});
  }
  void StartAgent(node::ExecAllowList allow, size_t max_replicas = 64) {
    agent_.reset();
    node::AgentOptions o;
    o.max_replicas = max_replicas;
    o.node_name = "worker-t";
    o.replica_binary = script_;
    o.exec_allow = std::move(allow);
    agent_ = std::make_unique<node::NodeAgent>(o);
    ASSERT_TRUE(agent_->Start("127.0.0.1:0").ok());
    stub_ = pb::NodeAgent::NewStub(
        vigil::testing::LoopbackChannel("127.0.0.1:" + std::to_string(agent_->port())));
  }
  std::vector<std::string> ReplicaArgs() {  // what the fake replica was started with
    std::vector<std::string> args;
    for (int i = 0; i < 200 && args.empty(); ++i) {
      std::ifstream in(dir_ + "/args");
      for (std::string line; std::getline(in, line);) args.push_back(line);
      if (args.empty()) std::this_thread::sleep_for(10ms);
    }
    return args;
  }
  void TearDown() override {
    agent_.reset();
    std::remove(script_.c_str());
    std::remove((dir_ + "/args").c_str());
    std::remove((dir_ + "/nonce").c_str());
    rmdir(dir_.c_str());
  }
  pb::StartReplicaRequest Valid() {
    pb::StartReplicaRequest r;
    r.mutable_id()->set_group(1);
    r.mutable_id()->set_replica(2);
    r.set_voter("127.0.0.1:9");
    r.set_service("replica/1/2/0");
    r.set_nonce(kNonce);
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
  req = Valid();
  req.set_nonce("not-a-nonce");
  grpc::ClientContext c3;
  st = stub_->StartReplica(&c3, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("nonce must be"), std::string::npos) << st.error_message();
  EXPECT_EQ(st.error_message().find("not-a-nonce"), std::string::npos) << st.error_message();
  EXPECT_EQ(StateOf(), "");  // nothing was started
  // Replicas dial back only the caller's own host.
  for (bool rpc : {false, true}) {
    req = Valid();
    if (rpc) {
      req.set_rpc_target("198.18.0.99:7000");
    } else {
      req.set_voter("198.18.0.99:9");
    }
    grpc::ClientContext c;
    st = stub_->StartReplica(&c, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::PERMISSION_DENIED);
    EXPECT_NE(st.error_message().find(rpc ? "rpc signalling target '198.18.0.99:7000' is not the "
                                            "caller's own host"
                                          : "voter address '198.18.0.99:9' is not the caller's "
                                            "own host"),
              std::string::npos)
        << st.error_message();
  }
  EXPECT_EQ(StateOf(), "");
  EXPECT_EQ(Inject(pb::FAULT_KILL).error_code(), grpc::NOT_FOUND);
  EXPECT_EQ(Inject(pb::FAULT_UNSPECIFIED).error_code(), grpc::INVALID_ARGUMENT);
}

TEST_F(NodeAgentTest, ExecIsRefusedUnlessTheResolvedProgramIsAllowed) {
  auto req = Valid();
  req.set_workload("exec");
  req.add_exec_argv("sh");
  req.add_exec_argv("-c");
  req.add_exec_argv("id");
  pb::StartReplicaResponse resp;
  grpc::ClientContext c1;
  grpc::Status st = stub_->StartReplica(&c1, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::PERMISSION_DENIED);
  EXPECT_NE(st.error_message().find("this node executes no programs (exec of 'sh' refused)"),
            std::string::npos)
      << st.error_message();
  EXPECT_EQ(StateOf(), "");
  // Allowed: cat only. sh is refused, by name or by a path with '..' in it.
  auto allow = node::ExecAllowList::Make({"/bin/cat"});
  ASSERT_TRUE(allow.ok()) << allow.status();
  StartAgent(std::move(*allow));
  for (const char* program : {"sh", "/usr/bin/../bin/sh"}) {
    req.set_exec_argv(0, program);
    grpc::ClientContext c;
    st = stub_->StartReplica(&c, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::PERMISSION_DENIED) << program;
    EXPECT_NE(st.error_message().find("is not in this node's --exec-allow list"), std::string::npos)
        << st.error_message();
  }
  EXPECT_EQ(StateOf(), "");
  // cat by name: started, and told to execute the resolved file (argv[0] stays as asked).
  req.set_exec_argv(0, "cat");
  grpc::ClientContext c2;
  st = stub_->StartReplica(&c2, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const auto args = ReplicaArgs();
  char resolved[PATH_MAX];
  ASSERT_NE(realpath("/bin/cat", resolved), nullptr);
  auto at = std::find(args.begin(), args.end(), "--exec-path");
  ASSERT_NE(at, args.end());
  ASSERT_NE(at + 1, args.end());
  EXPECT_EQ(*(at + 1), resolved);
  auto dd = std::find(args.begin(), args.end(), "--");
  ASSERT_NE(dd, args.end());
  EXPECT_EQ(*(dd + 1), "cat");
}

TEST(ExecAllowList, EntriesAreCheckedAndProgramsMatchedAfterResolving) {
  EXPECT_EQ(node::ExecAllowList::Make({"bin/cat"}).status().message(),
            "exec allow-list entry 'bin/cat' is not an absolute path");
  EXPECT_EQ(node::ExecAllowList::Make({"/nonexistent/x"}).status().code(), StatusCode::kNotFound);
  EXPECT_NE(node::ExecAllowList::Make({"/etc/passwd"})
                .status()
                .message()
                .find("is not an executable file"),
            std::string::npos);
  EXPECT_NE(node::ExecAllowList::Make({"/bin/cat/"})
                .status()
                .message()
                .find("ends in '/' but is not a directory"),
            std::string::npos);
  // A directory entry: any program directly in it, nothing below it.
  char dir[] = "/tmp/vigil-allow-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string d = dir;
  ASSERT_EQ(mkdir((d + "/sub").c_str(), 0755), 0);
  for (const std::string& f : {d + "/tool", d + "/sub/deeper"}) {
    std::ofstream(f) << "#!/bin/sh\n";
    chmod(f.c_str(), 0755);
  }
  ASSERT_EQ(symlink((d + "/tool").c_str(), (d + "/sub/link-to-tool").c_str()), 0);
  auto list = node::ExecAllowList::Make({d + "/"});
  ASSERT_TRUE(list.ok()) << list.status();
  char real[PATH_MAX];
  ASSERT_NE(realpath(d.c_str(), real), nullptr);
  const std::string r = real;
  EXPECT_EQ(*list->Check(d + "/tool"), r + "/tool");
  EXPECT_EQ(*list->Check(d + "/sub/../tool"), r + "/tool");
  EXPECT_EQ(*list->Check(d + "/sub/link-to-tool"), r + "/tool");  // a link to an allowed file
  EXPECT_EQ(list->Check(d + "/sub/deeper").status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(list->Check(d + "/missing").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(list->Check("/bin/sh").status().code(), StatusCode::kPermissionDenied);
  for (const char* f : {"/sub/link-to-tool", "/sub/deeper", "/tool"}) std::remove((d + f).c_str());
  rmdir((d + "/sub").c_str());
  rmdir(dir);
}

TEST_F(NodeAgentTest, StartsReplicasAndInjectsStopContKill) {
  pb::StartReplicaResponse resp;
  grpc::ClientContext c1;
  ASSERT_TRUE(stub_->StartReplica(&c1, Valid(), &resp).ok());
  // The nonce reaches the replica in its environment, never on its command line.
  const auto args = ReplicaArgs();
  ASSERT_FALSE(args.empty());
  for (const auto& a : args) EXPECT_EQ(a.find(kNonce), std::string::npos) << a;
  std::string nonce;
  std::getline(std::ifstream(dir_ + "/nonce"), nonce);
  EXPECT_EQ(nonce, kNonce);
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

TEST_F(NodeAgentTest, ReplicasBeyondTheCapAreRefusedUntilOneEnds) {
  StartAgent({}, /*max_replicas=*/1);
  pb::StartReplicaResponse resp;
  grpc::ClientContext c1;
  ASSERT_TRUE(stub_->StartReplica(&c1, Valid(), &resp).ok());
  auto second = Valid();
  second.mutable_id()->set_replica(1);
  grpc::ClientContext c2;
  grpc::Status st = stub_->StartReplica(&c2, second, &resp);
  EXPECT_EQ(st.error_code(), grpc::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_NE(st.error_message().find("max_replicas"), std::string::npos) << st.error_message();
  ASSERT_TRUE(Inject(pb::FAULT_KILL).ok());  // the first one ends: room for another
  ASSERT_TRUE(WaitFor("killed by signal 9"));
  grpc::ClientContext c3;
  st = stub_->StartReplica(&c3, second, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST_F(NodeAgentTest, PinsReplicasToTheConfiguredCpus) {
  node::AgentOptions o;
  o.node_name = "worker-p";
  o.replica_binary = script_;
  o.cpus = {0};
  node::NodeAgent pinned(o);
  ASSERT_TRUE(pinned.Start("127.0.0.1:0").ok());
  auto stub = pb::NodeAgent::NewStub(
      vigil::testing::LoopbackChannel("127.0.0.1:" + std::to_string(pinned.port())));
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
  EXPECT_NE(CheckCpu(100000).message().find("cpu 100000 is not available"), std::string::npos);
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
  auto stub = pb::NodeAgent::NewStub(
      vigil::testing::LoopbackChannel("127.0.0.1:" + std::to_string(agent.port())));
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
  EXPECT_NE(node::ParseSupervised("no-equals").status().message().find("NAME[@HOST:PORT]=PROGRAM"),
            std::string::npos);
  EXPECT_NE(node::ParseSupervised("kv@nowhere=/bin/true").status().message().find("'nowhere'"),
            std::string::npos);
  EXPECT_NE(node::ParseSupervised("x=").status().message().find("no program"), std::string::npos);
  EXPECT_NE(node::ParseSupervised("x=/nonexistent/prog --flag")
                .status()
                .message()
                .find("'/nonexistent/prog' is not executable"),
            std::string::npos);
}

TEST(Supervisor, TheProbeAddressIsGivenOrTakenFromListen) {
  auto explicit_probe = node::ParseSupervised("kv@127.0.0.1:9=/bin/sleep --listen 0.0.0.0:1");
  ASSERT_TRUE(explicit_probe.ok()) << explicit_probe.status();
  EXPECT_EQ(explicit_probe->name, "kv");
  EXPECT_EQ(explicit_probe->probe, "127.0.0.1:9");
  EXPECT_EQ(node::ParseSupervised("kv=/bin/sleep --listen 127.0.0.1:7750")->probe,
            "127.0.0.1:7750");
  EXPECT_EQ(node::ParseSupervised("kv=/bin/sleep --listen=127.0.0.1:7751")->probe,
            "127.0.0.1:7751");
  EXPECT_EQ(node::ParseSupervised("kv=/bin/sleep 600")->probe, "");
}

// A script that exits with `status` at once.
std::string ExitScript(int status) {
  const std::string path = ::testing::TempDir() + "vigil-exit-" + std::to_string(status) + "-" +
                           std::to_string(getpid());
  std::ofstream(path) << "#!/bin/sh\nexit " << status << "\n";
  chmod(path.c_str(), 0755);
  return path;
}

TEST(Supervisor, AServerWaitingForItsStoreIsRetriedWithoutUsingItsBudget) {
  // Exit status 75: the SSR store is unavailable. A budget of 1 failure would give up at once;
  // these are retried (backoff capped at 20 ms) for as long as it takes.
  const std::string store_down = ExitScript(75), broken = ExitScript(1);
  auto program = node::ParseSupervised("kv=" + store_down);
  ASSERT_TRUE(program.ok()) << program.status();
  program->policy.initial_backoff = 5ms;
  program->policy.max_backoff = 20ms;
  program->policy.max_failures = 1;
  auto s = node::Supervisor::Start(*program);
  ASSERT_TRUE(s.ok()) << s.status();
  for (int i = 0; i < 500 && (*s)->restarts() < 10; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_GE((*s)->restarts(), 10u);
  EXPECT_FALSE((*s)->gave_up());
  // Any other failure is counted: past the budget of 1, it gives up.
  program = node::ParseSupervised("kv=" + broken);
  ASSERT_TRUE(program.ok()) << program.status();
  program->policy = {.initial_backoff = 5ms, .max_backoff = 20ms, .max_failures = 1};
  auto b = node::Supervisor::Start(*program);
  ASSERT_TRUE(b.ok()) << b.status();
  for (int i = 0; i < 500 && !(*b)->gave_up(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE((*b)->gave_up());
  EXPECT_EQ((*b)->restarts(), 1u);
  std::remove(store_down.c_str());
  std::remove(broken.c_str());
}

// A port on loopback nobody listens on now.
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

TEST(Supervisor, AHungServerIsKilledAndRestartedWithinItsProbeDeadline) {
  // A real vigil-server (kv, state in memory only: no RDMA needed), probed every 100 ms.
  const std::string listen = "127.0.0.1:" + std::to_string(FreePort());
  auto program = node::ParseSupervised(fmt::format(
      "kv={} --insecure --service kv --store none --listen {}", VIGIL_SERVER_PATH, listen));
  ASSERT_TRUE(program.ok()) << program.status();
  EXPECT_EQ(program->probe, listen);
  program->policy.initial_backoff = 10ms;
  program->probe_policy = {
      .interval = 100ms, .deadline = 200ms, .failures = 3, .grace = 20s, .stuck = 20s};
  auto s = node::Supervisor::Start(*program);
  ASSERT_TRUE(s.ok()) << s.status();
  const pid_t pid = WaitForPid(**s, 0);
  ASSERT_NE(pid, 0);
  // Wait until it serves: the probe answered at least once.
  auto stub = server::v1::Restartable::NewStub(vigil::testing::LoopbackChannel(listen));
  bool serving = false;
  for (int i = 0; i < 200 && !serving; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 100ms);
    server::v1::HealthReply r;
    serving = stub->Health(&ctx, server::v1::HealthRequest{}, &r).ok();
    if (!serving) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(serving) << "vigil-server never answered its health probe at " << listen;
  std::this_thread::sleep_for(300ms);  // the supervisor's probe has seen it answer
  EXPECT_EQ((*s)->hangs(), 0u);
  // Hung: it still runs, but answers nothing. 3 missed probes of 100 ms + 200 ms each.
  const auto stopped = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(pid, SIGSTOP), 0);
  const pid_t next = WaitForPid(**s, pid);
  ASSERT_NE(next, 0) << "the hung server was not restarted";
  const auto took = std::chrono::steady_clock::now() - stopped;
  EXPECT_EQ((*s)->hangs(), 1u);
  EXPECT_EQ((*s)->restarts(), 1u);
  EXPECT_LT(took, 5s) << "probe interval 100 ms, deadline 200 ms, 3 misses";
  EXPECT_NE(kill(pid, 0), 0) << "the hung incarnation " << pid << " is still there";
}

}  // namespace
}  // namespace vigil
