#include "vigil/common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>
#include <string>

namespace vigil::log {
namespace {

std::mutex& Mu() {
  static std::mutex mu;
  return mu;
}

spdlog::sink_ptr SharedSink() {
  static spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  return sink;
}

spdlog::level::level_enum& GlobalLevel() {
  static spdlog::level::level_enum level = spdlog::level::info;
  return level;
}

}  // namespace

std::shared_ptr<spdlog::logger> Get(std::string_view subsystem) {
  std::lock_guard lock(Mu());
  std::string name(subsystem);
  if (auto existing = spdlog::get(name)) return existing;
  auto logger = std::make_shared<spdlog::logger>(name, SharedSink());
  logger->set_level(GlobalLevel());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%f %^%l%$ [%n] %v");
  spdlog::register_logger(logger);
  return logger;
}

Status SetLevel(std::string_view level) {
  static constexpr std::string_view kNames[] = {"trace", "debug", "info", "warn", "error", "off"};
  bool known = false;
  for (auto n : kNames) known |= (n == level);
  if (!known) {
    return InvalidArgument("log level '" + std::string(level) +
                           "' is not one of trace, debug, info, warn, error, off");
  }
  std::lock_guard lock(Mu());
  GlobalLevel() = spdlog::level::from_str(std::string(level));
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->set_level(GlobalLevel()); });
  return Status::Ok();
}

}  // namespace vigil::log
