// Fuzzes the configuration readers: the YAML config (common::ConfigReader) and vigil-node's
// servers file / --server specs (node::ParseSupervised).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "vigil/common/config.h"
#include "vigil/node/supervisor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vigil;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  static_cast<void>(node::ParseSupervised(text));
  auto c = ConfigReader::FromString(text, "fuzz");
  if (!c.ok()) return 0;
  int64_t i = 0;
  uint32_t u = 0;
  bool b = false;
  std::string s;
  static_cast<void>(c->GetInt("peer_timeout_ms", i, 0, 1 << 30));
  static_cast<void>(c->GetUint32("gid_index", u, 0, 255));
  static_cast<void>(c->GetBool("inline", b));
  static_cast<void>(c->GetString("device", s));
  static_cast<void>(c->RejectUnknownKeys({"device", "transport"}));
  if (auto t = c->Section("transport"); t.ok()) static_cast<void>(t->GetInt("mtu", i, 256, 4096));
  return 0;
}
