#include "schema/check.h"

#include <string>
#include <utility>

#include "schema/auth.h"

namespace kvd::wire {
namespace {

using Result = std::optional<WireError>;

Result Bad(std::string message) { return WireError{fb::Status::BAD_REQUEST, std::move(message)}; }

Result TooLarge(std::string message) {
  return WireError{fb::Status::TOO_LARGE, std::move(message)};
}

std::string Num(uint64_t n) { return std::to_string(n); }

// What a node index must stay below: the cluster size, or kNodesMax when
// the cluster size is unknown.
size_t NodeBound(const Limits& limits) {
  return limits.cluster_size != 0 ? limits.cluster_size : kNodesMax;
}

std::string ClusterText(const Limits& limits) {
  if (limits.cluster_size == 0) return "at most " + Num(kNodesMax) + " nodes";
  return "cluster of " + Num(limits.cluster_size) + " nodes";
}

Result CheckIndex(uint32_t index, const Limits& limits, const std::string& what) {
  if (index < NodeBound(limits)) return {};
  return Bad(what + " " + Num(index) + " out of range (" + ClusterText(limits) + ")");
}

Result CheckStatus(fb::Status status) {
  if (static_cast<uint8_t>(status) <= static_cast<uint8_t>(fb::Status::MAX)) return {};
  return Bad("unknown status " + Num(static_cast<uint8_t>(status)));
}

// The verifier checks the alignment of a vector's length word (4 bytes),
// not of its elements: 8-byte elements could still be misaligned. The frame
// itself is 8-byte aligned (FrameDecoder), so this tests the offset in it.
template <typename Element, typename Vector>
bool IsAligned(const Vector* vector) {
  return vector == nullptr || reinterpret_cast<uintptr_t>(vector->Data()) % alignof(Element) == 0;
}

enum class Presence { kOptional, kRequired };

// An optional clock (a context or version) may be absent or empty; any
// clock present has one entry per node.
Result CheckClock(const flatbuffers::Vector<uint64_t>* clock, const Limits& limits,
                  const std::string& what, Presence presence) {
  if (!IsAligned<uint64_t>(clock)) return Bad(what + " is misaligned");
  const size_t size = clock != nullptr ? clock->size() : 0;
  for (size_t i = 0; i < size; ++i) {
    if (clock->Get(static_cast<flatbuffers::uoffset_t>(i)) > kSeqMax) {
      return Bad(what + " entry " + Num(i) + " is " +
                 Num(clock->Get(static_cast<flatbuffers::uoffset_t>(i))) +
                 ", beyond any possible sequence number");
    }
  }
  if (size == 0 && presence == Presence::kOptional) return {};
  if (limits.cluster_size != 0 ? size == limits.cluster_size : size > 0 && size <= kNodesMax) {
    return {};
  }
  return Bad(what + " has " + Num(size) + " entries (" + ClusterText(limits) + ")");
}

Result CheckKey(const flatbuffers::Vector<uint8_t>* key, const Limits& limits,
                const std::string& where = "") {
  const size_t size = key != nullptr ? key->size() : 0;
  if (size == 0) return Bad(where + "empty key");
  if (size > limits.key_bytes_max) {
    return TooLarge(where + "key of " + Num(size) + " bytes exceeds the " +
                    Num(limits.key_bytes_max) + "-byte cap");
  }
  return {};
}

Result CheckValue(const flatbuffers::Vector<uint8_t>* value, const Limits& limits,
                  const std::string& where = "") {
  const size_t size = value != nullptr ? value->size() : 0;
  if (size > limits.value_bytes_max) {
    return TooLarge(where + "value of " + Num(size) + " bytes exceeds the " +
                    Num(limits.value_bytes_max) + "-byte cap");
  }
  return {};
}

// ---------------------------------------------------------------- client --

Result CheckMessage(const fb::PutRequest& m, const Limits& limits) {
  if (auto e = CheckKey(m.key(), limits)) return e;
  if (auto e = CheckValue(m.value(), limits)) return e;
  return CheckClock(m.context(), limits, "context", Presence::kOptional);
}

Result CheckMessage(const fb::GetRequest& m, const Limits& limits) {
  if (auto e = CheckKey(m.key(), limits)) return e;
  return CheckClock(m.context(), limits, "context", Presence::kOptional);
}

Result CheckMessage(const fb::DeleteRequest& m, const Limits& limits) {
  if (auto e = CheckKey(m.key(), limits)) return e;
  return CheckClock(m.context(), limits, "context", Presence::kOptional);
}

// A reply's value is not held to value_bytes_max: the frame cap bounds it,
// and a client need not know the server's caps.
Result CheckMessage(const fb::Reply& m, const Limits& limits) {
  if (auto e = CheckStatus(m.status())) return e;
  return CheckClock(m.version(), limits, "version", Presence::kOptional);
}

// ------------------------------------------------------------------ peer --

Result CheckClusterId(const flatbuffers::String* id) {
  if (id != nullptr && id->size() > kClusterIdBytesMax) {
    return Bad("cluster_id of " + Num(id->size()) + " bytes exceeds " + Num(kClusterIdBytesMax));
  }
  return {};
}

// Authentication fields are either absent (no cluster secret) or exactly
// their size (auth.h).
Result CheckAuthBytes(const flatbuffers::Vector<uint8_t>* bytes, size_t size,
                      const std::string& what, Presence presence) {
  const size_t have = bytes != nullptr ? bytes->size() : 0;
  if (have == size || (have == 0 && presence == Presence::kOptional)) return {};
  return Bad(what + " has " + Num(have) + " bytes, not " + Num(size));
}

Result CheckMessage(const fb::Hello& m, const Limits& limits) {
  if (auto e = CheckIndex(m.node_index(), limits, "node_index")) return e;
  if (auto e = CheckClusterId(m.cluster_id())) return e;
  // `auth` is unused (the dialer proves itself in HelloProof) and ignored.
  return CheckAuthBytes(m.nonce(), kNonceBytes, "nonce", Presence::kOptional);
}

Result CheckMessage(const fb::HelloAck& m, const Limits& limits) {
  if (auto e = CheckIndex(m.node_index(), limits, "node_index")) return e;
  if (auto e = CheckClusterId(m.cluster_id())) return e;
  if (auto e = CheckClock(m.clock(), limits, "clock", Presence::kRequired)) return e;
  if (auto e = CheckAuthBytes(m.nonce(), kNonceBytes, "nonce", Presence::kOptional)) return e;
  if (auto e = CheckAuthBytes(m.auth(), kProofBytes, "auth", Presence::kOptional)) return e;
  const bool has_nonce = m.nonce() != nullptr && m.nonce()->size() != 0;
  const bool has_auth = m.auth() != nullptr && m.auth()->size() != 0;
  if (has_nonce != has_auth) return Bad("nonce and auth must come together");
  return {};
}

Result CheckMessage(const fb::HelloProof& m, const Limits&) {
  return CheckAuthBytes(m.auth(), kProofBytes, "auth", Presence::kRequired);
}

// The password is compared, never stored: only its size is bounded.
Result CheckMessage(const fb::ClientAuth& m, const Limits&) {
  const size_t size = m.password() != nullptr ? m.password()->size() : 0;
  if (size > kSecretBytesMax) {
    return TooLarge("password of " + Num(size) + " bytes exceeds " + Num(kSecretBytesMax));
  }
  return {};
}

Result CheckWrite(const fb::Write& w, const Limits& limits, const std::string& where) {
  if (auto e = CheckIndex(w.origin(), limits, where + "origin")) return e;
  if (auto e = CheckClock(w.clock(), limits, where + "clock", Presence::kRequired)) return e;
  // With the cluster size unknown the clock length bounds the origin.
  if (w.origin() >= w.clock()->size()) return Bad(where + "origin outside its clock");
  if (w.clock()->Get(w.origin()) == 0) return Bad(where + "clock[origin] is 0");
  if (auto e = CheckKey(w.key(), limits, where)) return e;
  if (auto e = CheckValue(w.value(), limits, where)) return e;
  if (w.is_delete() && w.value() != nullptr && w.value()->size() != 0) {
    return Bad(where + "delete carries a value");
  }
  return {};
}

Result CheckMessage(const fb::WriteBatch& m, const Limits& limits) {
  if (m.writes() == nullptr) return {};
  for (flatbuffers::uoffset_t i = 0; i < m.writes()->size(); ++i) {
    if (auto e = CheckWrite(*m.writes()->Get(i), limits, "write " + Num(i) + ": ")) return e;
  }
  return {};
}

Result CheckMessage(const fb::Ack& m, const Limits& limits) {
  if (auto e = CheckClusterId(m.cluster_id())) return e;
  return CheckClock(m.clock(), limits, "clock", Presence::kRequired);
}

Result CheckMessage(const fb::TransferBegin& m, const Limits& limits) {
  return CheckClock(m.clock(), limits, "clock", Presence::kRequired);
}

Result CheckMessage(const fb::TransferChunk& m, const Limits& limits) {
  if (m.entries() == nullptr) return {};
  for (flatbuffers::uoffset_t i = 0; i < m.entries()->size(); ++i) {
    if (auto e = CheckWrite(*m.entries()->Get(i), limits, "entry " + Num(i) + ": ")) return e;
  }
  return {};
}

Result CheckMessage(const fb::TransferEnd&, const Limits&) { return {}; }

// ----------------------------------------------------------------- admin --

Result CheckMessage(const fb::StatusRequest&, const Limits&) { return {}; }

Result CheckMessage(const fb::StatusReply& m, const Limits& limits) {
  if (auto e = CheckIndex(m.node_index(), limits, "node_index")) return e;
  if (auto e = CheckClock(m.clock(), limits, "clock", Presence::kRequired)) return e;
  if (m.peers() == nullptr) return {};
  for (flatbuffers::uoffset_t i = 0; i < m.peers()->size(); ++i) {
    const fb::PeerStatus& p = *m.peers()->Get(i);
    const std::string where = "peer " + Num(i) + ": ";
    if (auto e = CheckIndex(p.node_index(), limits, where + "node_index")) return e;
    if (auto e = CheckClock(p.acked(), limits, where + "acked", Presence::kOptional)) return e;
  }
  return {};
}

Result CheckMessage(const fb::BufferRequest&, const Limits&) { return {}; }

Result CheckBufferedWrite(const fb::BufferedWrite& w, const Limits& limits,
                          const std::string& where) {
  if (auto e = CheckIndex(w.origin(), limits, where + "origin")) return e;
  if (w.seq() == 0) return Bad(where + "seq is 0");
  if (auto e = CheckKey(w.key(), limits, where)) return e;
  if (w.missing() == nullptr) return {};
  if (!IsAligned<fb::MissingRange>(w.missing())) return Bad(where + "missing is misaligned");
  for (const fb::MissingRange* range : *w.missing()) {
    if (auto e = CheckIndex(range->origin(), limits, where + "missing origin")) return e;
    if (range->seq_first() == 0 || range->seq_first() > range->seq_last()) {
      return Bad(where + "bad missing range " + Num(range->seq_first()) + ".." +
                 Num(range->seq_last()));
    }
  }
  return {};
}

Result CheckMessage(const fb::BufferReply& m, const Limits& limits) {
  if (m.entries() == nullptr) return {};
  for (flatbuffers::uoffset_t i = 0; i < m.entries()->size(); ++i) {
    const std::string where = "entry " + Num(i) + ": ";
    if (auto e = CheckBufferedWrite(*m.entries()->Get(i), limits, where)) return e;
  }
  return {};
}

Result CheckMessage(const fb::LinkRequest& m, const Limits& limits) {
  return CheckIndex(m.peer_index(), limits, "peer_index");
}

Result CheckMessage(const fb::ShutdownRequest&, const Limits&) { return {}; }

Result CheckMessage(const fb::SnapshotRequest&, const Limits&) { return {}; }

Result CheckMessage(const fb::AdminReply& m, const Limits&) { return CheckStatus(m.status()); }

Result CheckMessage(const fb::Error& m, const Limits&) { return CheckStatus(m.status()); }

// Checks the body of a union member; an absent body is refused.
template <typename T>
Result CheckBody(const T* body, const Limits& limits) {
  if (body == nullptr) {
    return Bad(std::string(fb::EnumNameMessage(fb::MessageTraits<T>::enum_value)) +
               " without a body");
  }
  return CheckMessage(*body, limits);
}

}  // namespace

std::optional<WireError> CheckEnvelope(const fb::Envelope& envelope, const Limits& limits) {
  using fb::Message;
  switch (envelope.message_type()) {
    case Message::NONE:
      return Bad("envelope carries no message");
    case Message::PutRequest:
      return CheckBody(envelope.message_as_PutRequest(), limits);
    case Message::GetRequest:
      return CheckBody(envelope.message_as_GetRequest(), limits);
    case Message::DeleteRequest:
      return CheckBody(envelope.message_as_DeleteRequest(), limits);
    case Message::Reply:
      return CheckBody(envelope.message_as_Reply(), limits);
    case Message::Hello:
      return CheckBody(envelope.message_as_Hello(), limits);
    case Message::HelloAck:
      return CheckBody(envelope.message_as_HelloAck(), limits);
    case Message::WriteBatch:
      return CheckBody(envelope.message_as_WriteBatch(), limits);
    case Message::Ack:
      return CheckBody(envelope.message_as_Ack(), limits);
    case Message::StatusRequest:
      return CheckBody(envelope.message_as_StatusRequest(), limits);
    case Message::StatusReply:
      return CheckBody(envelope.message_as_StatusReply(), limits);
    case Message::BufferRequest:
      return CheckBody(envelope.message_as_BufferRequest(), limits);
    case Message::BufferReply:
      return CheckBody(envelope.message_as_BufferReply(), limits);
    case Message::LinkRequest:
      return CheckBody(envelope.message_as_LinkRequest(), limits);
    case Message::ShutdownRequest:
      return CheckBody(envelope.message_as_ShutdownRequest(), limits);
    case Message::AdminReply:
      return CheckBody(envelope.message_as_AdminReply(), limits);
    case Message::Error:
      return CheckBody(envelope.message_as_Error(), limits);
    case Message::HelloProof:
      return CheckBody(envelope.message_as_HelloProof(), limits);
    case Message::ClientAuth:
      return CheckBody(envelope.message_as_ClientAuth(), limits);
    case Message::TransferBegin:
      return CheckBody(envelope.message_as_TransferBegin(), limits);
    case Message::TransferChunk:
      return CheckBody(envelope.message_as_TransferChunk(), limits);
    case Message::TransferEnd:
      return CheckBody(envelope.message_as_TransferEnd(), limits);
    case Message::SnapshotRequest:
      return CheckBody(envelope.message_as_SnapshotRequest(), limits);
  }
  // The verifier accepts union types it does not know; so must we not.
  return Bad("unknown message type " + Num(static_cast<uint8_t>(envelope.message_type())));
}

MessageClass ClassOf(fb::Message type) {
  using fb::Message;
  switch (type) {
    case Message::NONE:
      return MessageClass::kUnknown;
    case Message::PutRequest:
    case Message::GetRequest:
    case Message::DeleteRequest:
      return MessageClass::kClientRequest;
    case Message::Reply:
      return MessageClass::kClientReply;
    case Message::ClientAuth:
      return MessageClass::kClientAuth;
    case Message::Hello:
    case Message::HelloAck:
    case Message::WriteBatch:
    case Message::Ack:
    case Message::HelloProof:
    case Message::TransferBegin:
    case Message::TransferChunk:
    case Message::TransferEnd:
      return MessageClass::kPeer;
    case Message::StatusRequest:
    case Message::BufferRequest:
    case Message::LinkRequest:
    case Message::ShutdownRequest:
    case Message::SnapshotRequest:
      return MessageClass::kAdminRequest;
    case Message::StatusReply:
    case Message::BufferReply:
    case Message::AdminReply:
      return MessageClass::kAdminReply;
    case Message::Error:
      return MessageClass::kError;
  }
  return MessageClass::kUnknown;
}

}  // namespace kvd::wire
