#include "vigil/common/text.h"

#include <fmt/format.h>

#include <algorithm>

namespace vigil {
namespace {

bool PrintableChar(char c) { return c >= 0x20 && c <= 0x7e; }

}  // namespace

bool IsPrintable(std::string_view s) { return std::all_of(s.begin(), s.end(), PrintableChar); }

std::string Escaped(std::string_view s, size_t max) {
  std::string out;
  out.reserve(std::min(s.size(), max));
  for (char c : s.substr(0, max)) {
    if (PrintableChar(c) && c != '\\') {
      out.push_back(c);
    } else {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

}  // namespace vigil
