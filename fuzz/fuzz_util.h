// Helpers shared by the fuzz targets: a check that aborts (libFuzzer and the
// replay driver both report an abort as a crash), a byte stream fed to a
// FrameDecoder in input-chosen pieces, and the small cluster every
// dispatch target runs against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "daemon/core/replica.h"
#include "schema/auth.h"
#include "schema/frame.h"
#include "schema/limits.h"

// An invariant the code under test must keep whatever the input. Unlike
// KV_ASSERT it names the fuzz target's expectation, not the product's.
#define FUZZ_CHECK(expr)                                                                     \
  do {                                                                                       \
    if (!(expr)) {                                                                           \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #expr); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

namespace kvd::fuzz {

// A tiny deterministic generator (xorshift64*), so a reproducer replays the
// same way on every machine.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t Next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545F4914F6CDD1Dull;
  }

 private:
  uint64_t state_;
};

// What happens to each verified frame; returns false to stop the stream
// (as the daemon closes a connection).
using FrameVisitor = std::function<bool(const wire::Frame&)>;

// Feeds `data` to `decoder` in pieces whose sizes come from `seed` (one
// byte up to the whole rest), handing out every frame after each piece.
// Checks the decoder's documented guarantees on the way. Returns the number
// of frames handed out.
size_t FeedInPieces(wire::FrameDecoder& decoder, const uint8_t* data, size_t size, uint64_t seed,
                    const FrameVisitor& visit);

// The cluster the dispatch targets run: three nodes, this one node 0, with
// small bounds so the fuzzer reaches full buffers and parked queues quickly.
inline constexpr size_t kNodeCount = 3;
inline constexpr uint32_t kSelf = 0;

core::ReplicaConfig SmallClusterConfig();

// The peer-authentication target's fixed world (fuzz_peer_auth.cc), shared
// with make_corpus.cc so the seeds carry valid proofs and tags: the cluster
// secret, the cluster fingerprint, and the nonces each side would have drawn.
inline constexpr char kAuthSecret[] = "fuzz cluster secret 0123456789";
inline constexpr uint64_t kAuthFingerprint = 0x3a948c08660d056eULL;
inline wire::Nonce AuthNonce(uint8_t fill) {
  wire::Nonce nonce;
  nonce.fill(fill);
  return nonce;
}
inline constexpr uint8_t kDialerNonceFill = 0xD1;
inline constexpr uint8_t kAcceptorNonceFill = 0xAC;
// The wire limits matching SmallClusterConfig(), as the daemon derives them.
wire::Limits SmallClusterLimits();

}  // namespace kvd::fuzz
