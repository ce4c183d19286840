#include "schema/encoder.h"

#include <vector>

#include "schema/limits.h"

namespace kvd::wire {

Encoder::Encoder(size_t initial_bytes) : fbb_(initial_bytes) {}

size_t Encoder::Encode(uint64_t request_id, const PutRequestFields& m, std::string* out) {
  auto key = Bytes(m.key);
  auto value = Bytes(m.value);
  auto context = Clock(m.context);
  return Finish(request_id, fb::CreatePutRequest(fbb_, key, value, context), out);
}

size_t Encoder::Encode(uint64_t request_id, const GetRequestFields& m, std::string* out) {
  auto key = Bytes(m.key);
  auto context = Clock(m.context);
  return Finish(request_id, fb::CreateGetRequest(fbb_, key, context), out);
}

size_t Encoder::Encode(uint64_t request_id, const DeleteRequestFields& m, std::string* out) {
  auto key = Bytes(m.key);
  auto context = Clock(m.context);
  return Finish(request_id, fb::CreateDeleteRequest(fbb_, key, context), out);
}

size_t Encoder::Encode(uint64_t request_id, const ReplyFields& m, std::string* out) {
  if (m.message.empty() && m.value.empty() && m.version.size() <= kNodesMax) {
    if (size_t size = PatchBareReply(request_id, m, out)) return size;
  }
  auto message = Text(m.message);
  auto value = Bytes(m.value);
  auto version = Clock(m.version);
  return Finish(request_id, fb::CreateReply(fbb_, m.status, message, m.found, value, version), out);
}

size_t Encoder::Encode(uint64_t request_id, const HelloFields& m, std::string* out) {
  auto nonce = Bytes(m.nonce);
  auto auth = Bytes(m.auth);
  auto cluster_id = Text(m.cluster_id);
  return Finish(request_id,
                fb::CreateHello(fbb_, m.cluster_fingerprint, m.node_index, nonce, auth, cluster_id),
                out);
}

size_t Encoder::Encode(uint64_t request_id, const HelloAckFields& m, std::string* out) {
  auto clock = Clock(m.clock);
  auto nonce = Bytes(m.nonce);
  auto auth = Bytes(m.auth);
  auto cluster_id = Text(m.cluster_id);
  return Finish(request_id, fb::CreateHelloAck(fbb_, m.node_index, clock, nonce, auth, cluster_id),
                out);
}

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Write>>> Encoder::Writes(
    std::span<const WriteFields> writes) {
  // Tables of a vector must be finished before the vector starts.
  writes_.clear();
  for (const WriteFields& w : writes) {
    auto clock = Clock(w.clock);
    auto key = Bytes(w.key);
    auto value = Bytes(w.value);
    writes_.push_back(fb::CreateWrite(fbb_, w.origin, clock, w.is_delete, key, value));
  }
  return writes_.empty() ? 0 : fbb_.CreateVector(writes_);
}

size_t Encoder::Encode(uint64_t request_id, const WriteBatchFields& m, std::string* out) {
  auto writes = Writes(m.writes);
  return Finish(request_id, fb::CreateWriteBatch(fbb_, writes), out);
}

size_t Encoder::Encode(uint64_t request_id, const TransferBeginFields& m, std::string* out) {
  auto clock = Clock(m.clock);
  return Finish(request_id, fb::CreateTransferBegin(fbb_, clock), out);
}

size_t Encoder::Encode(uint64_t request_id, const TransferChunkFields& m, std::string* out) {
  auto entries = Writes(m.entries);
  return Finish(request_id, fb::CreateTransferChunk(fbb_, entries), out);
}

size_t Encoder::Encode(uint64_t request_id, const TransferEndFields&, std::string* out) {
  return Finish(request_id, fb::CreateTransferEnd(fbb_), out);
}

size_t Encoder::Encode(uint64_t request_id, const AckFields& m, std::string* out) {
  auto clock = Clock(m.clock);
  auto cluster_id = Text(m.cluster_id);
  return Finish(request_id, fb::CreateAck(fbb_, clock, cluster_id), out);
}

size_t Encoder::Encode(uint64_t request_id, const StatusRequestFields&, std::string* out) {
  return Finish(request_id, fb::CreateStatusRequest(fbb_), out);
}

size_t Encoder::Encode(uint64_t request_id, const StatusReplyFields& m, std::string* out) {
  // Admin traffic: a local vector is fine here.
  std::vector<flatbuffers::Offset<fb::PeerStatus>> peers;
  peers.reserve(m.peers.size());
  for (const PeerStatusFields& p : m.peers) {
    auto address = Text(p.address);
    auto acked = Clock(p.acked);
    peers.push_back(fb::CreatePeerStatus(fbb_, p.node_index, address, p.connected_out,
                                         p.connected_in, p.held, acked));
  }
  auto peer_vector = peers.empty() ? 0 : fbb_.CreateVector(peers);
  auto clock = Clock(m.clock);
  auto cluster_id = Text(m.cluster_id);
  auto loop = fb::CreateLoopStatus(fbb_, m.loop.window_us, m.loop.busy_us, m.loop.cpu_us,
                                   m.loop.turns, m.loop.longest_turn_us, m.loop.cpu_wait_us);
  return Finish(
      request_id,
      fb::CreateStatusReply(fbb_, m.node_index, clock, m.buffered, m.keys, m.accepting_writes,
                            peer_vector, m.log_entries, cluster_id, loop),
      out);
}

size_t Encoder::Encode(uint64_t request_id, const BufferRequestFields& m, std::string* out) {
  return Finish(request_id, fb::CreateBufferRequest(fbb_, m.limit), out);
}

size_t Encoder::Encode(uint64_t request_id, const BufferReplyFields& m, std::string* out) {
  std::vector<flatbuffers::Offset<fb::BufferedWrite>> entries;
  entries.reserve(m.entries.size());
  for (const BufferedWriteFields& e : m.entries) {
    auto key = Bytes(e.key);
    auto missing =
        e.missing.empty() ? 0 : fbb_.CreateVectorOfStructs(e.missing.data(), e.missing.size());
    entries.push_back(fb::CreateBufferedWrite(fbb_, e.origin, e.seq, key, e.is_delete, missing));
  }
  auto entry_vector = entries.empty() ? 0 : fbb_.CreateVector(entries);
  return Finish(request_id, fb::CreateBufferReply(fbb_, entry_vector, m.total), out);
}

size_t Encoder::Encode(uint64_t request_id, const LinkRequestFields& m, std::string* out) {
  return Finish(request_id, fb::CreateLinkRequest(fbb_, m.peer_index, m.hold), out);
}

size_t Encoder::Encode(uint64_t request_id, const ShutdownRequestFields&, std::string* out) {
  return Finish(request_id, fb::CreateShutdownRequest(fbb_), out);
}

size_t Encoder::Encode(uint64_t request_id, const SnapshotRequestFields&, std::string* out) {
  return Finish(request_id, fb::CreateSnapshotRequest(fbb_), out);
}

size_t Encoder::Encode(uint64_t request_id, const AdminReplyFields& m, std::string* out) {
  auto message = Text(m.message);
  return Finish(request_id, fb::CreateAdminReply(fbb_, m.status, message), out);
}

size_t Encoder::Encode(uint64_t request_id, const ErrorFields& m, std::string* out) {
  auto message = Text(m.message);
  return Finish(request_id, fb::CreateError(fbb_, m.status, message), out);
}

size_t Encoder::Encode(uint64_t request_id, const HelloProofFields& m, std::string* out) {
  auto auth = Bytes(m.auth);
  return Finish(request_id, fb::CreateHelloProof(fbb_, auth), out);
}

size_t Encoder::Encode(uint64_t request_id, const ClientAuthFields& m, std::string* out) {
  auto password = Bytes(m.password);
  return Finish(request_id, fb::CreateClientAuth(fbb_, password), out);
}

// Most frames a node sends are replies with neither message nor value (an
// OK to a put or a delete, NOT_FOUND to a get), which differ only in their
// scalars and in the version's counts. Building each one took about 60 ns
// and 800 instructions in FlatBufferBuilder (bench_micro's
// BM_FrameEncodeReply; a tenth of a put's instructions in kvd): the frame
// is built once per clock length, with every scalar field present even at
// its default, and then only patched through FlatBuffers' mutation API
// (flatc --gen-mutable). Patching happens in the frame's own buffer, which
// malloc aligned, before the copy into `out`, where it could be unaligned.
size_t Encoder::PatchBareReply(uint64_t request_id, const ReplyFields& m, std::string* out) {
  if (bare_replies_.size() <= m.version.size()) bare_replies_.resize(m.version.size() + 1);
  std::string& frame = bare_replies_[m.version.size()];
  if (frame.empty()) {
    // A builder of its own, so fbb_'s settings are never touched.
    flatbuffers::FlatBufferBuilder fbb(256);
    fbb.ForceDefaults(true);
    const std::vector<uint64_t> zeros(m.version.size());
    flatbuffers::Offset<flatbuffers::Vector<uint64_t>> version;  // None for an empty clock.
    if (!zeros.empty()) version = fbb.CreateVector(zeros.data(), zeros.size());
    fb::FinishSizePrefixedEnvelopeBuffer(
        fbb,
        fb::CreateEnvelope(fbb, 0, fb::Message::Reply,
                           fb::CreateReply(fbb, fb::Status::OK, 0, false, 0, version).Union()));
    frame.assign(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
  }
  auto* envelope = flatbuffers::GetMutableSizePrefixedRoot<fb::Envelope>(frame.data());
  auto* reply = static_cast<fb::Reply*>(envelope->mutable_message());
  auto* version = reply->mutable_version();
  if (!envelope->mutate_request_id(request_id) || !reply->mutate_status(m.status) ||
      !reply->mutate_found(m.found) || (version ? version->size() : 0) != m.version.size()) {
    return 0;  // Not the shape this expects: build it instead.
  }
  for (size_t i = 0; i < m.version.size(); ++i) {
    version->Mutate(static_cast<flatbuffers::uoffset_t>(i), m.version[i]);
  }
  out->append(frame);
  return frame.size();
}

size_t Encoder::FinishEnvelope(uint64_t request_id, fb::Message type,
                               flatbuffers::Offset<void> message, std::string* out) {
  fb::FinishSizePrefixedEnvelopeBuffer(fbb_, fb::CreateEnvelope(fbb_, request_id, type, message));
  const size_t size = fbb_.GetSize();
  out->append(reinterpret_cast<const char*>(fbb_.GetBufferPointer()), size);
  fbb_.Clear();  // Keeps the memory for the next frame.
  return size;
}

flatbuffers::Offset<flatbuffers::Vector<uint8_t>> Encoder::Bytes(std::string_view bytes) {
  if (bytes.empty()) return 0;
  return fbb_.CreateVector(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

flatbuffers::Offset<flatbuffers::Vector<uint64_t>> Encoder::Clock(std::span<const uint64_t> clock) {
  if (clock.empty()) return 0;
  return fbb_.CreateVector(clock.data(), clock.size());
}

flatbuffers::Offset<flatbuffers::String> Encoder::Text(std::string_view text) {
  if (text.empty()) return 0;
  return fbb_.CreateString(text.data(), text.size());
}

}  // namespace kvd::wire
