// A small JSON writer for kvctl --json: compact output, strings escaped
// per RFC 8259, bytes that are not UTF-8 never written as if they were.
// Keys and values are bytes in causalkv, so callers check IsValidUtf8()
// and fall back to Base64() (kvctl writes "value_base64" then).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvd::ctl {

// True if `bytes` is well-formed UTF-8: no overlong forms, no surrogates
// (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence.
bool IsValidUtf8(std::string_view bytes);

// Appends `text` as a JSON string literal, quotes included. Control
// characters are escaped (\n, \t... or \u00XX), as are '"', '\\' and DEL.
// Bytes that do not form valid UTF-8 are written as U+FFFD, so the output
// is always valid JSON; check IsValidUtf8() first where that loses data.
void AppendJsonString(std::string* out, std::string_view text);

// Standard base64 (RFC 4648, with padding).
std::string Base64(std::string_view bytes);

// Builds one JSON document. Calls must nest properly (Key() before each
// value inside an object); the writer adds the commas.
class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view name);
  JsonWriter& String(std::string_view text);
  JsonWriter& Uint(uint64_t value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();
  // An array of numbers (a clock).
  JsonWriter& Clock(std::span<const uint64_t> clock);
  // Bytes under `name` if they are UTF-8, else their base64 under
  // `name`_base64 (for keys and values, which are bytes).
  JsonWriter& Bytes(std::string_view name, std::string_view bytes);

  const std::string& str() const { return out_; }

 private:
  // Writes the comma a value needs, if any.
  void BeforeValue();

  std::string out_;
  // Per open object or array: whether it holds a value yet.
  std::vector<bool> has_value_;
  bool after_key_ = false;
};

}  // namespace kvd::ctl
