// Address parsing (address.h).
#include "ctl/address.h"

#include <criterion/criterion.h>

#include <string>

using kvd::client::Code;
using kvd::client::Endpoint;
using kvd::client::ParseAddress;
using kvd::client::SplitList;
using kvd::client::UnixEndpoint;

Test(address, host_and_port) {
  auto e = ParseAddress("127.0.0.1:7001");
  cr_assert(e.ok());
  cr_assert_eq(e->kind, Endpoint::Kind::kTcp);
  cr_assert_eq(e->host, "127.0.0.1");
  cr_assert_eq(e->port, 7001);
  cr_assert_eq(e->ToString(), "127.0.0.1:7001");
  auto named = ParseAddress("localhost:65535");
  cr_assert(named.ok());
  cr_assert_eq(named->host, "localhost");
  cr_assert_eq(named->port, 65535);
}

Test(address, ipv6_in_brackets) {
  auto e = ParseAddress("[::1]:7002");
  cr_assert(e.ok());
  cr_assert_eq(e->host, "::1");
  cr_assert_eq(e->port, 7002);
  cr_assert_eq(e->ToString(), "[::1]:7002");
  cr_assert_not(ParseAddress("::1:7002").ok());
  cr_assert_not(ParseAddress("[::1]7002").ok());
  cr_assert_not(ParseAddress("[::1:7002").ok());
}

Test(address, unix_paths) {
  auto e = ParseAddress("/run/kvd/1.sock");
  cr_assert(e.ok());
  cr_assert_eq(e->kind, Endpoint::Kind::kUnix);
  cr_assert_eq(e->path, "/run/kvd/1.sock");
  auto scheme = ParseAddress("unix:kvd.sock");
  cr_assert(scheme.ok());
  cr_assert_eq(scheme->kind, Endpoint::Kind::kUnix);
  cr_assert_eq(scheme->path, "kvd.sock");
  auto relative = UnixEndpoint("kvd.sock");
  cr_assert(relative.ok());
  cr_assert_eq(relative->path, "kvd.sock");
  cr_assert_not(UnixEndpoint("").ok());
  cr_assert_not(UnixEndpoint(std::string(200, 'a')).ok());
}

Test(address, rejects_bad_ports_and_hosts) {
  for (const char* bad : {"", "host", "host:", ":7001", "host:0", "host:65536", "host:70a",
                          "host:+1", "host:-1", "host:123456", "ho st:1"}) {
    auto e = ParseAddress(bad);
    cr_assert_not(e.ok(), "accepted '%s'", bad);
    cr_assert_eq(e.error().code, Code::kInvalidArgument);
  }
}

Test(address, split_list) {
  cr_assert(SplitList("").empty());
  auto one = SplitList("a:1");
  cr_assert_eq(one.size(), 1);
  auto three = SplitList("a:1,b:2,c:3");
  cr_assert_eq(three.size(), 3);
  cr_assert_eq(three[2], "c:3");
  auto holes = SplitList("a,,b,");
  cr_assert_eq(holes.size(), 4);
  cr_assert_eq(holes[1], "");
  cr_assert_eq(holes[3], "");
}
