// Unmodified programs as benchmark and campaign subjects (vigil-run): their input, their plain
// runs (the reference) and the files their replicated runs write to.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "vigil/common/status.h"

namespace vigil::bench {

// A private directory under /tmp for a benchmark's files, removed with all it holds when the
// benchmark ends, however it ends.
class ScratchDir {
 public:
  static Result<ScratchDir> Create(const std::string& prefix);  // /tmp/PREFIX-XXXXXX
  ScratchDir(ScratchDir&& o) noexcept : path_(std::exchange(o.path_, {})) {}
  ScratchDir& operator=(ScratchDir&&) = delete;
  ~ScratchDir();
  const std::string& path() const { return path_; }

 private:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Deterministic text lines, `bytes` long (rounded up to a line): something to hash, sort and
// compress.
std::string TextInput(size_t bytes);
// An anonymous temporary file's descriptor (-1 on failure).
int TempFd();
// Everything in the file open at `fd`, from its start.
std::string ReadFd(int fd);
// This process's environment with LC_ALL=C: the same for plain and replicated runs.
std::vector<std::string> ProgramEnvironment();
// The program run plainly with `input_path` as stdin; its stdout and wall time (ms).
Result<std::pair<std::string, double>> RunPlain(const std::vector<std::string>& argv,
                                                const std::string& input_path);

}  // namespace vigil::bench
