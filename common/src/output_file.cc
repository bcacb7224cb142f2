#include "vigil/common/output_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace vigil {

Result<OutputFile> OutputFile::Open(const std::string& path) {
  OutputFile o;
  o.path_ = path;
  if (path == "-") {
    o.f_ = stdout;
    return o;
  }
  struct stat st;
  const bool exists = stat(path.c_str(), &st) == 0;
  if (exists && !S_ISREG(st.st_mode)) {
    o.f_ = std::fopen(path.c_str(), "wb");
    if (o.f_ == nullptr) return ErrnoStatus(StatusCode::kInvalidArgument, "open " + path, errno);
    o.owned_ = true;
    return o;
  }
  // Created as fopen would create it (0666 less the umask, which the kernel applies), or with the
  // existing file's mode. The name is this process's and free: O_EXCL.
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  int fd = -1;
  std::string temp;
  for (int attempt = 0; fd < 0 && attempt < 100; ++attempt) {
    temp = fmt::format("{}.{}.{}.partial", path, getpid(), attempt);
    fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    return ErrnoStatus(StatusCode::kInvalidArgument,
                       fmt::format("create a temporary file for {} in {}", path, dir), errno);
  }
  o.temp_ = temp;
  if ((exists && fchmod(fd, st.st_mode & 07777) != 0) || (o.f_ = fdopen(fd, "wb")) == nullptr) {
    const int err = errno;
    close(fd);
    unlink(temp.c_str());
    o.temp_.clear();
    return ErrnoStatus(StatusCode::kInvalidArgument, "prepare " + temp, err);
  }
  o.owned_ = true;
  return o;
}

OutputFile& OutputFile::operator=(OutputFile&& o) noexcept {
  if (this != &o) {
    Discard();
    path_ = std::move(o.path_);
    temp_ = std::exchange(o.temp_, {});
    f_ = std::exchange(o.f_, nullptr);
    owned_ = std::exchange(o.owned_, false);
  }
  return *this;
}

OutputFile::~OutputFile() { Discard(); }

void OutputFile::Discard() {
  if (f_ != nullptr && owned_) std::fclose(f_);
  f_ = nullptr;
  if (!temp_.empty()) unlink(temp_.c_str());
  temp_.clear();
}

Status OutputFile::Commit() {
  if (f_ == nullptr) return FailedPrecondition(fmt::format("{}: already committed", path_));
  if (std::fflush(f_) != 0) {
    const int err = errno;
    Discard();
    return ErrnoStatus(StatusCode::kUnavailable, "write " + path_, err);
  }
  if (temp_.empty()) {  // written in place
    if (owned_ && std::fclose(f_) != 0) {
      f_ = nullptr;
      return ErrnoStatus(StatusCode::kUnavailable, "close " + path_, errno);
    }
    f_ = nullptr;
    return Status::Ok();
  }
  int err = fsync(fileno(f_)) != 0 ? errno : 0;
  if (std::fclose(f_) != 0 && err == 0) err = errno;
  f_ = nullptr;
  if (err == 0 && rename(temp_.c_str(), path_.c_str()) != 0) err = errno;
  if (err != 0) {
    unlink(temp_.c_str());
    temp_.clear();
    return ErrnoStatus(StatusCode::kUnavailable, "write " + path_, err);
  }
  temp_.clear();
  return Status::Ok();
}

}  // namespace vigil
