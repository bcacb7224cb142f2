#include "vigil/node/supervisor.h"

#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <fstream>
#include <optional>

#include "health_probe.h"
#include "vigil/common/logging.h"
#include "vigil/common/wait_status.h"

namespace vigil::node {
namespace {
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

}  // namespace

Result<SupervisedProgram> ParseSupervised(std::string_view spec) {
  const auto eq = spec.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return InvalidArgument(fmt::format("'{}': expected NAME[@HOST:PORT]=PROGRAM [ARG...]", spec));
  }
  SupervisedProgram p;
  std::string_view head = spec.substr(0, eq);
  if (const auto at = head.find('@'); at != std::string_view::npos) {
    p.probe = std::string(head.substr(at + 1));
    head = head.substr(0, at);
    const auto colon = p.probe.rfind(':');
    if (head.empty() || colon == std::string::npos || colon == 0 || colon + 1 == p.probe.size()) {
      return InvalidArgument(fmt::format(
          "'{}': expected NAME@HOST:PORT=PROGRAM, the probe address is '{}'", spec, p.probe));
    }
  }
  p.name = std::string(head);
  std::string_view rest = spec.substr(eq + 1);
  while (!rest.empty()) {
    const auto sp = rest.find(' ');
    std::string_view word = rest.substr(0, sp);
    if (!word.empty()) p.argv.emplace_back(word);
    if (sp == std::string_view::npos) break;
    rest.remove_prefix(sp + 1);
  }
  if (p.argv.empty()) return InvalidArgument(fmt::format("'{}': no program after '='", spec));
  if (access(p.argv[0].c_str(), X_OK) != 0) {
    return InvalidArgument(fmt::format("'{}': program '{}' is not executable: {}", spec, p.argv[0],
                                       std::strerror(errno)));
  }
  // Without an explicit probe address, the server is probed where it listens.
  for (size_t i = 1; p.probe.empty() && i < p.argv.size(); ++i) {
    if (p.argv[i] == "--listen" && i + 1 < p.argv.size()) p.probe = p.argv[i + 1];
    if (p.argv[i].starts_with("--listen=")) p.probe = p.argv[i].substr(9);
  }
  return p;
}

Result<std::vector<std::string>> ReadServersFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound(fmt::format("cannot read '{}': {}", path, std::strerror(errno)));
  std::vector<std::string> specs;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    const auto last = line.find_last_not_of(" \t\r");
    std::string spec = line.substr(first, last - first + 1);
    if (auto p = ParseSupervised(spec); !p.ok()) {
      return InvalidArgument(fmt::format("{}:{}: {}", path, n, p.status().message()));
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

Result<std::unique_ptr<Supervisor>> Supervisor::Start(SupervisedProgram program) {
  VIGIL_ASSIGN_OR_RETURN(FailureBudget budget, FailureBudget::Create(program.policy));
  std::unique_ptr<Supervisor> s(new Supervisor(std::move(program), std::move(budget)));
  s->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->wake_fd_ < 0) {
    return ErrnoStatus(StatusCode::kUnavailable, "eventfd for supervisor " + s->program_.name,
                       errno);
  }
  VIGIL_ASSIGN_OR_RETURN(pid_t pid, s->Spawn());
  s->pid_ = pid;
  s->thread_ = std::thread([raw = s.get()] { raw->Run(); });
  return s;
}

Supervisor::~Supervisor() {
  stop_ = true;
  if (wake_fd_ >= 0) {
    const uint64_t one = 1;
    static_cast<void>(write(wake_fd_, &one, sizeof(one)));
  }
  if (thread_.joinable()) thread_.join();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void Supervisor::Sleep(int pidfd, int timeout_ms) {
  pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {pidfd, POLLIN, 0}};
  static_cast<void>(poll(fds, pidfd < 0 ? 1 : 2, timeout_ms));  // EINTR: the caller checks again
}

Result<pid_t> Supervisor::Spawn() {
  std::vector<char*> argv;
  for (auto& a : program_.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return ErrnoStatus(StatusCode::kUnavailable, "fork for " + program_.name, errno);
  if (pid == 0) {
    execv(argv[0], argv.data());
    std::fprintf(stderr, "cannot run %s: %s\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  log::Get("node")->info("server '{}' started as pid {}", program_.name, pid);
  return pid;
}

bool Supervisor::WaitForEnd(pid_t pid, int& status) {
  // The thread sleeps until the program ends or the next probe is due: no other wake-ups on a
  // node whose replicas busy-poll. pidfd_open works on a program that already ended and was not
  // reaped yet; a kernel without it (before 5.3) gets a check every 5 ms. A raw system call:
  // glibc 2.36's <sys/pidfd.h> declares pidfd_open without C linkage.
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  const ProbePolicy& pp = program_.probe_policy;
  const auto started = Clock::now();
  std::optional<HealthProbe> probe;
  if (!program_.probe.empty()) probe.emplace(program_.probe, pp, started);
  auto next_probe = started + pp.interval;
  pid_t r = 0;
  bool killed = false;
  while (!stop_ && (r = waitpid(pid, &status, WNOHANG)) == 0) {
    int wait_ms = pidfd < 0 ? 5 : -1;  // -1: until the program ends
    if (probe && !killed) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(next_probe - Clock::now());
      const int64_t cap = wait_ms < 0 ? INT_MAX : wait_ms;
      wait_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, cap));
    }
    Sleep(pidfd, wait_ms);
    if (!probe || killed || Clock::now() < next_probe) continue;
    const std::string hung = probe->Check(Clock::now());
    next_probe = Clock::now() + pp.interval;
    if (probe->answered()) store_backoff_ = std::chrono::milliseconds(0);  // it got going
    if (hung.empty()) continue;
    log::Get("node")->error("server '{}' (pid {}) is hung: {}; SIGKILL", program_.name, pid, hung);
    kill(pid, SIGKILL);
    killed = true;
    hangs_++;
  }
  const int wait_errno = errno;
  if (pidfd >= 0) close(pidfd);
  if (Clock::now() - started >= program_.policy.window) store_backoff_ = {};  // it ran a while
  if (r == 0) return false;  // stopping, the program still runs
  if (r < 0) {
    log::Get("node")->error("server '{}': waitpid({}) failed: {}", program_.name, pid,
                            std::strerror(wait_errno));
  }
  return true;
}

void Supervisor::Run() {
  auto logger = log::Get("node");
  while (!stop_) {
    const pid_t pid = pid_.load();
    int status = 0;
    if (!WaitForEnd(pid, status)) break;
    pid_ = 0;
    Result<std::chrono::milliseconds> delay = std::chrono::milliseconds(0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == EX_TEMPFAIL) {
      // The store is down, not the server: retry for as long as it takes, capped backoff.
      const FailurePolicy& fp = program_.policy;
      store_backoff_ = std::clamp(store_backoff_ * 2, fp.initial_backoff, fp.max_backoff);
      delay = store_backoff_;
      logger->warn(
          "server '{}' (pid {}) exited with status {}: its SSR store is unavailable; "
          "restarting in {} ms (not counted against the restart budget)",
          program_.name, pid, EX_TEMPFAIL, delay->count());
    } else {
      delay = budget_.OnFailure(Clock::now());
      if (!delay.ok()) {
        gave_up_ = true;
        logger->error("server '{}' (pid {}) {}: not restarting: {}", program_.name, pid,
                      DescribeWaitStatus(status), delay.status().message());
        return;
      }
      logger->warn("server '{}' (pid {}) {}: restarting in {} ms", program_.name, pid,
                   DescribeWaitStatus(status), delay->count());
    }
    const auto until = Clock::now() + *delay;
    for (auto now = Clock::now(); !stop_ && now < until; now = Clock::now()) {
      Sleep(-1,
            static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(until - now).count()));
    }
    if (stop_) return;
    auto next = Spawn();
    if (!next.ok()) {
      gave_up_ = true;
      logger->error("server '{}': {}", program_.name, next.status().ToString());
      return;
    }
    pid_ = *next;
    restarts_++;
  }
  const pid_t pid = pid_.load();
  if (pid == 0) return;
  kill(pid, SIGTERM);
  const auto deadline = Clock::now() + 3s;
  int status = 0;
  while (Clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      pid_ = 0;
      return;
    }
    std::this_thread::sleep_for(10ms);
  }
  logger->warn("server '{}' (pid {}) ignored SIGTERM for 3 s: SIGKILL", program_.name, pid);
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  pid_ = 0;
}

}  // namespace vigil::node
