#include "programs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>

extern char** environ;

namespace vigil::bench {

using Clock = std::chrono::steady_clock;

Result<ScratchDir> ScratchDir::Create(const std::string& prefix) {
  std::string t = "/tmp/" + prefix + "-XXXXXX";
  if (mkdtemp(t.data()) == nullptr)
    return ErrnoStatus(StatusCode::kInternal, "mkdtemp " + t, errno);
  return ScratchDir(std::move(t));
}

ScratchDir::~ScratchDir() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

std::string TextInput(size_t bytes) {
  std::string s;
  s.reserve(bytes);
  uint64_t x = 88172645463325252ull;
  for (uint64_t i = 0; s.size() < bytes; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s += fmt::format("{:05d} line {} {}\n", x % 100000, i, x % 7 == 0 ? "seven" : "other");
  }
  return s;
}

int TempFd() {
  std::FILE* f = std::tmpfile();
  if (f == nullptr) return -1;
  const int fd = dup(fileno(f));
  std::fclose(f);
  return fd;
}

std::string ReadFd(int fd) {
  std::string s;
  char buf[65536];
  lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) s.append(buf, static_cast<size_t>(n));
  return s;
}

std::vector<std::string> ProgramEnvironment() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string(*e).rfind("LC_ALL=", 0) != 0) env.emplace_back(*e);
  }
  env.emplace_back("LC_ALL=C");
  return env;
}

Result<std::pair<std::string, double>> RunPlain(const std::vector<std::string>& argv,
                                                const std::string& input_path) {
  const int in = open(input_path.c_str(), O_RDONLY | O_CLOEXEC), out = TempFd();
  if (in < 0 || out < 0) return ErrnoStatus(StatusCode::kInternal, "temporary files", errno);
  std::vector<std::string> args = argv, env = ProgramEnvironment();
  std::vector<char*> a, e;
  for (auto& s : args) a.push_back(s.data());
  for (auto& s : env) e.push_back(s.data());
  a.push_back(nullptr);
  e.push_back(nullptr);
  const auto t0 = Clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(in, 0);
    dup2(out, 1);
    execvpe(a[0], a.data(), e.data());
    _exit(127);
  }
  int ws = 0;
  waitpid(pid, &ws, 0);
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  std::string bytes = ReadFd(out);
  close(in);
  close(out);
  if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
    return Internal(fmt::format("plain run of {} failed (status {:#x})", argv[0], ws));
  }
  return std::pair{std::move(bytes), ms};
}

}  // namespace vigil::bench
