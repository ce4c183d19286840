// kvctl's output formats (render.h): what scripts parse.
#include "ctl/render.h"

#include <criterion/criterion.h>

#include <cstdint>
#include <string>

using namespace kvd::client;
using namespace kvd::ctl;

Test(render, missing_ranges) {
  cr_assert_eq(FormatMissing({0, 3, 3}), "n1:3");
  cr_assert_eq(FormatMissing({2, 3, 5}), "n3:3..5");
}

Test(render, printable) {
  cr_assert_eq(Printable("abc"), "abc");
  cr_assert_eq(Printable(std::string("a\0\n\\\xff", 5)), "a\\x00\\x0a\\\\\\xff");
}

Test(render, status_json) {
  NodeStatus status;
  status.node_index = 0;
  status.clock = {1, 2, 0};
  status.buffered = 1;
  status.keys = 2;
  status.accepting_writes = true;
  status.log_entries = 3;
  status.cluster_id = "c0ffee";
  status.loop = {true, 1'000'000, 450'000, 350'000, 7012, 3100, 90'000};
  status.peers.push_back({1, "127.0.0.1:7002", true, true, false, {1, 2, 0}});
  status.peers.push_back({2, "127.0.0.1:7003", true, false, true, {}});
  JsonWriter json;
  StatusJson(status, &json);
  cr_assert_eq(json.str(),
               "{\"id\":1,\"clock\":[1,2,0],\"buffered\":1,\"keys\":2,\"accepting_writes\":true,"
               "\"log_entries\":3,\"cluster_id\":\"c0ffee\","
               "\"loop\":{\"window_us\":1000000,\"busy_us\":450000,\"cpu_us\":350000,"
               "\"turns\":7012,\"longest_turn_us\":3100,\"cpu_wait_us\":90000},\"peers\":["
               "{\"id\":2,\"address\":\"127.0.0.1:7002\",\"connected\":true,"
               "\"connected_out\":true,\"connected_in\":true,\"held\":false,\"acked\":[1,2,0]},"
               "{\"id\":3,\"address\":\"127.0.0.1:7003\",\"connected\":false,"
               "\"connected_out\":true,\"connected_in\":false,\"held\":true,\"acked\":[]}]}");
  std::string text = StatusText(status);
  cr_assert(text.find("n1") != std::string::npos);
  cr_assert(text.find("[1,2,0]") != std::string::npos);
  cr_assert(text.find("127.0.0.1:7003") != std::string::npos);
  cr_assert(text.find("c0ffee") != std::string::npos);
  cr_assert(text.find("busy 45 %, on a CPU 35 %, waiting for a CPU 9 %, 7012 turns, longest "
                      "3.1 ms (last 1.0 s)") != std::string::npos,
            "%s", text.c_str());
  status.loop = {.reported = true};
  text = StatusText(status);
  cr_assert(text.find("(no whole second yet)") != std::string::npos, "%s", text.c_str());
  status.loop = {};
  text = StatusText(status);
  cr_assert(text.find("(not reported by this node)") != std::string::npos, "%s", text.c_str());
  // A node's nonsense (busy far beyond the window) prints, not overflows.
  status.loop = {true, 1, UINT64_MAX, 0, 0, 0, 0};
  text = StatusText(status);
  cr_assert(text.find("busy ") != std::string::npos, "%s", text.c_str());
}

Test(render, buffer_json_and_text) {
  BufferListing listing;
  listing.total = 2;
  listing.entries.push_back({1, 1, "y", false, {{0, 1, 1}}});
  JsonWriter json;
  BufferJson(listing, &json);
  cr_assert_eq(json.str(),
               "{\"total\":2,\"entries\":[{\"origin\":2,\"seq\":1,\"key\":\"y\","
               "\"is_delete\":false,\"missing\":[\"n1:1\"],"
               "\"missing_ranges\":[{\"origin\":1,\"first\":1,\"last\":1}]}]}");
  std::string text = BufferText(listing);
  cr_assert(text.find("2 buffered writes (showing 1)") != std::string::npos, "%s", text.c_str());
  cr_assert(text.find("n2:1") != std::string::npos);
  cr_assert(text.find("n1:1") != std::string::npos);
}

Test(render, reply_json) {
  Reply found;
  found.found = true;
  found.value = "1";
  found.version = {1, 0, 0};
  JsonWriter get;
  ReplyJson("x", found, true, &get);
  cr_assert_eq(get.str(), "{\"key\":\"x\",\"found\":true,\"value\":\"1\",\"version\":[1,0,0]}");

  Reply binary = found;
  binary.value = std::string("\xff", 1);
  JsonWriter get_binary;
  ReplyJson("x", binary, true, &get_binary);
  cr_assert_eq(get_binary.str(),
               "{\"key\":\"x\",\"found\":true,\"value_base64\":\"/w==\",\"version\":[1,0,0]}");

  Reply missing;
  missing.version = {0, 0, 0};
  JsonWriter get_missing;
  ReplyJson("x", missing, true, &get_missing);
  cr_assert_eq(get_missing.str(),
               "{\"key\":\"x\",\"found\":false,\"value\":null,\"version\":[0,0,0]}");

  JsonWriter put;
  ReplyJson("x", found, false, &put);
  cr_assert_eq(put.str(), "{\"key\":\"x\",\"version\":[1,0,0]}");
}
