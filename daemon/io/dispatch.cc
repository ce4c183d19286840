// Node's input side: what each verified frame on an accepted connection
// means, who may send it, and which replica input it becomes.
#include <string>

#include "daemon/io/codec.h"
#include "daemon/io/log.h"
#include "daemon/io/node.h"
#include "schema/auth.h"
#include "schema/check.h"
#include "schema/handshake.h"
#include "schema/view.h"

namespace kvd::io {

std::string Node::StreamName(const Stream& stream) const {
  switch (stream.role) {
    case Stream::Role::kPeer:
    case Stream::Role::kOutboundPeer:
      return "peer " + PeerName(stream.peer);
    case Stream::Role::kClient:
      return "client " + std::to_string(stream.id());
    case Stream::Role::kPeerHandshake:
      return "connection " + std::to_string(stream.id()) + " (node " +
             std::to_string(stream.peer + 1) + ", authenticating)";
    case Stream::Role::kUnknown:
      break;
  }
  return (stream.transport() == Stream::Transport::kUnix ? "admin " : "connection ") +
         std::to_string(stream.id());
}

void Node::OnConnected(Stream&, int) {}  // Accepted streams are connected already.

void Node::OnFrame(Stream& stream, const wire::Frame& frame) {
  // A connection in the middle of a peer handshake has not finished it.
  if (stream.role != Stream::Role::kPeerHandshake) stream.greeted = true;
  const fb::Envelope& envelope = *frame.envelope;
  uint64_t request_id = envelope.request_id();
  wire::MessageClass kind = wire::ClassOf(envelope.message_type());
  // Only client requests are gathered: anything else on this connection
  // comes after the requests before it.
  if (kind != wire::MessageClass::kClientRequest) SubmitGathered();
  const bool from_peer =
      stream.role == Stream::Role::kPeer || stream.role == Stream::Role::kPeerHandshake;
  if (auto error = wire::CheckEnvelope(envelope, limits_)) {
    if (kind == wire::MessageClass::kClientRequest && !from_peer && ClientAllowed(stream)) {
      // A well-framed request with a bad field: answer it and go on serving
      // this client, as Redis does with a bad command.
      uint32_t slot = stream.TakeSlot(request_id);
      encoder_.Encode(request_id, wire::ReplyFields{error->status, error->message},
                      stream.ReplyBuffer(slot));
      stream.ReplyDone(slot);
      MarkDirty(stream);
      return;
    }
    KV_LOG(kInfo, "%s: bad message: %s; closing", StreamName(stream).c_str(),
           error->message.c_str());
    SendError(stream, request_id, error->status, error->message, /*close=*/true);
    return;
  }
  if (stream.counted == Stream::Counted::kPeerReserve &&
      envelope.message_type() != fb::Message::Hello) {
    RefuseOverLimit(stream, request_id);  // Let in beyond the limit for peers only.
    return;
  }
  if (stream.role == Stream::Role::kPeerHandshake) {
    if (envelope.message_type() == fb::Message::HelloProof) {
      HandleHelloProof(stream, envelope);
      return;
    }
    // Nothing from a peer counts before it proved the cluster secret.
    KV_LOG(kWarn, "connection %llu: %s from node %u before it authenticated; closing",
           (unsigned long long)stream.id(), fb::EnumNameMessage(envelope.message_type()),
           stream.peer + 1);
    SendError(stream, request_id, fb::Status::UNAUTHORIZED,
              "peer authentication not complete: send HelloProof first", /*close=*/true);
    return;
  }
  const bool client_request =
      kind == wire::MessageClass::kClientRequest || kind == wire::MessageClass::kAdminRequest;
  if (client_request && !from_peer && !ClientAllowed(stream)) {
    KV_LOG(kInfo, "%s: %s before the client password; closing", StreamName(stream).c_str(),
           fb::EnumNameMessage(envelope.message_type()));
    SendError(stream, request_id, fb::Status::UNAUTHORIZED,
              "this node requires a password: send ClientAuth first (kvctl --password-file)",
              /*close=*/true);
    return;
  }
  switch (kind) {
    case wire::MessageClass::kClientRequest:
      if (from_peer) break;
      stream.role = Stream::Role::kClient;
      HandleClientRequest(stream, envelope);
      if (stream.open_slots() >= kClientRequestsInFlightMax) {
        KV_LOG(kDebug, "%s: %zu requests in flight; pausing its input", StreamName(stream).c_str(),
               stream.open_slots());
        stream.PauseInput();
      }
      return;
    case wire::MessageClass::kClientAuth:
      if (stream.role != Stream::Role::kUnknown && stream.role != Stream::Role::kClient) break;
      HandleClientAuth(stream, envelope);
      return;
    case wire::MessageClass::kAdminRequest:
      if (from_peer) break;
      HandleAdminRequest(stream, envelope);
      return;
    case wire::MessageClass::kPeer:
      if (envelope.message_type() == fb::Message::Hello && stream.role == Stream::Role::kUnknown &&
          stream.transport() == Stream::Transport::kTcp) {
        HandleHello(stream, envelope);
        return;
      }
      if (envelope.message_type() == fb::Message::WriteBatch &&
          stream.role == Stream::Role::kPeer) {
        HandleWriteBatch(stream, *envelope.message_as_WriteBatch());
        return;
      }
      if (stream.role == Stream::Role::kPeer &&
          (envelope.message_type() == fb::Message::TransferBegin ||
           envelope.message_type() == fb::Message::TransferChunk ||
           envelope.message_type() == fb::Message::TransferEnd)) {
        HandleTransfer(stream, envelope);
        return;
      }
      break;
    default:
      break;
  }
  std::string message = std::string("unexpected ") + fb::EnumNameMessage(envelope.message_type()) +
                        " message on this connection";
  KV_LOG(kInfo, "%s: %s; closing", StreamName(stream).c_str(), message.c_str());
  SendError(stream, request_id, fb::Status::BAD_REQUEST, message, /*close=*/true);
}

bool Node::ClientAllowed(const Stream& stream) const {
  return config_.client_secret.empty() || stream.transport() == Stream::Transport::kUnix ||
         stream.client_authenticated;
}

void Node::OnBadInput(Stream& stream, const wire::WireError& error) {
  KV_LOG(kInfo, "%s: bad frame: %s; closing", StreamName(stream).c_str(), error.message.c_str());
  SendError(stream, 0, error.status, error.message, /*close=*/true);
}

void Node::OnDrained(Stream&) {}

void Node::OnClosed(Stream& stream) {
  Uncount(stream);
  RemoveStream(stream);
  if (stream.role == Stream::Role::kPeer && inbound_peers_[stream.peer] == &stream) {
    inbound_peers_[stream.peer] = nullptr;
    KV_LOG(kInfo, "peer %s: its link to us closed", PeerName(stream.peer).c_str());
    replica_.LinkFromPeerDown(stream.peer);
  }
}

void Node::SendError(Stream& stream, uint64_t request_id, fb::Status status,
                     const std::string& message, bool close) {
  Emit(stream, request_id, wire::ErrorFields{status, message});
  if (close) stream.CloseAfterFlush();
}

// --- Clients ----------------------------------------------------------------------

void Node::HandleClientRequest(Stream& stream, const fb::Envelope& envelope) {
  using Op = core::Replica::RequestType;
  std::string_view key, value;
  const flatbuffers::Vector<uint64_t>* context = nullptr;
  Op op;
  switch (envelope.message_type()) {
    case fb::Message::PutRequest: {
      const fb::PutRequest* put = envelope.message_as_PutRequest();
      op = Op::kPut;
      key = wire::AsBytes(put->key());
      value = wire::AsBytes(put->value());
      context = put->context();
      break;
    }
    case fb::Message::GetRequest: {
      const fb::GetRequest* get = envelope.message_as_GetRequest();
      op = Op::kGet;
      key = wire::AsBytes(get->key());
      context = get->context();
      break;
    }
    case fb::Message::DeleteRequest: {
      const fb::DeleteRequest* del = envelope.message_as_DeleteRequest();
      op = Op::kDelete;
      key = wire::AsBytes(del->key());
      context = del->context();
      break;
    }
    default:
      return;
  }
  uint32_t slot = stream.TakeSlot(envelope.request_id());
  GatheredRequest& request = gathered_.emplace_back();
  request.op = op;
  request.token = (stream.id() << 32) | slot;
  request.session = stream.id();
  request.key_at = gathered_bytes_.size();
  request.key_bytes = key.size();
  gathered_bytes_.append(key);
  request.value_at = gathered_bytes_.size();
  request.value_bytes = value.size();
  gathered_bytes_.append(value);
  request.context = kNoContext;
  if (std::span<const uint64_t> counts = wire::AsClock(context); !counts.empty()) {
    if (gathered_context_count_ == gathered_contexts_.size()) gathered_contexts_.emplace_back();
    gathered_contexts_[gathered_context_count_] = core::VectorClock(counts);
    request.context = gathered_context_count_++;
  }
}

void Node::OnFramesDelivered(Stream& /*stream*/) { SubmitGathered(); }

void Node::SubmitGathered() {
  if (gathered_.empty()) return;
  gathered_views_.clear();
  for (const GatheredRequest& request : gathered_) {
    gathered_views_.push_back(
        {request.op, request.token, request.session,
         std::string_view(gathered_bytes_).substr(request.key_at, request.key_bytes),
         std::string_view(gathered_bytes_).substr(request.value_at, request.value_bytes),
         request.context == kNoContext ? nullptr : &gathered_contexts_[request.context]});
  }
  replica_.Submit(gathered_views_, now_ms());
  gathered_.clear();
  gathered_bytes_.clear();
  gathered_context_count_ = 0;
}

// The password is checked on TCP only (the admin socket's file mode is its
// access control) and only if the node has one; a client may send one to
// a node that wants none.
void Node::HandleClientAuth(Stream& stream, const fb::Envelope& envelope) {
  const fb::ClientAuth* auth = envelope.message_as_ClientAuth();
  if (!ClientAllowed(stream) &&
      !wire::PasswordMatches(wire::AsBytes(auth->password()), config_.client_secret)) {
    KV_LOG(kWarn, "%s: wrong client password; closing", StreamName(stream).c_str());
    SendError(stream, envelope.request_id(), fb::Status::UNAUTHORIZED, "wrong password",
              /*close=*/true);
    return;
  }
  stream.client_authenticated = true;
  stream.role = Stream::Role::kClient;
  uint32_t slot = stream.TakeSlot(envelope.request_id());
  encoder_.Encode(envelope.request_id(), wire::ReplyFields{}, stream.ReplyBuffer(slot));
  stream.ReplyDone(slot);
  MarkDirty(stream);
}

// --- Administration --------------------------------------------------------------------

void Node::HandleAdminRequest(Stream& stream, const fb::Envelope& envelope) {
  uint64_t request_id = envelope.request_id();
  if (envelope.message_type() == fb::Message::StatusRequest) {
    ReplyStatus(stream, request_id);
    return;
  }
  if (stream.transport() != Stream::Transport::kUnix) {
    ReplyAdmin(stream, request_id, fb::Status::UNAUTHORIZED,
               "admin requests are accepted on the admin socket only");
    return;
  }
  switch (envelope.message_type()) {
    case fb::Message::BufferRequest:
      ReplyBuffer(stream, request_id, envelope.message_as_BufferRequest()->limit());
      return;
    case fb::Message::LinkRequest: {
      const fb::LinkRequest* link = envelope.message_as_LinkRequest();
      uint32_t peer = link->peer_index();
      if (!config_.fault_injection) {
        ReplyAdmin(stream, request_id, fb::Status::UNAUTHORIZED,
                   "fault injection is off (start kvd with --fault-injection)");
      } else if (peer >= config_.cluster.size() || peer == config_.self()) {
        ReplyAdmin(stream, request_id, fb::Status::BAD_REQUEST,
                   "node " + std::to_string(peer + 1) + " is not a peer of this node");
      } else {
        if (link->hold()) {
          replica_.HoldLink(peer);
        } else {
          replica_.ReleaseLink(peer);
        }
        KV_LOG(kInfo, "link to %s %s", PeerName(peer).c_str(), link->hold() ? "held" : "released");
        ReplyAdmin(stream, request_id, fb::Status::OK, "");
      }
      return;
    }
    case fb::Message::ShutdownRequest:
      ReplyAdmin(stream, request_id, fb::Status::OK, "");
      Shutdown("admin request");
      return;
    case fb::Message::SnapshotRequest:
      // Answered once the snapshot is durable (OnSnapshotWritten).
      snapshot_waiters_.emplace_back(stream.id(), stream.TakeSlot(request_id));
      snapshot_requested_ = true;
      return;
    default:
      return;
  }
}

void Node::ReplyAdmin(Stream& stream, uint64_t request_id, fb::Status status,
                      const std::string& message) {
  uint32_t slot = stream.TakeSlot(request_id);
  encoder_.Encode(request_id, wire::AdminReplyFields{status, message}, stream.ReplyBuffer(slot));
  stream.ReplyDone(slot);
  MarkDirty(stream);
}

void Node::ReplyStatus(Stream& stream, uint64_t request_id) {
  std::vector<core::PeerInfo> infos;
  std::vector<wire::PeerStatusFields> peers;
  infos.reserve(config_.cluster.size());
  for (uint32_t peer = 0; peer < config_.cluster.size(); ++peer) {
    if (peer == config_.self()) continue;
    infos.push_back(replica_.peer_info(peer));
    const core::PeerInfo& info = infos.back();
    peers.push_back({peer, config_.cluster[peer].text, info.link_to_up, info.link_from_up,
                     info.held, info.acked.counts()});
  }
  wire::StatusReplyFields fields;
  fields.node_index = config_.self();
  fields.clock = replica_.clock().counts();
  fields.buffered = replica_.buffer().size();
  fields.keys = replica_.store().live_keys();
  fields.accepting_writes = replica_.accepting_writes();
  fields.peers = peers;
  fields.log_entries = replica_.log().size();
  if (replica_.identity_recorded()) fields.cluster_id = replica_.cluster_id();
  const core::LoopHealth::Window& loop = loop_health_.last();
  fields.loop = {loop.wall_ns / 1000, loop.busy_ns / 1000,         loop.cpu_ns / 1000,
                 loop.turns,          loop.longest_turn_ns / 1000, loop.cpu_wait_ns / 1000};
  uint32_t slot = stream.TakeSlot(request_id);
  encoder_.Encode(request_id, fields, stream.ReplyBuffer(slot));
  stream.ReplyDone(slot);
  MarkDirty(stream);
}

void Node::ReplyBuffer(Stream& stream, uint64_t request_id, uint32_t limit) {
  if (limit == 0) limit = 1000;
  std::vector<core::BufferedWriteInfo> infos = replica_.ListBuffer(limit);
  std::vector<std::vector<fb::MissingRange>> missing(infos.size());
  std::vector<wire::BufferedWriteFields> entries;
  for (size_t i = 0; i < infos.size(); ++i) {
    for (const core::MissingRange& range : infos[i].missing) {
      missing[i].emplace_back(range.origin, range.seq_first, range.seq_last);
    }
    entries.push_back(
        {infos[i].origin, infos[i].seq, infos[i].key, infos[i].is_delete, missing[i]});
  }
  uint32_t slot = stream.TakeSlot(request_id);
  encoder_.Encode(request_id, wire::BufferReplyFields{entries, replica_.buffer().size()},
                  stream.ReplyBuffer(slot));
  stream.ReplyDone(slot);
  MarkDirty(stream);
}

// --- Peers ----------------------------------------------------------------------------

void Node::HandleHello(Stream& stream, const fb::Envelope& envelope) {
  const fb::Hello* hello = envelope.message_as_Hello();
  uint32_t peer = hello->node_index();
  if (hello->cluster_fingerprint() != fingerprint_) {
    KV_LOG(kWarn, "connection %llu: hello from node %u with another cluster list; refusing",
           (unsigned long long)stream.id(), peer + 1);
    SendError(stream, envelope.request_id(), fb::Status::UNAUTHORIZED,
              "cluster list mismatch: every node needs the same --cluster", /*close=*/true);
    return;
  }
  if (peer == config_.self()) {
    SendError(stream, envelope.request_id(), fb::Status::BAD_REQUEST,
              "hello claims this node's own index", /*close=*/true);
    return;
  }
  if (config_.cluster_secret.empty()) {
    if (hello->nonce() != nullptr && hello->nonce()->size() != 0) {
      // Half a cluster with a secret is a configuration mistake: say so at
      // both ends rather than link without authentication.
      KV_LOG(kWarn,
             "connection %llu: node %u authenticates but this node has no cluster secret; "
             "refusing",
             (unsigned long long)stream.id(), peer + 1);
      SendError(stream, envelope.request_id(), fb::Status::UNAUTHORIZED,
                "this node has no cluster secret: give every node the same --cluster-secret-file",
                /*close=*/true);
      return;
    }
    stream.peer_cluster_id = wire::AsText(hello->cluster_id());
    AcceptPeer(stream, peer);
    return;
  }
  // Challenge the dialer; nothing about the node changes until it answers.
  wire::Nonce nonce;
  if (!wire::RandomNonce(&nonce)) {
    KV_LOG(kError, "connection %llu: no random nonce from the system; closing",
           (unsigned long long)stream.id());
    SendError(stream, envelope.request_id(), fb::Status::INTERNAL, "no random nonce",
              /*close=*/true);
    return;
  }
  auto handshake = std::make_unique<wire::AcceptorHandshake>(config_.cluster_secret, fingerprint_,
                                                             config_.self());
  if (auto error = handshake->OnHello(*hello, nonce, replica_.clock().counts())) {
    KV_LOG(kWarn, "connection %llu: hello from node %u without authentication; refusing",
           (unsigned long long)stream.id(), peer + 1);
    SendError(stream, envelope.request_id(), error->status, error->message, /*close=*/true);
    return;
  }
  wire::HelloAckFields fields;
  fields.node_index = config_.self();
  fields.clock = replica_.clock().counts();
  fields.nonce = handshake->nonce();
  fields.auth = handshake->proof();
  fields.cluster_id = replica_.cluster_id();
  Emit(stream, envelope.request_id(), fields);
  // The Hello's cluster_id is not covered by the proofs, so on an
  // authenticated link it is not believed: this node learns the peer's
  // identity from the sealed Acks on its own link to the peer.
  stream.role = Stream::Role::kPeerHandshake;
  stream.peer = peer;
  stream.greeted = false;  // The handshake deadline runs until the proof.
  stream.handshake = std::move(handshake);
}

void Node::HandleHelloProof(Stream& stream, const fb::Envelope& envelope) {
  wire::SessionKeys keys;
  if (auto error = stream.handshake->OnProof(*envelope.message_as_HelloProof(), &keys)) {
    KV_LOG(kWarn,
           "connection %llu: node %u failed peer authentication (wrong --cluster-secret-file?); "
           "closing",
           (unsigned long long)stream.id(), stream.peer + 1);
    SendError(stream, envelope.request_id(), error->status, error->message, /*close=*/true);
    return;
  }
  stream.handshake.reset();
  stream.SetMacs(std::make_unique<wire::FrameMac>(keys.acceptor_to_dialer),
                 std::make_unique<wire::FrameMac>(keys.dialer_to_acceptor));
  AcceptPeer(stream, stream.peer);
}

void Node::AcceptPeer(Stream& stream, uint32_t peer) {
  if (Stream* old = inbound_peers_[peer]) {
    // The peer redialed; its old connection is dead even if we missed it.
    inbound_peers_[peer] = nullptr;
    replica_.LinkFromPeerDown(peer);
    old->Close();
  }
  if (core::Status s = replica_.LinkFromPeerUp(peer, now_ms(), stream.peer_cluster_id); !s.ok()) {
    KV_LOG(kWarn, "connection %llu: hello from node %u refused: %s",
           (unsigned long long)stream.id(), peer + 1, s.message().c_str());
    SendError(stream, 0, static_cast<fb::Status>(s.code()), s.message(), /*close=*/true);
    return;
  }
  // Peer links do not count against --max-clients, and carry batches.
  Uncount(stream);
  stream.set_frame_bytes_max(config_.peer_frame_bytes_max);
  stream.role = Stream::Role::kPeer;
  stream.peer = peer;
  stream.greeted = true;
  inbound_peers_[peer] = &stream;
  KV_LOG(kInfo, "peer %s: linked to us%s", PeerName(peer).c_str(),
         stream.sealed() ? " (authenticated)" : "");
}

void Node::ToScratchWrites(const flatbuffers::Vector<flatbuffers::Offset<fb::Write>>* writes) {
  size_t count = writes ? writes->size() : 0;
  scratch_writes_.resize(count);
  for (size_t i = 0; i < count; ++i) {
    ToCoreWrite(*writes->Get(static_cast<flatbuffers::uoffset_t>(i)), &scratch_writes_[i]);
  }
}

void Node::ClosePeerStream(Stream& stream, const core::Status& status, const char* what) {
  KV_LOG(kWarn, "peer %s: bad %s: %s; closing", PeerName(stream.peer).c_str(), what,
         status.ToString().c_str());
  SendError(stream, 0, static_cast<fb::Status>(status.code()), status.message(), /*close=*/true);
}

void Node::HandleWriteBatch(Stream& stream, const fb::WriteBatch& batch) {
  ToScratchWrites(batch.writes());
  core::Status s = replica_.PeerWrites(stream.peer, scratch_writes_, now_ms());
  if (!s.ok()) ClosePeerStream(stream, s, "write batch");
}

void Node::HandleTransfer(Stream& stream, const fb::Envelope& envelope) {
  core::Status s;
  switch (envelope.message_type()) {
    case fb::Message::TransferBegin:
      s = replica_.PeerTransferBegin(
          stream.peer,
          core::VectorClock(wire::AsClock(envelope.message_as_TransferBegin()->clock())), now_ms());
      break;
    case fb::Message::TransferChunk:
      ToScratchWrites(envelope.message_as_TransferChunk()->entries());
      s = replica_.PeerTransferChunk(stream.peer, scratch_writes_, now_ms());
      break;
    default:
      s = replica_.PeerTransferEnd(stream.peer, now_ms());
      break;
  }
  if (!s.ok()) ClosePeerStream(stream, s, "state transfer");
}

}  // namespace kvd::io
