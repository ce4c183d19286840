#include "schema/frame.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

namespace kvd::wire {
namespace {

// The prefix is little-endian on every host (FlatBuffers' byte order). Read
// byte by byte: it may sit at any offset of the input buffer.
uint32_t LoadPrefix(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

bool IsAligned(const uint8_t* p) { return reinterpret_cast<uintptr_t>(p) % alignof(uint64_t) == 0; }

}  // namespace

FrameDecoder::FrameDecoder(size_t frame_bytes_max)
    : frame_bytes_max_(std::min(frame_bytes_max, kFrameBytesMaxLimit)) {}

void FrameDecoder::set_frame_bytes_max(size_t frame_bytes_max) {
  frame_bytes_max_ = std::min(frame_bytes_max, kFrameBytesMaxLimit);
}

void FrameDecoder::Feed(const char* data, size_t len) {
  const auto* in = reinterpret_cast<const uint8_t*>(data);
  // Copy up to the end of the current prefix, check it, then copy up to the
  // end of its body: a bad prefix stops the copy before its body.
  while (len > 0 && !error_) {
    const size_t have = end_ - scan_;  // Bytes of the frame at scan_.
    const size_t want = have < kPrefixBytes
                            ? kPrefixBytes - have
                            : kPrefixBytes + LoadPrefix(input_.data() + scan_) - have;
    const size_t n = std::min(want, len);
    ReserveTail(n);
    std::memcpy(input_.data() + end_, in, n);
    end_ += n;
    in += n;
    len -= n;

    const size_t now = have + n;
    if (now < kPrefixBytes) continue;
    const uint32_t body_bytes = LoadPrefix(input_.data() + scan_);
    if (have < kPrefixBytes) {  // The prefix just completed.
      if (body_bytes == 0) {
        error_ = WireError{fb::Status::BAD_REQUEST, "empty frame (size prefix 0)"};
      } else if (body_bytes > frame_bytes_max_) {
        error_ = WireError{fb::Status::TOO_LARGE,
                           "frame of " + std::to_string(body_bytes) + " bytes exceeds the " +
                               std::to_string(frame_bytes_max_) + "-byte cap"};
      }
      if (error_) return;
    }
    if (now == kPrefixBytes + body_bytes) scan_ = end_;
  }
}

DecodeResult FrameDecoder::Next() {
  DecodeResult result;
  if (begin_ == scan_) {  // No complete frame.
    if (error_) {
      ReleaseStorage();
      result.kind = DecodeResult::Kind::kError;
      result.error = *error_;
    }
    return result;
  }

  uint8_t* bytes = input_.data() + begin_;
  size_t size = kPrefixBytes + LoadPrefix(bytes);
  begin_ += size;
  // Everything consumed: start over at offset 0 (aligned) at no cost. The
  // frame's bytes stay in place until the next Feed().
  if (begin_ == end_) begin_ = scan_ = end_ = 0;

  if (!IsAligned(bytes)) {
    if (scratch_.capacity() < size) {
      scratch_.Reallocate(std::max({size, 2 * scratch_.capacity(), kInitialBytes}));
    }
    std::memcpy(scratch_.data(), bytes, size);
    bytes = scratch_.data();
  }

  if (mac_ != nullptr && !mac_->Open(bytes, &size)) {
    Fail(WireError{fb::Status::UNAUTHORIZED, "frame " + std::to_string(mac_->sequence()) + " of " +
                                                 std::to_string(size) +
                                                 " bytes failed authentication"});
    result.kind = DecodeResult::Kind::kError;
    result.error = *error_;
    return result;
  }

  // Exactly the frame's bytes: the verifier refuses a buffer longer than
  // prefix + body.
  flatbuffers::Verifier verifier(bytes, size, kVerifierDepthMax,
                                 size / kVerifierTableBytesMin + 64);
  if (!fb::VerifySizePrefixedEnvelopeBuffer(verifier)) {
    Fail(WireError{fb::Status::BAD_REQUEST,
                   "frame of " + std::to_string(size) + " bytes failed verification"});
    result.kind = DecodeResult::Kind::kError;
    result.error = *error_;
    return result;
  }
  result.kind = DecodeResult::Kind::kFrame;
  result.frame = Frame{bytes, size, fb::GetSizePrefixedEnvelope(bytes)};
  return result;
}

void FrameDecoder::ReserveTail(size_t bytes) {
  if (end_ + bytes <= input_.capacity()) return;
  const size_t live = end_ - begin_;
  if (live + bytes <= input_.capacity()) {
    // Lazy compaction: slide the unconsumed bytes to the front only when the
    // tail is full. It needs begin_ > 0, so it runs at most once per frame
    // handed out.
    std::memmove(input_.data(), input_.data() + begin_, live);
  } else {
    input_.Reallocate(std::max({live + bytes, 2 * input_.capacity(), kInitialBytes}), begin_, live);
  }
  scan_ -= begin_;
  end_ = live;
  begin_ = 0;
}

void FrameDecoder::Fail(WireError error) {
  error_ = std::move(error);
  ReleaseStorage();
}

void FrameDecoder::ReleaseStorage() {
  input_.Release();
  scratch_.Release();
  begin_ = scan_ = end_ = 0;
}

}  // namespace kvd::wire
