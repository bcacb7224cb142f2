#include "environment.h"

#include <fmt/format.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <thread>

namespace vigil::bench {
namespace {

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto pos = line.find(':');
      if (pos != std::string::npos) return line.substr(pos + 2);
    }
  }
  return "unknown";
}

std::string Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

}  // namespace

nlohmann::json Environment(const std::string& device_description) {
  utsname u{};
  uname(&u);
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  const std::time_t now = std::time(nullptr);
  char when[64];
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  const std::string mode = Env("VIGIL_RDMA_MODE", "host");
  return {
      {"date", when},
      {"host", host},
      {"kernel", u.release},
      {"cpu", CpuModel()},
      {"cores", std::thread::hardware_concurrency()},
      {"build_type", VIGIL_BUILD_TYPE},
      {"device", device_description},
      {"rdma_mode", mode},
      {"note", mode == "vm" ? "soft-RoCE inside a software-emulated qemu guest: compare ratios "
                              "measured in this run, never absolute latencies"
                            : ""},
  };
}

void PrintEnvironment(const nlohmann::json& env) {
  fmt::print("# vigil-bench environment\n");
  for (const auto& [k, v] : env.items()) {
    if (v.is_string() && v.get<std::string>().empty()) continue;
    fmt::print("#   {:<11} {}\n", k, v.is_string() ? v.get<std::string>() : v.dump());
  }
}

}  // namespace vigil::bench
