// Status and Result<T>: the error policy of every vigil library API.
//
// A Status is OK (no allocation) or carries a code and a message that names the operation, the
// object and the offending value. Context is prepended as an error travels up the stack:
//   return st.WithContext("connecting to voter 198.18.0.1:7000");
#pragma once

#include <cassert>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace vigil {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad input from a caller, a config file or the wire
  kNotFound,            // a named thing (device, key, peer) does not exist
  kOutOfRange,          // an offset or length outside its bounds
  kFailedPrecondition,  // the system is not in a state where the call can run
  kResourceExhausted,   // a queue, a memory limit or a quota is full
  kUnavailable,         // a device or peer is not reachable (yet); often retryable
  kDeadlineExceeded,    // a bounded wait ran out
  kPermissionDenied,    // remote access refused (bad rkey, out-of-bounds access)
  kDataLoss,            // corrupted data detected (bad CRC, canary, magic)
  kAborted,             // the operation was cancelled (peer gone, queue flushed)
  kUnimplemented,
  kInternal,
  kUnauthenticated,  // the caller could not prove who it is (no or a bad certificate)
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message reads "<context>: <message>". OK stays OK.
  Status WithContext(std::string_view context) const&;
  Status WithContext(std::string_view context) &&;

  // "CODE_NAME: message", or "OK".
  std::string ToString() const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

std::ostream& operator<<(std::ostream& os, const Status& s);

Status InvalidArgument(std::string message);
Status NotFound(std::string message);
Status OutOfRange(std::string message);
Status FailedPrecondition(std::string message);
Status ResourceExhausted(std::string message);
Status Unavailable(std::string message);
Status DeadlineExceeded(std::string message);
Status PermissionDenied(std::string message);
Status DataLoss(std::string message);
Status Aborted(std::string message);
Status Unimplemented(std::string message);
Status Internal(std::string message);
Status Unauthenticated(std::string message);

// A Status whose message ends with strerror(err) and the errno name, e.g.
// "ibv_reg_mr(4096 bytes) on rxe0: Cannot allocate memory (errno 12)". Pass a saved errno: a
// logger call between the failing call and this one may have changed it.
Status ErrnoStatus(StatusCode code, std::string_view what, int err);

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result built from an OK Status has no value");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace vigil

#define VIGIL_CONCAT_INNER_(a, b) a##b
#define VIGIL_CONCAT_(a, b) VIGIL_CONCAT_INNER_(a, b)

#define VIGIL_RETURN_IF_ERROR(expr)        \
  do {                                     \
    ::vigil::Status vigil_st_ = (expr);    \
    if (!vigil_st_.ok()) return vigil_st_; \
  } while (0)

#define VIGIL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

#define VIGIL_ASSIGN_OR_RETURN(lhs, expr) \
  VIGIL_ASSIGN_OR_RETURN_IMPL_(VIGIL_CONCAT_(vigil_res_, __LINE__), lhs, expr)
