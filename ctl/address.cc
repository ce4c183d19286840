#include "ctl/address.h"

#include <sys/un.h>

#include <charconv>

namespace kvd::client {
namespace {

Error Invalid(std::string_view text, const std::string& why) {
  return {Code::kInvalidArgument, "bad address '" + std::string(text) + "': " + why};
}

// Ports are decimal 1..65535 with nothing else around them.
bool ParsePort(std::string_view text, uint16_t* port) {
  if (text.empty() || text.size() > 5) return false;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return false;
  if (value == 0 || value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace

std::string Endpoint::ToString() const {
  if (kind == Kind::kUnix) return path;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<Endpoint> UnixEndpoint(std::string_view path) {
  if (path.empty()) return Error{Code::kInvalidArgument, "empty Unix socket path"};
  // sun_path needs room for the terminating NUL.
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return Error{Code::kInvalidArgument, "Unix socket path '" + std::string(path) + "' is over " +
                                             std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                                             " bytes"};
  }
  if (path.find('\0') != std::string_view::npos) {
    return Error{Code::kInvalidArgument, "Unix socket path holds a NUL byte"};
  }
  Endpoint endpoint;
  endpoint.kind = Endpoint::Kind::kUnix;
  endpoint.path = std::string(path);
  return endpoint;
}

Result<Endpoint> ParseAddress(std::string_view text) {
  constexpr std::string_view kUnixScheme = "unix:";
  if (text.starts_with(kUnixScheme)) return UnixEndpoint(text.substr(kUnixScheme.size()));
  if (text.find('/') != std::string_view::npos) return UnixEndpoint(text);
  if (text.empty()) return Invalid(text, "empty");

  Endpoint endpoint;
  std::string_view port_text;
  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return Invalid(text, "no ']' after the IPv6 address");
    endpoint.host = std::string(text.substr(1, close - 1));
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return Invalid(text, "expected [ADDRESS]:PORT");
    }
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return Invalid(text, "expected HOST:PORT");
    endpoint.host = std::string(text.substr(0, colon));
    if (endpoint.host.find(':') != std::string::npos) {
      return Invalid(text, "write IPv6 addresses as [ADDRESS]:PORT");
    }
    port_text = text.substr(colon + 1);
  }
  if (endpoint.host.empty()) return Invalid(text, "empty host");
  for (char c : endpoint.host) {
    if (c == ' ' || c == '\t' || c == '\0' || c == '[' || c == ']') {
      return Invalid(text, "bad character in host");
    }
  }
  if (!ParsePort(port_text, &endpoint.port)) return Invalid(text, "port must be 1..65535");
  return endpoint;
}

std::vector<std::string> SplitList(std::string_view text, char separator) {
  std::vector<std::string> items;
  if (text.empty()) return items;
  size_t start = 0;
  for (;;) {
    size_t end = text.find(separator, start);
    if (end == std::string_view::npos) {
      items.emplace_back(text.substr(start));
      return items;
    }
    items.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
}

}  // namespace kvd::client
