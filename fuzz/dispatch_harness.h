// DispatchHarness: a Replica driven the way daemon/io/dispatch.cc and
// peer_link.cc drive it, minus the sockets. Each verified frame that
// passes CheckEnvelope becomes one replica input, then Ready(); after every
// step the harness checks the core's invariants.
//
// Time and sessions come from the input: a frame's request_id advances the
// clock by (request_id % 128) ms and names the client session
// ((request_id >> 8) % 4), so the fuzzer controls both.
//
// Peer traffic is modelled as the node sees it: a Hello opens the link from
// its sender (replacing an older one, as a redial does); WriteBatches arrive
// on the most recent such link; a HelloAck opens the link to its sender and
// Acks arrive on the most recent such link. An input the replica refuses
// closes that link, as the shell does.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "daemon/core/replica.h"
#include "schema/frame.h"
#include "schema/limits.h"

namespace kvd::fuzz {

class DispatchHarness {
 public:
  // `peers`: accept peer messages too (fuzz_peer_dispatch); otherwise only
  // client requests are dispatched and the rest is refused.
  explicit DispatchHarness(bool peers);

  // Dispatches one frame. Returns false when the daemon would close the
  // connection it came on.
  bool OnFrame(const wire::Frame& frame);

  // Lets every deadline pass and checks that each request got exactly one
  // reply.
  void Finish();

 private:
  void OnClientRequest(const fb::Envelope& envelope);
  bool OnPeerMessage(const fb::Envelope& envelope);
  void Step();
  void CheckOutput(const core::Output& out);
  void FromPeerDown();
  void ToPeerDown();

  bool peers_;
  wire::Limits limits_;
  core::ReplicaConfig config_;
  core::Replica replica_;
  uint64_t now_ms_ = 1;
  core::VectorClock last_clock_;
  // The clock the records handed out so far add up to.
  core::VectorClock persisted_;

  uint64_t next_token_ = 1;
  std::set<uint64_t> unanswered_;
  std::map<uint64_t, core::VectorClock> contexts_;  // Of unanswered requests.

  std::optional<uint32_t> from_peer_;  // Sender of the current inbound link.
  std::optional<uint32_t> to_peer_;    // Target of the current outbound link.
  std::vector<bool> from_up_;
  std::vector<bool> to_up_;
  std::vector<core::Write> scratch_writes_;
};

}  // namespace kvd::fuzz
