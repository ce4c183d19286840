// JSON writer, escaping, UTF-8 validation and base64 (json.h).
#include "ctl/json.h"

#include <criterion/criterion.h>

#include <string>

using kvd::ctl::AppendJsonString;
using kvd::ctl::Base64;
using kvd::ctl::IsValidUtf8;
using kvd::ctl::JsonWriter;

namespace {

std::string Quote(std::string_view text) {
  std::string out;
  AppendJsonString(&out, text);
  return out;
}

}  // namespace

Test(json, escapes_quotes_backslashes_and_named_controls) {
  cr_assert_eq(Quote("plain"), "\"plain\"");
  cr_assert_eq(Quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  cr_assert_eq(Quote("\b\f\n\r\t"), "\"\\b\\f\\n\\r\\t\"");
  cr_assert_eq(Quote("/"), "\"/\"");
}

Test(json, escapes_other_controls_and_del_as_unicode) {
  cr_assert_eq(Quote(std::string("\0", 1)), "\"\\u0000\"");
  cr_assert_eq(Quote("\x01\x1f\x7f"), "\"\\u0001\\u001f\\u007f\"");
}

Test(json, keeps_utf8_and_replaces_invalid_bytes) {
  cr_assert_eq(Quote("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
               "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
  // A lone continuation byte and a truncated sequence become U+FFFD.
  cr_assert_eq(Quote("a\x80z"), "\"a\xEF\xBF\xBDz\"");
  cr_assert_eq(Quote("a\xE2\x82"), "\"a\xEF\xBF\xBD\xEF\xBF\xBD\"");
}

Test(json, utf8_validation) {
  cr_assert(IsValidUtf8(""));
  cr_assert(IsValidUtf8("ascii"));
  cr_assert(IsValidUtf8("\xC3\xA9"));
  cr_assert(IsValidUtf8("\xED\x9F\xBF"));          // U+D7FF
  cr_assert(IsValidUtf8("\xF4\x8F\xBF\xBF"));      // U+10FFFF
  cr_assert_not(IsValidUtf8("\xC0\xAF"));          // Overlong '/'.
  cr_assert_not(IsValidUtf8("\xE0\x80\xAF"));      // Overlong.
  cr_assert_not(IsValidUtf8("\xED\xA0\x80"));      // Surrogate U+D800.
  cr_assert_not(IsValidUtf8("\xF4\x90\x80\x80"));  // Above U+10FFFF.
  cr_assert_not(IsValidUtf8("\xF5\x80\x80\x80"));
  cr_assert_not(IsValidUtf8("\xFF"));
  cr_assert_not(IsValidUtf8("\xC3"));  // Truncated.
  cr_assert_not(IsValidUtf8("\x80"));
}

Test(json, base64) {
  cr_assert_eq(Base64(""), "");
  cr_assert_eq(Base64("f"), "Zg==");
  cr_assert_eq(Base64("fo"), "Zm8=");
  cr_assert_eq(Base64("foo"), "Zm9v");
  cr_assert_eq(Base64("foob"), "Zm9vYg==");
  cr_assert_eq(Base64("fooba"), "Zm9vYmE=");
  cr_assert_eq(Base64("foobar"), "Zm9vYmFy");
  cr_assert_eq(Base64(std::string("\x00\xff\xfe", 3)), "AP/+");
}

Test(json, writer_nests_and_separates) {
  JsonWriter json;
  const uint64_t clock[] = {1, 0, 18446744073709551615ULL};
  json.BeginObject()
      .Key("id")
      .Uint(2)
      .Key("ok")
      .Bool(true)
      .Key("none")
      .Null()
      .Key("clock")
      .Clock(clock)
      .Key("empty")
      .BeginArray()
      .EndArray()
      .Key("list")
      .BeginArray()
      .BeginObject()
      .Key("a")
      .String("x")
      .EndObject()
      .BeginObject()
      .EndObject()
      .EndArray()
      .EndObject();
  cr_assert_eq(json.str(),
               "{\"id\":2,\"ok\":true,\"none\":null,\"clock\":[1,0,18446744073709551615],"
               "\"empty\":[],\"list\":[{\"a\":\"x\"},{}]}");
}

Test(json, bytes_fall_back_to_base64) {
  JsonWriter json;
  json.BeginObject().Bytes("value", "text").Bytes("key", std::string("\xff\x00", 2)).EndObject();
  cr_assert_eq(json.str(), "{\"value\":\"text\",\"key_base64\":\"/wA=\"}");
}
