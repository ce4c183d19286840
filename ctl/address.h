// Where a client connects: a TCP "HOST:PORT" (clients, status) or a Unix
// socket path (a node's admin socket). Parsing is pure; connecting is
// connection.h's business.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ctl/result.h"

namespace kvd::client {

struct Endpoint {
  enum class Kind : uint8_t { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string host;   // kTcp: a name or an address, IPv6 without brackets.
  uint16_t port = 0;  // kTcp: 1..65535.
  std::string path;   // kUnix.

  // How users wrote it, for messages: "127.0.0.1:7001", "[::1]:7001", a path.
  std::string ToString() const;
};

// Accepts:
//   "HOST:PORT"          a host name or IPv4 address and a port 1..65535;
//   "[V6ADDR]:PORT"      an IPv6 address;
//   "unix:PATH"          a Unix socket;
//   anything with a '/'  a Unix socket path ("./kvd.sock", "/run/kvd/1.sock").
// Surrounding spaces are not allowed; errors are kInvalidArgument.
Result<Endpoint> ParseAddress(std::string_view text);

// A Unix socket path as is (kvctl --admin): no "HOST:PORT" reading, so a
// relative name without a '/' works too. Errors (empty, longer than a
// sockaddr_un holds) are kInvalidArgument.
Result<Endpoint> UnixEndpoint(std::string_view path);

// "a,b,c" -> {"a", "b", "c"}. Empty items are kept (the caller decides);
// "" -> {}.
std::vector<std::string> SplitList(std::string_view text, char separator = ',');

}  // namespace kvd::client
