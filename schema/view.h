// Views of the fields of a verified, checked frame, without copies. Absent
// fields read as empty. Views point into the frame: they live as long as it
// does (until the decoder's next Feed() or Next()).
//
// REQUIRES: CheckEnvelope (check.h) accepted the envelope the field belongs
// to. The FlatBuffers verifier checks a vector's length word only, so a
// [ulong] vector may start at a misaligned address until CheckEnvelope has
// ruled that out.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "schema/kv_generated.h"

namespace kvd::wire {

// FlatBuffers stores scalars little-endian; these views hand out the stored
// words as they are.
static_assert(FLATBUFFERS_LITTLEENDIAN, "kvd::wire views assume a little-endian host");

inline std::string_view AsBytes(const flatbuffers::Vector<uint8_t>* bytes) {
  if (bytes == nullptr) return {};
  return {reinterpret_cast<const char*>(bytes->data()), bytes->size()};
}

inline std::string_view AsText(const flatbuffers::String* text) {
  if (text == nullptr) return {};
  return {text->c_str(), text->size()};
}

inline std::span<const uint64_t> AsClock(const flatbuffers::Vector<uint64_t>* clock) {
  if (clock == nullptr) return {};
  return {clock->data(), clock->size()};
}

}  // namespace kvd::wire
