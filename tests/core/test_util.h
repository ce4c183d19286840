// Helpers shared by the core tests: building writes and clocks, comparing
// stores, and a tiny in-process "network" that pumps Replica::Ready()
// outputs between replicas by hand (no simulator, no randomness).
#pragma once

#include <criterion/criterion.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "daemon/core/output.h"
#include "daemon/core/replica.h"
#include "daemon/core/store.h"
#include "daemon/core/vector_clock.h"
#include "daemon/core/write.h"
#include "tests/peer_delivery.h"

// Asserts that two byte strings are equal. Binds both sides to locals
// first: Criterion's cr_assert_str_eq keeps the pointers past the full
// expression, so `.c_str()` of a temporary would dangle.
#define KV_ASSERT_STR_EQ(actual, expected)                                        \
  do {                                                                            \
    const std::string kv_actual_(actual);                                         \
    const std::string kv_expected_(expected);                                     \
    cr_assert(kv_actual_ == kv_expected_, "%s: got \"%s\", want \"%s\"", #actual, \
              kv_actual_.c_str(), kv_expected_.c_str());                          \
  } while (0)

namespace kvd::core::testing {

inline Write MakeWrite(uint32_t origin, VectorClock clock, std::string key, std::string value = "v",
                       bool is_delete = false) {
  Write write;
  write.origin = origin;
  write.clock = std::move(clock);
  write.key = std::move(key);
  write.value = is_delete ? std::string() : std::move(value);
  write.is_delete = is_delete;
  return write;
}

inline Write MakeDelete(uint32_t origin, VectorClock clock, std::string key) {
  return MakeWrite(origin, std::move(clock), std::move(key), {}, true);
}

// True if both stores hold exactly the same entries (value, version,
// origin, tombstone flag).
inline bool SameStore(const Store& a, const Store& b) {
  if (a.size() != b.size()) return false;
  for (const Store::Entry& entry : a) {
    const Store::Entry* other = b.Find(entry.key());
    if (!other || other->value() != entry.value() || !(other->version() == entry.version()) ||
        other->origin() != entry.origin() || other->tombstone() != entry.tombstone()) {
      return false;
    }
  }
  return true;
}

// Test defaults: acks on every Ready (ack_interval_ms 0) so that pumping
// settles quickly; everything else as in production.
inline ReplicaConfig TestConfig(uint32_t self, size_t node_count) {
  ReplicaConfig config;
  config.self = self;
  config.node_count = node_count;
  config.ack_interval_ms = 0;
  // A member from the start, as after restoring its identity record; the
  // identity tests clear it to exercise founding and adoption.
  config.cluster_id = "test-cluster";
  return config;
}

// Everything one node's Ready() calls produced, accumulated in order.
struct NodeHistory {
  std::vector<Write> records;       // The kWrite records, in order.
  std::vector<Record> all_records;  // Every record, in order.
  std::vector<Reply> replies;
  std::vector<Event> events;
  std::vector<uint32_t> resyncs;
  std::vector<uint32_t> restarts;  // Output.restart_links.

  // Replies with this token, in order.
  std::vector<Reply> RepliesFor(uint64_t token) const {
    std::vector<Reply> out;
    for (const Reply& reply : replies) {
      if (reply.token == token) out.push_back(reply);
    }
    return out;
  }
  // Applied writes (kApplied events) as (origin, seq), in order.
  std::vector<std::pair<uint32_t, uint64_t>> Applied() const {
    std::vector<std::pair<uint32_t, uint64_t>> out;
    for (const Event& event : events) {
      if (event.kind == Event::Kind::kApplied) out.emplace_back(event.origin, event.seq);
    }
    return out;
  }
  size_t CountEvents(Event::Kind kind) const {
    size_t n = 0;
    for (const Event& event : events) n += event.kind == kind;
    return n;
  }
};

// N replicas wired by hand. Messages of one node's Ready() are delivered
// to their targets at once, in order; `now` is the shared virtual time.
class Cluster {
 public:
  explicit Cluster(size_t node_count, const std::function<void(ReplicaConfig&)>& tweak = {})
      : tweak_(tweak), node_count_(node_count) {
    for (uint32_t i = 0; i < node_count; ++i) {
      nodes_.push_back(std::make_unique<Replica>(Config(i)));
      histories_.emplace_back();
    }
  }

  size_t size() const { return nodes_.size(); }
  Replica& node(uint32_t i) { return *nodes_[i]; }
  NodeHistory& history(uint32_t i) { return histories_[i]; }
  ReplicaConfig Config(uint32_t i) const {
    ReplicaConfig config = TestConfig(i, node_count_);
    if (tweak_) tweak_(config);
    return config;
  }

  // Replaces node i by a fresh replica with an empty state (a lost disk):
  // it has no identity and must recover before it takes writes.
  void Replace(uint32_t i) {
    ReplicaConfig config = Config(i);
    config.cluster_id.clear();
    nodes_[i] = std::make_unique<Replica>(config);
    histories_[i] = NodeHistory();
  }

  // Calls Ready on node i, records what it produced and returns a copy.
  Output Take(uint32_t i) {
    Output out = node(i).Ready(now);
    NodeHistory& history = histories_[i];
    for (const Record& record : out.records) {
      if (record.kind == RecordKind::kWrite) history.records.push_back(record);
    }
    history.all_records.insert(history.all_records.end(), out.records.begin(), out.records.end());
    history.replies.insert(history.replies.end(), out.replies.begin(), out.replies.end());
    history.events.insert(history.events.end(), out.events.begin(), out.events.end());
    history.resyncs.insert(history.resyncs.end(), out.resync_peers.begin(), out.resync_peers.end());
    history.restarts.insert(history.restarts.end(), out.restart_links.begin(),
                            out.restart_links.end());
    return out;
  }

  // Delivers one message that node `from` produced to its target.
  void Deliver(uint32_t from, const PeerMessage& message) {
    Status status = kvd::testing::DeliverPeerMessage(node(message.peer), from, message, now);
    cr_assert(status.ok(), "delivery n%u -> n%u failed: %s", from + 1, message.peer + 1,
              status.ToString().c_str());
  }

  // Ready on node i, then delivers all its messages. Returns true if the
  // output was not empty.
  bool Step(uint32_t i) {
    Output out = Take(i);
    for (const PeerMessage& message : out.messages) Deliver(i, message);
    return !out.empty();
  }

  // Steps every node round-robin until one full round produces nothing.
  void Settle(int rounds_max = 1000) {
    for (int round = 0; round < rounds_max; ++round) {
      bool busy = false;
      for (uint32_t i = 0; i < size(); ++i) busy |= Step(i);
      if (!busy) return;
    }
    cr_assert_fail("cluster did not settle in %d rounds", rounds_max);
  }

  // Opens the link carrying a's writes to b: b accepts a's hello; the
  // HelloAck reaches a on b's next Step.
  void Connect(uint32_t a, uint32_t b) {
    Status status = node(b).LinkFromPeerUp(a, now, node(a).cluster_id());
    cr_assert(status.ok(), "hello n%u -> n%u refused: %s", a + 1, b + 1, status.ToString().c_str());
  }
  void ConnectAll() {
    for (uint32_t a = 0; a < size(); ++a) {
      for (uint32_t b = 0; b < size(); ++b) {
        if (a != b) Connect(a, b);
      }
    }
  }
  // Closes the link carrying a's writes to b on both ends.
  void Disconnect(uint32_t a, uint32_t b) {
    node(b).LinkFromPeerDown(a);
    node(a).LinkToPeerDown(b);
  }
  // What the shell does for Output.resync_peers: close and redial.
  void Reconnect(uint32_t a, uint32_t b) {
    Disconnect(a, b);
    Connect(a, b);
  }

  // Issues a put at node i and returns its (single) reply after Ready.
  Reply Put(uint32_t i, std::string_view key, std::string_view value, uint64_t token = 1,
            uint64_t session = 1, const VectorClock* context = nullptr) {
    node(i).Put(token, session, key, value, context, now);
    return OneReply(i, token);
  }
  Reply Delete(uint32_t i, std::string_view key, uint64_t token = 1, uint64_t session = 1) {
    node(i).Delete(token, session, key, nullptr, now);
    return OneReply(i, token);
  }
  Reply Get(uint32_t i, std::string_view key, uint64_t token = 1, uint64_t session = 1) {
    node(i).Get(token, session, key, nullptr, now);
    return OneReply(i, token);
  }

  // True if every node has the same clock and store.
  bool Converged() {
    for (uint32_t i = 1; i < size(); ++i) {
      if (!(node(i).clock() == node(0).clock())) return false;
      if (!SameStore(node(i).store(), node(0).store())) return false;
    }
    return true;
  }

  uint64_t now = 0;

 private:
  // Steps node i (delivering its messages) and returns the reply with
  // `token` it produced.
  Reply OneReply(uint32_t i, uint64_t token) {
    size_t before = histories_[i].replies.size();
    Step(i);
    const auto& replies = histories_[i].replies;
    for (size_t k = before; k < replies.size(); ++k) {
      if (replies[k].token == token) return replies[k];
    }
    cr_assert_fail("n%u produced no reply for token %llu", i + 1,
                   static_cast<unsigned long long>(token));
    return {};
  }

  std::function<void(ReplicaConfig&)> tweak_;
  size_t node_count_;
  std::vector<std::unique_ptr<Replica>> nodes_;
  std::vector<NodeHistory> histories_;
};

}  // namespace kvd::core::testing
