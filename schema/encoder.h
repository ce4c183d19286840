// Encoder: builds frames (size-prefixed Envelopes) and appends them to an
// output byte buffer.
//
// One Encoder can serve every connection of a thread: it owns a reusable
// FlatBufferBuilder, so after the first few frames encoding allocates
// nothing (the output string's own growth aside). Each Encode() builds the
// message in the builder and copies the finished frame once, into `out`.
//
// Every message kind has a plain *Fields struct of views (bytes as
// std::string_view, clocks as std::span<const uint64_t>); the views need
// only live for the call. An empty view is left out of the frame, which
// readers see as empty too (absent context = no context).
//
// The caller keeps frames under the receiver's frame_bytes_max (for
// example by splitting write batches); Encode() returns each frame's size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "schema/kv_generated.h"

namespace kvd::wire {

// ---------------------------------------------------------------- client --

struct PutRequestFields {
  std::string_view key = {};
  std::string_view value = {};
  std::span<const uint64_t> context = {};
};

struct GetRequestFields {
  std::string_view key = {};
  std::span<const uint64_t> context = {};
};

struct DeleteRequestFields {
  std::string_view key = {};
  std::span<const uint64_t> context = {};
};

struct ReplyFields {
  fb::Status status = fb::Status::OK;
  std::string_view message = {};
  bool found = false;
  std::string_view value = {};
  std::span<const uint64_t> version = {};
};

struct ClientAuthFields {
  std::string_view password = {};
};

// ------------------------------------------------------------------ peer --

struct HelloFields {
  uint64_t cluster_fingerprint = 0;
  uint32_t node_index = 0;
  std::string_view nonce = {};
  std::string_view auth = {};
  std::string_view cluster_id = {};
};

struct HelloAckFields {
  uint32_t node_index = 0;
  std::span<const uint64_t> clock = {};
  std::string_view nonce = {};
  std::string_view auth = {};
  std::string_view cluster_id = {};
};

struct HelloProofFields {
  std::string_view auth = {};
};

struct WriteFields {
  uint32_t origin = 0;
  std::span<const uint64_t> clock = {};
  bool is_delete = false;
  std::string_view key = {};
  std::string_view value = {};
};

struct WriteBatchFields {
  std::span<const WriteFields> writes = {};
};

struct AckFields {
  std::span<const uint64_t> clock = {};
  std::string_view cluster_id = {};
};

struct TransferBeginFields {
  std::span<const uint64_t> clock = {};
};

struct TransferChunkFields {
  std::span<const WriteFields> entries = {};
};

struct TransferEndFields {};

// ----------------------------------------------------------------- admin --

struct StatusRequestFields {};

struct PeerStatusFields {
  uint32_t node_index = 0;
  std::string_view address = {};
  bool connected_out = false;
  bool connected_in = false;
  bool held = false;
  std::span<const uint64_t> acked = {};
};

struct LoopStatusFields {
  uint64_t window_us = 0;
  uint64_t busy_us = 0;
  uint64_t cpu_us = 0;
  uint64_t turns = 0;
  uint64_t longest_turn_us = 0;
  uint64_t cpu_wait_us = 0;
};

struct StatusReplyFields {
  uint32_t node_index = 0;
  std::span<const uint64_t> clock = {};
  uint64_t buffered = 0;
  uint64_t keys = 0;
  bool accepting_writes = false;
  std::span<const PeerStatusFields> peers = {};
  uint64_t log_entries = 0;
  std::string_view cluster_id = {};
  LoopStatusFields loop = {};
};

struct BufferRequestFields {
  uint32_t limit = 0;
};

struct BufferedWriteFields {
  uint32_t origin = 0;
  uint64_t seq = 0;
  std::string_view key = {};
  bool is_delete = false;
  std::span<const fb::MissingRange> missing = {};
};

struct BufferReplyFields {
  std::span<const BufferedWriteFields> entries = {};
  uint64_t total = 0;
};

struct LinkRequestFields {
  uint32_t peer_index = 0;
  bool hold = false;
};

struct ShutdownRequestFields {};

struct SnapshotRequestFields {};

struct AdminReplyFields {
  fb::Status status = fb::Status::OK;
  std::string_view message = {};
};

// ----------------------------------------------------------------- error --

struct ErrorFields {
  fb::Status status = fb::Status::BAD_REQUEST;
  std::string_view message = {};
};

class Encoder {
 public:
  explicit Encoder(size_t initial_bytes = 1024);

  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  // Each appends one frame carrying `request_id` and the message to *out
  // and returns the frame's size in bytes (size prefix included).
  size_t Encode(uint64_t request_id, const PutRequestFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const GetRequestFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const DeleteRequestFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const ReplyFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const HelloFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const HelloAckFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const WriteBatchFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const AckFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const TransferBeginFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const TransferChunkFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const TransferEndFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const StatusRequestFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const StatusReplyFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const BufferRequestFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const BufferReplyFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const LinkRequestFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const ShutdownRequestFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const SnapshotRequestFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const AdminReplyFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const ErrorFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const HelloProofFields& m, std::string* out);
  size_t Encode(uint64_t request_id, const ClientAuthFields& m, std::string* out);

  // Escape hatch for frames the helpers above cannot express (tests build
  // odd frames this way): build a message table T in builder(), then
  // Finish() wraps it in an Envelope and appends the frame.
  // REQUIRES: nothing else is under construction in builder() when an
  // Encode() is called.
  flatbuffers::FlatBufferBuilder& builder() { return fbb_; }
  template <typename T>
  size_t Finish(uint64_t request_id, flatbuffers::Offset<T> message, std::string* out) {
    return FinishEnvelope(request_id, fb::MessageTraits<T>::enum_value, message.Union(), out);
  }

 private:
  size_t FinishEnvelope(uint64_t request_id, fb::Message type, flatbuffers::Offset<void> message,
                        std::string* out);
  // A Reply without message and value, from a prepared frame (see the .cc);
  // 0 if the frame does not have the expected shape.
  size_t PatchBareReply(uint64_t request_id, const ReplyFields& m, std::string* out);
  // Null offsets (absent fields) for empty input.
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> Bytes(std::string_view bytes);
  flatbuffers::Offset<flatbuffers::Vector<uint64_t>> Clock(std::span<const uint64_t> clock);
  flatbuffers::Offset<flatbuffers::String> Text(std::string_view text);
  // The vector of Write tables of a batch or a transfer chunk.
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Write>>> Writes(
      std::span<const WriteFields> writes);

  flatbuffers::FlatBufferBuilder fbb_;
  // Reused for the Write tables of a batch, so batches do not allocate.
  std::vector<flatbuffers::Offset<fb::Write>> writes_;
  // Bare reply frames, by version length, built on first use.
  std::vector<std::string> bare_replies_;
};

}  // namespace kvd::wire
