#include "daemon/core/replication_log.h"

#include <criterion/criterion.h>

#include <string>
#include <vector>

#include "tests/core/test_util.h"

using namespace kvd::core;
using kvd::core::testing::MakeWrite;

namespace {

// Node 0's view in a three-node cluster unless a test says otherwise.
constexpr uint32_t kSelf = 0;
constexpr uint64_t kForwardMs = 100;

std::vector<Write> Batch(ReplicationLog& log, uint32_t peer, uint64_t now_ms, size_t max = 1024) {
  std::vector<Write> out;
  log.NextBatch(peer, now_ms, kForwardMs, max, &out);
  return out;
}

std::string Keys(const std::vector<Write>& writes) {
  std::string out;
  for (const Write& write : writes) {
    if (!out.empty()) out += ",";
    out += write.key;
  }
  return out;
}

}  // namespace

Test(replication_log, append_and_indexes) {
  ReplicationLog log(3, kSelf);
  cr_assert_eq(log.size(), 0u);
  cr_assert_eq(log.begin_index(), 0u);
  cr_assert_eq(log.end_index(), 0u);
  log.Append(MakeWrite(0, {1, 0, 0}, "a"), 10);
  log.Append(MakeWrite(1, {1, 1, 0}, "b"), 10);
  log.Append(MakeWrite(0, {2, 1, 0}, "c"), 25);
  cr_assert_eq(log.size(), 3u);
  cr_assert_eq(log.begin_index(), 0u);
  cr_assert_eq(log.end_index(), 3u);
  cr_assert(log.at(0).write.key == "a");
  cr_assert(log.at(1).write.key == "b");
  cr_assert_eq(log.at(1).write.origin, 1u);
  cr_assert(log.at(2).write.clock == (VectorClock{2, 1, 0}));
  cr_assert_eq(log.at(0).applied_ms, 10u);
  cr_assert_eq(log.at(2).applied_ms, 25u);
  cr_assert_not(log.streaming(1));
  cr_assert(log.acked(1) == VectorClock(3));
}

// A one-node cluster has nobody to send to: the log keeps nothing, and
// what it dropped covers every write, as after a truncation.
Test(replication_log, one_node_keeps_nothing) {
  ReplicationLog log(1, 0);
  log.Append(MakeWrite(0, {1}, "a"), 10);
  log.Append(MakeWrite(0, {2}, "b"), 11);
  cr_assert_eq(log.size(), 0u);
  cr_assert_eq(log.bytes(), 0u);
  cr_assert_eq(log.begin_index(), 2u);
  cr_assert_eq(log.end_index(), 2u);
  cr_assert(log.dropped() == VectorClock{2});
  cr_assert_not(log.over_limit());
}

Test(replication_log, acknowledge_truncates_what_every_peer_has) {
  ReplicationLog log(3, kSelf);
  log.Append(MakeWrite(0, {1, 0, 0}, "a1"), 0);
  log.Append(MakeWrite(0, {2, 0, 0}, "a2"), 0);
  log.Append(MakeWrite(1, {2, 1, 0}, "b1"), 0);

  cr_assert_eq(log.Acknowledge(1, {2, 1, 0}), 0u, "peer 2 has nothing yet");
  cr_assert_eq(log.size(), 3u);
  cr_assert(log.acked(1) == (VectorClock{2, 1, 0}));

  cr_assert_eq(log.Acknowledge(2, {1, 0, 0}), 1u);
  cr_assert_eq(log.begin_index(), 1u);
  cr_assert_eq(log.end_index(), 3u);
  cr_assert(log.at(1).write.key == "a2", "indexes are absolute");

  // Acks merge: an older ack does not move anything back.
  cr_assert_eq(log.Acknowledge(2, {0, 0, 0}), 0u);
  cr_assert(log.acked(2) == (VectorClock{1, 0, 0}));

  cr_assert_eq(log.Acknowledge(2, {2, 0, 0}), 1u);
  cr_assert_eq(log.begin_index(), 2u);
  cr_assert_eq(log.Acknowledge(2, {2, 1, 0}), 1u);
  cr_assert_eq(log.size(), 0u);
  cr_assert_eq(log.begin_index(), 3u);
  cr_assert_eq(log.end_index(), 3u);

  log.Append(MakeWrite(0, {3, 1, 0}, "a3"), 0);
  cr_assert_eq(log.end_index(), 4u);
  cr_assert(log.at(3).write.key == "a3");
}

Test(replication_log, truncation_is_a_prefix) {
  ReplicationLog log(3, kSelf);
  log.Append(MakeWrite(1, {0, 1, 0}, "b1"), 0);
  log.Append(MakeWrite(0, {1, 1, 0}, "a1"), 0);
  // Both peers have a1 but peer 2 lacks b1, which comes first.
  log.Acknowledge(1, {1, 1, 0});
  cr_assert_eq(log.Acknowledge(2, {1, 0, 0}), 0u);
  cr_assert_eq(log.size(), 2u);
  cr_assert_eq(log.Acknowledge(2, {1, 1, 0}), 2u);
}

Test(replication_log, nothing_when_not_streaming) {
  ReplicationLog log(3, kSelf);
  log.Append(MakeWrite(0, {1, 0, 0}, "a1"), 0);
  cr_assert(Batch(log, 1, 1000).empty(), "no stream yet");
  log.StartStream(1, VectorClock(3), 0);
  cr_assert(log.streaming(1));
  log.StopStream(1);
  cr_assert_not(log.streaming(1));
  cr_assert(Batch(log, 1, 1000).empty(), "stream stopped");
}

Test(replication_log, own_writes_go_at_once) {
  ReplicationLog log(3, kSelf);
  log.StartStream(1, VectorClock(3), 0);
  log.Append(MakeWrite(0, {1, 0, 0}, "a1"), 50);
  log.Append(MakeWrite(0, {2, 0, 0}, "a2"), 50);
  std::vector<Write> batch = Batch(log, 1, 50);  // No delay for own writes.
  KV_ASSERT_STR_EQ(Keys(batch), "a1,a2");
  cr_assert(Batch(log, 1, 50).empty(), "sent writes are not sent again");
  log.Append(MakeWrite(0, {3, 0, 0}, "a3"), 60);
  KV_ASSERT_STR_EQ(Keys(Batch(log, 1, 60)), "a3");
  // Peer 2 streams independently.
  cr_assert(Batch(log, 2, 60).empty(), "peer 2 has no stream");
  log.StartStream(2, VectorClock{1, 0, 0}, 0);
  KV_ASSERT_STR_EQ(Keys(Batch(log, 2, 60)), "a2,a3");
}

Test(replication_log, third_origin_waits_for_forward_delay) {
  ReplicationLog log(3, kSelf);
  log.StartStream(2, VectorClock(3), 0);
  log.Append(MakeWrite(1, {0, 1, 0}, "b1"), 1000);  // Origin 1, a third node for peer 2.
  cr_assert(Batch(log, 2, 1000).empty(), "not before forward_after_ms");
  cr_assert(Batch(log, 2, 1000 + kForwardMs - 1).empty());
  std::vector<Write> batch = Batch(log, 2, 1000 + kForwardMs);
  KV_ASSERT_STR_EQ(Keys(batch), "b1");
  cr_assert(Batch(log, 2, 5000).empty(), "forwarded once");
}

Test(replication_log, third_origin_not_forwarded_if_peer_has_it) {
  ReplicationLog log(3, kSelf);
  log.StartStream(2, VectorClock(3), 0);
  log.Append(MakeWrite(1, {0, 1, 0}, "b1"), 0);
  log.Append(MakeWrite(1, {0, 2, 0}, "b2"), 0);
  log.Acknowledge(2, {0, 1, 0});  // Peer 2 got b1 from its origin.
  KV_ASSERT_STR_EQ(Keys(Batch(log, 2, 10000)), "b2");

  // A hello-ack clock counts too.
  ReplicationLog other(3, kSelf);
  other.Append(MakeWrite(1, {0, 1, 0}, "b1"), 0);
  other.StartStream(2, VectorClock{0, 1, 0}, 0);
  cr_assert(Batch(other, 2, 10000).empty());
}

Test(replication_log, own_writes_of_the_peer_go_back_at_once) {
  // Peer 1 lost writes of its own that we have: recovery sends them at
  // once, no forwarding delay.
  ReplicationLog log(3, kSelf);
  log.Append(MakeWrite(1, {0, 1, 0}, "b1"), 500);
  log.Append(MakeWrite(1, {0, 2, 0}, "b2"), 500);
  log.StartStream(1, VectorClock(3), /*peer_writes_here=*/2);
  KV_ASSERT_STR_EQ(Keys(Batch(log, 1, 500)), "b1,b2");

  ReplicationLog has_them(3, kSelf);
  has_them.Append(MakeWrite(1, {0, 1, 0}, "b1"), 500);
  has_them.StartStream(1, VectorClock{0, 1, 0}, 1);
  cr_assert(Batch(has_them, 1, 500).empty(), "the peer's own writes it has stay home");
}

Test(replication_log, recovery_sends_only_what_was_here_at_link_up) {
  ReplicationLog log(3, kSelf);
  log.Append(MakeWrite(1, {0, 1, 0}, "b1"), 0);
  log.Append(MakeWrite(1, {0, 2, 0}, "b2"), 0);
  log.Append(MakeWrite(1, {0, 3, 0}, "b3"), 0);
  // Peer 1 reports 1 of its writes; peer_writes_here bounds what goes
  // back (writes beyond it came from peer 1 itself after the link was up).
  log.StartStream(1, VectorClock{0, 1, 0}, 2);
  KV_ASSERT_STR_EQ(Keys(Batch(log, 1, 0)), "b2");
}

Test(replication_log, peer_writes_arriving_later_are_not_echoed) {
  ReplicationLog log(3, kSelf);
  log.StartStream(1, VectorClock(3), 0);
  log.Append(MakeWrite(1, {0, 1, 0}, "b1"), 0);  // Came from peer 1 itself.
  log.Append(MakeWrite(0, {1, 1, 0}, "a1"), 0);
  KV_ASSERT_STR_EQ(Keys(Batch(log, 1, 10000)), "a1");
  // But it is forwarded to peer 2 once old enough.
  log.StartStream(2, VectorClock(3), 0);
  KV_ASSERT_STR_EQ(Keys(Batch(log, 2, 0)), "a1");
  KV_ASSERT_STR_EQ(Keys(Batch(log, 2, kForwardMs)), "b1");
}

Test(replication_log, young_forward_does_not_hold_back_own_writes) {
  ReplicationLog log(3, kSelf);
  log.StartStream(2, VectorClock(3), 0);
  log.Append(MakeWrite(1, {0, 1, 0}, "b1"), 0);
  log.Append(MakeWrite(0, {1, 1, 0}, "a1"), 10);
  KV_ASSERT_STR_EQ(Keys(Batch(log, 2, 20)), "a1");
  KV_ASSERT_STR_EQ(Keys(Batch(log, 2, kForwardMs)), "b1");
  cr_assert(Batch(log, 2, 10 * kForwardMs).empty());
}

Test(replication_log, batch_max_respected_and_continues) {
  ReplicationLog log(3, kSelf);
  log.StartStream(1, VectorClock(3), 0);
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    log.Append(MakeWrite(0, {seq, 0, 0}, "a" + std::to_string(seq)), 0);
  }
  KV_ASSERT_STR_EQ(Keys(Batch(log, 1, 0, 2)), "a1,a2");
  KV_ASSERT_STR_EQ(Keys(Batch(log, 1, 0, 2)), "a3,a4");
  KV_ASSERT_STR_EQ(Keys(Batch(log, 1, 0, 2)), "a5");
  cr_assert(Batch(log, 1, 0, 2).empty());

  // The bound holds for forwarded writes too.
  ReplicationLog fwd(3, kSelf);
  fwd.StartStream(2, VectorClock(3), 0);
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    fwd.Append(MakeWrite(1, {0, seq, 0}, "b" + std::to_string(seq)), 0);
  }
  KV_ASSERT_STR_EQ(Keys(Batch(fwd, 2, 1000, 2)), "b1,b2");
  KV_ASSERT_STR_EQ(Keys(Batch(fwd, 2, 1000, 2)), "b3");
}

Test(replication_log, restarted_stream_resends_what_peer_lacks) {
  ReplicationLog log(3, kSelf);
  log.StartStream(1, VectorClock(3), 0);
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    log.Append(MakeWrite(0, {seq, 0, 0}, "a" + std::to_string(seq)), 0);
  }
  KV_ASSERT_STR_EQ(Keys(Batch(log, 1, 0)), "a1,a2,a3");
  // The link broke after a1 arrived; the new hello-ack says so.
  log.StopStream(1);
  log.StartStream(1, VectorClock{1, 0, 0}, 0);
  KV_ASSERT_STR_EQ(Keys(Batch(log, 1, 0)), "a2,a3");
  cr_assert(Batch(log, 1, 0).empty());
}

Test(replication_log, streaming_survives_truncation) {
  ReplicationLog log(2, kSelf);
  log.StartStream(1, VectorClock(2), 0);
  log.Append(MakeWrite(0, {1, 0}, "a1"), 0);
  log.Append(MakeWrite(0, {2, 0}, "a2"), 0);
  KV_ASSERT_STR_EQ(Keys(Batch(log, 1, 0)), "a1,a2");
  cr_assert_eq(log.Acknowledge(1, {2, 0}), 2u);
  cr_assert_eq(log.size(), 0u);
  log.Append(MakeWrite(0, {3, 0}, "a3"), 0);
  KV_ASSERT_STR_EQ(Keys(Batch(log, 1, 0)), "a3");
  cr_assert_eq(log.Acknowledge(1, {3, 0}), 1u);
}

Test(replication_log, start_stream_acknowledges) {
  ReplicationLog log(2, kSelf);
  log.Append(MakeWrite(0, {1, 0}, "a1"), 0);
  log.StartStream(1, VectorClock{1, 0}, 0);
  cr_assert_eq(log.size(), 0u, "a hello-ack clock truncates like an ack");
  cr_assert(log.acked(1) == (VectorClock{1, 0}));
}

// Regression: batches once put forwarded writes before the direct ones
// they depend on after a stream (re)start; they must follow the log order.
Test(replication_log, restarted_stream_batch_is_in_log_order) {
  ReplicationLog log(3, kSelf);
  log.Append(MakeWrite(0, {1, 0, 0}, "a1"), 0);  // Own write.
  log.Append(MakeWrite(1, {1, 1, 0}, "b1"), 0);  // Node 1's write, after a1.
  log.StartStream(2, VectorClock(3), 0);
  std::vector<Write> out;
  log.NextBatch(2, 1000, 100, 1024, &out);
  KV_ASSERT_STR_EQ(Keys(out), "a1,b1");
}
