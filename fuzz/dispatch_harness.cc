#include "fuzz/dispatch_harness.h"

#include "daemon/io/codec.h"
#include "fuzz/fuzz_util.h"
#include "schema/check.h"
#include "schema/view.h"

namespace kvd::fuzz {

DispatchHarness::DispatchHarness(bool peers)
    : peers_(peers),
      limits_(SmallClusterLimits()),
      config_(SmallClusterConfig()),
      replica_(config_),
      last_clock_(replica_.clock()),
      persisted_(replica_.clock()),
      from_up_(config_.node_count, false),
      to_up_(config_.node_count, false) {}

bool DispatchHarness::OnFrame(const wire::Frame& frame) {
  const fb::Envelope& envelope = *frame.envelope;
  now_ms_ += envelope.request_id() % 128;
  const wire::MessageClass kind = wire::ClassOf(envelope.message_type());
  bool keep = true;
  if (auto error = wire::CheckEnvelope(envelope, limits_)) {
    // A client request with a bad field is answered and the client kept;
    // anything else closes the connection.
    keep = kind == wire::MessageClass::kClientRequest;
  } else if (kind == wire::MessageClass::kClientRequest) {
    OnClientRequest(envelope);
  } else if (peers_ && kind == wire::MessageClass::kPeer) {
    keep = OnPeerMessage(envelope);
  } else {
    // Served without the replica (this node wants no client password).
    keep = kind == wire::MessageClass::kAdminRequest || kind == wire::MessageClass::kClientAuth;
  }
  Step();
  return keep;
}

void DispatchHarness::OnClientRequest(const fb::Envelope& envelope) {
  const uint64_t token = next_token_++;
  const uint64_t session = (envelope.request_id() >> 8) % 4;
  core::VectorClock context;
  auto with_context = [&](const flatbuffers::Vector<uint64_t>* clock) -> core::VectorClock* {
    std::span<const uint64_t> counts = wire::AsClock(clock);
    if (counts.empty()) return nullptr;
    context = core::VectorClock(counts);
    return &context;
  };
  switch (envelope.message_type()) {
    case fb::Message::PutRequest: {
      const fb::PutRequest* m = envelope.message_as_PutRequest();
      replica_.Put(token, session, wire::AsBytes(m->key()), wire::AsBytes(m->value()),
                   with_context(m->context()), now_ms_);
      break;
    }
    case fb::Message::GetRequest: {
      const fb::GetRequest* m = envelope.message_as_GetRequest();
      replica_.Get(token, session, wire::AsBytes(m->key()), with_context(m->context()), now_ms_);
      break;
    }
    case fb::Message::DeleteRequest: {
      const fb::DeleteRequest* m = envelope.message_as_DeleteRequest();
      replica_.Delete(token, session, wire::AsBytes(m->key()), with_context(m->context()), now_ms_);
      break;
    }
    default:
      FUZZ_CHECK(false);  // ClassOf said kClientRequest.
  }
  unanswered_.insert(token);
  if (context.size() != 0) contexts_.emplace(token, context);
}

bool DispatchHarness::OnPeerMessage(const fb::Envelope& envelope) {
  switch (envelope.message_type()) {
    case fb::Message::Hello: {
      const uint32_t peer = envelope.message_as_Hello()->node_index();
      FUZZ_CHECK(peer < config_.node_count);  // CheckEnvelope's job.
      if (peer == config_.self) return false;
      if (from_peer_ == peer || from_up_[peer]) {
        from_peer_ = peer;
        FromPeerDown();  // The peer redialed.
      }
      from_peer_ = peer;
      // Another cluster's identity is refused (dispatch.cc closes).
      if (!replica_
               .LinkFromPeerUp(peer, now_ms_,
                               wire::AsText(envelope.message_as_Hello()->cluster_id()))
               .ok()) {
        return false;
      }
      from_up_[peer] = true;
      return true;
    }
    case fb::Message::TransferBegin:
    case fb::Message::TransferChunk:
    case fb::Message::TransferEnd: {
      if (!from_peer_ || !from_up_[*from_peer_]) return false;  // No hello yet.
      core::Status s;
      if (envelope.message_type() == fb::Message::TransferBegin) {
        s = replica_.PeerTransferBegin(
            *from_peer_,
            core::VectorClock(wire::AsClock(envelope.message_as_TransferBegin()->clock())),
            now_ms_);
      } else if (envelope.message_type() == fb::Message::TransferChunk) {
        const auto* entries = envelope.message_as_TransferChunk()->entries();
        const size_t count = entries ? entries->size() : 0;
        scratch_writes_.resize(count);
        for (size_t i = 0; i < count; ++i) {
          io::ToCoreWrite(*entries->Get(static_cast<flatbuffers::uoffset_t>(i)),
                          &scratch_writes_[i]);
        }
        s = replica_.PeerTransferChunk(*from_peer_, scratch_writes_, now_ms_);
      } else {
        s = replica_.PeerTransferEnd(*from_peer_, now_ms_);
      }
      if (!s.ok()) {
        FromPeerDown();
        return false;
      }
      return true;
    }
    case fb::Message::WriteBatch: {
      if (!from_peer_ || !from_up_[*from_peer_]) return false;  // No hello yet.
      const auto* writes = envelope.message_as_WriteBatch()->writes();
      const size_t count = writes ? writes->size() : 0;
      scratch_writes_.resize(count);
      for (size_t i = 0; i < count; ++i) {
        // The daemon's own conversion, so the fuzzer exercises its path.
        io::ToCoreWrite(*writes->Get(static_cast<flatbuffers::uoffset_t>(i)), &scratch_writes_[i]);
      }
      core::Status s = replica_.PeerWrites(*from_peer_, scratch_writes_, now_ms_);
      if (!s.ok()) {
        FromPeerDown();
        return false;
      }
      return true;
    }
    case fb::Message::HelloAck: {
      const fb::HelloAck* ack = envelope.message_as_HelloAck();
      const uint32_t peer = ack->node_index();
      FUZZ_CHECK(peer < config_.node_count);
      if (peer == config_.self) return false;
      if (to_up_[peer]) {  // peer_link.cc: an unexpected hello-ack closes the link.
        to_peer_ = peer;
        ToPeerDown();
        return false;
      }
      to_peer_ = peer;
      replica_.SetLinkPaused(peer, false);
      core::Status s = replica_.LinkToPeerUp(peer, core::VectorClock(wire::AsClock(ack->clock())),
                                             now_ms_, wire::AsText(ack->cluster_id()));
      // CheckEnvelope ruled out every reason to refuse but another cluster.
      FUZZ_CHECK(s.ok() || s.code() == core::Code::kUnauthorized);
      if (!s.ok()) return false;
      to_up_[peer] = true;
      return true;
    }
    case fb::Message::Ack: {
      if (!to_peer_ || !to_up_[*to_peer_]) return false;
      const fb::Ack* ack = envelope.message_as_Ack();
      core::Status s = replica_.PeerAck(*to_peer_, core::VectorClock(wire::AsClock(ack->clock())),
                                        now_ms_, wire::AsText(ack->cluster_id()));
      FUZZ_CHECK(s.ok() || s.code() == core::Code::kUnauthorized);
      if (!s.ok()) {
        ToPeerDown();
        return false;
      }
      return true;
    }
    case fb::Message::HelloProof:
      return false;  // This node has no cluster secret: nothing to prove.
    default:
      FUZZ_CHECK(false);  // ClassOf said kPeer.
  }
  return false;
}

void DispatchHarness::FromPeerDown() {
  if (!from_peer_ || !from_up_[*from_peer_]) return;
  replica_.LinkFromPeerDown(*from_peer_);
  from_up_[*from_peer_] = false;
}

void DispatchHarness::ToPeerDown() {
  if (!to_peer_ || !to_up_[*to_peer_]) return;
  replica_.LinkToPeerDown(*to_peer_);
  to_up_[*to_peer_] = false;
}

void DispatchHarness::Step() {
  core::Output& out = replica_.Ready(now_ms_);
  CheckOutput(out);
  for (uint32_t peer : out.resync_peers) {
    // The shell closes the link from that peer; it reconnects later.
    FUZZ_CHECK(peer < config_.node_count && peer != config_.self);
    if (from_up_[peer]) {
      replica_.LinkFromPeerDown(peer);
      from_up_[peer] = false;
    }
  }
  for (uint32_t peer : out.restart_links) {
    // The shell closes our link to that peer; it redials later.
    FUZZ_CHECK(peer < config_.node_count && peer != config_.self);
    if (to_up_[peer]) {
      replica_.LinkToPeerDown(peer);
      to_up_[peer] = false;
    }
  }
  out.Clear();

  const core::VectorClock& clock = replica_.clock();
  FUZZ_CHECK(clock.size() == config_.node_count);
  FUZZ_CHECK(clock.Dominates(last_clock_));  // The clock never goes backwards.
  // Everything applied was handed out to be made durable.
  FUZZ_CHECK(clock == persisted_);
  last_clock_ = clock;
  FUZZ_CHECK(replica_.buffer().size() <= config_.buffer_writes_max);
  FUZZ_CHECK(replica_.parked_requests() <= config_.parked_requests_max);
}

void DispatchHarness::CheckOutput(const core::Output& out) {
  const core::VectorClock& clock = replica_.clock();
  for (const core::Record& record : out.records) {
    if (record.kind != core::RecordKind::kWrite) continue;  // Transfers, identity.
    FUZZ_CHECK(record.clock.size() == config_.node_count);
    FUZZ_CHECK(record.origin < config_.node_count);
    FUZZ_CHECK(record.seq() >= 1 && record.seq() <= clock[record.origin]);
    // Records come in an order Restore can replay: each is the next write
    // of its origin and depends only on records before it (no gap, no
    // duplicate, no write applied before its dependencies).
    FUZZ_CHECK(record.seq() == persisted_[record.origin] + 1);
    for (uint32_t node = 0; node < config_.node_count; ++node) {
      FUZZ_CHECK(node == record.origin || record.clock[node] <= persisted_[node]);
    }
    persisted_.Set(record.origin, record.seq());
    FUZZ_CHECK(!record.key.empty() && record.key.size() <= config_.key_bytes_max);
    FUZZ_CHECK(record.value.size() <= config_.value_bytes_max);
  }
  for (const core::Reply& reply : out.replies) {
    // Each request is answered exactly once.
    FUZZ_CHECK(unanswered_.erase(reply.token) == 1);
    // A request served (not timed out) was served once its context held.
    if (auto it = contexts_.find(reply.token); it != contexts_.end()) {
      FUZZ_CHECK((reply.code != core::Code::kOk && reply.code != core::Code::kNotFound) ||
                 clock.Dominates(it->second));
      contexts_.erase(it);
    }
    FUZZ_CHECK(reply.version.size() == 0 || reply.version.size() == config_.node_count);
  }
  for (const core::PeerMessage& message : out.messages) {
    FUZZ_CHECK(message.peer < config_.node_count && message.peer != config_.self);
    switch (message.type) {
      case core::PeerMessageType::kHelloAck:
      case core::PeerMessageType::kAck:
        FUZZ_CHECK(message.clock.size() == config_.node_count);
        break;
      case core::PeerMessageType::kTransferBegin:
        FUZZ_CHECK(message.clock.size() == config_.node_count);
        FUZZ_CHECK(to_up_[message.peer]);
        break;
      case core::PeerMessageType::kTransferChunk:
        FUZZ_CHECK(to_up_[message.peer]);
        for (const core::Write& write : message.writes) {
          FUZZ_CHECK(write.clock.size() == config_.node_count);
          FUZZ_CHECK(write.seq() >= 1);
        }
        break;
      case core::PeerMessageType::kTransferEnd:
        FUZZ_CHECK(to_up_[message.peer]);
        break;
      case core::PeerMessageType::kWriteBatch:
        FUZZ_CHECK(!message.writes.empty());
        FUZZ_CHECK(message.writes.size() <= config_.batch_writes_max);
        FUZZ_CHECK(to_up_[message.peer]);  // Only on an established link.
        for (const core::Write& write : message.writes) {
          FUZZ_CHECK(write.clock.size() == config_.node_count);
          FUZZ_CHECK(write.seq() >= 1 && write.seq() <= clock[write.origin]);
        }
        break;
    }
  }
}

void DispatchHarness::Finish() {
  // Past every deadline, every parked request has its answer.
  now_ms_ += 2 * config_.context_wait_ms + 1;
  Step();
  now_ms_ += 2 * config_.context_wait_ms + 1;
  Step();
  FUZZ_CHECK(unanswered_.empty());
}

}  // namespace kvd::fuzz
