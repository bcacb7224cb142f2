#include "vigil/common/cli.h"

#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <exception>
#include <string_view>

#include "vigil/common/logging.h"
#include "vigil/common/text.h"

namespace vigil::cli {
namespace {

std::atomic<bool> g_shutdown{false};

void OnSignal(int) {
  // Relaxed suffices: the flag carries no data, readers only need to see it eventually.
  g_shutdown.store(true, std::memory_order_relaxed);
}

}  // namespace

std::string VersionText() {
  return fmt::format("vigil {} (commit {})", VIGIL_VERSION, VIGIL_COMMIT);
}

void AddCommonOptions(CLI::App& app, CommonOptions& options) {
  app.set_version_flag("--version", VersionText(), "Print vigil's version and commit, then exit");
  app.add_option("--log-level", options.log_level,
                 "Log verbosity: trace, debug, info, warn, error, off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
}

CLI::Validator PrintableName(size_t max) {
  return CLI::Validator(
      [max](const std::string& name) -> std::string {
        if (!name.empty() && name.size() <= max && IsPrintable(name)) return "";
        return fmt::format("'{}' must be 1..{} printable ASCII characters", Escaped(name, max + 1),
                           max);
      },
      fmt::format("NAME (1..{} printable ASCII)", max));
}

std::vector<std::string> TakeProgramArguments(int& argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--") {
      std::vector<std::string> program(argv + i + 1, argv + argc);
      argc = i;
      return program;
    }
  }
  return {};
}

bool ShutdownRequested() { return g_shutdown.load(std::memory_order_relaxed); }

int Run(CLI::App& app, CommonOptions& options, int argc, char** argv,
        const std::function<int()>& body) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (Status st = log::SetLevel(options.log_level); !st.ok()) {
    fmt::print(stderr, "error: {}\n", st.message());
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  try {
    return body();
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
}

}  // namespace vigil::cli
