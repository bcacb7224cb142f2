#include "vigil/replica/process.h"

#include <fmt/format.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "vigil/common/cpu.h"
#include "vigil/common/find_program.h"
#include "vigil/common/registers.h"
#include "vigil/security/nonce.h"

namespace vigil::replica {
namespace {

bool OneOf(const std::string& v, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed) {
    if (v == a) return true;
  }
  return false;
}

// A program argument or environment entry (vigil-run): any bytes but NUL, bounded.
Status CheckProgramString(const char* what, const std::string& v) {
  if (v.size() > kMaxProgramString || v.find('\0') != std::string::npos) {
    return InvalidArgument(
        fmt::format("replica launch: program {} '{}...' of {} bytes (at most {}, no NUL)", what,
                    v.substr(0, 32), v.size(), kMaxProgramString));
  }
  return Status::Ok();
}

Status CheckText(const char* field, const std::string& v, bool required) {
  if (required && v.empty())
    return InvalidArgument(fmt::format("replica launch: {} is empty", field));
  if (v.size() > 255) {
    return InvalidArgument(
        fmt::format("replica launch: {} of {} bytes (at most 255)", field, v.size()));
  }
  for (char c : v) {
    if (c < 0x21 || c > 0x7e) {
      return InvalidArgument(
          fmt::format("replica launch: {} '{}' has a non-printable or space "
                      "character",
                      field, v.substr(0, 64)));
    }
  }
  return Status::Ok();
}

}  // namespace

Status ReplicaLaunch::Check() const {
  if (key.replica > 2) {
    return InvalidArgument(fmt::format("replica launch: replica index {} (0..2)", key.replica));
  }
  VIGIL_RETURN_IF_ERROR(CheckText("voter", voter, true));
  VIGIL_RETURN_IF_ERROR(CheckText("service", service, true));
  VIGIL_RETURN_IF_ERROR(CheckText("rpc_target", rpc_target, signal == "rpc"));
  VIGIL_RETURN_IF_ERROR(CheckText("device", device, false));
  if (!OneOf(signal, {"polling", "notify", "rpc"})) {
    return InvalidArgument(
        fmt::format("replica launch: signal '{}' (polling, notify, rpc)", signal.substr(0, 32)));
  }
  VIGIL_RETURN_IF_ERROR(security::CheckNonce("replica launch", nonce));
  if (!OneOf(workload, {"crc32", "susan", "exec"})) {
    return InvalidArgument(
        fmt::format("replica launch: workload '{}' (crc32, susan, exec)", workload.substr(0, 32)));
  }
  if ((workload == "exec") != !exec_argv.empty()) {
    return InvalidArgument(fmt::format(
        "replica launch: workload '{}' with {} program arguments (exec needs them, others take "
        "none)",
        workload.substr(0, 32), exec_argv.size()));
  }
  if (exec_argv.size() > kMaxProgramStrings || exec_env.size() > kMaxProgramStrings) {
    return InvalidArgument(fmt::format(
        "replica launch: {} program arguments and {} environment entries (at most {} each)",
        exec_argv.size(), exec_env.size(), kMaxProgramStrings));
  }
  for (const auto& a : exec_argv) VIGIL_RETURN_IF_ERROR(CheckProgramString("argument", a));
  for (const auto& e : exec_env) {
    VIGIL_RETURN_IF_ERROR(CheckProgramString("environment entry", e));
    if (e.find('=') == std::string::npos) {
      return InvalidArgument(
          fmt::format("replica launch: environment entry '{}' has no '='", e.substr(0, 64)));
    }
  }
  if (!OneOf(susan_mode, {"smooth", "edges", "corners"})) {
    return InvalidArgument(fmt::format("replica launch: susan mode '{}' (smooth, edges, corners)",
                                       susan_mode.substr(0, 32)));
  }
  if (!FaultFits(workload, fault) || (!fault.empty() && fault_step == 0)) {
    return InvalidArgument(fmt::format("replica launch: fault '{}' at step {} ({}; at a step >= 1)",
                                       fault.substr(0, 32), fault_step, kFaultChoices));
  }
  if (cpu != -1) {
    Status st = CheckCpu(cpu);
    if (!st.ok()) return InvalidArgument("replica launch: " + st.message());
  }
  if (!OneOf(log_level, {"trace", "debug", "info", "warn", "error", "off"})) {
    return InvalidArgument(fmt::format("replica launch: log level '{}'", log_level.substr(0, 32)));
  }
  return Status::Ok();
}

std::vector<std::string> ReplicaArgv(const std::string& binary, const ReplicaLaunch& l) {
  std::vector<std::string> a = {binary,
                                "--voter",
                                l.voter,
                                "--service",
                                l.service,
                                "--group",
                                std::to_string(l.key.group),
                                "--replica",
                                std::to_string(l.key.replica),
                                "--incarnation",
                                std::to_string(l.key.incarnation),
                                "--signal",
                                l.signal,
                                "--workload",
                                l.workload,
                                "--susan-mode",
                                l.susan_mode,
                                "--log-level",
                                l.log_level};
  if (!l.rpc_target.empty()) a.insert(a.end(), {"--rpc-target", l.rpc_target});
  if (!l.device.empty()) a.insert(a.end(), {"--device", l.device});
  const std::vector<std::string> tls = security::TlsArgs(l.tls);
  a.insert(a.end(), tls.begin(), tls.end());
  if (!l.fault.empty()) {
    a.insert(a.end(), {"--fault", l.fault, "--fault-step", std::to_string(l.fault_step),
                       "--flip-bit", std::to_string(l.flip_bit)});
  }
  for (const auto& e : l.exec_env) a.insert(a.end(), {"--exec-env", e});
  if (!l.exec_path.empty()) a.insert(a.end(), {"--exec-path", l.exec_path});
  if (!l.exec_argv.empty()) {
    a.push_back("--");
    a.insert(a.end(), l.exec_argv.begin(), l.exec_argv.end());
  }
  return a;
}

std::string DefaultReplicaBinary() { return HelperProgram("vigil-replica", "replica"); }

ProcessTable::~ProcessTable() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  MutexLock lock(mu_);
  for (auto& [key, e] : procs_) {
    if (e.exited) continue;
    if (e.stopped) ::kill(e.pid, SIGKILL);
    while (waitpid(e.pid, nullptr, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(e.pid, SIGKILL);
        waitpid(e.pid, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

Result<pid_t> ProcessTable::Start(const ReplicaLaunch& launch) {
  VIGIL_RETURN_IF_ERROR(launch.Check());
  std::vector<std::string> args = ReplicaArgv(binary_, launch);
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  // This process's environment plus the nonce, built before fork (the child only calls execve).
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, kNonceEnv, std::strlen(kNonceEnv)) == 0 &&
        (*e)[std::strlen(kNonceEnv)] == '=') {
      continue;
    }
    env_strings.emplace_back(*e);
  }
  env_strings.push_back(fmt::format("{}={}", kNonceEnv, launch.nonce));
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  MutexLock lock(mu_);
  ReapLocked();
  PruneLocked();
  if (auto it = procs_.find(launch.key); it != procs_.end() && !it->second.exited) {
    return FailedPrecondition(fmt::format("replica {}/{}/{} is already running as pid {}",
                                          launch.key.group, launch.key.replica,
                                          launch.key.incarnation, it->second.pid));
  }
  if (max_live_ != 0) {
    const auto live = static_cast<size_t>(std::count_if(
        procs_.begin(), procs_.end(), [](const auto& kv) { return !kv.second.exited; }));
    if (live >= max_live_) {
      return ResourceExhausted(fmt::format(
          "{} replicas are running on this node: its cap (max_replicas) is {}", live, max_live_));
    }
  }
  const pid_t pid = fork();
  if (pid < 0) return ErrnoStatus(StatusCode::kUnavailable, "fork for a replica", errno);
  if (pid == 0) {
    if (launch.cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(launch.cpu, &set);
      sched_setaffinity(0, sizeof(set), &set);  // checked above: the CPU is available
    }
    execve(argv[0], argv.data(), envp.data());
    std::fprintf(stderr, "cannot run %s: %s\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  procs_[launch.key] = Entry{.pid = pid, .started = next_start_++};
  return pid;
}

void ProcessTable::PruneLocked() {
  std::vector<std::pair<uint64_t, ReplicaKey>> exited;
  for (const auto& [key, e] : procs_) {
    if (e.exited) exited.emplace_back(e.started, key);
  }
  if (exited.size() <= kKeptExited) return;
  std::sort(exited.begin(), exited.end());
  for (size_t i = 0; i + kKeptExited < exited.size(); ++i) procs_.erase(exited[i].second);
}

void ProcessTable::ReapLocked() {
  for (auto& [key, e] : procs_) {
    if (e.exited) continue;
    int st = 0;
    const pid_t r = waitpid(e.pid, &st, WNOHANG | WUNTRACED | WCONTINUED);
    if (r != e.pid) continue;
    if (WIFSTOPPED(st)) {
      e.stopped = true;
    } else if (WIFCONTINUED(st)) {
      e.stopped = false;
    } else {
      e.exited = true;
      e.status = st;
    }
  }
}

ProcessTable::Entry* ProcessTable::Find(const ReplicaKey& key) {
  ReapLocked();
  auto it = procs_.find(key);
  return it == procs_.end() || it->second.exited ? nullptr : &it->second;
}

void ProcessTable::Kill(const ReplicaKey& key) {
  MutexLock lock(mu_);
  Entry* e = Find(key);
  if (e == nullptr) return;
  ::kill(e->pid, SIGKILL);
  int st = 0;
  waitpid(e->pid, &st, 0);
  e->exited = true;
  e->status = st;
}

Status ProcessTable::Signal(const ReplicaKey& key, int sig) { return Send(key, sig, nullptr); }

Status ProcessTable::FlipBit(const ReplicaKey& key, uint64_t bit) {
  return Send(key, SIGUSR1, &bit);
}

Status ProcessTable::Send(const ReplicaKey& key, int sig, const uint64_t* value) {
  MutexLock lock(mu_);
  Entry* e = Find(key);
  if (e == nullptr) {
    return NotFound(
        fmt::format("no running replica {}/{}/{}", key.group, key.replica, key.incarnation));
  }
  if (value == nullptr) {
    if (::kill(e->pid, sig) != 0) return ErrnoStatus(StatusCode::kUnavailable, "kill", errno);
    return Status::Ok();
  }
  union sigval v {};
  v.sival_ptr = reinterpret_cast<void*>(static_cast<uintptr_t>(*value));
  if (sigqueue(e->pid, sig, v) != 0)
    return ErrnoStatus(StatusCode::kUnavailable, "sigqueue", errno);
  return Status::Ok();
}

bool ProcessTable::Alive(const ReplicaKey& key) {
  MutexLock lock(mu_);
  return Find(key) != nullptr;
}

void ProcessTable::KillAll() {
  MutexLock lock(mu_);
  ReapLocked();
  for (auto& [key, e] : procs_) {
    if (e.exited) continue;
    ::kill(e.pid, SIGKILL);
    waitpid(e.pid, &e.status, 0);
    e.exited = true;
  }
}

std::vector<ProcessStatus> ProcessTable::List() {
  MutexLock lock(mu_);
  ReapLocked();
  std::vector<ProcessStatus> out;
  for (auto& [key, e] : procs_) {
    std::string state = "running";
    if (e.exited) {
      state = WIFSIGNALED(e.status) ? fmt::format("killed by signal {}", WTERMSIG(e.status))
                                    : fmt::format("exited {}", WEXITSTATUS(e.status));
    } else if (e.stopped) {
      state = "stopped";
    }
    out.push_back({key, e.pid, state});
  }
  return out;
}

}  // namespace vigil::replica
