// FrameDecoder: splits a byte stream into size-prefixed FlatBuffers frames
// (PROTOCOL.md, "Framing") and verifies each one.
//
// A connection owns one decoder. Feed it every byte read, then call Next()
// until it returns kNeedMore or kError:
//
//   decoder.Feed(data, len);
//   for (;;) {
//     DecodeResult r = decoder.Next();
//     if (r.kind == DecodeResult::Kind::kNeedMore) break;
//     if (r.kind == DecodeResult::Kind::kError) { send Error(r.error); close; break; }
//     if (auto bad = CheckEnvelope(*r.frame.envelope, limits)) { ... }  // check.h
//     Handle(r.frame);
//   }
//
// Guarantees:
//   - A size prefix is checked against frame_bytes_max as soon as its four
//     bytes arrive, before any byte of the body is buffered; prefix 0 is an
//     error too. Storage grows only as bytes arrive, never on a prefix's
//     claim, so a peer that announces 16 MiB and sends nothing costs nothing.
//   - Every frame handed out sits in 8-byte-aligned storage and passed
//     fb::VerifySizePrefixedEnvelopeBuffer over exactly its own bytes.
//   - Frames that precede a bad prefix in the stream are still handed out,
//     in order; then Next() reports the error. After an error the decoder
//     stays failed: Next() repeats the error and Feed() ignores its input.
//   - No heap allocation on the steady path: storage is reused and
//     compacted only when the tail runs out of room.
//   - With a FrameMac set (set_mac), every frame handed out from then on
//     was sealed by the sender and its tag checked (frame_mac.h); the
//     frame handed out is the plain frame inside. A frame whose tag does
//     not match is an UNAUTHORIZED error, like one that fails
//     verification. Frames are opened as Next() hands them out, so the MAC
//     may be set between two calls to Next() even if the next frame's
//     bytes have already arrived.
//
// The verifier proves memory safety only; run CheckEnvelope (check.h) before
// reading any field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "schema/aligned_buffer.h"
#include "schema/frame_mac.h"
#include "schema/kv_generated.h"
#include "schema/limits.h"
#include "schema/wire_error.h"

namespace kvd::wire {

// The little-endian length that starts every frame.
inline constexpr size_t kPrefixBytes = sizeof(flatbuffers::uoffset_t);

// One verified frame. Valid until the next call to Feed() or Next() on the
// decoder that produced it.
struct Frame {
  // The whole frame, size prefix included; 8-byte aligned.
  const uint8_t* bytes = nullptr;
  size_t size = 0;
  // The root of the frame, inside `bytes`.
  const fb::Envelope* envelope = nullptr;

  std::span<const uint8_t> span() const { return {bytes, size}; }
};

struct DecodeResult {
  enum class Kind : uint8_t {
    kNeedMore,  // No complete frame buffered: feed more bytes.
    kFrame,     // `frame` holds the next frame.
    kError,     // `error` says why the stream is refused; close it.
  };
  Kind kind = Kind::kNeedMore;
  Frame frame;
  WireError error;
};

class FrameDecoder {
 public:
  // Frames whose size prefix exceeds frame_bytes_max are refused with
  // TOO_LARGE. Values above kFrameBytesMaxLimit count as that limit.
  explicit FrameDecoder(size_t frame_bytes_max);

  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;

  // Appends bytes of the stream; any split of the stream is fine.
  void Feed(const char* data, size_t len);

  // The next frame, or kNeedMore, or the decoder's error.
  DecodeResult Next();

  // Raises or lowers the cap for prefixes not yet checked (a connection
  // that turns out to be a peer gets the peer cap). Values above
  // kFrameBytesMaxLimit count as that limit.
  void set_frame_bytes_max(size_t frame_bytes_max);

  // From the next frame Next() hands out, every frame must be sealed with
  // `mac` (not owned; it must outlive the decoder or be replaced).
  void set_mac(FrameMac* mac) { mac_ = mac; }

  // True once the stream has been refused (there may still be frames before
  // the bad prefix for Next() to hand out).
  bool has_error() const { return error_.has_value(); }
  size_t frame_bytes_max() const { return frame_bytes_max_; }
  // Bytes received and not yet handed out by Next().
  size_t buffered_bytes() const { return end_ - begin_; }
  // Memory held, for metrics and for tests that check nothing was allocated.
  size_t capacity_bytes() const { return input_.capacity() + scratch_.capacity(); }

 private:
  // Size of the first allocation; later ones double.
  static constexpr size_t kInitialBytes = 4096;

  // Makes room for `bytes` more bytes at end_.
  void ReserveTail(size_t bytes);
  // Records the error and releases the storage.
  void Fail(WireError error);
  // Drops every buffered byte and frees the memory.
  void ReleaseStorage();

  size_t frame_bytes_max_;
  FrameMac* mac_ = nullptr;
  // Received bytes. [begin_, scan_) holds complete frames whose prefixes
  // passed the cap check; [scan_, end_) the start of the next frame.
  AlignedBuffer input_;
  size_t begin_ = 0;
  size_t scan_ = 0;
  size_t end_ = 0;
  // An aligned copy of the frame being handed out when it starts at an
  // offset of input_ that is not a multiple of 8.
  AlignedBuffer scratch_;
  // Set by a bad prefix (reported once the frames before it are handed
  // out) or by a frame that fails verification.
  std::optional<WireError> error_;
};

}  // namespace kvd::wire
