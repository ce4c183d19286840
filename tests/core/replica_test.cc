#include "daemon/core/replica.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <string>
#include <utility>
#include <vector>

#include "tests/core/test_util.h"

using namespace kvd::core;
using kvd::core::testing::Cluster;
using kvd::core::testing::MakeWrite;
using kvd::core::testing::NodeHistory;
using kvd::core::testing::TestConfig;

namespace {

// Node indexes are 0-based here; DESIGN's "node 1" is index 0.
constexpr uint32_t kN1 = 0;
constexpr uint32_t kN2 = 1;
constexpr uint32_t kN3 = 2;
constexpr uint64_t kNever = 1'000'000'000;  // A forward delay no test reaches.

// A single replica (no peers wired) and its accumulated output.
struct Solo {
  explicit Solo(ReplicaConfig config) : replica(config) {}
  Output Ready(uint64_t now_ms = 0) {
    Output out = replica.Ready(now_ms);
    history.records.insert(history.records.end(), out.records.begin(), out.records.end());
    history.replies.insert(history.replies.end(), out.replies.begin(), out.replies.end());
    history.events.insert(history.events.end(), out.events.begin(), out.events.end());
    history.resyncs.insert(history.resyncs.end(), out.resync_peers.begin(), out.resync_peers.end());
    return out;
  }
  Replica replica;
  NodeHistory history;
};

// The one reply a Ready produced.
Reply OnlyReply(const Output& out) {
  cr_assert_eq(out.replies.size(), 1u, "expected one reply, got %zu", out.replies.size());
  return out.replies[0];
}

}  // namespace

// --- Configuration -----------------------------------------------------------------

Test(replica, config_validation) {
  cr_assert(TestConfig(0, 3).Validate().ok());
  cr_assert(TestConfig(63, 64).Validate().ok());
  cr_assert_not(TestConfig(0, 0).Validate().ok());
  cr_assert_not(TestConfig(0, 65).Validate().ok());
  cr_assert_not(TestConfig(3, 3).Validate().ok());
  ReplicaConfig config = TestConfig(0, 3);
  config.key_bytes_max = 0;
  cr_assert_eq(config.Validate().code(), Code::kBadRequest);
  config = TestConfig(0, 3);
  config.buffer_writes_max = 0;
  cr_assert_not(config.Validate().ok());
  config = TestConfig(0, 3);
  config.batch_writes_max = 0;
  cr_assert_not(config.Validate().ok());
}

// --- Client requests on one node ------------------------------------------------------

Test(replica, put_get_delete_replies) {
  Solo n(TestConfig(1, 3));
  n.replica.Put(1, 7, "x", "hello", nullptr, 0);
  Output out = n.Ready();
  Reply put = OnlyReply(out);
  cr_assert_eq(put.token, 1u);
  cr_assert_eq(put.code, Code::kOk);
  cr_assert(put.version == (VectorClock{0, 1, 0}), "got %s", put.version.ToString().c_str());
  cr_assert_eq(out.records.size(), 1u, "a put is persisted");
  cr_assert(out.records[0].key == "x" && out.records[0].value == "hello");
  cr_assert_eq(out.records[0].origin, 1u);
  cr_assert(n.replica.clock() == (VectorClock{0, 1, 0}));

  n.replica.Get(2, 7, "x", nullptr, 0);
  Reply get = OnlyReply(n.Ready());
  cr_assert_eq(get.token, 2u);
  cr_assert_eq(get.code, Code::kOk);
  cr_assert(get.found);
  cr_assert(get.value == "hello");
  cr_assert(get.version == (VectorClock{0, 1, 0}));

  n.replica.Get(3, 7, "nope", nullptr, 0);
  Reply missing = OnlyReply(n.Ready());
  cr_assert_eq(missing.code, Code::kNotFound);
  cr_assert_not(missing.found);
  cr_assert(missing.version == VectorClock(3), "never written: all zeros of cluster size");

  n.replica.Put(4, 7, "x", "again", nullptr, 0);
  cr_assert(OnlyReply(n.Ready()).version == (VectorClock{0, 2, 0}));

  n.replica.Delete(5, 7, "x", nullptr, 0);
  out = n.Ready();
  Reply del = OnlyReply(out);
  cr_assert_eq(del.code, Code::kOk);
  cr_assert(del.version == (VectorClock{0, 3, 0}));
  cr_assert_eq(out.records.size(), 1u);
  cr_assert(out.records[0].is_delete);

  n.replica.Get(6, 7, "x", nullptr, 0);
  Reply gone = OnlyReply(n.Ready());
  cr_assert_eq(gone.code, Code::kNotFound);
  cr_assert_not(gone.found);
  cr_assert(gone.value.empty());
  cr_assert(gone.version == (VectorClock{0, 3, 0}), "a tombstone reports its version");
  cr_assert(n.replica.clock() == (VectorClock{0, 3, 0}));
  cr_assert_eq(n.replica.store().tombstones(), 1u);
}

// A batch (Submit) answers exactly as the same requests one by one would:
// same replies in the same order, same records, same store. More requests
// than the prefetch distance, with repeated keys, a delete, a miss, a bad
// request and a context, over 64 keys.
Test(replica, submitted_batch_equals_requests_one_by_one) {
  using Op = Replica::RequestType;
  Solo one(TestConfig(1, 3)), batch(TestConfig(1, 3));
  std::vector<std::string> keys;
  for (int i = 0; i < 64; ++i) keys.push_back("k" + std::to_string(i % 20));
  VectorClock context{0, 3, 0};
  std::vector<Replica::ClientRequest> requests;
  for (size_t i = 0; i < keys.size(); ++i) {
    Op op = i % 7 == 3 ? Op::kDelete : i % 3 == 0 ? Op::kGet : Op::kPut;
    std::string_view value = i % 2 ? "odd" : "even, longer";
    requests.push_back({op, i, 7, keys[i], value, i == 40 ? &context : nullptr});
  }
  requests.push_back({Op::kGet, 64, 7, "never written", {}, nullptr});
  requests.push_back({Op::kPut, 65, 7, "", "an empty key is refused", nullptr});
  for (const Replica::ClientRequest& r : requests) {
    if (r.op == Op::kPut) one.replica.Put(r.token, r.session, r.key, r.value, r.context, 0);
    if (r.op == Op::kDelete) one.replica.Delete(r.token, r.session, r.key, r.context, 0);
    if (r.op == Op::kGet) one.replica.Get(r.token, r.session, r.key, r.context, 0);
  }
  batch.replica.Submit(requests, 0);
  one.Ready();
  batch.Ready();
  const auto& a = one.history.replies;
  const auto& b = batch.history.replies;
  cr_assert_eq(a.size(), requests.size());
  cr_assert_eq(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    cr_assert(a[i].token == b[i].token && a[i].code == b[i].code && a[i].found == b[i].found &&
                  a[i].value == b[i].value && a[i].version == b[i].version,
              "reply %zu differs", i);
  }
  cr_assert_eq(b.back().code, Code::kBadRequest);
  cr_assert_eq(one.history.records.size(), batch.history.records.size());
  cr_assert(one.replica.clock() == batch.replica.clock());
  for (int i = 0; i < 20; ++i) {
    std::string key = "k" + std::to_string(i);
    const Store::Entry* x = one.replica.store().Find(key);
    const Store::Entry* y = batch.replica.store().Find(key);
    cr_assert((x == nullptr) == (y == nullptr), "%s", key.c_str());
    if (x) cr_assert(x->value() == y->value() && x->tombstone() == y->tombstone());
  }
}

Test(replica, binary_keys_and_values) {
  Solo n(TestConfig(0, 2));
  const std::string key("\0k\xff", 3);
  const std::string value("\xff\0\0v", 4);
  n.replica.Put(1, 1, key, value, nullptr, 0);
  n.replica.Get(2, 1, std::string("\0k", 2), nullptr, 0);
  n.replica.Get(3, 1, key, nullptr, 0);
  Output out = n.Ready();
  cr_assert_eq(out.replies.size(), 3u);
  cr_assert_eq(out.replies[1].code, Code::kNotFound);
  cr_assert_eq(out.replies[2].code, Code::kOk);
  cr_assert_eq(out.replies[2].value.size(), 4u);
  cr_assert(out.replies[2].value == value);
}

Test(replica, request_validation) {
  ReplicaConfig config = TestConfig(0, 3);
  config.key_bytes_max = 8;
  config.value_bytes_max = 16;
  Solo n(config);
  const VectorClock short_context{0, 0};
  const VectorClock long_context{0, 0, 0, 0};
  const VectorClock no_context;  // Size 0 means "no context".

  n.replica.Put(1, 1, "", "v", nullptr, 0);
  n.replica.Get(2, 1, "", nullptr, 0);
  n.replica.Delete(3, 1, "", nullptr, 0);
  n.replica.Put(4, 1, "123456789", "v", nullptr, 0);
  n.replica.Get(5, 1, "123456789", nullptr, 0);
  n.replica.Put(6, 1, "k", std::string(17, 'v'), nullptr, 0);
  n.replica.Put(7, 1, "k", "v", &short_context, 0);
  n.replica.Get(8, 1, "k", &long_context, 0);
  n.replica.Delete(9, 1, "k", &short_context, 0);
  Output out = n.Ready();
  cr_assert_eq(out.replies.size(), 9u);
  const Code expected[] = {Code::kBadRequest, Code::kBadRequest, Code::kBadRequest,
                           Code::kTooLarge,   Code::kTooLarge,   Code::kTooLarge,
                           Code::kBadRequest, Code::kBadRequest, Code::kBadRequest};
  for (size_t i = 0; i < 9; ++i) {
    cr_assert_eq(out.replies[i].token, i + 1);
    cr_assert_eq(out.replies[i].code, expected[i], "token %zu: got %s", i + 1,
                 std::string(CodeName(out.replies[i].code)).c_str());
    cr_assert_not(out.replies[i].message.empty(), "errors say why");
  }
  cr_assert(out.records.empty(), "nothing invalid is written");
  cr_assert(n.replica.clock() == VectorClock(3));

  // At the limits exactly, and with an empty context: accepted.
  n.replica.Put(10, 1, "12345678", std::string(16, 'v'), &no_context, 0);
  n.replica.Delete(11, 1, "12345678", nullptr, 0);
  n.replica.Put(12, 1, "k", "", nullptr, 0);
  out = n.Ready();
  cr_assert_eq(out.replies.size(), 3u);
  for (const Reply& reply : out.replies) cr_assert_eq(reply.code, Code::kOk);
  cr_assert(n.replica.clock() == (VectorClock{3, 0, 0}));
}

Test(replica, peer_input_validation) {
  Solo n(TestConfig(0, 3));
  std::vector<Write> bad_clock = {MakeWrite(1, {0, 1}, "k")};
  cr_assert_eq(n.replica.PeerWrites(1, bad_clock, 0).code(), Code::kBadRequest);
  std::vector<Write> seq_zero = {MakeWrite(1, {0, 0, 0}, "k")};
  cr_assert_not(n.replica.PeerWrites(1, seq_zero, 0).ok());
  std::vector<Write> empty_key = {MakeWrite(1, {0, 1, 0}, "")};
  cr_assert_not(n.replica.PeerWrites(1, empty_key, 0).ok());
  // One bad write refuses the whole batch.
  std::vector<Write> mixed = {MakeWrite(1, {0, 1, 0}, "k"), MakeWrite(7, {0, 1, 0}, "k")};
  cr_assert_not(n.replica.PeerWrites(1, mixed, 0).ok());
  std::vector<Write> good = {MakeWrite(1, {0, 1, 0}, "k")};
  cr_assert_not(n.replica.PeerWrites(0, good, 0).ok(), "self is not a peer");
  cr_assert_not(n.replica.PeerWrites(3, good, 0).ok(), "outside the cluster");
  cr_assert_not(n.replica.PeerAck(1, VectorClock(2), 0).ok());
  cr_assert_not(n.replica.PeerAck(0, VectorClock(3), 0).ok());
  cr_assert_not(n.replica.LinkToPeerUp(2, VectorClock(4), 0).ok());
  cr_assert(n.replica.clock() == VectorClock(3), "nothing was applied");
  cr_assert(n.Ready().records.empty());

  cr_assert(n.replica.PeerWrites(1, good, 0).ok());
  cr_assert(n.replica.clock() == (VectorClock{0, 1, 0}));
}

// --- The seed scenario ------------------------------------------------------------------

Test(replica, seed_scenario) {
  Cluster c(3, [](ReplicaConfig& config) { config.forward_after_ms = kNever; });
  c.ConnectAll();
  c.Settle();
  for (uint32_t i = 0; i < 3; ++i) {
    cr_assert(c.node(i).peer_info((i + 1) % 3).link_to_up);
    cr_assert(c.node(i).peer_info((i + 1) % 3).link_from_up);
  }

  // Replication 1 -> 3 is delayed.
  c.node(kN1).HoldLink(kN3);
  cr_assert(c.node(kN1).peer_info(kN3).held);

  Reply put_x = c.Put(kN1, "x", "1");
  cr_assert_eq(put_x.code, Code::kOk);
  cr_assert(put_x.version == (VectorClock{1, 0, 0}));
  c.Settle();
  cr_assert(c.node(kN2).clock() == (VectorClock{1, 0, 0}));
  cr_assert(c.node(kN3).clock() == VectorClock(3), "1 -> 3 is held and 2 does not forward");

  Reply read_x = c.Get(kN2, "x");
  cr_assert_eq(read_x.code, Code::kOk);
  cr_assert(read_x.value == "1");

  // y=2 at node 2 depends on x=1; node 2's Step sends it to 1 and 3.
  Reply put_y = c.Put(kN2, "y", "2");
  cr_assert_eq(put_y.code, Code::kOk);
  cr_assert(put_y.version == (VectorClock{1, 1, 0}));

  // Node 3 got y=2 first and buffered it.
  cr_assert_eq(c.node(kN3).buffer().size(), 1u);
  cr_assert(c.node(kN3).clock() == VectorClock(3));
  std::vector<BufferedWriteInfo> buffered = c.node(kN3).ListBuffer(10);
  cr_assert_eq(buffered.size(), 1u);
  cr_assert_eq(buffered[0].origin, kN2);
  cr_assert_eq(buffered[0].seq, 1u);
  cr_assert(buffered[0].key == "y");
  cr_assert_not(buffered[0].is_delete);
  cr_assert_eq(buffered[0].missing.size(), 1u);
  cr_assert_eq(buffered[0].missing[0].origin, kN1);
  cr_assert_eq(buffered[0].missing[0].seq_first, 1u);
  cr_assert_eq(buffered[0].missing[0].seq_last, 1u);
  c.Step(kN3);
  cr_assert_eq(c.history(kN3).CountEvents(Event::Kind::kBuffered), 1u);
  for (const Event& event : c.history(kN3).events) {
    if (event.kind != Event::Kind::kBuffered) continue;
    cr_assert_eq(event.peer, kN2);
    cr_assert(event.key == "y");
    cr_assert_eq(event.waiting_for.origin, kN1);
    cr_assert_eq(event.waiting_for.seq_first, 1u);
  }
  cr_assert_eq(c.Get(kN3, "y").code, Code::kNotFound, "a buffered write is not visible");

  // Still held: nothing changes however long we wait.
  c.now += 10'000;
  c.Settle();
  cr_assert_eq(c.node(kN3).buffer().size(), 1u);

  // Release 1 -> 3: x=1 arrives, then y=2 is applied from the buffer.
  size_t applied_before = c.history(kN3).Applied().size();
  c.node(kN1).ReleaseLink(kN3);
  c.Settle();
  std::vector<std::pair<uint32_t, uint64_t>> applied = c.history(kN3).Applied();
  cr_assert_eq(applied.size(), applied_before + 2);
  cr_assert(applied[applied_before] == std::make_pair(kN1, uint64_t{1}), "x=1 first");
  cr_assert(applied[applied_before + 1] == std::make_pair(kN2, uint64_t{1}), "then y=2");
  // The kApplied event of x names the link it came on and what it released.
  for (const Event& event : c.history(kN3).events) {
    if (event.kind != Event::Kind::kApplied || event.key == "") continue;
    if (event.key == "x") {
      cr_assert_eq(event.peer, kN1);
      cr_assert_not(event.from_buffer);
      cr_assert_eq(event.released, 1u, "x released y from the buffer");
    } else if (event.key == "y") {
      cr_assert(event.from_buffer);
      cr_assert_eq(event.released, 0u);
    }
  }
  const auto& records = c.history(kN3).records;
  cr_assert(records[records.size() - 2].key == "x");
  cr_assert(records[records.size() - 1].key == "y");
  cr_assert_eq(c.node(kN3).buffer().size(), 0u);

  cr_assert(c.Converged(), "all nodes equal");
  for (uint32_t i = 0; i < 3; ++i) {
    cr_assert(c.node(i).clock() == (VectorClock{1, 1, 0}));
    cr_assert(c.node(i).store().Find("x")->value() == "1");
    cr_assert(c.node(i).store().Find("y")->value() == "2");
  }
}

// --- Convergence of concurrent writes -------------------------------------------------

struct Permutation {
  uint32_t order[3];
};

ParameterizedTestParameters(replica, concurrent_writes_same_winner_in_any_order) {
  static Permutation perms[] = {{{0, 1, 2}}, {{0, 2, 1}}, {{1, 0, 2}},
                                {{1, 2, 0}}, {{2, 0, 1}}, {{2, 1, 0}}};
  return cr_make_param_array(Permutation, perms, 6);
}

ParameterizedTest(Permutation* perm, replica, concurrent_writes_same_winner_in_any_order) {
  // Nodes 1..3 of four write without seeing each other; node 4 gets their
  // writes in the given order.
  Cluster c(4);
  // "y": equal sums (1) everywhere, so the highest origin must win.
  for (uint32_t i = 0; i < 3; ++i) c.Put(i, "y", "y" + std::to_string(i));
  // "x": node 1 has the greatest sum (4) despite the lowest origin.
  c.Put(0, "filler", "a");
  c.Put(0, "filler", "b");
  for (uint32_t i = 0; i < 3; ++i) c.Put(i, "x", "x" + std::to_string(i));

  // The expected winner by (sum, origin), computed from the records.
  const Write* best = nullptr;
  for (uint32_t i = 0; i < 3; ++i) {
    for (const Write& write : c.history(i).records) {
      if (write.key != "x") continue;
      if (!best || Supersedes(write.clock.Sum(), write.origin, best->clock.Sum(), best->origin)) {
        best = &write;
      }
    }
  }
  cr_assert_not_null(best);
  cr_assert_eq(best->origin, 0u);
  cr_assert_eq(best->clock.Sum(), 4u);

  Replica& n4 = c.node(3);
  for (uint32_t origin : perm->order) {
    std::vector<Write> writes = c.history(origin).records;
    cr_assert(n4.PeerWrites(origin, writes, 0).ok());
  }
  c.Step(3);
  // The order really was the permutation.
  std::vector<std::pair<uint32_t, uint64_t>> applied = c.history(3).Applied();
  cr_assert_eq(applied.size(), 8u);
  cr_assert_eq(applied[0].first, perm->order[0]);
  cr_assert_eq(applied.back().first, perm->order[2]);

  const Store::Entry* x = n4.store().Find("x");
  cr_assert(x->value() == best->value, "winner %s, expected %s", std::string(x->value()).c_str(),
            best->value.c_str());
  cr_assert(x->version() == best->clock);
  cr_assert_eq(x->origin(), best->origin);
  const Store::Entry* y = n4.store().Find("y");
  cr_assert(y->value() == "y2", "equal sums: the higher origin wins, got %s",
            std::string(y->value()).c_str());
  cr_assert(n4.clock() == (VectorClock{4, 2, 2, 0}));

  // Once everyone has everything, every node agrees.
  c.ConnectAll();
  c.Settle();
  cr_assert(c.Converged());
  for (uint32_t i = 0; i < 4; ++i) cr_assert(c.node(i).store().Find("x")->value() == "x0");
}

// --- Session contexts ---------------------------------------------------------------------

Test(replica, get_with_context_is_parked_until_the_write_arrives) {
  Cluster c(2);
  Reply put = c.Put(kN1, "x", "1");  // No links: node 2 does not have it.
  c.node(kN2).Get(5, 9, "x", &put.version, c.now);
  Output out = c.Take(kN2);
  cr_assert(out.replies.empty(), "no reply while the context is ahead");
  cr_assert_eq(c.node(kN2).parked_requests(), 1u);

  std::vector<Write> writes = c.history(kN1).records;
  cr_assert(c.node(kN2).PeerWrites(kN1, writes, c.now).ok());
  c.now += 5;
  Reply get = OnlyReply(c.Take(kN2));
  cr_assert_eq(get.token, 5u);
  cr_assert_eq(get.code, Code::kOk);
  cr_assert(get.value == "1");
  cr_assert(get.version == put.version);
  cr_assert_eq(c.node(kN2).parked_requests(), 0u);
}

Test(replica, context_already_reached_is_served_at_once) {
  Solo n(TestConfig(0, 2));
  n.replica.Put(1, 1, "x", "1", nullptr, 0);
  n.Ready();
  VectorClock context{1, 0};
  n.replica.Get(2, 2, "x", &context, 0);
  cr_assert_eq(n.replica.parked_requests(), 0u);
  cr_assert_eq(OnlyReply(n.Ready()).code, Code::kOk);
}

Test(replica, context_timeout_names_missing_write) {
  ReplicaConfig config = TestConfig(1, 3);
  config.context_wait_ms = 500;
  Solo n(config);
  VectorClock context{1, 0, 0};
  n.replica.Get(1, 1, "x", &context, 1000);
  cr_assert(n.Ready(1000).replies.empty());
  cr_assert(n.Ready(1499).replies.empty(), "not before the deadline");
  Reply timeout = OnlyReply(n.Ready(1500));
  cr_assert_eq(timeout.token, 1u);
  cr_assert_eq(timeout.code, Code::kTimeout);
  cr_assert_not(timeout.found);
  cr_assert(timeout.message.find("n1:1") != std::string::npos, "message: %s",
            timeout.message.c_str());
  cr_assert_eq(n.replica.parked_requests(), 0u);
  cr_assert(n.Ready(5000).replies.empty(), "answered once only");

  // A range of missing writes over two origins.
  VectorClock wide{3, 0, 2};
  n.replica.Put(2, 1, "x", "v", &wide, 6000);
  Reply wide_timeout = OnlyReply(n.Ready(6500));
  cr_assert_eq(wide_timeout.code, Code::kTimeout);
  cr_assert(wide_timeout.message.find("n1:1..3") != std::string::npos, "message: %s",
            wide_timeout.message.c_str());
  cr_assert(wide_timeout.message.find("n3:1..2") != std::string::npos, "message: %s",
            wide_timeout.message.c_str());
  cr_assert(n.history.records.empty(), "the timed-out put was not executed");
}

Test(replica, session_order_is_preserved_other_sessions_are_not_blocked) {
  Cluster c(2);
  Reply put = c.Put(kN1, "x", "1");
  Replica& n2 = c.node(kN2);

  n2.Get(1, 7, "x", &put.version, c.now);  // Session 7 waits for x=1.
  n2.Put(2, 7, "x", "2", nullptr, c.now);  // Later request of session 7: waits behind it.
  n2.Get(3, 8, "x", nullptr, c.now);       // Session 8: served now.
  Output out = c.Take(kN2);
  cr_assert_eq(out.replies.size(), 1u);
  cr_assert_eq(out.replies[0].token, 3u);
  cr_assert_eq(out.replies[0].code, Code::kNotFound);
  cr_assert_eq(n2.parked_requests(), 2u);
  cr_assert(out.records.empty(), "the parked put has not run");

  std::vector<Write> writes = c.history(kN1).records;
  cr_assert(n2.PeerWrites(kN1, writes, c.now).ok());
  out = c.Take(kN2);
  cr_assert_eq(out.replies.size(), 2u);
  cr_assert_eq(out.replies[0].token, 1u, "session order: the get first");
  cr_assert(out.replies[0].value == "1");
  cr_assert_eq(out.replies[1].token, 2u);
  cr_assert_eq(out.replies[1].code, Code::kOk);
  cr_assert(out.replies[1].version == (VectorClock{1, 1}), "the put follows x=1 causally");
  cr_assert(n2.store().Find("x")->value() == "2");
  cr_assert_eq(n2.parked_requests(), 0u);
}

Test(replica, parked_session_request_times_out_then_next_runs) {
  ReplicaConfig config = TestConfig(1, 2);
  config.context_wait_ms = 100;
  Solo n(config);
  VectorClock ahead{1, 0};
  n.replica.Get(1, 7, "x", &ahead, 0);
  n.replica.Put(2, 7, "x", "v", nullptr, 50);
  cr_assert_eq(n.replica.parked_requests(), 2u);
  Output out = n.Ready(100);
  cr_assert_eq(out.replies.size(), 2u);
  cr_assert_eq(out.replies[0].token, 1u);
  cr_assert_eq(out.replies[0].code, Code::kTimeout);
  cr_assert_eq(out.replies[1].token, 2u);
  cr_assert_eq(out.replies[1].code, Code::kOk);
  cr_assert_eq(n.replica.parked_requests(), 0u);
}

Test(replica, parked_requests_bound) {
  ReplicaConfig config = TestConfig(1, 2);
  config.parked_requests_max = 2;
  Solo n(config);
  VectorClock ahead{1, 0};
  n.replica.Get(1, 1, "x", &ahead, 0);
  n.replica.Get(2, 2, "x", &ahead, 0);
  n.replica.Get(3, 3, "x", &ahead, 0);
  Reply refused = OnlyReply(n.Ready(0));
  cr_assert_eq(refused.token, 3u);
  cr_assert_eq(refused.code, Code::kUnavailable);
  cr_assert_eq(n.replica.parked_requests(), 2u);
}

// --- Delivery, forwarding, acks -------------------------------------------------------------

Test(replica, duplicate_delivery_is_idempotent) {
  Cluster c(2);
  c.Put(kN1, "x", "1");
  c.Put(kN1, "x", "2");
  const std::vector<Write> writes = c.history(kN1).records;
  Replica& n2 = c.node(kN2);
  std::vector<Write> once = writes;  // PeerWrites consumes its input.
  cr_assert(n2.PeerWrites(kN1, once, 0).ok());
  Output first = c.Take(kN2);
  cr_assert_eq(first.records.size(), 2u);

  std::vector<Write> again = writes;
  cr_assert(n2.PeerWrites(kN1, again, 0).ok());
  std::vector<Write> just_first = {writes[0]};
  cr_assert(n2.PeerWrites(kN1, just_first, 0).ok());
  Output second = c.Take(kN2);
  cr_assert(second.records.empty(), "nothing re-applied or re-persisted");
  size_t duplicates = 0;
  for (const Event& event : second.events) {
    cr_assert_neq(event.kind, Event::Kind::kApplied);
    duplicates += event.kind == Event::Kind::kDuplicate;
  }
  cr_assert_eq(duplicates, 3u);
  cr_assert(n2.clock() == (VectorClock{2, 0}));
  cr_assert(n2.store().Find("x")->value() == "2");
  cr_assert(n2.log().size() == 2u);
}

Test(replica, duplicate_of_buffered_write_is_dropped) {
  Solo n(TestConfig(2, 3));
  std::vector<Write> batch = {MakeWrite(1, {1, 1, 0}, "y")};
  cr_assert(n.replica.PeerWrites(1, batch, 0).ok());
  std::vector<Write> again = {MakeWrite(1, {1, 1, 0}, "y")};
  cr_assert(n.replica.PeerWrites(1, again, 0).ok());
  cr_assert_eq(n.replica.buffer().size(), 1u);
  n.Ready();
  cr_assert_eq(n.history.CountEvents(Event::Kind::kBuffered), 1u);
  cr_assert_eq(n.history.CountEvents(Event::Kind::kDuplicate), 1u);
  // Delivering the dependency drains the buffer in order.
  std::vector<Write> dep = {MakeWrite(0, {1, 0, 0}, "x")};
  cr_assert(n.replica.PeerWrites(0, dep, 0).ok());
  cr_assert_eq(n.replica.buffer().size(), 0u);
  cr_assert(n.replica.clock() == (VectorClock{1, 1, 0}));
}

Test(replica, forwarding_heals_a_held_link) {
  Cluster c(3, [](ReplicaConfig& config) { config.forward_after_ms = 100; });
  c.ConnectAll();
  c.Settle();
  c.node(kN1).HoldLink(kN3);

  c.now = 1000;
  c.Put(kN1, "x", "1");  // Node 2 applies it at 1000 when node 1's Step delivers it.
  c.Settle();
  cr_assert(c.node(kN2).clock() == (VectorClock{1, 0, 0}));
  cr_assert(c.node(kN3).clock() == VectorClock(3));

  c.now = 1099;
  c.Settle();
  cr_assert(c.node(kN3).clock() == VectorClock(3), "not forwarded before forward_after_ms");

  c.now = 1100;
  Output out = c.Take(kN2);
  bool forwarded = false;
  for (const PeerMessage& message : out.messages) {
    if (message.type != PeerMessageType::kWriteBatch || message.peer != kN3) continue;
    cr_assert_eq(message.writes.size(), 1u);
    cr_assert_eq(message.writes[0].origin, kN1);
    cr_assert(message.writes[0].key == "x");
    forwarded = true;
  }
  cr_assert(forwarded, "node 2 forwards node 1's write to node 3");
  for (const PeerMessage& message : out.messages) c.Deliver(kN2, message);
  cr_assert(c.node(kN3).clock() == (VectorClock{1, 0, 0}));

  // Releasing the hold later sends nothing twice.
  c.Settle();
  c.node(kN1).ReleaseLink(kN3);
  size_t duplicates = c.history(kN3).CountEvents(Event::Kind::kDuplicate);
  c.Settle();
  cr_assert_eq(c.history(kN3).CountEvents(Event::Kind::kDuplicate), duplicates,
               "node 1 knows from node 3's acks that it has x");
  cr_assert(c.Converged());
}

Test(replica, own_writes_are_not_delayed_by_forward_delay) {
  Cluster c(3, [](ReplicaConfig& config) { config.forward_after_ms = kNever; });
  c.ConnectAll();
  c.Settle();
  c.Put(kN2, "y", "1");
  cr_assert(c.node(kN1).clock() == (VectorClock{0, 1, 0}));
  cr_assert(c.node(kN3).clock() == (VectorClock{0, 1, 0}));
}

Test(replica, acks_truncate_the_log_once_every_peer_has_an_entry) {
  Cluster c(3);
  c.ConnectAll();
  c.Settle();
  c.node(kN1).Put(1, 1, "x", "1", nullptr, c.now);
  c.Step(kN1);  // Applies and sends to nodes 2 and 3.
  cr_assert_eq(c.node(kN1).log().size(), 1u);
  c.Step(kN2);  // Node 2 acks.
  cr_assert(c.node(kN1).peer_info(kN2).acked == (VectorClock{1, 0, 0}));
  cr_assert_eq(c.node(kN1).log().size(), 1u, "node 3 has not acknowledged yet");
  c.Step(kN3);  // Node 3 acks.
  cr_assert_eq(c.node(kN1).log().size(), 0u);
  cr_assert_eq(c.node(kN1).log().begin_index(), 1u);
  c.Settle();
  for (uint32_t i = 0; i < 3; ++i) {
    cr_assert_eq(c.node(i).log().size(), 0u, "node %u log not truncated", i + 1);
  }
}

Test(replica, acks_respect_the_interval) {
  Cluster c(2, [](ReplicaConfig& config) { config.ack_interval_ms = 20; });
  c.ConnectAll();
  c.Settle();
  auto acks_in = [](const Output& out) {
    std::vector<VectorClock> clocks;
    for (const PeerMessage& message : out.messages) {
      if (message.type != PeerMessageType::kAck) continue;
      cr_assert_eq(message.peer, kN1);
      clocks.push_back(message.clock);
    }
    return clocks;
  };
  c.now = 100;
  c.Put(kN1, "x", "1");
  std::vector<VectorClock> acks = acks_in(c.Take(kN2));
  cr_assert_eq(acks.size(), 1u, "the interval since the hello has passed");
  cr_assert(acks[0] == (VectorClock{1, 0}));

  c.now = 110;
  c.Put(kN1, "x", "2");
  cr_assert(acks_in(c.Take(kN2)).empty(), "10 ms after the last ack: too early");
  c.now = 119;
  cr_assert(acks_in(c.Take(kN2)).empty());
  c.now = 120;
  acks = acks_in(c.Take(kN2));
  cr_assert_eq(acks.size(), 1u);
  cr_assert(acks[0] == (VectorClock{2, 0}));
  c.now = 200;
  cr_assert(c.Take(kN2).messages.empty(), "no ack when the clock did not move");
}

// --- Never reuse a sequence number ------------------------------------------------------------

Test(replica, recovers_own_writes_before_accepting_new_ones) {
  // Three nodes; node 3 stays away so node 2 keeps its log.
  Cluster c(3);
  c.Connect(kN1, kN2);
  c.Connect(kN2, kN1);
  c.Settle();
  for (int i = 0; i < 3; ++i) c.Put(kN1, "k" + std::to_string(i), "v" + std::to_string(i));
  c.Settle();
  cr_assert(c.node(kN2).clock() == (VectorClock{3, 0, 0}));
  cr_assert_eq(c.node(kN2).log().size(), 3u);

  // Node 1 loses its disk and comes back empty: without an identity it
  // cannot tell a new cluster from a lost disk, so it takes no writes.
  c.Disconnect(kN1, kN2);
  c.Disconnect(kN2, kN1);
  c.Replace(kN1);
  Replica& n1 = c.node(kN1);
  cr_assert_not(n1.accepting_writes());
  cr_assert(n1.cluster_id().empty());

  // Its link to node 2 comes up first: the hello-ack reveals seq 3 and the
  // cluster's identity, which node 1 adopts (but does not record yet).
  c.Connect(kN1, kN2);
  c.Step(kN2);  // HelloAck [3,0,0] -> n1.LinkToPeerUp.
  cr_assert_not(n1.accepting_writes());
  KV_ASSERT_STR_EQ(n1.cluster_id(), "test-cluster");
  Reply refused = c.Put(kN1, "new", "x", 10);
  cr_assert_eq(refused.code, Code::kUnavailable, "got %s",
               std::string(CodeName(refused.code)).c_str());
  cr_assert_not(refused.message.empty());
  cr_assert(n1.clock() == VectorClock(3));
  cr_assert_eq(c.history(kN1).CountEvents(Event::Kind::kRecovering), 1u);

  // Node 2's link to node 1 comes up: it sends node 1's own writes back.
  c.Connect(kN2, kN1);
  c.Settle();
  cr_assert(n1.clock() == (VectorClock{3, 0, 0}));
  cr_assert_eq(c.history(kN1).CountEvents(Event::Kind::kRecovered), 1u);
  cr_assert(n1.store().Find("k2")->value() == "v2");
  // Node 3 has not been heard: it could know of a later write of node 1.
  cr_assert_not(n1.accepting_writes(), "accepted writes before hearing every peer");

  c.Connect(kN1, kN3);
  c.Connect(kN3, kN1);
  c.Settle();
  cr_assert(n1.accepting_writes());
  cr_assert(n1.identity_recorded());
  bool recorded = false;
  for (const Record& record : c.history(kN1).all_records) {
    recorded |= record.kind == RecordKind::kIdentity && record.cluster_id == "test-cluster";
  }
  cr_assert(recorded, "the adopted identity is persisted");

  Reply accepted = c.Put(kN1, "new", "x", 11);
  cr_assert_eq(accepted.code, Code::kOk);
  cr_assert(accepted.version == (VectorClock{4, 0, 0}), "next fresh seq, got %s",
            accepted.version.ToString().c_str());
  c.Settle();
  cr_assert(c.node(kN2).store().Find("new")->value() == "x");
}

Test(replica, peer_ack_reporting_more_own_writes_blocks_puts) {
  Solo n(TestConfig(0, 2));
  n.replica.Put(1, 1, "a", "1", nullptr, 0);
  n.Ready();
  // A peer says it has 3 of our writes; we have 1.
  cr_assert(n.replica.PeerAck(1, VectorClock{3, 0}, 0).ok());
  cr_assert_not(n.replica.accepting_writes());
  n.replica.Put(2, 1, "b", "2", nullptr, 0);
  n.replica.Delete(3, 1, "a", nullptr, 0);
  n.replica.Get(4, 1, "a", nullptr, 0);
  Output out = n.Ready();
  cr_assert_eq(out.replies.size(), 3u);
  cr_assert_eq(out.replies[0].code, Code::kUnavailable);
  cr_assert_eq(out.replies[1].code, Code::kUnavailable);
  cr_assert_eq(out.replies[2].code, Code::kOk, "reads are still served");
  cr_assert(out.records.empty());

  std::vector<Write> own = {MakeWrite(0, {2, 0}, "b", "old2"), MakeWrite(0, {3, 0}, "c", "old3")};
  cr_assert(n.replica.PeerWrites(1, own, 0).ok());
  cr_assert(n.replica.accepting_writes());
  n.replica.Put(5, 1, "d", "4", nullptr, 0);
  Reply reply = OnlyReply(n.Ready());
  cr_assert_eq(reply.code, Code::kOk);
  cr_assert(reply.version == (VectorClock{4, 0}));
}

// --- Buffer bound and resynchronisation ----------------------------------------------------------

Test(replica, buffer_overflow_resyncs_and_converges) {
  Cluster c(3, [](ReplicaConfig& config) {
    config.forward_after_ms = 100;
    if (config.self == kN3) config.buffer_writes_max = 2;
  });
  c.ConnectAll();
  c.Settle();
  c.node(kN1).HoldLink(kN3);

  c.now = 1000;
  c.Put(kN1, "x", "1");  // Reaches node 2 only.
  cr_assert(c.node(kN2).clock() == (VectorClock{1, 0, 0}));
  // Five writes at node 2, all after x=1; one batch to node 3.
  for (int i = 1; i <= 5; ++i) {
    c.node(kN2).Put(static_cast<uint64_t>(i), 1, "y" + std::to_string(i), "v", nullptr, c.now);
  }
  c.Step(kN2);
  cr_assert_eq(c.node(kN3).buffer().size(), 2u, "buffer at its bound");
  Output out = c.Take(kN3);
  cr_assert_eq(out.resync_peers.size(), 1u);
  cr_assert_eq(out.resync_peers[0], kN2, "the sender must resynchronise");
  cr_assert_eq(c.history(kN3).CountEvents(Event::Kind::kBufferFull), 1u);
  cr_assert(c.node(kN3).clock() == VectorClock(3));

  // The shell closes the link from node 2 and node 2 redials.
  c.now = 1200;
  c.Disconnect(kN2, kN3);
  cr_assert_not(c.node(kN3).peer_info(kN2).link_from_up);
  cr_assert_not(c.node(kN2).peer_info(kN3).link_to_up);
  c.Connect(kN2, kN3);
  c.Settle();
  cr_assert(c.node(kN3).clock() == (VectorClock{1, 5, 0}), "got %s",
            c.node(kN3).clock().ToString().c_str());
  cr_assert_eq(c.node(kN3).buffer().size(), 0u);

  c.node(kN1).ReleaseLink(kN3);
  c.Settle();
  cr_assert(c.Converged());
  cr_assert(c.node(kN1).clock() == (VectorClock{1, 5, 0}));
}

// Regression: node R (buffer_writes_max 2) reconnects to S, whose log holds
// S's writes a1..a3 and T's writes b1..b3 (which depend on them), while T's
// own link to R is held. A batch [b1,b2,b3,a1,a2,a3] would fill R's buffer,
// get b3 refused, and repeat after every resync; in log order it converges.
Test(replica, bounded_buffer_gets_batches_in_causal_order) {
  constexpr uint32_t kS = 0, kR = 1, kT = 2;
  Cluster c(3, [](ReplicaConfig& config) {
    config.forward_after_ms = 100;
    if (config.self == kR) config.buffer_writes_max = 2;
  });
  c.Connect(kS, kT);
  c.Connect(kT, kS);
  c.Settle();
  for (int i = 1; i <= 3; ++i) c.Put(kS, "a" + std::to_string(i), "v");
  for (int i = 1; i <= 3; ++i) c.Put(kT, "b" + std::to_string(i), "v");
  c.Settle();
  cr_assert(c.node(kS).clock() == (VectorClock{3, 0, 3}));
  cr_assert_eq(c.node(kS).log().size(), 6u, "R has acked nothing, S keeps everything");

  c.node(kT).HoldLink(kR);
  c.now = 1000;
  for (uint32_t peer : {kS, kT}) {
    c.Connect(peer, kR);
    c.Connect(kR, peer);
  }
  size_t handled = 0;
  for (int round = 0; round < 10; ++round) {
    c.Settle();
    const std::vector<uint32_t>& resyncs = c.history(kR).resyncs;
    for (; handled < resyncs.size(); ++handled) c.Reconnect(resyncs[handled], kR);
    c.now += 10;
  }
  cr_assert(c.node(kR).clock() == (VectorClock{3, 0, 3}),
            "R stuck at %s after %zu resyncs (buffer %zu)", c.node(kR).clock().ToString().c_str(),
            handled, c.node(kR).buffer().size());
  cr_assert_eq(handled, 0u, "in causal order nothing overflows");
  c.node(kT).ReleaseLink(kR);
  c.Settle();
  cr_assert(c.Converged());
}

// --- Restore
// ------------------------------------------------------------------------------------------

Test(replica, restore_replays_records) {
  Cluster c(3);
  c.ConnectAll();
  c.Settle();
  c.Put(kN1, "a", "1");
  c.Put(kN2, "b", "2");
  c.Settle();
  c.Delete(kN3, "a");
  c.Put(kN1, "c", std::string("\0\xff", 2));
  c.Settle();
  const std::vector<Write>& records = c.history(kN2).records;
  cr_assert_eq(records.size(), 4u);

  Replica fresh(TestConfig(kN2, 3));
  uint64_t now = 0;
  for (const Write& record : records) {
    Status status = fresh.Restore(record, now++);
    cr_assert(status.ok(), "%s", status.ToString().c_str());
  }
  cr_assert(fresh.clock() == c.node(kN2).clock());
  // The live node may have collected the tombstone of "a" since (its peers
  // acknowledged it); the restored one keeps it until it hears from them.
  const Store::Entry* a = fresh.store().Find("a");
  cr_assert(a && a->tombstone() && a->version() == (VectorClock{1, 1, 1}));
  for (const Store::Entry& entry : fresh.store()) {
    const Store::Entry* live = c.node(kN2).store().Find(entry.key());
    if (!live) {
      cr_assert(entry.tombstone(), "restored key missing from the live store");
      continue;
    }
    cr_assert(live->value() == entry.value() && live->version() == entry.version() &&
                  live->origin() == entry.origin() && live->tombstone() == entry.tombstone(),
              "entry differs after restore");
  }
  cr_assert_eq(fresh.store().live_keys(), c.node(kN2).store().live_keys());
  Output out = fresh.Ready(now);
  cr_assert(out.records.empty(), "restored records are not persisted again");
  fresh.Get(1, 1, "c", nullptr, now);
  Reply get = OnlyReply(fresh.Ready(now));
  cr_assert(get.value == std::string("\0\xff", 2));
  fresh.Put(2, 1, "d", "4", nullptr, now);
  cr_assert(OnlyReply(fresh.Ready(now)).version == (VectorClock{2, 2, 1}),
            "new writes continue after the restored ones");
}

Test(replica, restore_refuses_out_of_order_records) {
  Solo n(TestConfig(0, 2));
  for (int i = 0; i < 3; ++i) n.replica.Put(1, 1, "k", std::to_string(i), nullptr, 0);
  n.Ready();
  const std::vector<Write>& records = n.history.records;
  cr_assert_eq(records.size(), 3u);

  Replica fresh(TestConfig(0, 2));
  Status skipped = fresh.Restore(records[1], 0);
  cr_assert_not(skipped.ok(), "seq 2 before seq 1");
  cr_assert_eq(skipped.code(), Code::kInternal);
  cr_assert_not(skipped.message().empty());
  cr_assert(fresh.clock() == VectorClock(2));
  cr_assert_null(fresh.store().Find("k"));

  cr_assert(fresh.Restore(records[0], 0).ok());
  Status again = fresh.Restore(records[0], 0);
  cr_assert_not(again.ok(), "a repeated record is refused too");
  cr_assert(fresh.Restore(records[1], 0).ok());

  Write wrong_size = records[2];
  wrong_size.clock = VectorClock{3, 0, 0};
  cr_assert_eq(fresh.Restore(wrong_size, 0).code(), Code::kBadRequest);
  cr_assert(fresh.Restore(records[2], 0).ok());
  cr_assert(fresh.clock() == (VectorClock{3, 0}));
  cr_assert(fresh.store().Find("k")->value() == "2");

  // A remote record whose dependency is missing.
  Replica other(TestConfig(0, 2));
  cr_assert_not(other.Restore(MakeWrite(1, {1, 1}, "z"), 0).ok());
}

// --- Tombstone collection, end to end
// -------------------------------------------------------------

Test(replica, tombstones_are_collected_everywhere) {
  Cluster c(3);
  c.ConnectAll();
  c.Settle();
  c.Put(kN1, "x", "1");
  c.Put(kN1, "keep", "1");
  c.Settle();
  Reply del = c.Delete(kN2, "x");
  cr_assert_eq(del.code, Code::kOk);
  cr_assert(c.node(kN2).store().Find("x")->tombstone());
  cr_assert_eq(c.node(kN2).store().tombstones(), 1u, "kept until every node has it");
  c.now += 100;
  c.Settle();
  for (uint32_t i = 0; i < 3; ++i) {
    const Store& store = c.node(i).store();
    cr_assert_eq(store.tombstones(), 0u, "node %u still has %zu tombstones", i + 1,
                 store.tombstones());
    cr_assert_null(store.Find("x"));
    cr_assert_eq(store.live_keys(), 1u);
    cr_assert(c.node(i).clock() == (VectorClock{2, 1, 0}));
    cr_assert_eq(c.node(i).log().size(), 0u);
    Reply get = c.Get(i, "x", 100 + i);
    cr_assert_eq(get.code, Code::kNotFound);
    cr_assert_not(get.found);
  }
  // A new write to the key after collection works normally everywhere.
  c.Put(kN3, "x", "back");
  c.Settle();
  cr_assert(c.Converged());
  cr_assert(c.node(kN1).store().Find("x")->value() == "back");
}

Test(replica, tombstone_kept_while_a_peer_lacks_it) {
  Cluster c(3, [](ReplicaConfig& config) { config.forward_after_ms = kNever; });
  c.ConnectAll();
  c.Settle();
  c.node(kN1).HoldLink(kN3);
  c.Put(kN1, "x", "1");
  c.Delete(kN1, "x");
  c.Settle();
  // Node 2 has the tombstone; node 3 has neither write.
  cr_assert(c.node(kN2).store().Find("x")->tombstone());
  cr_assert_eq(c.node(kN1).store().tombstones(), 1u);
  cr_assert_eq(c.node(kN2).store().tombstones(), 1u);
  c.node(kN1).ReleaseLink(kN3);
  c.Settle();
  for (uint32_t i = 0; i < 3; ++i) cr_assert_eq(c.node(i).store().tombstones(), 0u);
  cr_assert(c.Converged());
}

Test(replica, concurrent_write_with_tombstone_converges_after_collection) {
  // Node 1 deletes x while node 2, not yet having the delete, writes x:
  // the greater (sum, origin) wins everywhere, whether or not the
  // tombstone is collected.
  Cluster c(3);
  c.ConnectAll();
  c.Settle();
  c.Put(kN1, "x", "1");
  c.Settle();
  c.node(kN1).Delete(1, 1, "x", nullptr, c.now);    // [2,0,0], sum 2
  c.node(kN2).Put(2, 1, "x", "2", nullptr, c.now);  // [1,1,0], sum 2, origin 1 wins
  c.Settle();
  cr_assert(c.Converged());
  for (uint32_t i = 0; i < 3; ++i) {
    const Store::Entry* x = c.node(i).store().Find("x");
    cr_assert_not_null(x);
    cr_assert(x->value() == "2");
    cr_assert_eq(c.node(i).store().tombstones(), 0u);
  }
}

// --- Ready
// ---------------------------------------------------------------------------------------------

Test(replica, ready_hands_over_once) {
  Solo n(TestConfig(0, 1));
  n.replica.Put(1, 1, "x", "1", nullptr, 0);
  Output& out = n.replica.Ready(0);
  cr_assert_eq(out.replies.size(), 1u);
  cr_assert_eq(out.records.size(), 1u);
  cr_assert_not(out.empty());
  Output& next = n.replica.Ready(0);
  cr_assert(next.empty(), "everything was handed over by the previous Ready");
}

Test(replica, single_node_cluster_collects_tombstones_at_once) {
  Solo n(TestConfig(0, 1));
  n.replica.Put(1, 1, "x", "1", nullptr, 0);
  n.replica.Delete(2, 1, "x", nullptr, 0);
  n.Ready();
  cr_assert_eq(n.replica.store().tombstones(), 0u);
  cr_assert_null(n.replica.store().Find("x"));
}
