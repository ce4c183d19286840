// Session context files and merging (context_file.h, client.h).
#include "ctl/context_file.h"

#include <criterion/criterion.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

using kvd::client::Code;
using kvd::client::Context;
using kvd::client::Covers;
using kvd::client::MergeInto;
using kvd::ctl::FormatContext;
using kvd::ctl::ParseContext;
using kvd::ctl::ReadContextFile;
using kvd::ctl::WriteContextFile;

Test(context, parses_arrays_with_spaces) {
  auto c = ParseContext(" [ 3 ,0,\n 18446744073709551615 ]\n");
  cr_assert(c.ok(), "%s", c.ok() ? "" : c.error().message.c_str());
  cr_assert_eq(c->size(), 3);
  cr_assert_eq((*c)[0], 3);
  cr_assert_eq((*c)[1], 0);
  cr_assert_eq((*c)[2], 18446744073709551615ULL);
}

Test(context, empty_forms) {
  cr_assert(ParseContext("").ok());
  cr_assert(ParseContext("").value().empty());
  cr_assert(ParseContext(" \n").value().empty());
  cr_assert(ParseContext("[]").value().empty());
  cr_assert(ParseContext("[ ]\n").value().empty());
}

Test(context, rejects_what_is_not_a_clock) {
  for (const char* bad :
       {"[", "]", "[1,]", "[,1]", "[1 2]", "[-1]", "[+1]", "[1.0]", "[1e3]", "[01]",
        "[18446744073709551616]", "[\"1\"]", "{}", "[1] x", "1", "[1][2]", "null"}) {
    auto c = ParseContext(bad);
    cr_assert_not(c.ok(), "accepted %s", bad);
    cr_assert_eq(c.error().code, Code::kInvalidArgument);
  }
  std::string long_clock = "[0";
  for (int i = 0; i < 64; ++i) long_clock += ",0";
  cr_assert_not(ParseContext(long_clock + "]").ok());
}

Test(context, format_round_trips) {
  Context c = {1, 0, 42};
  cr_assert_eq(FormatContext(c), "[1,0,42]\n");
  cr_assert_eq(FormatContext({}), "[]\n");
  cr_assert(ParseContext(FormatContext(c)).value() == c);
}

Test(context, merge_is_entrywise_max) {
  Context c;
  const uint64_t v1[] = {1, 0, 0};
  MergeInto(&c, v1);
  cr_assert(c == (Context{1, 0, 0}));
  const uint64_t v2[] = {0, 2, 0};
  MergeInto(&c, v2);
  cr_assert(c == (Context{1, 2, 0}));
  MergeInto(&c, {});
  cr_assert(c == (Context{1, 2, 0}));
  const uint64_t longer[] = {0, 1, 3, 4};
  MergeInto(&c, longer);
  cr_assert(c == (Context{1, 2, 3, 4}));
}

Test(context, covers) {
  const uint64_t clock[] = {2, 1, 0};
  const uint64_t behind[] = {1, 1, 0};
  const uint64_t ahead[] = {1, 2, 0};
  cr_assert(Covers(clock, behind));
  cr_assert(Covers(clock, {}));
  cr_assert_not(Covers(clock, ahead));
  const uint64_t zeros[] = {0, 0, 0};
  cr_assert(Covers({}, zeros));
}

Test(context, file_round_trip_and_missing_file) {
  char dir[] = "/tmp/ctl_test_XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  const std::string path = std::string(dir) + "/session.json";
  auto missing = ReadContextFile(path);
  cr_assert(missing.ok());
  cr_assert(missing->empty());
  cr_assert(WriteContextFile(path, {5, 0, 7}).ok());
  auto read = ReadContextFile(path);
  cr_assert(read.ok());
  cr_assert(*read == (Context{5, 0, 7}));
  { std::ofstream(path) << "not json"; }
  auto bad = ReadContextFile(path);
  cr_assert_not(bad.ok());
  cr_assert(bad.error().message.find(path) != std::string::npos);
  std::remove(path.c_str());
  rmdir(dir);
}

Test(context, unwritable_directory_is_an_error) {
  auto written = WriteContextFile("/nonexistent-dir/session.json", {1});
  cr_assert_not(written.ok());
  cr_assert_eq(written.error().code, Code::kInvalidArgument);
}
