#include "vigil/common/find_program.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

namespace vigil {

Result<std::string> FindProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) != 0) {
      return ErrnoStatus(StatusCode::kNotFound, fmt::format("cannot execute '{}'", name), errno);
    }
    return name;
  }
  const char* env = std::getenv("PATH");
  const std::string path = env != nullptr ? env : "/usr/local/bin:/usr/bin:/bin";
  int err = ENOENT;
  for (size_t start = 0; start <= path.size();) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
      err = EACCES;
    }
    start = end + 1;
  }
  return ErrnoStatus(StatusCode::kNotFound, fmt::format("cannot execute '{}'", name), err);
}

std::string HelperProgram(const std::string& name, const std::string& build_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return name;
  const fs::path dir = self.parent_path();
  for (const fs::path& p :
       {dir / name, dir.parent_path() / "libexec" / "vigil" / name,
        dir.parent_path() / build_dir / name, dir.parent_path().parent_path() / build_dir / name}) {
    if (fs::exists(p, ec)) return p.string();
  }
  return name;
}

}  // namespace vigil
