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
  return Status::Ok();
}

Replica::Replica(const ReplicaConfig& config)
    : config_(config),
      clock_(config.node_count),
      buffer_(config.node_count, config.buffer_writes_max),
      log_(config.node_count, config.self),
      peers_(config.node_count) {
  KV_ASSERT(config.Validate().ok());
  for (auto& peer : peers_) peer.ack_sent = VectorClock(config.node_count);
}

// --- Recovery ----------------------------------------------------------------

Status Replica::Restore(const Write& record, uint64_t now_ms) {
  if (Status s = ValidateWrite(record); !s.ok()) return s;
  if (!IsDeliverable(record, clock_)) {
    return Status::Internal("record " + std::to_string(record.origin + 1) + ":" +
                            std::to_string(record.seq()) + " does not follow clock " +
                            clock_.ToString());
  }
  Apply(record, now_ms);
  // Restored records are durable already: they must not be persisted again.
  pending_.records.clear();
  pending_.events.clear();
  return Status::Ok();
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
    pending_.replies.push_back({token,
                                Code::kUnavailable,
                                "recovering own writes: have " +
                                    std::to_string(clock_[config_.self]) + ", peers know " +
                                    std::to_string(own_seq_known_),
                                false,
                                {},
                                {}});
    return;
  }
  Write write;
  write.origin = config_.self;
  write.clock = clock_;
  write.clock.Increment(config_.self);
  write.is_delete = type == RequestType::kDelete;
  write.key = key;
  write.value = value;
  Apply(write, now_ms);
  pending_.replies.push_back({token, Code::kOk, {}, false, {}, std::move(write.clock)});
}

void Replica::ExecuteGet(uint64_t token, std::string_view key) {
  const Store::Entry* entry = store_.Find(key);
  Reply reply{token, Code::kNotFound, {}, false, {}, VectorClock(config_.node_count)};
  if (entry) {
    reply.version = entry->version;
    if (!entry->tombstone) {
      reply.code = Code::kOk;
      reply.found = true;
      reply.value = entry->value;
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

void Replica::LinkFromPeerUp(uint32_t peer, uint64_t now_ms) {
  KV_ASSERT(ValidatePeer(peer).ok());
  PeerLinks& links = peers_[peer];
  links.from_up = true;
  links.ack_sent = clock_;
  links.ack_sent_ms = now_ms;
  pending_.messages.push_back({peer, PeerMessageType::kHelloAck, clock_, {}});
}

void Replica::LinkFromPeerDown(uint32_t peer) {
  KV_ASSERT(ValidatePeer(peer).ok());
  peers_[peer].from_up = false;
}

Status Replica::LinkToPeerUp(uint32_t peer, const VectorClock& peer_clock, uint64_t now_ms) {
  if (Status s = ValidatePeer(peer); !s.ok()) return s;
  if (Status s = ValidateClock(peer_clock); !s.ok()) return s;
  (void)now_ms;
  log_.StartStream(peer, peer_clock, clock_[peer]);
  NoteOwnSeqKnown(peer_clock);
  return Status::Ok();
}

void Replica::LinkToPeerDown(uint32_t peer) {
  KV_ASSERT(ValidatePeer(peer).ok());
  log_.StopStream(peer);
}

Status Replica::PeerAck(uint32_t peer, const VectorClock& peer_clock, uint64_t now_ms) {
  if (Status s = ValidatePeer(peer); !s.ok()) return s;
  if (Status s = ValidateClock(peer_clock); !s.ok()) return s;
  (void)now_ms;
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
  for (Write& write : writes) {
    if (!Deliver(peer, write, now_ms)) break;
  }
  return Status::Ok();
}

bool Replica::Deliver(uint32_t peer, Write& write, uint64_t now_ms) {
  // A write's clock shows how many of our own writes its origin had seen:
  // evidence, like a peer's clock, of own writes we may have lost.
  NoteOwnSeqKnown(write.clock);
  if (write.seq() <= clock_[write.origin]) {
    // Planted bug (tests only): a duplicate is applied again.
    if constexpr (kPlantedBug == PlantedBug::kNoDuplicateSuppression) {
      clock_.Set(write.origin, write.seq() - 1);
      Apply(write, now_ms);
      return true;
    }
    AddEvent(Event::Kind::kDuplicate, peer, write);
    return true;
  }
  if (IsDeliverable(write, clock_)) {
    size_t applied_event = pending_.events.size();
    Apply(write, now_ms);
    uint32_t released = 0;
    while (std::optional<Write> next = buffer_.PopDeliverable(clock_)) {
      size_t event = pending_.events.size();
      Apply(*next, now_ms);
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

void Replica::Apply(const Write& write, uint64_t now_ms) {
  clock_.Set(write.origin, write.seq());
  store_.Apply(write);
  log_.Append(write, now_ms);
  pending_.records.push_back(write);
  AddEvent(Event::Kind::kApplied, config_.self, write);
  if (write.origin == config_.self && own_seq_known_ > 0 &&
      clock_[config_.self] == own_seq_known_) {
    AddEvent(Event::Kind::kRecovered, config_.self, write);
  }
  changed_ = true;
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
    const PeerLinks& links = peers_[peer];
    if (peer == config_.self || links.held || links.paused || !log_.streaming(peer)) continue;
    PeerMessage message{peer, PeerMessageType::kWriteBatch, {}, {}};
    log_.NextBatch(peer, now_ms, config_.forward_after_ms, config_.batch_writes_max,
                   &message.writes);
    if (!message.writes.empty()) pending_.messages.push_back(std::move(message));
  }
}

void Replica::AppendAcks(uint64_t now_ms) {
  for (uint32_t peer = 0; peer < config_.node_count; ++peer) {
    PeerLinks& links = peers_[peer];
    if (peer == config_.self || !links.from_up || links.ack_sent == clock_) continue;
    if (now_ms - links.ack_sent_ms < config_.ack_interval_ms) continue;
    links.ack_sent = clock_;
    links.ack_sent_ms = now_ms;
    pending_.messages.push_back({peer, PeerMessageType::kAck, clock_, {}});
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
