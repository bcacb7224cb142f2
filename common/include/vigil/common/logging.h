// One named spdlog logger per subsystem ("transport", "bootstrap", "bench", ...), all writing to a
// shared stderr sink so lines interleave sanely. INFO is for operators, DEBUG for developers.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string_view>

#include "vigil/common/status.h"

namespace vigil::log {

// Returns the logger for `subsystem`, creating it on first use at the current global level.
// Thread-safe. Keep the returned pointer: lookups take a lock (never log from a polling loop).
std::shared_ptr<spdlog::logger> Get(std::string_view subsystem);

// Accepts trace, debug, info, warn, error, off (case-sensitive, as spdlog names them).
Status SetLevel(std::string_view level);

}  // namespace vigil::log
