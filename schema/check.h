// Meaning checks: the third stage of PROTOCOL.md's validation order (size
// prefix cap, then the FlatBuffers verifier, then these). The verifier
// proves a frame is memory-safe to walk; these prove it makes sense: a known
// message type with a body, statuses in range, node indexes and clock
// lengths that fit the cluster, clock vectors aligned for reading, keys and
// values within their caps.
#pragma once

#include <cstdint>
#include <optional>

#include "schema/kv_generated.h"
#include "schema/limits.h"
#include "schema/wire_error.h"

namespace kvd::wire {

// Checks every field of the envelope's message. Returns nothing if the
// message may be used, else the status and message to answer with:
// TOO_LARGE for an oversized key or value, BAD_REQUEST for anything else.
// REQUIRES: the envelope comes from a verified frame (FrameDecoder).
std::optional<WireError> CheckEnvelope(const fb::Envelope& envelope, const Limits& limits);

// Which side of which connection sends a message type; a receiver refuses
// types that do not belong on the connection (PROTOCOL.md, "Message flow").
enum class MessageClass : uint8_t {
  kUnknown,        // NONE or a type this build does not know.
  kClientRequest,  // PutRequest, GetRequest, DeleteRequest.
  kClientAuth,     // ClientAuth.
  kClientReply,    // Reply.
  kPeer,           // Hello, HelloAck, WriteBatch, Ack, HelloProof.
  kAdminRequest,   // StatusRequest, BufferRequest, LinkRequest, ShutdownRequest.
  kAdminReply,     // StatusReply, BufferReply, AdminReply.
  kError,          // Error.
};

MessageClass ClassOf(fb::Message type);

}  // namespace kvd::wire
