// Fuzzes vigil-run's reading of a system call record (HostExecutor: the record's fixed part, its
// blob, the bytes left aside, NUL-terminated path arguments), with calls that only read, so the
// fuzzer changes nothing on this machine.
#include <stdlib.h>
#include <sys/syscall.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "vigil/run/executor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vigil;
  if (size < 1) return 0;
  static constexpr int kReadOnly[] = {SYS_access, SYS_newfstatat, SYS_readlink, SYS_getcwd,
                                      SYS_lseek,  SYS_fstat,      SYS_close,    SYS_getpid,
                                      SYS_stat,   SYS_faccessat,  SYS_read,     SYS_statx};
  const int nr = kReadOnly[data[0] % std::size(kReadOnly)];
  const auto record = std::as_bytes(std::span(data + 1, size - 1));
  // Confined to an empty directory: whatever path the fuzzer makes, nothing else is reached.
  static const std::string root = [] {
    char dir[] = "/tmp/vigil-syscall-fuzz-XXXXXX";
    return std::string(mkdtemp(dir) != nullptr ? dir : "/nonexistent");
  }();
  auto sandbox = run::Sandbox::Open(root);
  if (!sandbox.ok()) __builtin_trap();
  run::HostExecutor e(-1, -1, -1, std::move(*sandbox));
  static_cast<void>(e.BytesAside(record));
  std::byte result[512];
  static_cast<void>(e.Execute(static_cast<uint64_t>(nr), data[0] >> 7, record, {}, result));
  return 0;
}
