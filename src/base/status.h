// Errors as values. Library code returns Status or Result<T>; only the CLI turns them into
// messages and exit codes. No exceptions cross library boundaries, and nothing calls exit().
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace frugal {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,   // caller passed something impossible (bad flag, bad shape)
  kNotFound,          // missing file, tensor, key
  kIoError,           // read/write/mmap failed
  kCorrupt,           // file content is malformed (bad magic, out-of-bounds offset, ...)
  kUnsupported,       // valid but not implemented (tensor type, architecture, version)
  kOutOfRange,        // e.g. prompt longer than the context
  kResourceExhausted, // out of memory / KV cache full
  kUnavailable,       // not now: the resource is busy, retry later (KV blocks held by others)
  kInternal,
};

const char* status_code_name(StatusCode c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "corrupt: tensor 'x' extends past end of file" style.
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status Corrupt(std::string m) { return {StatusCode::kCorrupt, std::move(m)}; }
inline Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// Result<T>: a value or a non-OK Status (a minimal std::expected, which g++ 12 lacks).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(implicit)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(implicit)
    assert(!std::get<Status>(v_).ok() && "Result constructed from an OK status");
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

}  // namespace frugal

#define FRUGAL_CONCAT_INNER_(a, b) a##b
#define FRUGAL_CONCAT_(a, b) FRUGAL_CONCAT_INNER_(a, b)

// Return the status from the enclosing function if it is not OK.
#define FRUGAL_RETURN_IF_ERROR(expr)            \
  do {                                          \
    ::frugal::Status frugal_st_ = (expr);       \
    if (!frugal_st_.ok()) return frugal_st_;    \
  } while (0)

// FRUGAL_ASSIGN_OR_RETURN(auto x, MakeX()); declares x or returns the error.
#define FRUGAL_ASSIGN_OR_RETURN(lhs, expr) \
  FRUGAL_ASSIGN_OR_RETURN_IMPL_(FRUGAL_CONCAT_(frugal_res_, __LINE__), lhs, expr)
#define FRUGAL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()
