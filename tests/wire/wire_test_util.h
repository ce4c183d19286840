// Helpers shared by the kvd::wire tests.
#pragma once

#include <criterion/criterion.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "schema/check.h"
#include "schema/encoder.h"
#include "schema/frame.h"
#include "schema/view.h"

namespace kvd::wire::test {

// Counts calls of the global operator new (alloc_counter.cc).
size_t NewCalls();

inline constexpr uint64_t kClock3[] = {1, 2, 3};

inline Limits ThreeNodes() {
  Limits limits;
  limits.cluster_size = 3;
  return limits;
}

// One frame of any message kind, from a fresh encoder.
template <typename Fields>
std::string EncodeOne(const Fields& fields, uint64_t request_id = 7) {
  Encoder encoder;
  std::string out;
  encoder.Encode(request_id, fields, &out);
  return out;
}

inline void FeedString(FrameDecoder& decoder, const std::string& bytes) {
  decoder.Feed(bytes.data(), bytes.size());
}

// Hands out every complete frame, appending copies of their bytes to
// *frames; returns the kind that ended the loop (kNeedMore or kError).
// Asserts the decoder's guarantees on each frame.
inline DecodeResult::Kind Drain(FrameDecoder& decoder, std::vector<std::string>* frames,
                                WireError* error = nullptr) {
  for (;;) {
    DecodeResult r = decoder.Next();
    if (r.kind != DecodeResult::Kind::kFrame) {
      if (error != nullptr) *error = r.error;
      return r.kind;
    }
    cr_assert_eq(reinterpret_cast<uintptr_t>(r.frame.bytes) % 8, 0, "frame is misaligned");
    cr_assert_not_null(r.frame.envelope);
    frames->emplace_back(reinterpret_cast<const char*>(r.frame.bytes), r.frame.size);
  }
}

// Decodes exactly one frame and copies it into *storage (8-byte aligned),
// returning its envelope. Fails the test if the bytes are not one good frame.
inline const fb::Envelope* DecodeOne(const std::string& bytes, std::vector<uint64_t>* storage,
                                     size_t frame_bytes_max = kFrameBytesMaxDefault) {
  FrameDecoder decoder(frame_bytes_max);
  FeedString(decoder, bytes);
  std::vector<std::string> frames;
  WireError error;
  cr_assert_eq(Drain(decoder, &frames, &error), DecodeResult::Kind::kNeedMore, "decode: %s",
               error.message.c_str());
  cr_assert_eq(frames.size(), 1u);
  cr_assert_eq(frames[0], bytes);
  storage->assign((bytes.size() + 7) / 8, 0);
  std::memcpy(storage->data(), bytes.data(), bytes.size());
  return fb::GetSizePrefixedEnvelope(storage->data());
}

// Four little-endian bytes.
inline std::string Prefix(uint32_t n) {
  std::string p(4, '\0');
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return p;
}

// A small deterministic generator (xorshift64*), so failures reproduce.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed * 0x9e3779b97f4a7c15ULL + 1) {}
  uint64_t Next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545f4914f6cdd1dULL;
  }
  uint64_t Below(uint64_t n) { return Next() % n; }

 private:
  uint64_t state_;
};

inline bool SameClock(std::span<const uint64_t> a, std::span<const uint64_t> b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace kvd::wire::test
