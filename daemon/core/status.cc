#include "daemon/core/status.h"

namespace kvd::core {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kNotFound:
      return "NOT_FOUND";
    case Code::kBadRequest:
      return "BAD_REQUEST";
    case Code::kTooLarge:
      return "TOO_LARGE";
    case Code::kTimeout:
      return "TIMEOUT";
    case Code::kUnavailable:
      return "UNAVAILABLE";
    case Code::kUnauthorized:
      return "UNAUTHORIZED";
    case Code::kInternal:
      return "INTERNAL";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  std::string out(CodeName(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

}  // namespace kvd::core
