// Regression tests for defects found in daemon/core by the unit tests. Each
// states the contract it checks and the cause it pinned down.
#include <criterion/criterion.h>

#include <string>
#include <vector>

#include "daemon/core/replica.h"
#include "tests/core/test_util.h"

using namespace kvd::core;
using kvd::core::testing::Cluster;
using kvd::core::testing::TestConfig;

namespace {

constexpr uint64_t kNever = 1'000'000'000;

}  // namespace

// BUG A (replica.cc, Replica::Deliver ~l.295 / NoteOwnSeqKnown ~l.351): a node
// learns that it lacks its own writes only from a peer's clock
// (LinkToPeerUp, PeerAck). A write that arrives on the link *from* a peer
// is evidence too: its clock[self] (or, for a write of our own origin, its
// seq) says which of our sequence numbers exist. The two links come up
// independently, so a node that lost its disk can receive, and buffer, its
// own old write 1 before its own link's HelloAck arrives; it then accepts
// a Put and issues sequence number 1 again. The buffered old write is
// later dropped as "already applied" and the cluster diverges. Invariant
// broken: "a node never reuses one of its own sequence numbers".
Test(replica_regression, buffered_own_write_does_not_stop_seq_reuse) {
  constexpr uint32_t kN1 = 0, kN2 = 1, kN3 = 2;
  Cluster c(3, [](ReplicaConfig& config) { config.forward_after_ms = kNever; });
  c.ConnectAll();
  c.Settle();
  c.node(kN1).HoldLink(kN3);
  c.Put(kN3, "z", "1");    // 2:1 reaches nodes 1 and 2.
  c.Put(kN1, "x", "old");  // 0:1 = [1,0,1], reaches node 2 only.
  c.Settle();
  cr_assert(c.node(kN2).clock() == (VectorClock{1, 0, 1}));
  cr_assert_eq(c.node(kN2).log().size(), 1u, "node 2 keeps x for node 3");

  // Node 1 loses its disk. Node 2's link to it comes up first.
  for (uint32_t peer : {kN2, kN3}) {
    c.Disconnect(kN1, peer);
    c.Disconnect(peer, kN1);
  }
  c.Replace(kN1);
  c.Connect(kN2, kN1);
  c.Step(kN1);  // HelloAck [0,0,0] to node 2.
  c.Step(kN2);  // Node 2 sends node 1's own x back (as its state: z is gone from its log).
  cr_assert(c.node(kN1).buffer().size() == 1u || c.node(kN1).clock()[kN1] == 1,
            "node 1 got its write 1 back, buffered or installed");

  Reply reply = c.Put(kN1, "x", "new", 7);
  cr_assert(reply.code != Code::kOk || reply.version[kN1] > 1,
            "node 1 reissued its sequence number 1 (reply %s) while its old write 1 sits "
            "in its buffer",
            reply.version.ToString().c_str());
}

// BUG B (design gap; replication_log.cc Truncate ~l.30 + replica.cc
// NoteOwnSeqKnown ~l.351): the only way a node catches up is peers
// re-sending from their replication logs, and a log drops every write all
// peers have acknowledged. A node that loses its disk after acknowledging
// writes (of any origin) can therefore never get them back: nothing holds
// them for it any more (no snapshot/state transfer exists). It stays
// divergent for good, and since its HelloAcks show peers know its own
// writes, it also refuses every write forever (UNAVAILABLE). DESIGN §2
// requires it to "recover its own writes from peers" and to converge.
// Fixed by state transfer: node 2's log no longer holds what node 1
// lacks, so it sends its whole state.
Test(replica_regression, lost_disk_after_truncation_never_recovers) {
  Cluster c(2);
  c.ConnectAll();
  c.Settle();
  c.Put(0, "x", "1");
  c.Put(1, "y", "2");
  c.Settle();
  cr_assert_eq(c.node(0).log().size(), 0u, "acked everywhere, truncated");
  cr_assert_eq(c.node(1).log().size(), 0u, "acked everywhere, truncated");

  c.Disconnect(0, 1);
  c.Disconnect(1, 0);
  c.Replace(0);
  c.ConnectAll();
  c.now += 10'000;
  c.Settle();
  cr_assert(c.node(0).clock() == c.node(1).clock(),
            "node 1 came back empty and stays at %s while node 2 is at %s: no log holds "
            "the writes it had acknowledged",
            c.node(0).clock().ToString().c_str(), c.node(1).clock().ToString().c_str());
  cr_assert(c.node(0).accepting_writes(), "node 1 waits forever for its own write 1");
  Reply reply = c.Put(0, "z", "3");
  cr_assert_eq(reply.code, Code::kOk, "%s", reply.message.c_str());
}

// BUG C (minor; replication_log.cc: Truncate ~l.30 is only called from
// Acknowledge and StartStream): in a one-node cluster (node_count 1 is a
// valid config) no ack ever arrives, so the replication log keeps every
// write forever although "every peer" (none) has it: unbounded memory.
Test(replica_regression, single_node_log_is_never_truncated) {
  Replica n(TestConfig(0, 1));
  for (uint64_t i = 1; i <= 100; ++i) n.Put(i, 1, "k", "v", nullptr, i);
  n.Ready(100);
  cr_assert_eq(n.log().size(), 0u, "a one-node log holds %zu writes nobody will ask for",
               n.log().size());
}

// FUZZ FINDING (fuzz_peer_dispatch; replica.cc ValidateClock/ValidateWrite,
// NoteOwnSeqKnown): a peer's clock may claim any number of our own writes,
// and a node believes it (it is how a node learns it lost its disk), so an
// absurd claim such as 2^63 made the node refuse writes forever, waiting
// for writes that cannot exist. Entries beyond any possible sequence number
// (2^53 - 1: 285 years at a million writes a second) are now refused and
// the link closed; plausible claims beyond our own count still stop writes
// until recovered, because ignoring them would reuse sequence numbers.
Test(replica_regression, absurd_own_seq_claims_are_refused) {
  constexpr uint64_t kMax = (uint64_t{1} << 53) - 1;
  Replica n(TestConfig(0, 3));
  n.LinkFromPeerUp(1, 1);
  cr_assert_not(n.LinkToPeerUp(1, VectorClock{kMax + 1, 0, 0}, 1).ok());
  cr_assert_not(n.PeerAck(1, VectorClock{uint64_t{1} << 63, 0, 0}, 2).ok());
  std::vector<Write> writes(1);
  writes[0].origin = 1;
  writes[0].clock = VectorClock{~uint64_t{0}, 1, 0};
  writes[0].key = "k";
  writes[0].value = "v";
  cr_assert_not(n.PeerWrites(1, writes, 3).ok());
  cr_assert(n.accepting_writes(), "an absurd claim stopped writes");
  n.Put(1, 1, "mine", "v", nullptr, 4);
  cr_assert_eq(n.Ready(4).replies.at(0).code, Code::kOk);
  // A context no node can reach is refused at once, not after the wait.
  const VectorClock unreachable{0, kMax + 1, 0};
  n.Get(2, 1, "mine", &unreachable, 5);
  cr_assert_eq(n.Ready(5).replies.at(0).code, Code::kBadRequest);

  // The largest possible count is still believed: our disk may be gone.
  cr_assert(n.PeerAck(1, VectorClock{kMax, 0, 0}, 6).ok());
  cr_assert_not(n.accepting_writes(), "a plausible claim beyond our count must stop writes");
}
