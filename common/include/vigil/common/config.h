// Typed, validated access to YAML configuration.
//
// Every error names the source, the full key path and the offending value, e.g.
//   vigil.yaml: key 'transport.sq_depth' = '0' is out of range [1, 16384]
// Unknown keys are errors too (a typo must not silently fall back to a default).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "vigil/common/status.h"

namespace YAML {
class Node;
}

namespace vigil {

class ConfigReader {
 public:
  static Result<ConfigReader> FromFile(const std::string& path);
  static Result<ConfigReader> FromString(std::string_view yaml, std::string source = "<inline>");

  // The mapping under `key`; an absent key yields an empty section (every Get keeps its default).
  Result<ConfigReader> Section(std::string_view key) const;

  // Each Get leaves `out` untouched when the key is absent.
  Status GetInt(std::string_view key, int64_t& out, int64_t min, int64_t max) const;
  Status GetUint32(std::string_view key, uint32_t& out, uint32_t min, uint32_t max) const;
  Status GetBool(std::string_view key, bool& out) const;
  Status GetString(std::string_view key, std::string& out) const;

  // Fails naming the first key of this section that is not in `known`.
  Status RejectUnknownKeys(std::initializer_list<std::string_view> known) const;

  const std::string& source() const { return source_; }
  std::string PathOf(std::string_view key) const;

 private:
  ConfigReader(std::shared_ptr<const YAML::Node> node, std::string source, std::string prefix);
  Result<std::string> Scalar(std::string_view key, bool& present) const;
  Status Bad(std::string_view key, std::string_view value, std::string_view why) const;

  std::shared_ptr<const YAML::Node> node_;
  std::string source_;
  std::string prefix_;
};

}  // namespace vigil
