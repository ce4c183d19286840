// Replica: the deterministic state machine of one node. It does no I/O and
// reads no clock: the shell feeds it inputs (client requests, peer traffic,
// time as now_ms) and, once per loop turn, takes an Output from Ready() and
// executes it (see output.h). The simulator drives it the same way.
//
// Invariants (checked by the tests and the simulator):
//   - a write is applied only after everything its clock depends on;
//   - the clock never goes backwards;
//   - every node picks the same winner among concurrent writes to a key;
//   - a node never reuses one of its own sequence numbers.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemon/core/causal_buffer.h"
#include "daemon/core/limits.h"
#include "daemon/core/output.h"
#include "daemon/core/record.h"
#include "daemon/core/replica_image.h"
#include "daemon/core/replication_log.h"
#include "daemon/core/status.h"
#include "daemon/core/store.h"
#include "daemon/core/vector_clock.h"
#include "daemon/core/write.h"

namespace kvd::core {

struct ReplicaConfig {
  uint32_t self = 0;      // This node's index in the cluster list.
  size_t node_count = 1;  // 1..kNodesMax.
  size_t key_bytes_max = kKeyBytesMaxDefault;
  size_t value_bytes_max = kValueBytesMaxDefault;
  size_t buffer_writes_max = kBufferWritesMaxDefault;
  size_t parked_requests_max = kParkedRequestsMaxDefault;
  uint64_t context_wait_ms = kContextWaitMsDefault;
  uint64_t forward_after_ms = kForwardAfterMsDefault;
  uint64_t ack_interval_ms = kAckIntervalMsDefault;
  size_t batch_writes_max = kBatchWritesMaxDefault;
  size_t log_bytes_max = kLogBytesMaxDefault;
  size_t transfer_bytes_per_ready = kTransferBytesPerReadyDefault;
  // Cluster identity (see "Identity" below). `cluster_id`: start as a
  // member of this cluster, as if its identity record had been restored
  // (tests and tools; kvd learns it from disk or peers). `new_cluster_id`:
  // the identity node index 0 gives a brand-new cluster (random, from the
  // shell).
  std::string cluster_id;
  std::string new_cluster_id = "unnamed";

  // An error naming the first bad field, or Ok.
  Status Validate() const;
};

// One buffered write with what keeps it waiting, for `kvctl buffer`.
struct BufferedWriteInfo {
  uint32_t origin;
  uint64_t seq;
  std::string key;
  bool is_delete;
  std::vector<MissingRange> missing;
};

struct PeerInfo {
  bool link_to_up;    // Our stream of writes to it is established.
  bool link_from_up;  // Its stream to us is established.
  bool held;          // Replication to it is held (fault injection).
  VectorClock acked;  // Its clock as far as we know.
};

// Identity. A node with an empty data directory cannot tell a brand-new
// cluster from a lost disk by itself, and a node that lost its disk must
// not reuse its old sequence numbers. So every data directory records the
// identity of the cluster it belongs to (a kIdentity record), and a node
// accepts writes only once it has one:
//   - a node that restored its identity is a member at once;
//   - a node without one adopts a peer's (hello, hello-ack and acks carry
//     it) and records it only after it has heard the clock of every peer
//     and got its own writes back from them: then no peer knows of a
//     sequence number it could reuse;
//   - when every peer has been heard and none has an identity, no node of
//     the cluster ever accepted a write, so the cluster is new: node index
//     0 founds it (new_cluster_id) and the others adopt that.
// A peer with another identity is refused (its link is closed).
class Replica {
 public:
  // REQUIRES: config.Validate().ok().
  explicit Replica(const ReplicaConfig& config);

  // --- Recovery, before any other input -------------------------------
  // Re-applies one persisted record (WAL or snapshot), in the order they
  // were persisted.
  Status Restore(const Record& record, uint64_t now_ms);

  // An operator's explicit identity for a brand-new cluster (kvd
  // --bootstrap-cluster-id): with none restored, this node records it at
  // once instead of waiting to meet every peer. Only safe on the first
  // start of a new cluster: a node that lost its data would reuse sequence
  // numbers. An error if the node already belongs to another cluster.
  Status Bootstrap(std::string_view cluster_id);

  // --- Snapshots ---------------------------------------------------------
  // Visits the records of a snapshot of this node's state (see record.h):
  // restoring them into a fresh replica rebuilds the store, the clock and
  // the replication log. Not while a transfer is being received (its
  // staged state is in neither): check receiving_transfer() first.
  // Freeze() takes the same image as an object another thread can visit
  // while this replica goes on (its cost here: copies of the store's slot
  // array, into `buffer` if it is large enough (see FreezeBuffer), and of
  // the replication log). One image may be live at a time, and only when
  // every record so far has been taken by Ready (the caller has logged
  // them), so that the image and the log after it never overlap.
  ReplicaImage Freeze(FreezeBuffer buffer = {});
  // What a FreezeBuffer for the next Freeze must hold.
  size_t freeze_slots() const { return store_.slot_count(); }
  void Image(const std::function<void(const Record&)>& visit);
  bool receiving_transfer() const { return incoming_.has_value(); }

  // --- Client requests ---------------------------------------------------
  // `token` is echoed in the reply. `session` names the client connection:
  // a session's requests are executed in arrival order, so a request
  // waiting for its context holds back the ones after it. `context`, if
  // given, is served only once this node's clock dominates it (waiting up
  // to context_wait_ms, then TIMEOUT).
  void Put(uint64_t token, uint64_t session, std::string_view key, std::string_view value,
           const VectorClock* context, uint64_t now_ms);
  void Delete(uint64_t token, uint64_t session, std::string_view key, const VectorClock* context,
              uint64_t now_ms);
  void Get(uint64_t token, uint64_t session, std::string_view key, const VectorClock* context,
           uint64_t now_ms);
  // Requests in a row (a connection's frames from one read), executed as
  // the calls above would be, one after the other, but with each store
  // lookup, a cache miss or two with a large store, started a few
  // requests ahead. The views need only last for the call.
  enum class RequestType : uint8_t { kPut, kDelete, kGet };
  struct ClientRequest {
    RequestType op;
    uint64_t token;
    uint64_t session;
    std::string_view key;
    std::string_view value;      // kPut.
    const VectorClock* context;  // Null: none.
  };
  void Submit(std::span<const ClientRequest> requests, uint64_t now_ms);

  // --- Peer links ----------------------------------------------------------
  // Each node dials every peer: the link *to* p carries our writes to p and
  // p's acks back; the link *from* p carries p's writes and our acks.
  // Peer inputs return an error for a message that makes no sense (wrong
  // clock length, bad origin, ...); the shell then closes that link.
  // `peer_cluster_id` is the identity the peer reported (empty: none yet);
  // an error means it belongs to another cluster.
  Status LinkFromPeerUp(uint32_t peer, uint64_t now_ms,  // Its hello arrived.
                        std::string_view peer_cluster_id = {});
  void LinkFromPeerDown(uint32_t peer);
  Status LinkToPeerUp(uint32_t peer, const VectorClock& peer_clock, uint64_t now_ms,
                      std::string_view peer_cluster_id = {});
  void LinkToPeerDown(uint32_t peer);
  // Consumes `writes`: they are moved into the store, log and buffer.
  Status PeerWrites(uint32_t peer, std::vector<Write>& writes, uint64_t now_ms);
  Status PeerAck(uint32_t peer, const VectorClock& peer_clock, uint64_t now_ms,
                 std::string_view peer_cluster_id = {});
  // A state transfer on the link from `peer` (it sends one when its log no
  // longer holds what we lack). The state is staged apart, so reads keep
  // seeing this node's own consistent state, and installed at the end: the
  // result is the peer's state plus whatever we have that its clock does
  // not include. One transfer at a time: another peer's begin meanwhile is
  // refused through resync_peers (it retries on its next link).
  Status PeerTransferBegin(uint32_t peer, const VectorClock& clock, uint64_t now_ms);
  Status PeerTransferChunk(uint32_t peer, std::vector<Write>& entries, uint64_t now_ms);
  Status PeerTransferEnd(uint32_t peer, uint64_t now_ms);

  // Fault injection: while held, nothing is sent to `peer` (the log keeps
  // it); release sends everything it lacks.
  void HoldLink(uint32_t peer);
  void ReleaseLink(uint32_t peer);
  // Backpressure: while paused (its socket is not draining), no batches are
  // built for `peer`; the log keeps them, so memory stays bounded.
  void SetLinkPaused(uint32_t peer, bool paused);

  // --- Time and output -----------------------------------------------------
  // Answers requests whose context arrived or whose deadline passed, builds
  // replication batches and acks due at now_ms, and hands over everything
  // produced since the last call. The reference stays valid until the next
  // call; the shell may move out of it.
  Output& Ready(uint64_t now_ms);

  // --- Introspection ---------------------------------------------------------
  const ReplicaConfig& config() const { return config_; }
  const VectorClock& clock() const { return clock_; }
  const Store& store() const { return store_; }
  const CausalBuffer& buffer() const { return buffer_; }
  const ReplicationLog& log() const { return log_; }
  size_t parked_requests() const { return parked_.size(); }
  // False until the node has its identity, and while peers know of own
  // writes this node lacks.
  bool accepting_writes() const {
    return identity_recorded_ && clock_[config_.self] >= own_seq_known_;
  }
  // The cluster this node belongs to (or is adopting); empty if unknown.
  const std::string& cluster_id() const { return cluster_id_; }
  bool identity_recorded() const { return identity_recorded_; }
  PeerInfo peer_info(uint32_t peer) const;
  std::vector<BufferedWriteInfo> ListBuffer(size_t limit) const;

 private:
  struct Request {
    RequestType type;
    uint64_t token;
    uint64_t session;
    std::string key;
    std::string value;
    VectorClock context;  // Size 0 if none.
    uint64_t deadline_ms;
  };

  void Submit(RequestType type, uint64_t token, uint64_t session, std::string_view key,
              std::string_view value, const VectorClock* context, uint64_t now_ms);
  Status ValidateRequest(RequestType type, std::string_view key, std::string_view value,
                         const VectorClock* context) const;
  bool ContextReached(const VectorClock& context) const;
  void Execute(RequestType type, uint64_t token, std::string_view key, std::string_view value,
               uint64_t now_ms);
  void ExecuteWrite(RequestType type, uint64_t token, std::string_view key, std::string_view value,
                    uint64_t now_ms);
  void ExecuteGet(uint64_t token, std::string_view key);
  void ServeParked(uint64_t now_ms);
  void Park(Request request);

  Status ValidatePeer(uint32_t peer) const;
  Status ValidateClock(const VectorClock& clock) const;
  Status ValidateWrite(const Write& write) const;
  // False if the causal buffer refused the write: the link from `peer`
  // must resynchronise, so the rest of its batch is dropped too.
  bool Deliver(uint32_t peer, Write& write, uint64_t now_ms);
  // Takes the write: its record in the Output is the write itself.
  void Apply(Write&& write, uint64_t now_ms);
  void NoteOwnSeqKnown(const VectorClock& peer_clock);
  Status NotePeerIdentity(uint32_t peer, std::string_view peer_cluster_id);
  void SettleIdentity();
  void RecordIdentity();
  void AppendBatches(uint64_t now_ms);
  // Sends the next part of an outgoing transfer; true once it is all out.
  bool AppendTransfer(uint32_t peer);
  void StartTransfer(uint32_t peer);
  void BeginIncoming(uint32_t peer, const VectorClock& clock);
  Status StageEntry(const Write& entry);
  void InstallIncoming();
  void DrainBuffer(uint64_t now_ms);
  void EnforceLogBound();
  void AppendAcks(uint64_t now_ms);
  void CollectTombstones();
  void AddEvent(Event::Kind kind, uint32_t peer, const Write& write);

  // A copy of the store taken when the transfer started, so that what
  // arrives is one consistent state at `clock` however long sending takes.
  struct OutgoingTransfer {
    VectorClock clock;
    std::vector<Write> entries;
    size_t next = 0;
    bool begun = false;
  };

  struct IncomingTransfer {
    uint32_t peer;
    VectorClock clock;
    Store staged;
    uint64_t entries = 0;
  };
  // Our store merged with a staged transfer (see InstallIncoming).
  Store MergedWithStaged(const IncomingTransfer& incoming) const;

  struct PeerLinks {
    bool from_up = false;
    bool held = false;
    bool paused = false;
    VectorClock ack_sent;  // Last clock acknowledged on the link from it.
    uint64_t ack_sent_ms = 0;
    bool identity_sent = false;                  // It has heard our current cluster_id_.
    bool clock_heard = false;                    // We learned its clock since we started.
    bool has_identity = false;                   // It reported an identity.
    std::unique_ptr<OutgoingTransfer> transfer;  // On the link to it.
  };

  ReplicaConfig config_;
  VectorClock clock_;
  Store store_;
  CausalBuffer buffer_;
  ReplicationLog log_;
  std::vector<PeerLinks> peers_;
  std::optional<IncomingTransfer> incoming_;

  // Highest own sequence number any peer has reported; writes are refused
  // until clock_[self] reaches it, so no sequence number is ever reused.
  uint64_t own_seq_known_ = 0;
  bool changed_ = false;  // Clock moved since the last Ready.
  std::string cluster_id_;
  bool identity_recorded_ = false;

  std::deque<Request> parked_;
  std::unordered_map<uint64_t, uint32_t> parked_per_session_;

  Output pending_;
  Output ready_;
};

}  // namespace kvd::core
