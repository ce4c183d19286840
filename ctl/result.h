// Errors as values for the client library: every call returns a Result<T>
// holding either its value or an Error {code, message}. Nothing in
// kvd::client throws across its API (leveldb's Status, in a typed form).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace kvd::client {

// The wire statuses (kv.fbs, same numbers) plus what can go wrong on the
// client's side of the socket (negative numbers). The C API (kvclient.h)
// returns exactly these numbers.
enum class Code : int {
  kOk = 0,
  kNotFound = 1,
  kBadRequest = 2,
  kTooLarge = 3,
  kTimeout = 4,  // The server did not reach the request's context in time.
  kUnavailable = 5,
  kUnauthorized = 6,
  kInternal = 7,
  // Could not connect, or the connection broke or was closed.
  kConnection = -1,
  // The server sent something this client cannot use: an unverifiable
  // frame, an unexpected message type, a reply to another request.
  kProtocol = -2,
  // No reply (or no connection) within the client's own timeout.
  kTimedOut = -3,
  // The caller passed something unusable (bad address, null pointer...).
  kInvalidArgument = -4,
  // A caller's buffer was too small (C API).
  kBufferTooSmall = -5,
};

// "OK", "NOT_FOUND", ..., "CONNECTION", "PROTOCOL", "TIMED_OUT", ...
const char* CodeName(Code code);

// A wire status number (0..7) as a Code; numbers outside 0..7 are kProtocol.
Code CodeFromWire(uint8_t status);

struct Error {
  Code code = Code::kInternal;
  std::string message;

  // "TIMEOUT: context not reached; waiting for n1:3"
  std::string ToString() const;
};

// Either a T or an Error. REQUIRES for value(): ok(); for error(): !ok().
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT: implicit by design.
  Result(Error error) : state_(std::move(error)) {}  // NOLINT

  bool ok() const { return state_.index() == 0; }
  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  const Error& error() const { return std::get<1>(state_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Error> state_;
};

// A Result that carries no value: success, or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT

  bool ok() const { return !error_.has_value(); }
  const Error& error() const { return *error_; }

 private:
  std::optional<Error> error_;
};

}  // namespace kvd::client
