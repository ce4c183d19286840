#include "daemon/core/replica.h"

#include <algorithm>
#include <unordered_set>
#include <utility>

#include "daemon/core/assert.h"
#include "daemon/core/planted_bug.h"

namespace kvd::core {
namespace {

// No node can have issued more writes than this (285 years at a million a
// second); larger clock entries are corrupt or hostile. Smaller ones are
// believed even when they exceed our own count: after a disk loss or a
// restore from backup our peers do know more of our writes than we have,
// and ignoring them would make us reuse sequence numbers. The same bound
// as kvd::wire::kSeqMax (schema/limits.h), which the shell checks first.
constexpr uint64_t kSeqPlausibleMax = (uint64_t{1} << 53) - 1;

Status CheckPlausible(const VectorClock& clock, const char* what) {
  for (size_t k = 0; k < clock.size(); ++k) {
    if (clock[k] > kSeqPlausibleMax) {
      return Status::BadRequest(std::string(what) + " entry " + std::to_string(k) + " is " +
                                std::to_string(clock[k]) + ", beyond any possible sequence number");
    }
  }
  return Status::Ok();
}

std::string DescribeMissing(const std::vector<MissingRange>& missing) {
  std::string out;
  for (const MissingRange& range : missing) {
    if (!out.empty()) out += ", ";
    // Node ids are 1-based in everything users read.
    out += "n" + std::to_string(range.origin + 1) + ":" + std::to_string(range.seq_first);
    if (range.seq_last != range.seq_first) out += ".." + std::to_string(range.seq_last);
  }
  return out;
}

// What a context clock still needs from a node at `clock`.
std::vector<MissingRange> MissingFromContext(const VectorClock& context, const VectorClock& clock) {
  std::vector<MissingRange> missing;
  for (size_t k = 0; k < clock.size(); ++k) {
    if (context[k] > clock[k]) {
      missing.push_back({static_cast<uint32_t>(k), clock[k] + 1, context[k]});
    }
  }
  return missing;
}

}  // namespace

Status ReplicaConfig::Validate() const {
  if (node_count < 1 || node_count > kNodesMax) {
    return Status::BadRequest("cluster size must be 1.." + std::to_string(kNodesMax));
  }
  if (self >= node_count) return Status::BadRequest("node index outside the cluster");
  if (key_bytes_max < 1) return Status::BadRequest("key_bytes_max must be >= 1");
  if (buffer_writes_max < 1) return Status::BadRequest("buffer_writes_max must be >= 1");
  if (batch_writes_max < 1) return Status::BadRequest("batch_writes_max must be >= 1");
  if (log_bytes_max < 1) return Status::BadRequest("log_bytes_max must be >= 1");
  if (transfer_bytes_per_ready < 1) {
    return Status::BadRequest("transfer_bytes_per_ready must be >= 1");
  }
  return Status::Ok();
}

Replica::Replica(const ReplicaConfig& config)
    : config_(config),
      clock_(config.node_count),
      buffer_(config.node_count, config.buffer_writes_max),
      log_(config.node_count, config.self, config.log_bytes_max),
      peers_(config.node_count) {
  KV_ASSERT(config.Validate().ok());
  for (auto& peer : peers_) peer.ack_sent = VectorClock(config.node_count);
  if (!config.cluster_id.empty()) {
    cluster_id_ = config.cluster_id;
    identity_recorded_ = true;
  }
}

// --- Recovery ----------------------------------------------------------------

Status Replica::Restore(const Record& record, uint64_t now_ms) {
  Status status;
  switch (record.kind) {
    case RecordKind::kWrite:
      if (status = ValidateWrite(record); !status.ok()) break;
      if (!IsDeliverable(record, clock_)) {
        status = Status::Internal("record " + std::to_string(record.origin + 1) + ":" +
                                  std::to_string(record.seq()) + " does not follow clock " +
                                  clock_.ToString());
        break;
      }
      Apply(Write(record), now_ms);
      break;
    case RecordKind::kTransferBegin:
      // A snapshot is a transfer from this node itself into an empty one.
      if (status = ValidateClock(record.clock); !status.ok()) break;
      if (record.origin >= config_.node_count ||
          (record.origin == config_.self && clock_.Sum() != 0)) {
        status = Status::Internal("transfer record from a bad origin");
        break;
      }
      BeginIncoming(record.origin, record.clock);
      break;
    case RecordKind::kTransferEntry:
      // A begin that was cut off (its transfer never ended) was dropped.
      if (incoming_) status = StageEntry(record);
      break;
    case RecordKind::kTransferEnd:
      if (incoming_) InstallIncoming();
      DrainBuffer(now_ms);
      break;
    case RecordKind::kLogBase:
      if (status = ValidateClock(record.clock); !status.ok()) break;
      if (log_.size() != 0) {
        status = Status::Internal("log base record after log entries");
        break;
      }
      log_.SetDropped(record.clock);
      break;
    case RecordKind::kLogEntry:
      if (status = ValidateWrite(record); !status.ok()) break;
      if (record.seq() > clock_[record.origin]) {
        status = Status::Internal("log entry beyond the restored clock");
        break;
      }
      log_.Append(record, now_ms);
      break;
    case RecordKind::kIdentity:
      if (record.cluster_id.empty()) {
        status = Status::Internal("empty cluster identity record");
        break;
      }
      cluster_id_ = record.cluster_id;
      identity_recorded_ = true;
      break;
    case RecordKind::kSnapshotEnd:
      break;
    default:
      status = Status::Internal("unknown record kind");
      break;
  }
  // Restored records are durable already: they must not be persisted again.
  pending_.records.clear();
  pending_.events.clear();
  return status;
}

Status Replica::Bootstrap(std::string_view cluster_id) {
  if (cluster_id.empty()) return Status::BadRequest("empty cluster identity");
  if (identity_recorded_) {
    if (cluster_id == cluster_id_) return Status::Ok();
    return Status::BadRequest("the data directory belongs to cluster " + cluster_id_ + ", not " +
                              std::string(cluster_id));
  }
  cluster_id_ = cluster_id;
  RecordIdentity();
  return Status::Ok();
}

ReplicaImage Replica::Freeze(FreezeBuffer buffer) {
  KV_ASSERT(!incoming_);
  // Every change the image holds must already be in the log the snapshot
  // replaces: records still pending (applied, not yet handed out by
  // Ready) would land in the segment after the snapshot too, and recovery
  // would refuse them as going backwards.
  KV_ASSERT(pending_.records.empty());
  ReplicaImage image;
  if (identity_recorded_) image.cluster_id_ = cluster_id_;
  image.self_ = config_.self;
  image.clock_ = clock_;
  image.store_ = store_.Freeze(std::move(buffer));
  image.dropped_ = log_.dropped();
  image.log_.reserve(log_.end_index() - log_.begin_index());
  for (uint64_t i = log_.begin_index(); i < log_.end_index(); ++i) {
    image.log_.push_back(log_.at(i).write);
  }
  return image;
}

void Replica::Image(const std::function<void(const Record&)>& visit) { Freeze().Visit(visit); }

void ReplicaImage::Visit(const std::function<void(const Record&)>& visit) const {
  Record record;
  record.kind = RecordKind::kTransferEntry;
  Visit(visit, [&](const StoreEntry& entry) {
    record.origin = entry.origin();
    record.clock = VectorClock(entry.version_counts());
    record.is_delete = entry.tombstone();
    record.key = entry.key();
    record.value = entry.value();
    visit(record);
  });
}

void ReplicaImage::Visit(const std::function<void(const Record&)>& visit,
                         const std::function<void(const StoreEntry&)>& entry) const {
  Record record;
  if (!cluster_id_.empty()) {
    record.kind = RecordKind::kIdentity;
    record.cluster_id = cluster_id_;
    visit(record);
    record.cluster_id.clear();
  }
  record.kind = RecordKind::kTransferBegin;
  record.origin = self_;
  record.clock = clock_;
  visit(record);
  for (const Store::Entry& stored : store_) entry(stored);
  record = Record();
  record.kind = RecordKind::kTransferEnd;
  visit(record);
  record.kind = RecordKind::kLogBase;
  record.clock = dropped_;
  visit(record);
  for (const Write& write : log_) visit(Record(RecordKind::kLogEntry, write));
}

// --- Client requests -----------------------------------------------------------

void Replica::Put(uint64_t token, uint64_t session, std::string_view key, std::string_view value,
                  const VectorClock* context, uint64_t now_ms) {
  Submit(RequestType::kPut, token, session, key, value, context, now_ms);
}

void Replica::Delete(uint64_t token, uint64_t session, std::string_view key,
                     const VectorClock* context, uint64_t now_ms) {
  Submit(RequestType::kDelete, token, session, key, {}, context, now_ms);
}

void Replica::Get(uint64_t token, uint64_t session, std::string_view key,
                  const VectorClock* context, uint64_t now_ms) {
  Submit(RequestType::kGet, token, session, key, {}, context, now_ms);
}

void Replica::Submit(std::span<const ClientRequest> requests, uint64_t now_ms) {
  auto key_at = [&](size_t j) { return requests[j].key; };
  for (size_t i = 0; i < requests.size(); ++i) {
    store_.PrefetchForBatch(i, requests.size(), key_at);
    const ClientRequest& r = requests[i];
    Submit(r.op, r.token, r.session, r.key, r.value, r.context, now_ms);
  }
}

Status Replica::ValidateRequest(RequestType type, std::string_view key, std::string_view value,
                                const VectorClock* context) const {
  if (key.empty()) return Status::BadRequest("empty key");
  if (key.size() > config_.key_bytes_max) {
    return Status::TooLarge("key of " + std::to_string(key.size()) + " bytes exceeds " +
                            std::to_string(config_.key_bytes_max));
  }
  if (type == RequestType::kPut && value.size() > config_.value_bytes_max) {
    return Status::TooLarge("value of " + std::to_string(value.size()) + " bytes exceeds " +
                            std::to_string(config_.value_bytes_max));
  }
  if (context && context->size() != 0 && context->size() != config_.node_count) {
    return Status::BadRequest("context has " + std::to_string(context->size()) +
                              " entries, the cluster has " + std::to_string(config_.node_count));
  }
  // A context no node can ever reach is refused now, not after the wait.
  if (context) return CheckPlausible(*context, "context");
  return Status::Ok();
}

bool Replica::ContextReached(const VectorClock& context) const {
  // Planted bug (tests only): never wait for a session's context.
  if constexpr (kPlantedBug == PlantedBug::kContextNoWait) return true;
  return context.size() == 0 || clock_.Dominates(context);
}

void Replica::Submit(RequestType type, uint64_t token, uint64_t session, std::string_view key,
                     std::string_view value, const VectorClock* context, uint64_t now_ms) {
  if (Status s = ValidateRequest(type, key, value, context); !s.ok()) {
    pending_.replies.push_back({token, s.code(), s.message(), false, {}, {}});
    return;
  }
  bool has_context = context && context->size() != 0;
  if (!parked_per_session_.contains(session) && (!has_context || ContextReached(*context))) {
    // The common case runs on the caller's views: no copy of key or value.
    Execute(type, token, key, value, now_ms);
    return;
  }
  if (parked_.size() >= config_.parked_requests_max) {
    pending_.replies.push_back(
        {token, Code::kUnavailable, "too many requests waiting for their context", false, {}, {}});
    return;
  }
  Park({type, token, session, std::string(key), std::string(value),
        has_context ? *context : VectorClock(), now_ms + config_.context_wait_ms});
}

void Replica::Park(Request request) {
  ++parked_per_session_[request.session];
  parked_.push_back(std::move(request));
}

void Replica::Execute(RequestType type, uint64_t token, std::string_view key,
                      std::string_view value, uint64_t now_ms) {
  if (type == RequestType::kGet) {
    ExecuteGet(token, key);
  } else {
    ExecuteWrite(type, token, key, value, now_ms);
  }
}

void Replica::ExecuteWrite(RequestType type, uint64_t token, std::string_view key,
                           std::string_view value, uint64_t now_ms) {
  if (!accepting_writes()) {
    std::string why = !identity_recorded_
                          ? std::string("no cluster identity yet: waiting to hear from every peer")
                          : "recovering own writes: have " + std::to_string(clock_[config_.self]) +
                                ", peers know " + std::to_string(own_seq_known_);
    pending_.replies.push_back({token, Code::kUnavailable, std::move(why), false, {}, {}});
    return;
  }
  Write write;
  write.origin = config_.self;
  write.clock = clock_;
  write.clock.Increment(config_.self);
  write.is_delete = type == RequestType::kDelete;
  write.key = key;
  write.value = value;
  VectorClock version = write.clock;  // Inline for small clusters: no allocation.
  Apply(std::move(write), now_ms);
  pending_.replies.push_back({token, Code::kOk, {}, false, {}, std::move(version)});
}

void Replica::ExecuteGet(uint64_t token, std::string_view key) {
  const Store::Entry* entry = store_.Find(key);
  Reply reply{token, Code::kNotFound, {}, false, {}, VectorClock(config_.node_count)};
  if (entry) {
    reply.version = entry->version();
    if (!entry->tombstone()) {
      reply.code = Code::kOk;
      reply.found = true;
      reply.value = entry->value();
    }
  }
  pending_.replies.push_back(std::move(reply));
}

void Replica::ServeParked(uint64_t now_ms) {
  if (parked_.empty()) return;
  // A session whose earlier request still waits keeps its order: its later
  // requests wait too, even if their own context is reached.
  std::unordered_set<uint64_t> blocked;
  std::deque<Request> still_parked;
  for (Request& request : parked_) {
    bool ready = !blocked.contains(request.session) && ContextReached(request.context);
    if (ready) {
      Execute(request.type, request.token, request.key, request.value, now_ms);
    } else if (!blocked.contains(request.session) && now_ms >= request.deadline_ms) {
      pending_.replies.push_back({request.token,
                                  Code::kTimeout,
                                  "context not reached; waiting for " +
                                      DescribeMissing(MissingFromContext(request.context, clock_)),
                                  false,
                                  {},
                                  {}});
    } else {
      blocked.insert(request.session);
      still_parked.push_back(std::move(request));
      continue;
    }
    auto it = parked_per_session_.find(request.session);
    if (--it->second == 0) parked_per_session_.erase(it);
  }
  parked_.swap(still_parked);
}

// --- Peers ---------------------------------------------------------------------

Status Replica::ValidatePeer(uint32_t peer) const {
  if (peer >= config_.node_count || peer == config_.self) {
    return Status::BadRequest("peer index " + std::to_string(peer) + " is not a peer");
  }
  return Status::Ok();
}

Status Replica::ValidateClock(const VectorClock& clock) const {
  if (clock.size() != config_.node_count) {
    return Status::BadRequest("clock has " + std::to_string(clock.size()) +
                              " entries, the cluster has " + std::to_string(config_.node_count));
  }
  return CheckPlausible(clock, "clock");
}

Status Replica::ValidateWrite(const Write& write) const {
  if (Status s = ValidateClock(write.clock); !s.ok()) return s;
  if (write.origin >= config_.node_count) return Status::BadRequest("write origin out of range");
  if (write.seq() == 0) return Status::BadRequest("write sequence number 0");
  if (write.key.empty()) return Status::BadRequest("write with an empty key");
  if (write.key.size() > config_.key_bytes_max) return Status::TooLarge("write key too large");
  if (write.value.size() > config_.value_bytes_max) {
    return Status::TooLarge("write value too large");
  }
  return Status::Ok();
}

Status Replica::LinkFromPeerUp(uint32_t peer, uint64_t now_ms, std::string_view peer_cluster_id) {
  if (Status s = ValidatePeer(peer); !s.ok()) return s;
  if (Status s = NotePeerIdentity(peer, peer_cluster_id); !s.ok()) return s;
  PeerLinks& links = peers_[peer];
  links.from_up = true;
  links.ack_sent = clock_;
  links.ack_sent_ms = now_ms;
  links.identity_sent = true;
  pending_.messages.push_back({peer, PeerMessageType::kHelloAck, clock_, cluster_id_, {}});
  return Status::Ok();
}

void Replica::LinkFromPeerDown(uint32_t peer) {
  KV_ASSERT(ValidatePeer(peer).ok());
  peers_[peer].from_up = false;
  // A transfer cut off by its link is dropped; the peer sends a fresh one
  // on its next link. Its begin and entries persisted so far are skipped
  // on replay, as a begin with no end.
  if (incoming_ && incoming_->peer == peer) incoming_.reset();
}

Status Replica::LinkToPeerUp(uint32_t peer, const VectorClock& peer_clock, uint64_t now_ms,
                             std::string_view peer_cluster_id) {
  if (Status s = ValidatePeer(peer); !s.ok()) return s;
  if (Status s = ValidateClock(peer_clock); !s.ok()) return s;
  if (Status s = NotePeerIdentity(peer, peer_cluster_id); !s.ok()) return s;
  (void)now_ms;
  NoteOwnSeqKnown(peer_clock);
  PeerLinks& links = peers_[peer];
  links.clock_heard = true;
  links.transfer.reset();
  if (peer_clock.Dominates(log_.dropped())) {
    log_.StartStream(peer, peer_clock, clock_[peer]);
    return Status::Ok();
  }
  // The peer lacks writes the log no longer holds (it was away past the
  // log's bound, or lost its disk): it gets our whole state first.
  StartTransfer(peer);
  log_.StartStream(peer, peer_clock, clock_[peer], &links.transfer->clock);
  return Status::Ok();
}

void Replica::StartTransfer(uint32_t peer) {
  auto transfer = std::make_unique<OutgoingTransfer>();
  transfer->clock = clock_;
  transfer->entries.reserve(store_.size());
  for (const Store::Entry& entry : store_) {
    Write& write = transfer->entries.emplace_back();
    write.origin = entry.origin();
    write.clock = entry.version();
    write.is_delete = entry.tombstone();
    write.key = entry.key();
    write.value = entry.value();
  }
  Event event{Event::Kind::kTransferSending, false, 0, peer, config_.self, 0, {}, {}};
  event.seq = transfer->entries.size();
  pending_.events.push_back(std::move(event));
  peers_[peer].transfer = std::move(transfer);
}

void Replica::LinkToPeerDown(uint32_t peer) {
  KV_ASSERT(ValidatePeer(peer).ok());
  log_.StopStream(peer);
  peers_[peer].transfer.reset();
}

Status Replica::PeerAck(uint32_t peer, const VectorClock& peer_clock, uint64_t now_ms,
                        std::string_view peer_cluster_id) {
  if (Status s = ValidatePeer(peer); !s.ok()) return s;
  if (Status s = ValidateClock(peer_clock); !s.ok()) return s;
  if (Status s = NotePeerIdentity(peer, peer_cluster_id); !s.ok()) return s;
  (void)now_ms;
  peers_[peer].clock_heard = true;
  log_.Acknowledge(peer, peer_clock);
  NoteOwnSeqKnown(peer_clock);
  CollectTombstones();
  return Status::Ok();
}

Status Replica::PeerWrites(uint32_t peer, std::vector<Write>& writes, uint64_t now_ms) {
  if (Status s = ValidatePeer(peer); !s.ok()) return s;
  for (const Write& write : writes) {
    if (Status s = ValidateWrite(write); !s.ok()) return s;
  }
  // A batch's store lookups are cache misses: start them a few writes
  // ahead (see Store::PrefetchForBatch).
  auto key_at = [&](size_t j) -> std::string_view { return writes[j].key; };
  for (size_t i = 0; i < writes.size(); ++i) {
    store_.PrefetchForBatch(i, writes.size(), key_at);
    if (!Deliver(peer, writes[i], now_ms)) break;
  }
  return Status::Ok();
}

Status Replica::PeerTransferBegin(uint32_t peer, const VectorClock& clock, uint64_t now_ms) {
  if (Status s = ValidatePeer(peer); !s.ok()) return s;
  if (Status s = ValidateClock(clock); !s.ok()) return s;
  (void)now_ms;
  NoteOwnSeqKnown(clock);
  if (incoming_ && incoming_->peer != peer) {
    Event event{Event::Kind::kTransferRefused, false, 0, peer, peer, 0, {}, {}};
    pending_.events.push_back(std::move(event));
    pending_.resync_peers.push_back(peer);
    return Status::Ok();
  }
  BeginIncoming(peer, clock);
  Record record;
  record.kind = RecordKind::kTransferBegin;
  record.origin = peer;
  record.clock = clock;
  pending_.records.push_back(std::move(record));
  return Status::Ok();
}

Status Replica::PeerTransferChunk(uint32_t peer, std::vector<Write>& entries, uint64_t now_ms) {
  if (Status s = ValidatePeer(peer); !s.ok()) return s;
  (void)now_ms;
  // Chunks of a refused transfer may still be in flight: ignored.
  if (!incoming_ || incoming_->peer != peer) return Status::Ok();
  for (Write& entry : entries) {
    if (Status s = StageEntry(entry); !s.ok()) {
      incoming_.reset();
      return s;
    }
    pending_.records.emplace_back(RecordKind::kTransferEntry, std::move(entry));
  }
  return Status::Ok();
}

Status Replica::PeerTransferEnd(uint32_t peer, uint64_t now_ms) {
  if (Status s = ValidatePeer(peer); !s.ok()) return s;
  if (!incoming_ || incoming_->peer != peer) return Status::Ok();
  Event event{Event::Kind::kTransferInstalled, false, 0, peer, peer, incoming_->entries, {}, {}};
  InstallIncoming();
  Record record;
  record.kind = RecordKind::kTransferEnd;
  record.origin = peer;
  pending_.records.push_back(std::move(record));
  pending_.events.push_back(std::move(event));
  DrainBuffer(now_ms);
  return Status::Ok();
}

void Replica::BeginIncoming(uint32_t peer, const VectorClock& clock) {
  incoming_.emplace();
  incoming_->peer = peer;
  incoming_->clock = clock;
}

Status Replica::StageEntry(const Write& entry) {
  if (Status s = ValidateWrite(entry); !s.ok()) return s;
  if (entry.seq() > incoming_->clock[entry.origin]) {
    return Status::BadRequest("transferred entry " + std::to_string(entry.origin + 1) + ":" +
                              std::to_string(entry.seq()) + " lies beyond the transfer's clock");
  }
  incoming_->staged.Apply(entry);
  ++incoming_->entries;
  return Status::Ok();
}

// The installed state holds, per key, the winner among every write either
// side had: ours (our clock R) and the sender's (its clock C; `staged`
// holds the winner of its writes to each key). For a key the sender has
// (winner e):
//   - if e is one of ours (R includes it), our entry already is the
//     winner: it is e or supersedes it, and if we have no entry, a
//     tombstone that superseded e was collected here (which needs every
//     write concurrent with it applied here), so the key stays deleted;
//   - otherwise the winner is the greater of e and our entry.
// For a key only we have: keep it unless C includes it (then the sender
// deleted it and collected the tombstone). Both sets of writes are
// causally closed, so their union is, and our clock becomes max(R, C).
void Replica::InstallIncoming() {
  IncomingTransfer& incoming = *incoming_;
  if (clock_.Sum() == 0) {
    // Nothing applied here yet (a snapshot loading, a lost disk): the
    // staged state is the result as it is, no copy needed. (An empty
    // store alone is not enough: its tombstones may have been collected.)
    store_ = std::move(incoming.staged);
  } else {
    store_ = MergedWithStaged(incoming);
  }
  clock_.Merge(incoming.clock);
  // Those writes came as state, not one by one: the log cannot serve them.
  // A peer we stream to that lacks some of them would wait for them
  // forever: its link restarts, and the new one sends it our state.
  log_.CoverDropped(incoming.clock);
  for (uint32_t peer = 0; peer < config_.node_count; ++peer) {
    if (peer == config_.self || peer == incoming.peer || !log_.streaming(peer)) continue;
    if (log_.sent(peer).Dominates(incoming.clock)) continue;
    log_.StopStream(peer);
    peers_[peer].transfer.reset();
    pending_.restart_links.push_back(peer);
  }
  incoming_.reset();
  changed_ = true;
}

Store Replica::MergedWithStaged(const IncomingTransfer& incoming) const {
  Store installed;
  for (const Store::Entry& entry : incoming.staged) {
    const Store::Entry* ours = store_.Find(entry.key());
    if (!entry.CoveredBy(clock_)) installed.Apply(entry);
    if (ours) installed.Apply(*ours);
  }
  for (const Store::Entry& entry : store_) {
    if (!incoming.staged.Find(entry.key()) && !entry.CoveredBy(incoming.clock)) {
      installed.Apply(entry);
    }
  }
  return installed;
}

void Replica::DrainBuffer(uint64_t now_ms) {
  while (std::optional<Write> next = buffer_.PopDeliverable(clock_)) {
    size_t event = pending_.events.size();
    Apply(std::move(*next), now_ms);
    pending_.events[event].from_buffer = true;
  }
}

bool Replica::Deliver(uint32_t peer, Write& write, uint64_t now_ms) {
  // A write's clock shows how many of our own writes its origin had seen:
  // evidence, like a peer's clock, of own writes we may have lost.
  NoteOwnSeqKnown(write.clock);
  if (write.seq() <= clock_[write.origin]) {
    // Planted bug (tests only): a duplicate is applied again.
    if constexpr (kPlantedBug == PlantedBug::kNoDuplicateSuppression) {
      clock_.Set(write.origin, write.seq() - 1);
      Apply(std::move(write), now_ms);
      return true;
    }
    AddEvent(Event::Kind::kDuplicate, peer, write);
    return true;
  }
  if (IsDeliverable(write, clock_)) {
    size_t applied_event = pending_.events.size();
    Apply(std::move(write), now_ms);  // The caller's batch is done with it.
    uint32_t released = 0;
    while (std::optional<Write> next = buffer_.PopDeliverable(clock_)) {
      size_t event = pending_.events.size();
      Apply(std::move(*next), now_ms);
      pending_.events[event].from_buffer = true;
      ++released;
    }
    pending_.events[applied_event].released = released;
    pending_.events[applied_event].peer = peer;
    return true;
  }
  std::vector<MissingRange> missing = MissingDependencies(write, clock_);
  Event buffered{Event::Kind::kBuffered, false,       0,         peer,
                 write.origin,           write.seq(), write.key, missing[0]};
  switch (buffer_.Insert(std::move(write))) {
    case CausalBuffer::InsertResult::kBuffered:
      pending_.events.push_back(std::move(buffered));
      break;
    case CausalBuffer::InsertResult::kDuplicate:
      buffered.kind = Event::Kind::kDuplicate;
      pending_.events.push_back(std::move(buffered));
      break;
    case CausalBuffer::InsertResult::kFull:
      buffered.kind = Event::Kind::kBufferFull;
      pending_.events.push_back(std::move(buffered));
      pending_.resync_peers.push_back(peer);
      return false;
  }
  return true;
}

void Replica::Apply(Write&& write, uint64_t now_ms) {
  clock_.Set(write.origin, write.seq());
  store_.Apply(write);
  log_.Append(write, now_ms);
  if (log_.over_limit()) EnforceLogBound();
  AddEvent(Event::Kind::kApplied, config_.self, write);
  if (write.origin == config_.self && own_seq_known_ > 0 &&
      clock_[config_.self] == own_seq_known_) {
    AddEvent(Event::Kind::kRecovered, config_.self, write);
  }
  changed_ = true;
  // Last: the record takes the write itself, the one copy saved per write.
  pending_.records.emplace_back(std::move(write));
}

void Replica::NoteOwnSeqKnown(const VectorClock& peer_clock) {
  uint64_t known = peer_clock[config_.self];
  if (known <= own_seq_known_) return;
  own_seq_known_ = known;
  if (known > clock_[config_.self]) {
    pending_.events.push_back(
        {Event::Kind::kRecovering, false, 0, config_.self, config_.self, known, {}, {}});
  }
}

void Replica::EnforceLogBound() {
  size_t bytes = log_.bytes();
  std::vector<bool> was_detached(config_.node_count);
  for (uint32_t p = 0; p < config_.node_count; ++p) was_detached[p] = log_.detached(p);
  std::vector<uint32_t> stopped = log_.DetachLaggards();
  for (uint32_t p = 0; p < config_.node_count; ++p) {
    if (p == config_.self || was_detached[p] || !log_.detached(p)) continue;
    Event event{Event::Kind::kLogDetached, false, 0, p, config_.self, bytes, {}, {}};
    pending_.events.push_back(std::move(event));
  }
  for (uint32_t p : stopped) {
    peers_[p].transfer.reset();
    pending_.restart_links.push_back(p);
  }
}

Status Replica::NotePeerIdentity(uint32_t peer, std::string_view peer_cluster_id) {
  if (peer_cluster_id.empty()) return Status::Ok();
  if (cluster_id_.empty()) {
    // Adopted, not yet recorded: see SettleIdentity.
    cluster_id_ = peer_cluster_id;
    for (PeerLinks& links : peers_) links.identity_sent = false;
  } else if (peer_cluster_id != cluster_id_) {
    return Status::Unauthorized("n" + std::to_string(peer + 1) + " belongs to cluster " +
                                std::string(peer_cluster_id) + ", this node to " + cluster_id_);
  }
  peers_[peer].has_identity = true;
  return Status::Ok();
}

void Replica::SettleIdentity() {
  if (identity_recorded_) return;
  bool any_identity = false;
  for (uint32_t peer = 0; peer < config_.node_count; ++peer) {
    if (peer == config_.self) continue;
    if (!peers_[peer].clock_heard) return;
    any_identity |= peers_[peer].has_identity;
  }
  if (cluster_id_.empty()) {
    // Every peer heard, none with an identity: the cluster is new.
    if (any_identity || config_.self != 0) return;
    cluster_id_ = config_.new_cluster_id;
  } else if (clock_[config_.self] < own_seq_known_) {
    return;  // Our own writes are still coming back.
  }
  RecordIdentity();
}

void Replica::RecordIdentity() {
  identity_recorded_ = true;
  Record record;
  record.kind = RecordKind::kIdentity;
  record.cluster_id = cluster_id_;
  pending_.records.push_back(std::move(record));
  pending_.events.push_back(
      {Event::Kind::kIdentityRecorded, false, 0, config_.self, config_.self, 0, cluster_id_, {}});
  for (PeerLinks& links : peers_) links.identity_sent = false;
}

void Replica::HoldLink(uint32_t peer) {
  KV_ASSERT(ValidatePeer(peer).ok());
  peers_[peer].held = true;
}

void Replica::ReleaseLink(uint32_t peer) {
  KV_ASSERT(ValidatePeer(peer).ok());
  peers_[peer].held = false;
}

void Replica::SetLinkPaused(uint32_t peer, bool paused) {
  KV_ASSERT(ValidatePeer(peer).ok());
  peers_[peer].paused = paused;
}

void Replica::AddEvent(Event::Kind kind, uint32_t peer, const Write& write) {
  pending_.events.push_back({kind, false, 0, peer, write.origin, write.seq(), write.key, {}});
}

// --- Output --------------------------------------------------------------------

Output& Replica::Ready(uint64_t now_ms) {
  SettleIdentity();
  ServeParked(now_ms);
  AppendBatches(now_ms);
  AppendAcks(now_ms);
  if (changed_) CollectTombstones();
  changed_ = false;
  std::swap(pending_, ready_);
  pending_.Clear();
  return ready_;
}

void Replica::AppendBatches(uint64_t now_ms) {
  for (uint32_t peer = 0; peer < config_.node_count; ++peer) {
    PeerLinks& links = peers_[peer];
    if (peer == config_.self || links.held || links.paused || !log_.streaming(peer)) continue;
    if (links.transfer && !AppendTransfer(peer)) continue;
    PeerMessage message{peer, PeerMessageType::kWriteBatch, {}, {}, {}};
    log_.NextBatch(peer, now_ms, config_.forward_after_ms, config_.batch_writes_max,
                   &message.writes);
    if (!message.writes.empty()) pending_.messages.push_back(std::move(message));
  }
}

bool Replica::AppendTransfer(uint32_t peer) {
  OutgoingTransfer& transfer = *peers_[peer].transfer;
  if (!transfer.begun) {
    pending_.messages.push_back({peer, PeerMessageType::kTransferBegin, transfer.clock, {}, {}});
    transfer.begun = true;
  }
  size_t bytes = 0;
  while (transfer.next < transfer.entries.size() && bytes < config_.transfer_bytes_per_ready) {
    PeerMessage chunk{peer, PeerMessageType::kTransferChunk, {}, {}, {}};
    size_t end = std::min(transfer.entries.size(), transfer.next + config_.batch_writes_max);
    for (; transfer.next < end && bytes < config_.transfer_bytes_per_ready; ++transfer.next) {
      Write& entry = transfer.entries[transfer.next];
      bytes += entry.key.size() + entry.value.size();
      chunk.writes.push_back(std::move(entry));
    }
    pending_.messages.push_back(std::move(chunk));
  }
  if (transfer.next < transfer.entries.size()) return false;
  pending_.messages.push_back({peer, PeerMessageType::kTransferEnd, {}, {}, {}});
  peers_[peer].transfer.reset();
  return true;
}

void Replica::AppendAcks(uint64_t now_ms) {
  for (uint32_t peer = 0; peer < config_.node_count; ++peer) {
    PeerLinks& links = peers_[peer];
    if (peer == config_.self || !links.from_up) continue;
    if (links.ack_sent == clock_ && links.identity_sent) continue;
    if (now_ms - links.ack_sent_ms < config_.ack_interval_ms) continue;
    links.ack_sent = clock_;
    links.ack_sent_ms = now_ms;
    links.identity_sent = true;
    pending_.messages.push_back({peer, PeerMessageType::kAck, clock_, cluster_id_, {}});
  }
}

void Replica::CollectTombstones() {
  if (store_.tombstones() == 0) return;
  VectorClock all_applied = clock_;
  VectorClock issued_bound(config_.node_count);
  issued_bound.Set(config_.self, clock_[config_.self]);
  for (uint32_t peer = 0; peer < config_.node_count; ++peer) {
    if (peer == config_.self) continue;
    all_applied.Meet(log_.acked(peer));
    issued_bound.Set(peer, log_.acked(peer)[peer]);
  }
  store_.CollectTombstones(all_applied, issued_bound, clock_);
}

// --- Introspection ---------------------------------------------------------------

PeerInfo Replica::peer_info(uint32_t peer) const {
  return {log_.streaming(peer), peers_[peer].from_up, peers_[peer].held, log_.acked(peer)};
}

std::vector<BufferedWriteInfo> Replica::ListBuffer(size_t limit) const {
  std::vector<BufferedWriteInfo> out;
  buffer_.ForEach(limit, [&](const Write& write) {
    out.push_back({write.origin, write.seq(), write.key, write.is_delete,
                   MissingDependencies(write, clock_)});
  });
  return out;
}

}  // namespace kvd::core
