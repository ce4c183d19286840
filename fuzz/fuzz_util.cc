#include "fuzz/fuzz_util.h"

#include <algorithm>

namespace kvd::fuzz {

size_t FeedInPieces(wire::FrameDecoder& decoder, const uint8_t* data, size_t size, uint64_t seed,
                    const FrameVisitor& visit) {
  Rng rng(seed);
  size_t frames = 0;
  size_t fed = 0;
  while (fed < size) {
    // Mostly small pieces (splits inside prefixes and bodies), sometimes
    // everything left (many frames in one read).
    const uint64_t r = rng.Next();
    const size_t left = size - fed;
    const size_t piece = (r % 8 == 0) ? left : std::min<size_t>(left, 1 + (r >> 8) % 64);
    decoder.Feed(reinterpret_cast<const char*>(data + fed), piece);
    fed += piece;
    FUZZ_CHECK(decoder.buffered_bytes() <= fed);
    // Storage grows with bytes received (doubling), never with a prefix's
    // claim: the input buffer and the aligned scratch copy each stay
    // within twice what arrived plus the initial allocation.
    FUZZ_CHECK(decoder.capacity_bytes() <= 4 * fed + 16384);
    for (;;) {
      wire::DecodeResult r2 = decoder.Next();
      if (r2.kind == wire::DecodeResult::Kind::kNeedMore) break;
      if (r2.kind == wire::DecodeResult::Kind::kError) {
        FUZZ_CHECK(decoder.has_error());
        FUZZ_CHECK(!r2.error.message.empty());
        // A failed decoder stays failed and ignores further input.
        decoder.Feed(reinterpret_cast<const char*>(data), size);
        wire::DecodeResult again = decoder.Next();
        FUZZ_CHECK(again.kind == wire::DecodeResult::Kind::kError);
        FUZZ_CHECK(again.error.status == r2.error.status);
        FUZZ_CHECK(decoder.buffered_bytes() == 0);
        return frames;
      }
      const wire::Frame& frame = r2.frame;
      FUZZ_CHECK(frame.envelope != nullptr);
      FUZZ_CHECK(frame.size > wire::kPrefixBytes);
      FUZZ_CHECK(frame.size - wire::kPrefixBytes <= decoder.frame_bytes_max());
      FUZZ_CHECK(reinterpret_cast<uintptr_t>(frame.bytes) % alignof(uint64_t) == 0);
      ++frames;
      if (!visit(frame)) return frames;
    }
  }
  return frames;
}

core::ReplicaConfig SmallClusterConfig() {
  core::ReplicaConfig config;
  config.self = kSelf;
  config.node_count = kNodeCount;
  config.key_bytes_max = 32;
  config.value_bytes_max = 256;
  config.buffer_writes_max = 8;
  config.parked_requests_max = 4;
  config.context_wait_ms = 50;
  config.forward_after_ms = 100;
  config.ack_interval_ms = 5;
  config.batch_writes_max = 4;
  config.log_bytes_max = 4096;  // Small: peers get detached and sent state.
  config.cluster_id = "fuzz";   // A member already: writes are accepted.
  return config;
}

wire::Limits SmallClusterLimits() {
  const core::ReplicaConfig config = SmallClusterConfig();
  wire::Limits limits;
  limits.cluster_size = config.node_count;
  limits.key_bytes_max = config.key_bytes_max;
  limits.value_bytes_max = config.value_bytes_max;
  limits.frame_bytes_max = 64 * 1024;
  return limits;
}

}  // namespace kvd::fuzz
