// Status and StatusOr: the error type of every call that crosses a module boundary.
// A Status is ok or carries a code and a one-line message meant for the user (it names the
// file, field or value at fault). Exceptions from third-party libraries are caught inside the
// adapter that calls them and turned into a Status.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace rag {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,   // bad input from the user: HTTP 400
  kNotFound,          // HTTP 404
  kAlreadyExists,     // HTTP 409
  kFailedPrecondition,// the state does not allow it: HTTP 409
  kResourceExhausted, // too large, queue full: HTTP 413/429
  kUnsupported,       // a format or feature we do not handle: HTTP 415
  kUnauthenticated,   // HTTP 401
  kPermissionDenied,  // HTTP 403
  kDataLoss,          // corrupt file or store
  kInternal,          // a bug or an unexpected library failure: HTTP 500
  kUnavailable,       // try again later: HTTP 503
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "INVALID_ARGUMENT: message", or "OK".
  std::string ToString() const;
  // Returns a copy whose message is "prefix: message" (adds context on the way up).
  Status WithPrefix(const std::string& prefix) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status Unauthenticated(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }
inline Status PermissionDenied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
inline Status DataLoss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }

// Holds either a value or a non-ok Status. Accessing the value of an error is a bug and aborts
// with the status message.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(const Status& status) : status_(status) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = Internal("StatusOr constructed from an ok Status without a value");
  }
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  T& value() & { CheckOk(); return *value_; }
  const T& value() const& { CheckOk(); return *value_; }
  T&& value() && { CheckOk(); return std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  void CheckOk() const {
    if (!status_.ok()) {
      std::fprintf(stderr, "FATAL StatusOr::value() on error: %s\n", status_.ToString().c_str());
      std::abort();
    }
  }
  Status status_;
  std::optional<T> value_;
};

}  // namespace rag

#define RAG_STATUS_CONCAT_INNER(a, b) a##b
#define RAG_STATUS_CONCAT(a, b) RAG_STATUS_CONCAT_INNER(a, b)

// Returns the status from the enclosing function when it is not ok.
#define RAG_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::rag::Status rag_status_tmp_ = (expr);    \
    if (!rag_status_tmp_.ok()) return rag_status_tmp_; \
  } while (0)

// `RAG_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from the value or returns the error.
#define RAG_ASSIGN_OR_RETURN(lhs, expr) \
  RAG_ASSIGN_OR_RETURN_IMPL(RAG_STATUS_CONCAT(rag_statusor_, __LINE__), lhs, expr)
#define RAG_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
