// FrameMac: seals and opens the frames of one direction of an
// authenticated peer connection (PROTOCOL.md, "Sealed frames").
//
// A sealed frame is a plain frame whose size prefix also counts a 32-byte
// tag appended after the FlatBuffer:
//
//   offset  bytes  content
//   0       4      L + 32, little-endian
//   4       L      the FlatBuffer, exactly as in a plain frame
//   4 + L   32     HMAC-SHA256(key, seq || bytes 0 .. 4+L)
//
// `seq` is the 8-byte little-endian count of frames sealed before this one
// in this direction. It is never sent: both ends count, so a frame that is
// injected, altered, dropped, replayed or moved fails the tag check of the
// receiver, and a frame sealed for another connection or direction fails
// because its key differs (auth.h derives one key per direction from both
// nonces).
//
// Sealing works in place on the sender's output buffer and opening in
// place on the decoder's, so neither copies a frame: the cost is one
// HMAC pass over its bytes (libcrypto's SHA-256, ~1 GB/s with the CPU's SHA
// extensions) plus two small allocations inside libcrypto 3.0 per frame
// (each HMAC restart duplicates its digest context), none per write.
//
// Not copyable: it owns an OpenSSL MAC context keyed once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "schema/auth.h"

typedef struct evp_mac_ctx_st EVP_MAC_CTX;

namespace kvd::wire {

inline constexpr size_t kMacBytes = 32;

class FrameMac {
 public:
  explicit FrameMac(const MacKey& key);
  ~FrameMac();
  FrameMac(const FrameMac&) = delete;
  FrameMac& operator=(const FrameMac&) = delete;

  // Seals the frame that occupies the last `frame_bytes` bytes of *out:
  // raises its size prefix by kMacBytes and appends the tag.
  // REQUIRES: those bytes are one plain frame (as Encoder appends them).
  void Seal(std::string* out, size_t frame_bytes);

  // Checks the tag of the sealed frame at `frame` (`*size` bytes, prefix
  // included) and, if it matches, turns it back into the plain frame in
  // place: the prefix loses kMacBytes and *size shrinks by as much. False
  // (nothing changed) if the tag does not match or the frame is too short
  // to hold one; the connection must then be closed.
  bool Open(uint8_t* frame, size_t* size);

  // Frames sealed or opened so far: the next frame's sequence number.
  uint64_t sequence() const { return sequence_; }

 private:
  void Tag(const uint8_t* bytes, size_t size, uint8_t* tag);

  EVP_MAC_CTX* context_;
  uint64_t sequence_ = 0;
};

}  // namespace kvd::wire
