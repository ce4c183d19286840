// fuzz_peer_dispatch: the input is a stream of frames as a node receives
// them from its peers (and clients): Hello -> LinkFromPeerUp, HelloAck ->
// LinkToPeerUp, WriteBatch -> PeerWrites (fb::Write converted as
// daemon/io/dispatch.cc does), Ack -> PeerAck, client requests as in
// fuzz_client_dispatch. See DispatchHarness for the link model and the
// invariants checked after each step.
#include <cstddef>
#include <cstdint>

#include "fuzz/dispatch_harness.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kvd::fuzz::DispatchHarness harness(/*peers=*/true);
  kvd::wire::FrameDecoder decoder(kvd::fuzz::SmallClusterLimits().frame_bytes_max);
  kvd::fuzz::FeedInPieces(decoder, data, size, /*seed=*/size,
                          [&](const kvd::wire::Frame& frame) { return harness.OnFrame(frame); });
  harness.Finish();
  return 0;
}
