// How a node gets its state back: snapshots (Replica::Image restored into a
// fresh replica), state transfers from a peer whose log no longer holds
// what it lacks, the replication log's bound, and the cluster identity that
// keeps a node with an empty disk from reusing sequence numbers.
#include <criterion/criterion.h>

#include <csignal>
#include <string>
#include <vector>

#include "tests/core/test_util.h"

using namespace kvd::core;
using namespace kvd::core::testing;

namespace {

constexpr uint32_t kN1 = 0, kN2 = 1, kN3 = 2;

std::vector<Record> ImageOf(Replica& replica) {
  std::vector<Record> records;
  replica.Image([&](const Record& record) { records.push_back(record); });
  return records;
}

// A fresh replica (same config, no identity) with `records` restored.
Replica Restored(const ReplicaConfig& config, const std::vector<Record>& records) {
  ReplicaConfig fresh = config;
  fresh.cluster_id.clear();
  Replica replica(fresh);
  for (const Record& record : records) {
    Status s = replica.Restore(record, 0);
    cr_assert(s.ok(), "restore: %s", s.ToString().c_str());
  }
  return replica;
}

// The same live keys, values and versions. (Tombstones may differ: a
// restored node collects again what the running one had collected.)
bool SameLiveState(const Store& a, const Store& b) {
  auto live_subset = [](const Store& x, const Store& y) {
    for (const Store::Entry& entry : x) {
      if (entry.tombstone()) continue;
      const Store::Entry* other = y.Find(entry.key());
      if (!other || other->tombstone() || other->value() != entry.value() ||
          !(other->version() == entry.version())) {
        return false;
      }
    }
    return true;
  };
  return live_subset(a, b) && live_subset(b, a);
}

size_t CountKind(const std::vector<Record>& records, RecordKind kind) {
  size_t n = 0;
  for (const Record& record : records) n += record.kind == kind;
  return n;
}

// Writes at every node, some deletes, then everyone in sync.
void Populate(Cluster& c, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    for (uint32_t node = 0; node < c.size(); ++node) {
      c.Put(node, "k" + std::to_string(i % 7),
            "v" + std::to_string(node) + "." + std::to_string(i));
    }
    if (i % 3 == 2) {
      std::string doomed = "d" + std::to_string(i);
      c.Put(kN1, doomed, "x");
      c.Delete(kN1, doomed);
    }
  }
  c.Settle();
}

}  // namespace

// --- Snapshots ---------------------------------------------------------------------

Test(snapshot, image_restores_store_clock_identity_and_log) {
  Cluster c(3);
  c.ConnectAll();
  c.Settle();
  c.node(kN1).HoldLink(kN3);  // n1 keeps its writes for n3 in its log.
  Populate(c, 12);
  Replica& n1 = c.node(kN1);
  cr_assert_gt(n1.log().size(), 0u, "the held link keeps log entries");
  cr_assert_gt(n1.store().tombstones(), 0u, "tombstones are part of the image");

  std::vector<Record> image = ImageOf(n1);
  cr_assert_eq(CountKind(image, RecordKind::kIdentity), 1u);
  cr_assert_eq(CountKind(image, RecordKind::kTransferEntry), n1.store().size());
  cr_assert_eq(CountKind(image, RecordKind::kLogEntry), n1.log().size());
  Replica back = Restored(c.Config(kN1), image);
  cr_assert(back.clock() == n1.clock(), "clock %s, want %s", back.clock().ToString().c_str(),
            n1.clock().ToString().c_str());
  cr_assert(SameStore(back.store(), n1.store()));
  cr_assert_eq(back.store().tombstones(), n1.store().tombstones());
  cr_assert_eq(back.log().size(), n1.log().size());
  cr_assert(back.log().dropped() == n1.log().dropped());
  for (uint64_t i = 0; i < n1.log().size(); ++i) {
    const Write& a = back.log().at(back.log().begin_index() + i).write;
    const Write& b = n1.log().at(n1.log().begin_index() + i).write;
    cr_assert(a.origin == b.origin && a.seq() == b.seq() && a.key == b.key);
  }
  cr_assert(back.identity_recorded());
  KV_ASSERT_STR_EQ(back.cluster_id(), "test-cluster");
  cr_assert(back.accepting_writes());
}

// The node encodes a frozen image on another thread while it goes on
// taking writes: what it encodes must be the state at the freeze.
Test(snapshot, frozen_image_is_the_state_at_the_freeze) {
  Cluster c(3);
  c.ConnectAll();
  c.Settle();
  c.node(kN1).HoldLink(kN3);
  Populate(c, 12);
  Replica& n1 = c.node(kN1);
  std::vector<Record> expected = ImageOf(n1);
  ReplicaImage frozen = n1.Freeze();
  VectorClock clock_at_freeze = n1.clock();
  Populate(c, 12);  // Overwrites, deletes and new keys after the freeze.
  c.now += 100;
  c.Settle();
  cr_assert_not(n1.clock() == clock_at_freeze, "the node moved on");

  std::vector<Record> visited;
  frozen.Visit([&](const Record& record) { visited.push_back(record); });
  cr_assert_eq(visited.size(), expected.size());
  Replica from_frozen = Restored(c.Config(kN1), visited);
  Replica from_expected = Restored(c.Config(kN1), expected);
  cr_assert(from_frozen.clock() == clock_at_freeze);
  cr_assert(SameStore(from_frozen.store(), from_expected.store()));
  cr_assert_eq(from_frozen.log().size(), from_expected.log().size());
}

// A freeze between a write and the Ready that hands its record out for
// the log would put that write in the snapshot and in the log segment
// after it; recovery then refused the segment (record "does not follow
// clock"). kvd did that for the first snapshot of each run, when the
// freeze buffer arrived amid the poll phase's reads: the integration test
// automatic_snapshots_bound_the_files_on_disk failed about 1 run in 15.
// Freeze refuses it outright.
Test(snapshot, freeze_with_a_write_not_yet_handed_out_aborts, .signal = SIGABRT) {
  Cluster c(3);
  c.ConnectAll();
  c.Settle();
  Replica& n1 = c.node(kN1);
  (void)n1.Freeze();  // Everything handed out: fine.
  n1.Put(1, 1, "k", "v", nullptr, c.now);
  (void)n1.Freeze();
}

Test(snapshot, image_then_log_replay_equals_the_state_before_the_crash) {
  Cluster c(2);
  c.ConnectAll();
  c.Settle();
  Populate(c, 5);
  std::vector<Record> image = ImageOf(c.node(kN1));
  size_t records_before = c.history(kN1).all_records.size();
  Populate(c, 9);  // After the snapshot: these go to the new log segment.
  std::vector<Record> wal(c.history(kN1).all_records.begin() + records_before,
                          c.history(kN1).all_records.end());
  std::vector<Record> disk = image;
  disk.insert(disk.end(), wal.begin(), wal.end());
  Replica back = Restored(c.Config(kN1), disk);
  cr_assert(back.clock() == c.node(kN1).clock());
  cr_assert(SameLiveState(back.store(), c.node(kN1).store()));
}

Test(snapshot, restoring_an_image_into_a_used_replica_is_refused) {
  Cluster c(2);
  c.ConnectAll();
  c.Put(kN1, "a", "1");
  c.Settle();
  Replica& n1 = c.node(kN1);
  std::vector<Record> image = ImageOf(n1);
  Status s = Status::Ok();
  for (const Record& record : image) {
    if (record.kind == RecordKind::kTransferBegin) s = n1.Restore(record, 0);
  }
  cr_assert_not(s.ok(), "a snapshot loads into an empty replica only");
}

// --- State transfer -------------------------------------------------------------------

Test(transfer, lost_disk_gets_state_and_own_writes_back) {
  Cluster c(3);
  c.ConnectAll();
  c.Settle();
  Populate(c, 20);
  for (uint32_t i = 0; i < 3; ++i) cr_assert_eq(c.node(i).log().size(), 0u, "all truncated");
  VectorClock before = c.node(kN2).clock();

  for (uint32_t peer : {kN1, kN3}) {
    c.Disconnect(kN2, peer);
    c.Disconnect(peer, kN2);
  }
  c.Replace(kN2);
  c.ConnectAll();
  c.Settle();
  cr_assert(c.node(kN2).clock() == before, "n2 at %s, want %s",
            c.node(kN2).clock().ToString().c_str(), before.ToString().c_str());
  cr_assert(c.Converged());
  cr_assert_geq(c.history(kN2).CountEvents(Event::Kind::kTransferInstalled), 1u);
  cr_assert(c.node(kN2).accepting_writes());
  Reply reply = c.Put(kN2, "after", "1");
  cr_assert_eq(reply.code, Code::kOk);
  cr_assert_eq(reply.version[kN2], before[kN2] + 1, "no reused sequence number");
  c.Settle();
  cr_assert(c.Converged());
}

Test(transfer, reads_see_the_old_state_until_the_install) {
  Cluster c(2);
  c.ConnectAll();
  c.Settle();
  c.Put(kN1, "x", "1");
  c.Settle();
  c.Disconnect(kN1, kN2);
  c.Disconnect(kN2, kN1);
  c.Replace(kN2);
  // Only n1's link to n2: n2's hello-ack shows clock 0, n1's log is empty.
  c.Connect(kN1, kN2);
  c.Step(kN2);  // HelloAck to n1.
  Output out = c.Take(kN1);
  bool begin = false, end = false;
  for (const PeerMessage& m : out.messages) {
    begin |= m.type == PeerMessageType::kTransferBegin;
    end |= m.type == PeerMessageType::kTransferEnd;
  }
  cr_assert(begin && end, "a small store goes in one Ready");
  // Deliver the begin and the chunks only: the state is staged, not read.
  for (const PeerMessage& m : out.messages) {
    if (m.type != PeerMessageType::kTransferEnd) c.Deliver(kN1, m);
  }
  cr_assert(c.node(kN2).receiving_transfer());
  cr_assert_null(c.node(kN2).store().Find("x"), "staged state is not visible");
  for (const PeerMessage& m : out.messages) {
    if (m.type == PeerMessageType::kTransferEnd) c.Deliver(kN1, m);
  }
  cr_assert_not(c.node(kN2).receiving_transfer());
  cr_assert_not_null(c.node(kN2).store().Find("x"));
}

Test(transfer, install_keeps_a_key_whose_tombstone_was_collected_here_deleted) {
  // n2's stale image still has k=old; n1 meanwhile deleted k and collected
  // the tombstone (every node applied it). The install must not bring
  // k=old back.
  Replica n1(TestConfig(kN1, 2));
  n1.LinkFromPeerUp(kN2, 0, "test-cluster");
  Status s = n1.LinkToPeerUp(kN2, VectorClock(2), 0, "test-cluster");
  cr_assert(s.ok());
  std::vector<Write> writes = {MakeWrite(kN2, {0, 1}, "k", "old"), MakeDelete(kN2, {0, 2}, "k")};
  cr_assert(n1.PeerWrites(kN2, writes, 0).ok());
  cr_assert(n1.PeerAck(kN2, VectorClock{0, 2}, 0).ok());
  n1.Ready(0);
  cr_assert_null(n1.store().Find("k"), "tombstone collected");
  // A transfer from n2 taken at clock [0,1]: k=old.
  cr_assert(n1.PeerTransferBegin(kN2, VectorClock{0, 1}, 0).ok());
  std::vector<Write> entries = {MakeWrite(kN2, {0, 1}, "k", "old")};
  cr_assert(n1.PeerTransferChunk(kN2, entries, 0).ok());
  cr_assert(n1.PeerTransferEnd(kN2, 0).ok());
  cr_assert_null(n1.store().Find("k"), "the deleted key came back");
  cr_assert(n1.clock() == (VectorClock{0, 2}));
}

Test(transfer, install_merges_both_sides) {
  Replica n1(TestConfig(kN1, 2));
  n1.Put(1, 1, "mine", "1", nullptr, 0);  // [1,0]: the sender lacks it.
  n1.Ready(0);
  n1.LinkFromPeerUp(kN2, 0, "test-cluster");
  cr_assert(n1.PeerTransferBegin(kN2, VectorClock{0, 2}, 0).ok());
  std::vector<Write> entries = {MakeWrite(kN2, {0, 1}, "theirs", "a"),
                                MakeWrite(kN2, {0, 2}, "both", "b")};
  cr_assert(n1.PeerTransferChunk(kN2, entries, 0).ok());
  cr_assert(n1.PeerTransferEnd(kN2, 0).ok());
  cr_assert(n1.clock() == (VectorClock{1, 2}));
  cr_assert(n1.store().Find("mine")->value() == "1");
  cr_assert(n1.store().Find("theirs")->value() == "a");
  cr_assert(n1.store().Find("both")->value() == "b");
  // Recorded for replay: begin, two entries, end.
  Output out = n1.Ready(0);
  std::vector<RecordKind> kinds;
  for (const Record& record : out.records) kinds.push_back(record.kind);
  cr_assert_eq(kinds.size(), 4u);
  cr_assert(kinds[0] == RecordKind::kTransferBegin && kinds[3] == RecordKind::kTransferEnd);
}

Test(transfer, entry_beyond_the_transfer_clock_is_refused) {
  Replica n1(TestConfig(kN1, 2));
  n1.LinkFromPeerUp(kN2, 0, "test-cluster");
  cr_assert(n1.PeerTransferBegin(kN2, VectorClock{0, 1}, 0).ok());
  std::vector<Write> entries = {MakeWrite(kN2, {0, 5}, "k", "v")};
  cr_assert_eq(n1.PeerTransferChunk(kN2, entries, 0).code(), Code::kBadRequest);
  cr_assert_not(n1.receiving_transfer(), "the transfer is dropped");
  cr_assert(n1.PeerTransferEnd(kN2, 0).ok());
  cr_assert(n1.clock() == VectorClock(2), "nothing installed");
}

Test(transfer, a_second_transfer_meanwhile_is_refused_and_resynced) {
  Replica n1(TestConfig(kN1, 3));
  n1.LinkFromPeerUp(kN2, 0, "test-cluster");
  n1.LinkFromPeerUp(kN3, 0, "test-cluster");
  cr_assert(n1.PeerTransferBegin(kN2, VectorClock{0, 1, 0}, 0).ok());
  cr_assert(n1.PeerTransferBegin(kN3, VectorClock{0, 0, 1}, 0).ok());
  Output out = n1.Ready(0);
  cr_assert_eq(out.resync_peers.size(), 1u);
  cr_assert_eq(out.resync_peers[0], kN3);
  // n3's chunks still in flight are ignored.
  std::vector<Write> entries = {MakeWrite(kN3, {0, 0, 1}, "k", "v")};
  cr_assert(n1.PeerTransferChunk(kN3, entries, 0).ok());
  cr_assert(n1.PeerTransferEnd(kN3, 0).ok());
  cr_assert(n1.receiving_transfer(), "n2's transfer goes on");
  cr_assert(n1.clock() == VectorClock(3));
}

Test(transfer, link_down_drops_the_staged_state) {
  Replica n1(TestConfig(kN1, 2));
  n1.LinkFromPeerUp(kN2, 0, "test-cluster");
  cr_assert(n1.PeerTransferBegin(kN2, VectorClock{0, 1}, 0).ok());
  n1.LinkFromPeerDown(kN2);
  cr_assert_not(n1.receiving_transfer());
  cr_assert(n1.PeerTransferEnd(kN2, 0).ok());
  cr_assert(n1.clock() == VectorClock(2));
}

Test(transfer, comes_in_pieces_bounded_per_ready) {
  Cluster c(2, [](ReplicaConfig& config) {
    config.transfer_bytes_per_ready = 100;
    config.batch_writes_max = 4;
  });
  c.ConnectAll();
  c.Settle();
  for (int i = 0; i < 50; ++i) c.Put(kN1, "key" + std::to_string(i), std::string(20, 'v'));
  c.Settle();
  c.Disconnect(kN1, kN2);
  c.Disconnect(kN2, kN1);
  c.Replace(kN2);
  c.Connect(kN1, kN2);
  c.Step(kN2);
  size_t readys = 0;
  while (true) {
    Output out = c.Take(kN1);
    size_t bytes = 0;
    bool end = false;
    for (const PeerMessage& m : out.messages) {
      cr_assert_leq(m.writes.size(), 4u);
      for (const Write& w : m.writes) bytes += w.key.size() + w.value.size();
      end |= m.type == PeerMessageType::kTransferEnd;
      c.Deliver(kN1, m);
    }
    // One entry may cross the budget.
    cr_assert_leq(bytes, 100u + 26u);
    ++readys;
    if (end) break;
    cr_assert_lt(readys, 100u, "the transfer never ended");
  }
  cr_assert_gt(readys, 5u, "50 entries of 25 bytes take several Readys");
  cr_assert_eq(c.node(kN2).store().size(), 50u);
}

// --- The replication log's bound --------------------------------------------------

Test(log_bound, a_peer_far_behind_is_detached_then_caught_up_by_transfer) {
  Cluster c(3, [](ReplicaConfig& config) { config.log_bytes_max = 2000; });
  c.ConnectAll();
  c.Settle();
  // n3 goes away; n1 keeps writing.
  for (uint32_t peer : {kN1, kN2}) {
    c.Disconnect(kN3, peer);
    c.Disconnect(peer, kN3);
  }
  for (int i = 0; i < 100; ++i) c.Put(kN1, "k" + std::to_string(i), std::string(50, 'x'));
  c.Settle();
  cr_assert_leq(c.node(kN1).log().bytes(), 2000u, "the log stays within its bound");
  cr_assert(c.node(kN1).log().detached(kN3));
  cr_assert_geq(c.history(kN1).CountEvents(Event::Kind::kLogDetached), 1u);
  cr_assert_gt(c.node(kN1).log().dropped()[kN1], 0u);

  c.ConnectAll();
  c.Settle();
  cr_assert(c.Converged(), "n3 at %s", c.node(kN3).clock().ToString().c_str());
  cr_assert_geq(c.history(kN3).CountEvents(Event::Kind::kTransferInstalled), 1u);
}

Test(log_bound, a_streaming_laggard_has_its_link_restarted) {
  Cluster c(2, [](ReplicaConfig& config) { config.log_bytes_max = 1500; });
  c.ConnectAll();
  c.Settle();
  c.node(kN1).HoldLink(kN2);  // Connected, but nothing is sent: it lags.
  for (int i = 0; i < 60; ++i) c.Put(kN1, "k" + std::to_string(i), std::string(40, 'x'));
  cr_assert_geq(c.history(kN1).restarts.size(), 1u, "the shell is told to restart the link");
  cr_assert_eq(c.history(kN1).restarts[0], kN2);
  cr_assert_leq(c.node(kN1).log().bytes(), 1500u);
  c.node(kN1).ReleaseLink(kN2);
  c.Reconnect(kN1, kN2);  // What the shell does.
  c.Settle();
  cr_assert(c.Converged());
}

// --- Identity ------------------------------------------------------------------------

namespace {

void Fresh(ReplicaConfig& config) {
  config.cluster_id.clear();
  config.new_cluster_id = "fresh-" + std::to_string(config.self);
}

}  // namespace

Test(identity, a_new_cluster_forms_once_every_node_has_met) {
  Cluster c(3, Fresh);
  for (uint32_t i = 0; i < 3; ++i) cr_assert_not(c.node(i).accepting_writes());
  c.Connect(kN2, kN1);
  c.Connect(kN1, kN2);
  c.Settle();
  cr_assert_not(c.node(kN1).accepting_writes(), "n3 has not been heard: it could have data");
  cr_assert_eq(c.Put(kN1, "a", "1").code, Code::kUnavailable);
  c.ConnectAll();
  c.Settle();
  for (uint32_t i = 0; i < 3; ++i) {
    cr_assert(c.node(i).accepting_writes(), "n%u", i + 1);
    KV_ASSERT_STR_EQ(c.node(i).cluster_id(), "fresh-0");  // Node 1 founded it.
  }
  cr_assert_eq(c.Put(kN3, "a", "1").code, Code::kOk);
}

Test(identity, a_peer_of_another_cluster_is_refused) {
  Replica n1(TestConfig(kN1, 2));
  Status s = n1.LinkFromPeerUp(kN2, 0, "other-cluster");
  cr_assert_eq(s.code(), Code::kUnauthorized);
  s = n1.LinkToPeerUp(kN2, VectorClock(2), 0, "other-cluster");
  cr_assert_eq(s.code(), Code::kUnauthorized);
  s = n1.PeerAck(kN2, VectorClock(2), 0, "other-cluster");
  cr_assert_eq(s.code(), Code::kUnauthorized);
  cr_assert(n1.LinkFromPeerUp(kN2, 0, "").ok(), "a peer without identity may join");
}

Test(identity, the_identity_record_restores_membership) {
  Cluster c(2, Fresh);
  c.ConnectAll();
  c.Settle();
  cr_assert(c.node(kN2).accepting_writes());
  Replica back = Restored(c.Config(kN2), c.history(kN2).all_records);
  cr_assert(back.accepting_writes(), "a restart needs no peer");
  KV_ASSERT_STR_EQ(back.cluster_id(), "fresh-0");
}

Test(identity, bootstrap_records_at_once_and_refuses_another_cluster) {
  ReplicaConfig config = TestConfig(kN2, 3);
  Fresh(config);
  Replica n2(config);
  cr_assert_not(n2.accepting_writes());
  cr_assert(n2.Bootstrap("ops-chosen").ok());
  cr_assert(n2.accepting_writes(), "no peer heard, yet a member");
  Output out = n2.Ready(0);
  cr_assert_eq(out.records.size(), 1u);
  cr_assert(out.records[0].kind == RecordKind::kIdentity &&
            out.records[0].cluster_id == "ops-chosen");
  cr_assert(n2.Bootstrap("ops-chosen").ok(), "the same identity again is fine (a restart)");
  cr_assert(n2.Ready(0).records.empty());
  cr_assert_eq(n2.Bootstrap("another").code(), Code::kBadRequest);
}
