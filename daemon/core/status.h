// Status: an error as a value. Anything a client, peer, disk or config can
// cause is reported as a Status with a message; broken invariants abort
// through KV_ASSERT instead (see assert.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace kvd::core {

// The wire protocol carries these values; never renumber them.
enum class Code : uint8_t {
  kOk = 0,
  kNotFound = 1,
  kBadRequest = 2,
  kTooLarge = 3,
  kTimeout = 4,
  kUnavailable = 5,
  kUnauthorized = 6,
  kInternal = 7,
};

std::string_view CodeName(Code code);

class Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status BadRequest(std::string m) { return {Code::kBadRequest, std::move(m)}; }
  static Status TooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }
  static Status Timeout(std::string m) { return {Code::kTimeout, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status Unauthorized(std::string m) { return {Code::kUnauthorized, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace kvd::core
