#include "perftest.h"

#include <fmt/format.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sstream>
#include <thread>

namespace vigil::bench {

Result<PerftestLatency> ParseLatency(const std::string& output, uint32_t bytes) {
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    // strtod, not operator>>: perftest prints "-nan" and "inf" in some columns.
    std::istringstream fields(line);
    std::string tok[9];
    int n = 0;
    while (n < 9 && fields >> tok[n]) ++n;
    if (n != 9) continue;
    char* end = nullptr;
    const unsigned long b = std::strtoul(tok[0].c_str(), &end, 10);
    if (*end != '\0' || b != bytes) continue;
    PerftestLatency r;
    r.bytes = bytes;
    r.iterations = std::strtoull(tok[1].c_str(), nullptr, 10);
    double* cols[] = {&r.t_min, &r.t_max, &r.t_typical, &r.t_avg, &r.t_stdev, &r.p99, &r.p999};
    for (int i = 0; i < 7; ++i) *cols[i] = std::strtod(tok[i + 2].c_str(), nullptr);
    return r;
  }
  return NotFound(fmt::format("no perftest result line for {} bytes in its output:\n{}", bytes,
                              output.substr(0, 2000)));
}

Result<double> CalibrateCyclesPerMicrosecond() {
#if defined(__x86_64__)
  auto mono_ns = [] {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
  };
  const double t0 = mono_ns();
  const uint64_t c0 = __builtin_ia32_rdtsc();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const uint64_t c1 = __builtin_ia32_rdtsc();
  const double t1 = mono_ns();
  const double rate = static_cast<double>(c1 - c0) / ((t1 - t0) / 1000.0);
  if (!std::isfinite(rate) || rate <= 0) return Internal("TSC calibration produced no usable rate");
  return rate;
#else
  return Unimplemented("cycle calibration is implemented for x86_64 only");
#endif
}

namespace {
Result<std::string> Capture(const std::string& cmd, int& exit_code) {
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return ErrnoStatus(StatusCode::kInternal, "popen(" + cmd + ")", errno);
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int st = pclose(p);
  exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  return out;
}

Result<PerftestLatency> RunOnce(const Baseline& baseline, const std::string& device, int gid_index,
                                uint32_t bytes, uint64_t iterations, int tcp_port,
                                double cycles_per_us, const PerftestPlacement& placement) {
  std::string common = fmt::format("{} {} -d {} -x {} -s {} -n {} -p {} -F -C", baseline.tool,
                                   baseline.flags, device, gid_index, bytes, iterations, tcp_port);
  // ib_send_lat/ib_write_lat take -I up to the device's limit; perftest refuses more.
  if (placement.inline_bytes > 0) common += fmt::format(" -I {}", placement.inline_bytes);
  const bool pin = placement.pin && std::thread::hardware_concurrency() >= 2;
  const std::string server_cmd = (pin ? "taskset -c 1 " : "") + common;
  const std::string client_cmd = (pin ? "taskset -c 0 " : "") + common;
  // Every external tool runs under timeout: perftest waits forever for a peer that never comes.
  std::string server_out;
  int server_rc = 0;
  std::thread server([&] {
    auto out = Capture("timeout 120 " + server_cmd + " 2>&1", server_rc);
    if (out.ok()) server_out = *out;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let the server listen
  int client_rc = 0;
  Result<std::string> client_out = std::string();
  for (int attempt = 0; attempt < 20; ++attempt) {
    client_out = Capture("timeout 120 " + client_cmd + " 127.0.0.1 2>&1", client_rc);
    if (!client_out.ok() || client_rc == 0 ||
        client_out->find("Couldn't connect") == std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  server.join();
  if (!client_out.ok()) return client_out.status();
  if (client_rc != 0) {
    return Unavailable(
        fmt::format("{} client exited with {} (is perftest installed?):\n{}\n"
                    "server (exit {}):\n{}",
                    baseline.tool, client_rc, client_out->substr(0, 2000), server_rc,
                    server_out.substr(0, 2000)));
  }
  VIGIL_ASSIGN_OR_RETURN(PerftestLatency r, ParseLatency(*client_out, bytes));
  for (double* v : {&r.t_min, &r.t_max, &r.t_typical, &r.t_avg, &r.t_stdev, &r.p99, &r.p999}) {
    *v /= cycles_per_us;  // -C reports cycles (its header still says usec)
  }
  if (!std::isfinite(r.t_typical) || r.t_typical <= 0) {
    return Internal(
        fmt::format("{} reported an unusable t_typical for {} bytes", baseline.tool, bytes));
  }
  r.inline_bytes = placement.inline_bytes;
  return r;
}
}  // namespace

Result<PerftestLatency> RunLatency(const Baseline& baseline, const std::string& device,
                                   int gid_index, uint32_t bytes, uint64_t iterations, int tcp_port,
                                   double cycles_per_us, const PerftestPlacement& placement) {
  Result<PerftestLatency> r =
      RunOnce(baseline, device, gid_index, bytes, iterations, tcp_port, cycles_per_us, placement);
  // A device that grants less inline data than vigil asks for (vigil's connection then gets
  // less too, silently): perftest refuses -I above the device's limit, so run it with its own.
  if (!r.ok() && placement.inline_bytes > 0 &&
      r.status().message().find("nline") != std::string::npos) {
    PerftestPlacement own = placement;
    own.inline_bytes = 0;
    r = RunOnce(baseline, device, gid_index, bytes, iterations, tcp_port, cycles_per_us, own);
  }
  return r;
}

}  // namespace vigil::bench
