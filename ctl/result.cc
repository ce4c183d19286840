#include "ctl/result.h"

namespace kvd::client {

const char* CodeName(Code code) {
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
    case Code::kConnection:
      return "CONNECTION";
    case Code::kProtocol:
      return "PROTOCOL";
    case Code::kTimedOut:
      return "TIMED_OUT";
    case Code::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case Code::kBufferTooSmall:
      return "BUFFER_TOO_SMALL";
  }
  return "UNKNOWN";
}

Code CodeFromWire(uint8_t status) {
  if (status > static_cast<uint8_t>(Code::kInternal)) return Code::kProtocol;
  return static_cast<Code>(status);
}

std::string Error::ToString() const {
  std::string text = CodeName(code);
  if (!message.empty()) text += ": " + message;
  return text;
}

}  // namespace kvd::client
