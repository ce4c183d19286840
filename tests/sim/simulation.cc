#include "tests/sim/simulation.h"

#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <set>
#include <unordered_map>
#include <vector>

#include "daemon/core/replica.h"
#include "tests/checker/checker.h"
#include "tests/peer_delivery.h"
#include "tests/sim/rng.h"

namespace kvd::sim {
namespace {

using core::Code;
using core::Output;
using core::PeerMessage;
using core::PeerMessageType;
using core::Record;
using core::Replica;
using core::ReplicaConfig;
using core::VectorClock;
using core::Write;

constexpr uint64_t kTickMs = 10;

// FNV-1a, folded over every event the run processes.
class TraceHash {
 public:
  void Add(uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      hash_ ^= (v >> (i * 8)) & 0xFF;
      hash_ *= 0x100000001B3ULL;
    }
  }
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_ = 0xCBF29CE484222325ULL;
};

// A write the run issued, as the checker and the read oracle need it.
struct IssuedWrite {
  uint64_t id;
  uint32_t session;
  std::string key;
  bool is_delete;
  bool executed = false;  // Some node applied it (we saw its OK reply leave).
  VectorClock clock;      // Valid once executed.
  uint32_t origin = 0;
};

// One TCP connection: `dialer` dialed `acceptor`. Writes flow from dialer to
// acceptor; hello-acks and acks flow back.
struct Connection {
  bool up = false;
  bool dialing = false;
  uint64_t epoch = 0;
  // A state transfer relies on its connection's order, as TCP gives it:
  // its messages are never reordered or duplicated (every other message
  // may be). The last such delivery time on this connection.
  uint64_t fifo_at_ms = 0;
};

struct Session {
  // A sticky session stays on one node and sends no context, like a client
  // that never moves: the node's own causal delivery is all that keeps its
  // history consistent, so the checker sees delivery bugs directly.
  bool sticky = false;
  uint32_t node = 0;
  VectorClock context;
  bool waiting = false;
  uint64_t token = 0;  // Of the outstanding request.
  uint32_t request_node = 0;
  uint32_t history = 0;  // Its index in the history (see LoseDisk).
};

struct PendingRequest {
  uint32_t session;
  enum class Type { kPut, kGet, kDelete } type;
  std::string key;
  uint64_t write_id = 0;  // Puts and deletes.
};

class Simulator {
 public:
  explicit Simulator(const Options& options)
      : options_(options), rng_(options.seed), n_(options.nodes) {
    config_.node_count = n_;
    config_.buffer_writes_max = 2 + rng_.Below(64);
    config_.context_wait_ms = 200 + rng_.Below(400);
    config_.forward_after_ms = 30 + rng_.Below(500);
    config_.ack_interval_ms = 5 + rng_.Below(40);
    config_.batch_writes_max = 1 + rng_.Below(16);
    config_.parked_requests_max = 64;
    // Half the runs bound the replication log tightly, so peers get
    // detached and catch up by state transfer; transfers come in small
    // pieces, so they span many steps and meet every other fault.
    if (rng_.Chance(50)) config_.log_bytes_max = 300 + rng_.Below(3000);
    config_.transfer_bytes_per_ready = 1 + rng_.Below(64);
    // Every node starts with an empty disk: node 1 founds the cluster.
    config_.new_cluster_id = "sim-" + std::to_string(options.seed);
    transfer_clocks_.assign(n_, VectorClock(n_));
    replicas_.resize(n_);
    disks_.resize(n_);
    incarnation_.assign(n_, 0);
    shadow_clocks_.assign(n_, VectorClock(n_));
    connections_.assign(n_, std::vector<Connection>(n_));
    cut_.assign(n_, std::vector<bool>(n_, false));
    held_.assign(n_, std::vector<bool>(n_, false));
    group_.assign(n_, 0);
    sessions_.resize(options.sessions + options.sticky_sessions);
    for (size_t s = 0; s < sessions_.size(); ++s) {
      sessions_[s].context = VectorClock(n_);
      sessions_[s].sticky = s >= options.sessions;
      sessions_[s].history = static_cast<uint32_t>(s);
    }
    history_.sessions.resize(sessions_.size());
  }

  Result Run();

 private:
  // The storage model: records reach `synced` only through a sync that
  // takes virtual time; a crash keeps the synced records plus a random
  // prefix of the unsynced ones. As with kvd's fsync=always, a Ready's
  // replies and messages wait for the sync covering its records.
  struct Held {
    size_t records;  // Durable records needed before release.
    std::vector<core::Reply> replies;
    std::vector<VectorClock> served;  // Clock each reply was served at.
    std::vector<PeerMessage> messages;
    std::vector<uint32_t> resync_peers;
    std::vector<uint32_t> restart_links;
  };
  struct Disk {
    std::vector<Record> synced;
    std::vector<Record> unsynced;
    bool syncing = false;
    std::deque<Held> held;
  };

  // --- Event queue -------------------------------------------------------
  void At(uint64_t time_ms, std::function<void()> action) {
    queue_.push({time_ms, next_event_seq_++, std::move(action)});
  }
  void After(uint64_t delay_ms, std::function<void()> action) {
    At(now_ + delay_ms, std::move(action));
  }
  bool Step();

  // --- Nodes --------------------------------------------------------------
  bool alive(uint32_t node) const { return replicas_[node] != nullptr; }
  void StartNode(uint32_t node);
  void CrashNode(uint32_t node);
  void LoseDisk(uint32_t node);
  void Snapshot(uint32_t node);
  // The highest write of `origin` node `holder`'s synced records hold.
  uint64_t DurableSeq(uint32_t holder, uint32_t origin) const;
  void Tick(uint32_t node);
  void Pump(uint32_t node);  // Ready() and execute its Output.
  void StartSync(uint32_t node);
  void Release(uint32_t node, Held& held);
  void CheckRecords(uint32_t node, const Output& out);

  // --- Network ------------------------------------------------------------
  bool Reachable(uint32_t a, uint32_t b) const {
    return alive(a) && alive(b) && !cut_[a][b] && !cut_[b][a] && group_[a] == group_[b];
  }
  void Dial(uint32_t dialer, uint32_t acceptor);
  void Break(uint32_t dialer, uint32_t acceptor);
  void BreakUnreachable();
  uint64_t Delay();
  void Send(uint32_t dialer, uint32_t acceptor, bool to_acceptor, PeerMessage message);
  void Receive(uint32_t dialer, uint32_t acceptor, bool to_acceptor, const PeerMessage& message);

  // --- Clients --------------------------------------------------------------
  void ScheduleClient(uint32_t session);
  void ClientOperation(uint32_t session);
  void ClientReply(uint32_t session, const core::Reply& reply, const VectorClock& node_clock);
  void NoteReplyLeaving(uint32_t node, const core::Reply& reply, const VectorClock& served_at);
  void RecordWrite(uint32_t session, uint64_t write_id, bool acknowledged);
  void MarkExecuted(uint32_t node, const core::Reply& reply);
  uint64_t ResolveRead(const std::string& key, const core::Reply& reply,
                       const VectorClock& node_clock);
  uint64_t ResolveState(uint32_t node, const std::string& key);

  // --- Faults ---------------------------------------------------------------
  void ScheduleFault();
  void InjectFault();

  // --- End of run ---------------------------------------------------------
  void HealAll();
  bool Quiet() const;
  void CheckConvergence();
  void Fail(const std::string& what) {
    result_.ok = false;
    if (failures_ < 20) result_.failure += what + "\n";
    ++failures_;
  }
  void Log(const std::string& line) {
    if (options_.verbose)
      std::fprintf(stderr, "%8llu %s\n", (unsigned long long)now_, line.c_str());
  }

  struct Event {
    uint64_t time_ms;
    uint64_t seq;
    std::function<void()> action;
    bool operator>(const Event& o) const {
      return time_ms != o.time_ms ? time_ms > o.time_ms : seq > o.seq;
    }
  };

  Options options_;
  Rng rng_;
  uint32_t n_;
  ReplicaConfig config_;
  uint64_t now_ = 0;
  uint64_t next_event_seq_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> queue_;
  TraceHash trace_;
  Result result_;
  uint64_t failures_ = 0;
  bool faults_on_ = true;
  bool clients_on_ = true;

  std::vector<std::unique_ptr<Replica>> replicas_;
  std::vector<Disk> disks_;
  std::vector<VectorClock> transfer_clocks_;          // Of the transfer each node is installing.
  std::vector<uint64_t> incarnation_;                 // Bumped by each crash.
  std::vector<VectorClock> shadow_clocks_;            // Last clock seen per node.
  std::vector<std::vector<Connection>> connections_;  // [dialer][acceptor].
  std::vector<std::vector<bool>> cut_;
  std::vector<std::vector<bool>> held_;
  std::vector<uint32_t> group_;  // Partition group per node.
  uint64_t in_flight_ = 0;       // Peer messages scheduled, not yet received.

  std::vector<Session> sessions_;
  uint64_t next_token_ = 1;
  uint64_t next_write_id_ = 1;
  std::unordered_map<uint64_t, PendingRequest> pending_;                // By token.
  std::unordered_map<uint64_t, IssuedWrite> writes_;                    // By id.
  std::map<std::pair<uint32_t, uint64_t>, uint64_t> write_by_version_;  // (origin, seq).
  std::unordered_map<std::string, std::vector<uint64_t>> writes_by_key_;
  checker::History history_;
};

// --- Event loop ----------------------------------------------------------------

bool Simulator::Step() {
  if (queue_.empty()) return false;
  Event event = queue_.top();
  queue_.pop();
  now_ = event.time_ms;
  trace_.Add(event.time_ms);
  trace_.Add(event.seq);
  event.action();
  return true;
}

Result Simulator::Run() {
  for (uint32_t node = 0; node < n_; ++node) StartNode(node);
  for (uint32_t s = 0; s < sessions_.size(); ++s) {
    sessions_[s].node = static_cast<uint32_t>(rng_.Below(n_));
    ScheduleClient(s);
  }
  faults_on_ = options_.faults;
  if (faults_on_) ScheduleFault();
  while (now_ < options_.client_phase_ms && Step()) {
  }
  // Stop new traffic and faults, heal, and let everything settle.
  clients_on_ = false;
  faults_on_ = false;
  HealAll();
  uint64_t deadline = now_ + options_.settle_ms_max;
  uint64_t quiet_since = 0;
  while (now_ < deadline && Step()) {
    bool waiting_client = false;
    for (const Session& s : sessions_) waiting_client |= s.waiting;
    if (Quiet() && !waiting_client) {
      if (quiet_since == 0) quiet_since = now_;
      // Quiet for longer than a forwarding delay plus an ack round.
      if (now_ - quiet_since > config_.forward_after_ms + 200) break;
    } else {
      quiet_since = 0;
    }
  }
  CheckConvergence();

  // The causal-consistency checker over the whole history.
  for (uint32_t node = 0; node < n_; ++node) {
    std::map<std::string, uint64_t> state;
    for (uint32_t k = 0; k < options_.keys; ++k) {
      std::string key = "k" + std::to_string(k);
      state[key] = ResolveState(node, key);
    }
    history_.final_states.push_back(std::move(state));
  }
  checker::Report report = checker::Check(history_);
  if (!report.ok()) Fail("checker: " + report.ToString(history_));
  for (const auto& ops : history_.sessions) result_.operations += ops.size();
  result_.trace_hash = trace_.value();
  return result_;
}

// --- Nodes ------------------------------------------------------------------------

void Simulator::StartNode(uint32_t node) {
  ReplicaConfig config = config_;
  config.self = node;
  replicas_[node] = std::make_unique<Replica>(config);
  for (const Record& record : disks_[node].synced) {
    core::Status s = replicas_[node]->Restore(record, now_);
    if (!s.ok()) Fail("n" + std::to_string(node + 1) + ": restore: " + s.ToString());
  }
  // What survived the crash: the restored clock may be behind what the
  // node had applied (unsynced records lost), never ahead of it.
  if (!shadow_clocks_[node].Dominates(replicas_[node]->clock())) {
    Fail("n" + std::to_string(node + 1) + ": restored clock " +
         replicas_[node]->clock().ToString() + " is ahead of " + shadow_clocks_[node].ToString());
  }
  shadow_clocks_[node] = replicas_[node]->clock();
  for (uint32_t peer = 0; peer < n_; ++peer) {
    if (peer == node) continue;
    if (held_[node][peer]) replicas_[node]->HoldLink(peer);
    Dial(node, peer);
    Dial(peer, node);
  }
  Log("n" + std::to_string(node + 1) + " started with clock " +
      replicas_[node]->clock().ToString());
  After(kTickMs, [this, node] { Tick(node); });
}

void Simulator::CrashNode(uint32_t node) {
  if (!alive(node)) return;
  ++result_.crashes;
  Disk& disk = disks_[node];
  size_t kept = rng_.Below(disk.unsynced.size() + 1);
  Log("n" + std::to_string(node + 1) + " crashed; " + std::to_string(kept) + " of " +
      std::to_string(disk.unsynced.size()) + " unsynced records survive");
  disk.synced.insert(disk.synced.end(), disk.unsynced.begin(), disk.unsynced.begin() + kept);
  disk.unsynced.clear();
  // Held replies were never sent, but a local write whose record survived
  // did take effect (its client will not hear of it): it joins the history
  // as an unacknowledged write when its session gives up below.
  uint64_t own_seq_on_disk = DurableSeq(node, node);
  for (const Held& held : disk.held) {
    for (const core::Reply& reply : held.replies) {
      if (reply.code == Code::kOk && reply.version.size() > 0 &&
          reply.version[node] <= own_seq_on_disk) {
        MarkExecuted(node, reply);
      }
    }
  }
  disk.held.clear();
  disk.syncing = false;
  ++incarnation_[node];
  replicas_[node].reset();
  for (uint32_t peer = 0; peer < n_; ++peer) {
    if (peer == node) continue;
    Break(node, peer);
    Break(peer, node);
  }
  // Requests outstanding at the node are lost with their connections.
  for (uint32_t s = 0; s < sessions_.size(); ++s) {
    Session& session = sessions_[s];
    if (!session.waiting || session.request_node != node) continue;
    auto it = pending_.find(session.token);
    if (it != pending_.end()) {
      RecordWrite(s, it->second.write_id, /*acknowledged=*/false);
      pending_.erase(it);
    }
    session.waiting = false;
    ScheduleClient(s);
  }
  uint64_t downtime = rng_.Between(20, 600);
  After(downtime, [this, node] {
    if (!alive(node)) StartNode(node);
  });
}

uint64_t Simulator::DurableSeq(uint32_t holder, uint32_t origin) const {
  uint64_t seq = 0;
  VectorClock transfer;
  for (const Record& record : disks_[holder].synced) {
    switch (record.kind) {
      case core::RecordKind::kWrite:
        if (record.origin == origin) seq = std::max(seq, record.seq());
        break;
      case core::RecordKind::kTransferBegin:
        transfer = record.clock;
        break;
      case core::RecordKind::kTransferEnd:
        if (transfer.size() > 0) seq = std::max(seq, transfer[origin]);
        break;
      default:
        break;
    }
  }
  return seq;
}

// A disk is lost only while every write of its node is durable at some
// peer: the cluster can then give them all back, and the test is that it
// does, without the node reusing a sequence number. (A write nobody else
// has dies with the disk: no replication scheme without synchronous
// replication can promise otherwise.)
void Simulator::LoseDisk(uint32_t node) {
  if (!alive(node)) return;
  uint64_t own = replicas_[node]->clock()[node];
  uint64_t elsewhere = 0;
  for (uint32_t peer = 0; peer < n_; ++peer) {
    if (peer != node) elsewhere = std::max(elsewhere, DurableSeq(peer, node));
  }
  if (elsewhere < own || !disks_[node].held.empty()) return;
  Log("n" + std::to_string(node + 1) + " loses its disk");
  ++result_.disks_lost;
  // A sticky session carries no context: all its causal memory is the
  // node's state, and that is gone. From here on its client is a new
  // session (moving sessions carry their context and stay the same).
  for (Session& session : sessions_) {
    if (!session.sticky || session.node != node) continue;
    session.history = static_cast<uint32_t>(history_.sessions.size());
    history_.sessions.emplace_back();
  }
  disks_[node].synced.clear();
  disks_[node].unsynced.clear();
  CrashNode(node);
}

// As kvd does it: everything appended is synced first (the WAL rotation),
// then the records are replaced by the image of the state. Not while a
// transfer is being received (kvd defers the snapshot then).
void Simulator::Snapshot(uint32_t node) {
  if (!alive(node) || replicas_[node]->receiving_transfer()) return;
  Disk& disk = disks_[node];
  // Held outputs count synced records: compact only when none wait.
  if (disk.syncing || !disk.unsynced.empty() || !disk.held.empty()) return;
  std::vector<Record> image;
  replicas_[node]->Image([&](const Record& record) { image.push_back(record); });
  Log("n" + std::to_string(node + 1) + " snapshots " + std::to_string(disk.synced.size()) +
      " records into " + std::to_string(image.size()));
  disk.synced = std::move(image);
  ++result_.snapshots;
}

void Simulator::Tick(uint32_t node) {
  if (!alive(node)) return;
  Pump(node);
  After(kTickMs, [this, node] { Tick(node); });
}

void Simulator::Pump(uint32_t node) {
  Replica& replica = *replicas_[node];
  Output& out = replica.Ready(now_);
  trace_.Add(replica.clock().Sum());
  CheckRecords(node, out);
  Disk& disk = disks_[node];
  for (Record& record : out.records) disk.unsynced.push_back(std::move(record));
  // The clock each reply was served at. Within one Ready, remote writes
  // are all delivered before any request runs, so the only thing that
  // moves the clock between replies is a local write, whose OK reply
  // follows it: walking back from the end, undo those.
  Held held;
  held.records = disk.synced.size() + disk.unsynced.size();
  VectorClock served_at = replica.clock();
  held.served.resize(out.replies.size());
  for (size_t i = out.replies.size(); i-- > 0;) {
    held.served[i] = served_at;
    const core::Reply& reply = out.replies[i];
    auto it = pending_.find(reply.token);
    if (reply.code == Code::kOk && it != pending_.end() && it->second.write_id != 0) {
      served_at.Set(node, served_at[node] - 1);
    }
  }
  held.replies = std::move(out.replies);
  held.messages = std::move(out.messages);
  held.resync_peers = std::move(out.resync_peers);
  held.restart_links = std::move(out.restart_links);
  for (const core::Event& event : out.events) {
    if (event.kind == core::Event::Kind::kBuffered) ++result_.buffered;
    if (event.kind == core::Event::Kind::kDuplicate) ++result_.duplicates;
    if (event.kind == core::Event::Kind::kTransferInstalled) {
      ++result_.transfers;
      Log("n" + std::to_string(node + 1) + " installed a transfer of " + std::to_string(event.seq) +
          " keys from n" + std::to_string(event.peer + 1) + "; clock " +
          replica.clock().ToString());
      for (const core::Store::Entry& entry : replica.store()) {
        Log("   " + std::string(entry.key()) + "=" + std::string(entry.value()) + " " +
            entry.version().ToString() + (entry.tombstone() ? " (tombstone)" : ""));
      }
    }
    if (event.kind == core::Event::Kind::kTransferSending) {
      Log("n" + std::to_string(node + 1) + " sends its state to n" +
          std::to_string(event.peer + 1) + " at " + replica.clock().ToString());
    }
    if (event.kind == core::Event::Kind::kLogDetached) {
      Log("n" + std::to_string(node + 1) + " detaches n" + std::to_string(event.peer + 1) +
          " from its log");
    }
  }
  if (replica.buffer().size() > config_.buffer_writes_max) {
    Fail("n" + std::to_string(node + 1) + ": buffer holds " +
         std::to_string(replica.buffer().size()) + " > bound");
  }
  if (disk.held.empty() && held.records <= disk.synced.size()) {
    Release(node, held);
  } else {
    disk.held.push_back(std::move(held));
    StartSync(node);
  }
}

// An fdatasync: covers every record appended when it starts, completes
// after a while, releases what waited for it.
void Simulator::StartSync(uint32_t node) {
  Disk& disk = disks_[node];
  if (disk.syncing || disk.unsynced.empty()) return;
  disk.syncing = true;
  size_t target = disk.synced.size() + disk.unsynced.size();
  uint64_t incarnation = incarnation_[node];
  After(rng_.Between(0, 4), [this, node, target, incarnation] {
    if (incarnation_[node] != incarnation) return;  // Crashed meanwhile.
    Disk& disk = disks_[node];
    disk.syncing = false;
    size_t move = target - disk.synced.size();
    disk.synced.insert(disk.synced.end(), disk.unsynced.begin(), disk.unsynced.begin() + move);
    disk.unsynced.erase(disk.unsynced.begin(), disk.unsynced.begin() + move);
    while (!disk.held.empty() && disk.held.front().records <= disk.synced.size()) {
      Held held = std::move(disk.held.front());
      disk.held.pop_front();
      Release(node, held);
    }
    StartSync(node);
  });
}

void Simulator::Release(uint32_t node, Held& held) {
  for (size_t i = 0; i < held.replies.size(); ++i) {
    NoteReplyLeaving(node, held.replies[i], held.served[i]);
  }
  for (PeerMessage& message : held.messages) {
    uint32_t peer = message.peer;
    bool to_peer = message.type != PeerMessageType::kHelloAck &&
                   message.type != PeerMessageType::kAck;  // Out on our own link to it.
    if (to_peer) {
      Send(node, peer, /*to_acceptor=*/true, std::move(message));
    } else {
      Send(peer, node, /*to_acceptor=*/false, std::move(message));
    }
  }
  for (uint32_t peer : held.resync_peers) {
    Log("n" + std::to_string(node + 1) + " resyncs link from n" + std::to_string(peer + 1));
    Break(peer, node);
  }
  for (uint32_t peer : held.restart_links) {
    Log("n" + std::to_string(node + 1) + " restarts its link to n" + std::to_string(peer + 1));
    Break(node, peer);
  }
}

// Every applied write must follow the node's clock: next of its origin,
// dependencies applied. The clock must never go backwards.
void Simulator::CheckRecords(uint32_t node, const Output& out) {
  VectorClock& shadow = shadow_clocks_[node];
  if (!options_.invariants) {
    shadow = replicas_[node]->clock();
    return;
  }
  for (const Record& record : out.records) {
    if (record.kind == core::RecordKind::kTransferBegin) transfer_clocks_[node] = record.clock;
    if (record.kind == core::RecordKind::kTransferEnd) shadow.Merge(transfer_clocks_[node]);
    if (record.kind != core::RecordKind::kWrite) continue;
    if (record.seq() != shadow[record.origin] + 1) {
      Fail("n" + std::to_string(node + 1) + ": applied " + std::to_string(record.origin + 1) + ":" +
           std::to_string(record.seq()) + " out of sequence at clock " + shadow.ToString());
    }
    for (uint32_t k = 0; k < n_; ++k) {
      if (k != record.origin && record.clock[k] > shadow[k]) {
        Fail("n" + std::to_string(node + 1) + ": applied " + std::to_string(record.origin + 1) +
             ":" + std::to_string(record.seq()) + " with clock " + record.clock.ToString() +
             " before its dependencies (clock " + shadow.ToString() + ")");
        break;
      }
    }
    shadow.Set(record.origin, record.seq());
  }
  const VectorClock& clock = replicas_[node]->clock();
  if (!clock.Dominates(shadow) || !shadow.Dominates(clock)) {
    if (!clock.Dominates(shadow)) {
      Fail("n" + std::to_string(node + 1) + ": clock went backwards: " + clock.ToString() +
           " after " + shadow.ToString());
    }
    shadow = clock;
  }
}

// --- Network ----------------------------------------------------------------------

uint64_t Simulator::Delay() {
  if (faults_on_ && rng_.Chance(30)) return rng_.Between(50, 400);  // A slow spell.
  return rng_.Between(1, 15);
}

void Simulator::Dial(uint32_t dialer, uint32_t acceptor) {
  Connection& conn = connections_[dialer][acceptor];
  if (conn.up || conn.dialing || !alive(dialer)) return;
  conn.dialing = true;
  uint64_t epoch = conn.epoch;
  After(rng_.Between(1, 30), [this, dialer, acceptor, epoch] {
    Connection& conn = connections_[dialer][acceptor];
    if (conn.epoch != epoch || !alive(dialer)) return;
    conn.dialing = false;
    if (!Reachable(dialer, acceptor)) {
      // Connection refused or timed out: back off and try again.
      After(rng_.Between(20, 200), [this, dialer, acceptor] { Dial(dialer, acceptor); });
      return;
    }
    conn.up = true;
    ++conn.epoch;
    Log("link n" + std::to_string(dialer + 1) + "->n" + std::to_string(acceptor + 1) + " up");
    // The dialer's hello reaches the acceptor, which answers with its clock.
    core::Status status =
        replicas_[acceptor]->LinkFromPeerUp(dialer, now_, replicas_[dialer]->cluster_id());
    if (!status.ok()) Fail("hello refused: " + status.ToString());
    Pump(acceptor);
  });
}

void Simulator::Break(uint32_t dialer, uint32_t acceptor) {
  Connection& conn = connections_[dialer][acceptor];
  bool was_up = conn.up;
  conn.up = false;
  conn.dialing = false;
  ++conn.epoch;
  if (was_up) {
    Log("link n" + std::to_string(dialer + 1) + "->n" + std::to_string(acceptor + 1) + " down");
    if (alive(dialer)) replicas_[dialer]->LinkToPeerDown(acceptor);
    if (alive(acceptor)) replicas_[acceptor]->LinkFromPeerDown(dialer);
  }
  if (alive(dialer)) {
    After(rng_.Between(20, 200), [this, dialer, acceptor] { Dial(dialer, acceptor); });
  }
}

void Simulator::BreakUnreachable() {
  for (uint32_t a = 0; a < n_; ++a) {
    for (uint32_t b = 0; b < n_; ++b) {
      if (a != b && connections_[a][b].up && !Reachable(a, b)) Break(a, b);
    }
  }
}

void Simulator::Send(uint32_t dialer, uint32_t acceptor, bool to_acceptor, PeerMessage message) {
  Connection& conn = connections_[dialer][acceptor];
  if (!conn.up) return;  // The connection is gone; the log resends later.
  uint64_t epoch = conn.epoch;
  bool fifo = message.type == PeerMessageType::kTransferBegin ||
              message.type == PeerMessageType::kTransferChunk ||
              message.type == PeerMessageType::kTransferEnd;
  int copies = !fifo && faults_on_ && rng_.Chance(20) ? 2 : 1;  // Duplicates.
  auto shared = std::make_shared<PeerMessage>(std::move(message));
  for (int i = 0; i < copies; ++i) {
    ++in_flight_;
    // Independent delays reorder messages, even within one connection.
    uint64_t delay = Delay();
    if (fifo) {
      conn.fifo_at_ms = std::max(conn.fifo_at_ms, now_ + delay);
      delay = conn.fifo_at_ms - now_;
    }
    After(delay, [this, dialer, acceptor, to_acceptor, epoch, shared] {
      --in_flight_;
      const Connection& conn = connections_[dialer][acceptor];
      if (conn.epoch != epoch || !conn.up) return;
      Receive(dialer, acceptor, to_acceptor, *shared);
    });
  }
}

void Simulator::Receive(uint32_t dialer, uint32_t acceptor, bool to_acceptor,
                        const PeerMessage& message) {
  uint32_t to = to_acceptor ? acceptor : dialer;
  uint32_t from = to_acceptor ? dialer : acceptor;
  Replica& replica = *replicas_[to];
  trace_.Add(static_cast<uint64_t>(message.type) * 131 + to * 7 + from);
  if (message.type == PeerMessageType::kWriteBatch) {
    for (const Write& w : message.writes) {
      if (w.origin != dialer && w.origin != acceptor) ++result_.forwarded;
    }
  }
  if (message.type == PeerMessageType::kHelloAck) {
    Log("n" + std::to_string(to + 1) + " hears n" + std::to_string(from + 1) + " at " +
        message.clock.ToString() + "; its log dropped " + replica.log().dropped().ToString());
  }
  core::Status status = kvd::testing::DeliverPeerMessage(replica, from, message, now_);
  if (!status.ok())
    Fail("n" + std::to_string(to + 1) + ": peer input refused: " + status.ToString());
  Pump(to);
}

// --- Clients ------------------------------------------------------------------------

void Simulator::ScheduleClient(uint32_t session) {
  if (!clients_on_) return;
  After(rng_.Between(1, 40), [this, session] { ClientOperation(session); });
}

void Simulator::ClientOperation(uint32_t s) {
  if (!clients_on_) return;
  Session& session = sessions_[s];
  if (!session.sticky && rng_.Chance(300)) session.node = static_cast<uint32_t>(rng_.Below(n_));
  uint32_t node = session.node;
  if (!alive(node)) {  // Connection refused: try later (elsewhere, unless sticky).
    if (!session.sticky) session.node = static_cast<uint32_t>(rng_.Below(n_));
    ScheduleClient(s);
    return;
  }
  PendingRequest request;
  request.session = s;
  request.key = "k" + std::to_string(rng_.Below(options_.keys));
  uint64_t roll = rng_.Below(100);
  request.type = roll < 45   ? PendingRequest::Type::kPut
                 : roll < 90 ? PendingRequest::Type::kGet
                             : PendingRequest::Type::kDelete;
  uint64_t token = next_token_++;
  if (request.type != PendingRequest::Type::kGet) {
    request.write_id = next_write_id_++;
    IssuedWrite& write = writes_[request.write_id];
    write.id = request.write_id;
    write.session = s;
    write.key = request.key;
    write.is_delete = request.type == PendingRequest::Type::kDelete;
  }
  session.waiting = true;
  session.token = token;
  session.request_node = node;
  pending_[token] = request;
  // Sticky sessions carry no context: an empty clock means none.
  VectorClock context = session.sticky ? VectorClock() : session.context;
  After(rng_.Between(1, 5), [this, token, node, context] {
    auto it = pending_.find(token);
    if (it == pending_.end() || !alive(node)) return;  // Lost with a crash.
    const PendingRequest& request = it->second;
    Replica& replica = *replicas_[node];
    trace_.Add(token);
    switch (request.type) {
      case PendingRequest::Type::kPut:
        replica.Put(token, request.session, request.key, "v" + std::to_string(request.write_id),
                    &context, now_);
        break;
      case PendingRequest::Type::kDelete:
        replica.Delete(token, request.session, request.key, &context, now_);
        break;
      case PendingRequest::Type::kGet:
        replica.Get(token, request.session, request.key, &context, now_);
        break;
    }
    Pump(node);
  });
}

// The write behind an OK reply took effect at `node`: remember its identity
// (origin, seq) and clock for the history and the read oracle.
void Simulator::MarkExecuted(uint32_t node, const core::Reply& reply) {
  auto it = pending_.find(reply.token);
  if (it == pending_.end() || it->second.write_id == 0 || reply.code != Code::kOk) return;
  IssuedWrite& write = writes_[it->second.write_id];
  if (write.executed) return;
  write.executed = true;
  write.clock = reply.version;
  write.origin = node;
  auto [at, fresh] = write_by_version_.try_emplace({node, reply.version[node]}, write.id);
  if (!fresh && at->second != write.id) {
    Fail("n" + std::to_string(node + 1) + " reused sequence number " +
         std::to_string(reply.version[node]) + " (writes " + std::to_string(at->second) + " and " +
         std::to_string(write.id) + ")");
  }
  writes_by_key_[write.key].push_back(write.id);
}

// A reply leaves node `node`. Writes are identified by their version here,
// whether or not the client receives the reply.
void Simulator::NoteReplyLeaving(uint32_t node, const core::Reply& reply,
                                 const VectorClock& served_at) {
  auto it = pending_.find(reply.token);
  if (it == pending_.end()) return;
  uint32_t s = it->second.session;
  MarkExecuted(node, reply);
  VectorClock node_clock = served_at;
  core::Reply copy = reply;
  bool lost = faults_on_ && rng_.Chance(5);  // The client's connection drops.
  After(rng_.Between(1, 5), [this, s, copy, node_clock, lost] {
    Session& session = sessions_[s];
    if (!session.waiting || session.token != copy.token) return;
    if (lost) {
      auto it = pending_.find(copy.token);
      RecordWrite(s, it->second.write_id, /*acknowledged=*/false);
      pending_.erase(it);
      session.waiting = false;
      ScheduleClient(s);
      return;
    }
    ClientReply(s, copy, node_clock);
  });
}

void Simulator::ClientReply(uint32_t s, const core::Reply& reply, const VectorClock& node_clock) {
  Session& session = sessions_[s];
  auto it = pending_.find(reply.token);
  PendingRequest request = it->second;
  pending_.erase(it);
  session.waiting = false;
  if (reply.code == Code::kOk || reply.code == Code::kNotFound) {
    session.context.Merge(reply.version);
  }
  if (reply.code == Code::kOk) RecordWrite(s, request.write_id, /*acknowledged=*/true);
  if (request.type == PendingRequest::Type::kGet &&
      (reply.code == Code::kOk || reply.code == Code::kNotFound)) {
    uint64_t read = ResolveRead(request.key, reply, node_clock);
    history_.sessions[session.history].push_back({checker::Op::Type::kRead, request.key, read, true,
                                                  "s" + std::to_string(s) + " get " + request.key +
                                                      "->" + std::to_string(read) + " @n" +
                                                      std::to_string(session.request_node + 1)});
  } else if (reply.code != Code::kOk && reply.code != Code::kNotFound &&
             reply.code != Code::kTimeout && reply.code != Code::kUnavailable) {
    Fail("s" + std::to_string(s) + ": unexpected reply " + std::string(CodeName(reply.code)) +
         ": " + reply.message);
  }
  ScheduleClient(s);
}

// Adds an executed write to the history. An acknowledged write takes its
// place in its session's order. One whose reply never reached the client
// may still have taken effect, but the session did not observe it (its
// context lacks it), so it stands alone in a session of its own.
void Simulator::RecordWrite(uint32_t s, uint64_t write_id, bool acknowledged) {
  if (write_id == 0) return;
  const IssuedWrite& write = writes_[write_id];
  if (!write.executed) return;
  checker::Op op{checker::Op::Type::kWrite, write.key, write.id, acknowledged,
                 "s" + std::to_string(s) + " " + (write.is_delete ? "del " : "put ") + write.key +
                     "=" + std::to_string(write.id) + " @n" + std::to_string(write.origin + 1) +
                     (acknowledged ? "" : " (unacknowledged)")};
  if (acknowledged) {
    history_.sessions[sessions_[s].history].push_back(std::move(op));
  } else {
    history_.sessions.push_back({std::move(op)});
  }
}

// The id of the write a read returned. A live value names it; a tombstone
// names it by version; "absent" means the winner among every write to the
// key that the node had applied is a delete (or there is none).
uint64_t Simulator::ResolveRead(const std::string& key, const core::Reply& reply,
                                const VectorClock& node_clock) {
  if (reply.found) {
    if (reply.value.empty() || reply.value[0] != 'v') {
      Fail("read of " + key + " returned a value nobody wrote: " + reply.value);
      return 0;
    }
    return std::stoull(reply.value.substr(1));
  }
  if (reply.version.Sum() > 0) {
    for (uint32_t origin = 0; origin < n_; ++origin) {
      auto it = write_by_version_.find({origin, reply.version[origin]});
      if (it != write_by_version_.end() && writes_[it->second].clock == reply.version) {
        return it->second;
      }
    }
    Fail("read of " + key + " returned an unknown tombstone " + reply.version.ToString());
    return 0;
  }
  const IssuedWrite* winner = nullptr;
  for (uint64_t id : writes_by_key_[key]) {
    const IssuedWrite& w = writes_[id];
    if (!node_clock.Dominates(w.clock)) continue;
    if (!winner || core::Supersedes(w.clock.Sum(), w.origin, winner->clock.Sum(), winner->origin)) {
      winner = &w;
    }
  }
  if (winner && !winner->is_delete) {
    Fail("read of " + key + " at clock " + node_clock.ToString() + " found nothing, but write " +
         std::to_string(winner->id) + " (n" + std::to_string(winner->origin + 1) + " " +
         winner->clock.ToString() + ") applied there should be visible");
  }
  return winner ? winner->id : 0;
}

uint64_t Simulator::ResolveState(uint32_t node, const std::string& key) {
  if (!alive(node)) return 0;
  const Replica& replica = *replicas_[node];
  core::Reply reply;
  reply.version = VectorClock(n_);
  if (const core::Store::Entry* entry = replica.store().Find(key)) {
    reply.found = !entry->tombstone();
    reply.value = entry->value();
    reply.version = entry->version();
  }
  return ResolveRead(key, reply, replica.clock());
}

// --- Faults -----------------------------------------------------------------------

void Simulator::ScheduleFault() {
  After(rng_.Between(20, 250), [this] {
    if (!faults_on_) return;
    InjectFault();
    ScheduleFault();
  });
}

void Simulator::InjectFault() {
  uint32_t a = static_cast<uint32_t>(rng_.Below(n_));
  uint32_t b = static_cast<uint32_t>((a + 1 + rng_.Below(n_ - 1)) % n_);
  uint64_t duration = rng_.Between(30, 800);
  switch (rng_.Below(8)) {
    case 0:  // Break one connection; it redials.
      Break(a, b);
      break;
    case 1:  // Cut the link between two nodes for a while.
      Log("cut n" + std::to_string(a + 1) + "<->n" + std::to_string(b + 1));
      cut_[a][b] = true;
      BreakUnreachable();
      After(duration, [this, a, b] { cut_[a][b] = false; });
      break;
    case 2: {  // Partition into two random groups.
      for (uint32_t node = 0; node < n_; ++node) group_[node] = rng_.Below(2);
      Log("partition");
      BreakUnreachable();
      After(duration, [this] { group_.assign(n_, 0); });
      break;
    }
    case 3:  // Crash a node; it restarts from its records.
      CrashNode(a);
      break;
    case 4:  // Hold replication a -> b (fault injection in the core).
      if (!alive(a)) break;
      held_[a][b] = true;
      replicas_[a]->HoldLink(b);
      After(duration, [this, a, b] {
        held_[a][b] = false;
        if (alive(a)) replicas_[a]->ReleaseLink(b);
      });
      break;
    case 5:  // A node loses its disk (when the cluster can give it all back).
      if (rng_.Chance(60)) LoseDisk(a);
      break;
    case 6:  // A node compacts its disk into a snapshot.
      Snapshot(a);
      break;
    default:  // A quiet spell.
      break;
  }
}

// --- End of run ----------------------------------------------------------------------

void Simulator::HealAll() {
  group_.assign(n_, 0);
  for (uint32_t a = 0; a < n_; ++a) {
    for (uint32_t b = 0; b < n_; ++b) {
      cut_[a][b] = false;
      if (held_[a][b] && alive(a)) replicas_[a]->ReleaseLink(b);
      held_[a][b] = false;
    }
  }
  for (uint32_t node = 0; node < n_; ++node) {
    if (!alive(node)) StartNode(node);
  }
}

bool Simulator::Quiet() const {
  if (in_flight_ > 0) return false;
  for (uint32_t node = 0; node < n_; ++node) {
    if (!alive(node) || replicas_[node]->buffer().size() > 0) return false;
    if (!disks_[node].held.empty()) return false;
    if (!(replicas_[node]->clock() == replicas_[0]->clock())) return false;
  }
  return true;
}

void Simulator::CheckConvergence() {
  if (!Quiet()) {
    std::string clocks;
    for (uint32_t node = 0; node < n_; ++node) {
      clocks += " n" + std::to_string(node + 1) + "=" +
                (alive(node) ? replicas_[node]->clock().ToString() +
                                   " buffered=" + std::to_string(replicas_[node]->buffer().size())
                             : "down");
    }
    Fail("no convergence after healing:" + clocks);
    if (options_.verbose) {
      for (uint32_t node = 0; node < n_; ++node) {
        if (!alive(node)) continue;
        const core::ReplicationLog& log = replicas_[node]->log();
        std::string entries;
        for (uint64_t i = log.begin_index(); i < log.end_index(); ++i) {
          const Write& w = log.at(i).write;
          entries += " " + std::to_string(w.origin + 1) + ":" + std::to_string(w.seq());
        }
        Log("n" + std::to_string(node + 1) + " log:" + entries);
        for (uint32_t peer = 0; peer < n_; ++peer) {
          if (peer == node) continue;
          Log("  to n" + std::to_string(peer + 1) + ": streaming " +
              std::to_string(log.streaming(peer)) + " sent " + log.sent(peer).ToString() +
              " acked " + log.acked(peer).ToString() + " detached " +
              std::to_string(log.detached(peer)));
        }
        for (const core::BufferedWriteInfo& info : replicas_[node]->ListBuffer(5)) {
          Log("  buffered " + std::to_string(info.origin + 1) + ":" + std::to_string(info.seq) +
              " waits for " + std::to_string(info.missing[0].origin + 1) + ":" +
              std::to_string(info.missing[0].seq_first));
        }
      }
    }
    return;
  }
  for (uint32_t node = 1; node < n_; ++node) {
    for (uint32_t k = 0; k < options_.keys; ++k) {
      std::string key = "k" + std::to_string(k);
      const core::Store::Entry* a = replicas_[0]->store().Find(key);
      const core::Store::Entry* b = replicas_[node]->store().Find(key);
      bool live_a = a && !a->tombstone();
      bool live_b = b && !b->tombstone();
      if (live_a != live_b ||
          (live_a && (a->value() != b->value() || !(a->version() == b->version())))) {
        Fail("replicas differ on " + key + ": n1=" + (live_a ? std::string(a->value()) : "(none)") +
             (a ? " " + a->version().ToString() : "") + " n" + std::to_string(node + 1) + "=" +
             (live_b ? std::string(b->value()) : "(none)") +
             (b ? " " + b->version().ToString() : ""));
      }
    }
  }
}

}  // namespace

Result Run(const Options& options) { return Simulator(options).Run(); }

std::string ReplayCommand(const Options& options) {
  return "build/tests/sim/kvsim --nodes " + std::to_string(options.nodes) + " --seed " +
         std::to_string(options.seed) + " --verbose";
}

}  // namespace kvd::sim
