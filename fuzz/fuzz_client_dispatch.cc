// fuzz_client_dispatch: the input is a stream of client frames (fed whole,
// as one read). Every verified frame whose Put/Get/Delete passes
// CheckEnvelope is handed to a Replica of a three-node cluster, then
// Ready(); DispatchHarness checks the core's invariants after each step and
// that every request is answered exactly once.
#include <cstddef>
#include <cstdint>

#include "fuzz/dispatch_harness.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kvd::fuzz::DispatchHarness harness(/*peers=*/false);
  kvd::wire::FrameDecoder decoder(kvd::fuzz::SmallClusterLimits().frame_bytes_max);
  kvd::fuzz::FeedInPieces(decoder, data, size, /*seed=*/size,
                          [&](const kvd::wire::Frame& frame) { return harness.OnFrame(frame); });
  harness.Finish();
  return 0;
}
