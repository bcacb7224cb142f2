// Text that came from another process (a peer's name, an error it sends back) is shown in logs
// and error messages only once it is known to be printable, or after escaping: a newline or a
// terminal escape sequence from the wire must not forge a log line.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace vigil {

// Every character is printable ASCII (0x20..0x7e).
bool IsPrintable(std::string_view s);

// `s` with every byte outside printable ASCII, and the backslash, written as \xNN; cut after
// `max` input bytes with "..." appended.
std::string Escaped(std::string_view s, size_t max = 256);

}  // namespace vigil
