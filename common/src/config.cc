#include "vigil/common/config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <charconv>

namespace vigil {

ConfigReader::ConfigReader(std::shared_ptr<const YAML::Node> node, std::string source,
                           std::string prefix)
    : node_(std::move(node)), source_(std::move(source)), prefix_(std::move(prefix)) {}

Result<ConfigReader> ConfigReader::FromString(std::string_view yaml, std::string source) {
  try {
    auto node = std::make_shared<YAML::Node>(YAML::Load(std::string(yaml)));
    if (!node->IsNull() && !node->IsMap()) {
      return InvalidArgument(fmt::format("{}: top level must be a mapping of keys", source));
    }
    return ConfigReader(std::move(node), std::move(source), "");
  } catch (const YAML::Exception& e) {
    return InvalidArgument(fmt::format("{}: YAML syntax error at line {}, column {}: {}", source,
                                       e.mark.line + 1, e.mark.column + 1, e.msg));
  }
}

Result<ConfigReader> ConfigReader::FromFile(const std::string& path) {
  try {
    auto node = std::make_shared<YAML::Node>(YAML::LoadFile(path));
    if (!node->IsNull() && !node->IsMap()) {
      return InvalidArgument(fmt::format("{}: top level must be a mapping of keys", path));
    }
    return ConfigReader(std::move(node), path, "");
  } catch (const YAML::BadFile&) {
    return NotFound(fmt::format("config file '{}' cannot be opened", path));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(fmt::format("{}: YAML syntax error at line {}, column {}: {}", path,
                                       e.mark.line + 1, e.mark.column + 1, e.msg));
  }
}

std::string ConfigReader::PathOf(std::string_view key) const {
  return prefix_.empty() ? std::string(key) : fmt::format("{}.{}", prefix_, key);
}

Status ConfigReader::Bad(std::string_view key, std::string_view value, std::string_view why) const {
  return InvalidArgument(fmt::format("{}: key '{}' = '{}' {}", source_, PathOf(key), value, why));
}

Result<ConfigReader> ConfigReader::Section(std::string_view key) const {
  auto child = std::make_shared<YAML::Node>();
  if (node_->IsMap()) {
    const YAML::Node found = (*node_)[std::string(key)];
    if (found.IsDefined() && !found.IsNull()) {
      if (!found.IsMap()) return Bad(key, YAML::Dump(found), "must be a mapping of keys");
      *child = found;
    }
  }
  return ConfigReader(std::move(child), source_, PathOf(key));
}

Result<std::string> ConfigReader::Scalar(std::string_view key, bool& present) const {
  present = false;
  if (!node_->IsMap()) return std::string();
  const YAML::Node v = (*node_)[std::string(key)];
  if (!v.IsDefined() || v.IsNull()) return std::string();
  if (!v.IsScalar()) return Bad(key, YAML::Dump(v), "must be a single value");
  present = true;
  return v.Scalar();
}

Status ConfigReader::GetInt(std::string_view key, int64_t& out, int64_t min, int64_t max) const {
  bool present;
  VIGIL_ASSIGN_OR_RETURN(std::string text, Scalar(key, present));
  if (!present) return Status::Ok();
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return Bad(key, text, "is not an integer");
  }
  if (v < min || v > max) return Bad(key, text, fmt::format("is out of range [{}, {}]", min, max));
  out = v;
  return Status::Ok();
}

Status ConfigReader::GetUint32(std::string_view key, uint32_t& out, uint32_t min,
                               uint32_t max) const {
  int64_t v = out;
  VIGIL_RETURN_IF_ERROR(GetInt(key, v, min, max));
  out = static_cast<uint32_t>(v);
  return Status::Ok();
}

Status ConfigReader::GetBool(std::string_view key, bool& out) const {
  bool present;
  VIGIL_ASSIGN_OR_RETURN(std::string text, Scalar(key, present));
  if (!present) return Status::Ok();
  if (text == "true" || text == "yes" || text == "on") {
    out = true;
  } else if (text == "false" || text == "no" || text == "off") {
    out = false;
  } else {
    return Bad(key, text, "is not a boolean (true/false)");
  }
  return Status::Ok();
}

Status ConfigReader::GetString(std::string_view key, std::string& out) const {
  bool present;
  VIGIL_ASSIGN_OR_RETURN(std::string text, Scalar(key, present));
  if (present) out = std::move(text);
  return Status::Ok();
}

Status ConfigReader::RejectUnknownKeys(std::initializer_list<std::string_view> known) const {
  if (!node_->IsMap()) return Status::Ok();
  for (const auto& kv : *node_) {
    if (!kv.first.IsScalar()) {
      return InvalidArgument(fmt::format("{}: a key under '{}' is not a single name: '{}'", source_,
                                         prefix_.empty() ? "(top level)" : prefix_,
                                         YAML::Dump(kv.first)));
    }
    const std::string name = kv.first.Scalar();
    bool ok = false;
    for (auto k : known) ok |= (k == name);
    if (!ok) {
      std::string list;
      for (auto k : known) list += fmt::format("{}{}", list.empty() ? "" : ", ", k);
      return InvalidArgument(
          fmt::format("{}: unknown key '{}' (known keys here: {})", source_, PathOf(name), list));
    }
  }
  return Status::Ok();
}

}  // namespace vigil
