#include "vigil/node/supervisor.h"

#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>

#include "vigil/common/logging.h"

namespace vigil::node {
namespace {
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string Describe(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
  return fmt::format("ended (wait status {:#x})", status);
}
}  // namespace

Result<SupervisedProgram> ParseSupervised(std::string_view spec) {
  const auto eq = spec.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return InvalidArgument(fmt::format("'{}': expected NAME=PROGRAM [ARG...]", spec));
  }
  SupervisedProgram p;
  p.name = std::string(spec.substr(0, eq));
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

void Supervisor::Run() {
  auto logger = log::Get("node");
  while (!stop_) {
    const pid_t pid = pid_.load();
    // The thread sleeps until the program ends: no periodic wake-ups on a node whose replicas
    // busy-poll. pidfd_open works on a program that already ended and was not reaped yet; a
    // kernel without it (before 5.3) gets a check every 5 ms. A raw system call: glibc 2.36's
    // <sys/pidfd.h> declares pidfd_open without C linkage.
    const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    int status = 0;
    pid_t r = 0;
    while (!stop_ && (r = waitpid(pid, &status, WNOHANG)) == 0) Sleep(pidfd, pidfd < 0 ? 5 : -1);
    const int wait_errno = errno;
    if (pidfd >= 0) close(pidfd);
    if (r == 0) break;  // stopping, the program still runs
    pid_ = 0;
    if (r < 0) {
      logger->error("server '{}': waitpid({}) failed: {}", program_.name, pid,
                    std::strerror(wait_errno));
    }
    auto delay = budget_.OnFailure(Clock::now());
    if (!delay.ok()) {
      gave_up_ = true;
      logger->error("server '{}' (pid {}) {}: not restarting: {}", program_.name, pid,
                    Describe(status), delay.status().message());
      return;
    }
    logger->warn("server '{}' (pid {}) {}: restarting in {} ms", program_.name, pid,
                 Describe(status), delay->count());
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
