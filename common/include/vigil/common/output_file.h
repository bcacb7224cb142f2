// An output file that appears whole or not at all. Bytes go to a temporary file beside the
// destination (same directory, so the rename is atomic); Commit() flushes it to disk and renames
// it over the destination. Destroyed without Commit() (the job failed), it removes the temporary,
// and whatever was at the destination before is left as it was.
//
// "-" is standard output, and a destination that is neither a regular file nor absent (a device
// such as /dev/null, a FIFO, /dev/stdout) is written directly: those cannot be replaced by a
// rename, and what was written to them stays written.
#pragma once

#include <cstdio>
#include <string>

#include "vigil/common/status.h"

namespace vigil {

class OutputFile {
 public:
  static Result<OutputFile> Open(const std::string& path);
  OutputFile(OutputFile&& o) noexcept { *this = std::move(o); }
  OutputFile& operator=(OutputFile&& o) noexcept;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile();

  std::FILE* get() const { return f_; }
  // The bytes become the destination's. An error (disk full, rename refused) names the path; the
  // temporary is removed and the destination is left as it was.
  Status Commit();
  bool direct() const { return temp_.empty(); }  // written in place (stdout, a device)

 private:
  OutputFile() = default;
  void Discard();

  std::string path_, temp_;
  std::FILE* f_ = nullptr;
  bool owned_ = false;  // f_ is closed by this object (not stdout)
};

}  // namespace vigil
