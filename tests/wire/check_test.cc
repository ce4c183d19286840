// CheckEnvelope: meaning checks on frames that pass the verifier.
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <iterator>
#include <string>
#include <vector>

#include "wire_test_util.h"

using namespace kvd::wire;
using namespace kvd::wire::test;
using kvd::fb::Message;
using kvd::fb::Status;

namespace {

// One past the last union member: a type this build does not know.
constexpr uint8_t kUnknownType = static_cast<uint8_t>(kvd::fb::Message::MAX) + 1;

}  // namespace

namespace {

constexpr uint64_t kClock2[] = {1, 1};
constexpr uint64_t kClock4[] = {1, 1, 1, 1};
constexpr uint64_t kClock5[] = {1, 2, 3, 4, 5};
constexpr uint64_t kOriginZero[] = {0, 1, 1};
constexpr uint64_t kAtSeqMax[] = {kSeqMax, 1, 1};
constexpr uint64_t kBeyondSeqMax[] = {1, kSeqMax + 1, 1};

// An envelope of any type number around any body, built by hand.
std::string RawEnvelope(uint8_t type, bool with_body) {
  flatbuffers::FlatBufferBuilder fbb;
  auto body = kvd::fb::CreateStatusRequest(fbb);
  kvd::fb::EnvelopeBuilder envelope(fbb);
  envelope.add_request_id(1);
  envelope.add_message_type(static_cast<Message>(type));
  if (with_body) envelope.add_message(body.Union());
  kvd::fb::FinishSizePrefixedEnvelopeBuffer(fbb, envelope.Finish());
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

template <typename MakeBody>
std::string Custom(MakeBody make_body) {
  Encoder encoder;
  std::string out;
  encoder.Finish(1, make_body(encoder.builder()), &out);
  return out;
}

std::string Batch(const WriteFields& write) {
  const WriteFields writes[] = {{.origin = 0, .clock = kClock3, .key = "ok"}, write};
  return EncodeOne(WriteBatchFields{.writes = writes});
}

struct Case {
  const char* name;
  std::string (*frame)();
  size_t cluster_size;
  bool ok;
  Status status;     // When !ok.
  const char* says;  // A piece of the message, when !ok.
};

// Criterion runs each parameterized test in a fresh process of this binary
// and copies the parameter bytes to it: a parameter may not hold pointers
// (addresses differ per process), so tests get an index into this table.
const Case kCases[] = {
    // Union types.
    {"unknown union type", +[] { return RawEnvelope(kUnknownType, true); }, 3, false,
     Status::BAD_REQUEST, "unknown message type"},
    {"type 255", +[] { return RawEnvelope(255, true); }, 3, false, Status::BAD_REQUEST,
     "unknown message type 255"},
    {"NONE", +[] { return RawEnvelope(0, false); }, 3, false, Status::BAD_REQUEST, "no message"},
    {"known type, no body",
     +[] { return RawEnvelope(static_cast<uint8_t>(Message::PutRequest), false); }, 3, false,
     Status::BAD_REQUEST, "PutRequest without a body"},
    // Sequence numbers no node can reach.
    {"ack clock at kSeqMax", +[] { return EncodeOne(AckFields{.clock = kAtSeqMax}); }, 3, true,
     Status::OK, ""},
    {"ack clock beyond kSeqMax", +[] { return EncodeOne(AckFields{.clock = kBeyondSeqMax}); }, 3,
     false, Status::BAD_REQUEST, "beyond any possible sequence number"},
    {"hello-ack clock beyond kSeqMax",
     +[] { return EncodeOne(HelloAckFields{.node_index = 1, .clock = kBeyondSeqMax}); }, 3, false,
     Status::BAD_REQUEST, "beyond any possible sequence number"},
    {"write clock beyond kSeqMax",
     +[] { return Batch({.origin = 0, .clock = kBeyondSeqMax, .key = "k"}); }, 3, false,
     Status::BAD_REQUEST, "beyond any possible sequence number"},
    {"context beyond kSeqMax",
     +[] { return EncodeOne(GetRequestFields{.key = "k", .context = kBeyondSeqMax}); }, 3, false,
     Status::BAD_REQUEST, "beyond any possible sequence number"},
    // Clock lengths.
    {"ack clock too short", +[] { return EncodeOne(AckFields{.clock = kClock2}); }, 3, false,
     Status::BAD_REQUEST, "clock has 2 entries (cluster of 3 nodes)"},
    {"ack clock too long", +[] { return EncodeOne(AckFields{.clock = kClock4}); }, 3, false,
     Status::BAD_REQUEST, "clock has 4 entries"},
    {"ack without clock", +[] { return EncodeOne(AckFields{}); }, 3, false, Status::BAD_REQUEST,
     "clock has 0 entries"},
    {"hello_ack without clock", +[] { return EncodeOne(HelloAckFields{.node_index = 1}); }, 3,
     false, Status::BAD_REQUEST, "clock has 0 entries"},
    {"put context wrong length",
     +[] { return EncodeOne(PutRequestFields{.key = "k", .context = kClock4}); }, 3, false,
     Status::BAD_REQUEST, "context has 4 entries"},
    {"get context wrong length",
     +[] { return EncodeOne(GetRequestFields{.key = "k", .context = kClock2}); }, 3, false,
     Status::BAD_REQUEST, "context has 2 entries"},
    {"reply version wrong length", +[] { return EncodeOne(ReplyFields{.version = kClock2}); }, 3,
     false, Status::BAD_REQUEST, "version has 2 entries"},
    {"write clock wrong length", +[] { return Batch({.origin = 0, .clock = kClock2, .key = "k"}); },
     3, false, Status::BAD_REQUEST, "write 1: clock has 2 entries"},
    {"status reply peer acked wrong length",
     +[] {
       static const PeerStatusFields peers[] = {{.node_index = 1, .acked = kClock4}};
       return EncodeOne(StatusReplyFields{.clock = kClock3, .peers = peers});
     },
     3, false, Status::BAD_REQUEST, "peer 0: acked has 4 entries"},
    {"absent context is fine", +[] { return EncodeOne(PutRequestFields{.key = "k"}); }, 3, true,
     Status::OK, ""},
    // Node indexes.
    {"hello node_index = cluster size", +[] { return EncodeOne(HelloFields{.node_index = 3}); }, 3,
     false, Status::BAD_REQUEST, "node_index 3 out of range (cluster of 3 nodes)"},
    {"hello node_index last", +[] { return EncodeOne(HelloFields{.node_index = 2}); }, 3, true,
     Status::OK, ""},
    {"hello_ack node_index",
     +[] { return EncodeOne(HelloAckFields{.node_index = 7, .clock = kClock3}); }, 3, false,
     Status::BAD_REQUEST, "node_index 7"},
    {"link peer_index", +[] { return EncodeOne(LinkRequestFields{.peer_index = 3}); }, 3, false,
     Status::BAD_REQUEST, "peer_index 3"},
    {"status reply node_index",
     +[] { return EncodeOne(StatusReplyFields{.node_index = 4, .clock = kClock3}); }, 3, false,
     Status::BAD_REQUEST, "node_index 4"},
    {"status reply peer node_index",
     +[] {
       static const PeerStatusFields peers[] = {{.node_index = 9}};
       return EncodeOne(StatusReplyFields{.clock = kClock3, .peers = peers});
     },
     3, false, Status::BAD_REQUEST, "peer 0: node_index 9"},
    {"write origin out of range",
     +[] { return Batch({.origin = 3, .clock = kClock3, .key = "k"}); }, 3, false,
     Status::BAD_REQUEST, "write 1: origin 3 out of range"},
    {"write clock[origin] = 0",
     +[] { return Batch({.origin = 0, .clock = kOriginZero, .key = "k"}); }, 3, false,
     Status::BAD_REQUEST, "write 1: clock[origin] is 0"},
    {"buffered write origin",
     +[] {
       static const BufferedWriteFields e[] = {{.origin = 5, .seq = 1, .key = "k"}};
       return EncodeOne(BufferReplyFields{.entries = e});
     },
     3, false, Status::BAD_REQUEST, "entry 0: origin 5"},
    {"missing range origin",
     +[] {
       static const kvd::fb::MissingRange m[] = {{3, 1, 1}};
       static const BufferedWriteFields e[] = {{.origin = 1, .seq = 1, .key = "k", .missing = m}};
       return EncodeOne(BufferReplyFields{.entries = e});
     },
     3, false, Status::BAD_REQUEST, "missing origin 3"},
    {"missing range inverted",
     +[] {
       static const kvd::fb::MissingRange m[] = {{0, 5, 4}};
       static const BufferedWriteFields e[] = {{.origin = 1, .seq = 1, .key = "k", .missing = m}};
       return EncodeOne(BufferReplyFields{.entries = e});
     },
     3, false, Status::BAD_REQUEST, "bad missing range 5..4"},
    // Keys and values.
    {"empty key put", +[] { return EncodeOne(PutRequestFields{.value = "v"}); }, 3, false,
     Status::BAD_REQUEST, "empty key"},
    {"empty key get", +[] { return EncodeOne(GetRequestFields{}); }, 3, false, Status::BAD_REQUEST,
     "empty key"},
    {"empty key delete", +[] { return EncodeOne(DeleteRequestFields{}); }, 3, false,
     Status::BAD_REQUEST, "empty key"},
    {"empty key in batch", +[] { return Batch({.origin = 0, .clock = kClock3}); }, 3, false,
     Status::BAD_REQUEST, "write 1: empty key"},
    {"key at cap", +[] { return EncodeOne(GetRequestFields{.key = std::string(1024, 'k')}); }, 3,
     true, Status::OK, ""},
    {"key over cap", +[] { return EncodeOne(PutRequestFields{.key = std::string(1025, 'k')}); }, 3,
     false, Status::TOO_LARGE, "key of 1025 bytes exceeds the 1024-byte cap"},
    {"key over cap in delete",
     +[] { return EncodeOne(DeleteRequestFields{.key = std::string(5000, 'k')}); }, 3, false,
     Status::TOO_LARGE, "key of 5000 bytes"},
    {"value at cap",
     +[] { return EncodeOne(PutRequestFields{.key = "k", .value = std::string(1 << 20, 'v')}); }, 3,
     true, Status::OK, ""},
    {"value over cap",
     +[] {
       return EncodeOne(PutRequestFields{.key = "k", .value = std::string((1 << 20) + 1, 'v')});
     },
     3, false, Status::TOO_LARGE, "value of 1048577 bytes exceeds the 1048576-byte cap"},
    {"value over cap in batch",
     +[] {
       static const std::string big((1 << 20) + 1, 'v');
       return Batch({.origin = 1, .clock = kClock3, .key = "k", .value = big});
     },
     3, false, Status::TOO_LARGE, "write 1: value of 1048577 bytes"},
    {"delete carrying a value",
     +[] {
       return Batch({.origin = 0, .clock = kClock3, .is_delete = true, .key = "k", .value = "v"});
     },
     3, false, Status::BAD_REQUEST, "delete carries a value"},
    // Enum ranges.
    {"reply status 8",
     +[] { return Custom([](auto& fbb) { return kvd::fb::CreateReply(fbb, Status{8}); }); }, 3,
     false, Status::BAD_REQUEST, "unknown status 8"},
    {"admin reply status 200",
     +[] { return Custom([](auto& fbb) { return kvd::fb::CreateAdminReply(fbb, Status{200}); }); },
     3, false, Status::BAD_REQUEST, "unknown status 200"},
    {"error status 9",
     +[] { return Custom([](auto& fbb) { return kvd::fb::CreateError(fbb, Status{9}); }); }, 3,
     false, Status::BAD_REQUEST, "unknown status 9"},
    // Cluster size unknown (clients, kvctl).
    {"unknown cluster, 5-entry clock", +[] { return EncodeOne(AckFields{.clock = kClock5}); }, 0,
     true, Status::OK, ""},
    {"unknown cluster, 65-entry clock",
     +[] {
       static const std::vector<uint64_t> clock(65, 1);
       return EncodeOne(AckFields{.clock = clock});
     },
     0, false, Status::BAD_REQUEST, "clock has 65 entries (at most 64 nodes)"},
    {"unknown cluster, index 63", +[] { return EncodeOne(HelloFields{.node_index = 63}); }, 0, true,
     Status::OK, ""},
    {"unknown cluster, index 64", +[] { return EncodeOne(HelloFields{.node_index = 64}); }, 0,
     false, Status::BAD_REQUEST, "node_index 64 out of range (at most 64 nodes)"},
    {"unknown cluster, origin outside its clock",
     +[] { return Batch({.origin = 3, .clock = kClock3, .key = "k"}); }, 0, false,
     Status::BAD_REQUEST, "write 1: origin outside its clock"},
};

}  // namespace

ParameterizedTestParameters(check, cases) {
  static size_t indexes[std::size(kCases)];
  for (size_t i = 0; i < std::size(kCases); ++i) indexes[i] = i;
  return cr_make_param_array(size_t, indexes, std::size(kCases));
}

ParameterizedTest(size_t* index, check, cases) {
  const Case* c = &kCases[*index];
  std::vector<uint64_t> storage;
  const kvd::fb::Envelope* env = DecodeOne(c->frame(), &storage);
  Limits limits;
  limits.cluster_size = c->cluster_size;
  auto error = CheckEnvelope(*env, limits);
  if (c->ok) {
    cr_assert(!error.has_value(), "%s: refused: %s", c->name, error ? error->message.c_str() : "");
    return;
  }
  cr_assert(error.has_value(), "%s: accepted", c->name);
  cr_assert_eq(error->status, c->status, "%s: status %d (%s)", c->name,
               static_cast<int>(error->status), error->message.c_str());
  cr_assert(error->message.find(c->says) != std::string::npos, "%s: message \"%s\", want \"%s\"",
            c->name, error->message.c_str(), c->says);
}

// The verifier checks a vector's 4-byte length word for alignment, not its
// elements: a [ulong] clock can sit at 4 mod 8 and still verify. Reading it
// would be a misaligned load, so CheckEnvelope refuses it.
Test(check, misaligned_clock_is_refused) {
  bool seen = false;
  for (int pad = 0; pad < 2 && !seen; ++pad) {
    const std::string frame = Custom([pad](flatbuffers::FlatBufferBuilder& fbb) {
      fbb.StartVector(6 + pad, sizeof(uint32_t));
      for (int i = 0; i < 6 + pad; ++i) fbb.PushElement<uint32_t>(1);
      // Three 8-byte entries laid out over six 4-byte ones.
      flatbuffers::Offset<flatbuffers::Vector<uint64_t>> clock(fbb.EndVector(3));
      return kvd::fb::CreateAck(fbb, clock);
    });
    std::vector<uint64_t> storage;
    const kvd::fb::Envelope* env = DecodeOne(frame, &storage);  // Passes the verifier.
    const auto* clock = env->message_as_Ack()->clock();
    if (reinterpret_cast<uintptr_t>(clock->Data()) % 8 == 0) continue;
    seen = true;
    auto error = CheckEnvelope(*env, ThreeNodes());
    cr_assert(error.has_value());
    cr_assert_eq(error->status, Status::BAD_REQUEST);
    cr_assert(error->message.find("misaligned") != std::string::npos, "%s", error->message.c_str());
  }
  cr_assert(seen, "could not build a misaligned clock");
}

Test(check, class_of_every_type) {
  struct {
    Message type;
    MessageClass want;
  } const table[] = {
      {Message::NONE, MessageClass::kUnknown},
      {Message::PutRequest, MessageClass::kClientRequest},
      {Message::GetRequest, MessageClass::kClientRequest},
      {Message::DeleteRequest, MessageClass::kClientRequest},
      {Message::Reply, MessageClass::kClientReply},
      {Message::Hello, MessageClass::kPeer},
      {Message::HelloAck, MessageClass::kPeer},
      {Message::WriteBatch, MessageClass::kPeer},
      {Message::Ack, MessageClass::kPeer},
      {Message::StatusRequest, MessageClass::kAdminRequest},
      {Message::StatusReply, MessageClass::kAdminReply},
      {Message::BufferRequest, MessageClass::kAdminRequest},
      {Message::BufferReply, MessageClass::kAdminReply},
      {Message::LinkRequest, MessageClass::kAdminRequest},
      {Message::ShutdownRequest, MessageClass::kAdminRequest},
      {Message::AdminReply, MessageClass::kAdminReply},
      {Message::Error, MessageClass::kError},
      {Message::HelloProof, MessageClass::kPeer},
      {Message::ClientAuth, MessageClass::kClientAuth},
      {Message::TransferBegin, MessageClass::kPeer},
      {Message::TransferChunk, MessageClass::kPeer},
      {Message::TransferEnd, MessageClass::kPeer},
      {Message::SnapshotRequest, MessageClass::kAdminRequest},
      {static_cast<Message>(kUnknownType), MessageClass::kUnknown},
  };
  for (const auto& row : table) {
    cr_assert_eq(ClassOf(row.type), row.want, "type %d", static_cast<int>(row.type));
  }
}
