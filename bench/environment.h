// The environment header every vigil benchmark prints and stores with its results.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace vigil::bench {

// Host, CPU, core budget, kernel, build type, how the RDMA device was provided, and `device`.
nlohmann::json Environment(const std::string& device_description);
void PrintEnvironment(const nlohmann::json& env);

}  // namespace vigil::bench
