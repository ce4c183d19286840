// Round trips: every message kind through Encoder -> FrameDecoder ->
// CheckEnvelope -> views.
#include <criterion/criterion.h>

#include <iterator>
#include <span>
#include <string>
#include <vector>

#include "schema/limits.h"
#include "wire_test_util.h"

using namespace kvd::wire;
using namespace kvd::wire::test;
using kvd::fb::Message;
using kvd::fb::Status;

namespace {

// Decodes one frame, checks its id, type and meaning; returns the envelope.
const kvd::fb::Envelope* RoundTrip(const std::string& bytes, Message type,
                                   std::vector<uint64_t>* storage, uint64_t request_id = 7) {
  const kvd::fb::Envelope* env = DecodeOne(bytes, storage);
  cr_assert_eq(env->request_id(), request_id);
  cr_assert_eq(env->message_type(), type, "type %s", kvd::fb::EnumNameMessage(type));
  auto error = CheckEnvelope(*env, ThreeNodes());
  cr_assert(!error.has_value(), "check: %s", error ? error->message.c_str() : "");
  return env;
}

}  // namespace

// The wire numbers of DESIGN §3 and kv.fbs; kvd::core::Code uses the same.
static_assert(static_cast<int>(Status::OK) == 0 && static_cast<int>(Status::NOT_FOUND) == 1 &&
              static_cast<int>(Status::BAD_REQUEST) == 2 &&
              static_cast<int>(Status::TOO_LARGE) == 3 && static_cast<int>(Status::TIMEOUT) == 4 &&
              static_cast<int>(Status::UNAVAILABLE) == 5 &&
              static_cast<int>(Status::UNAUTHORIZED) == 6 &&
              static_cast<int>(Status::INTERNAL) == 7);

Test(roundtrip, put_request) {
  std::vector<uint64_t> s;
  const std::string binary_value("v\0\xff", 3);
  auto env =
      RoundTrip(EncodeOne(PutRequestFields{.key = "x", .value = binary_value, .context = kClock3}),
                Message::PutRequest, &s);
  auto m = env->message_as_PutRequest();
  cr_assert_eq(AsBytes(m->key()), "x");
  cr_assert_eq(AsBytes(m->value()), binary_value);
  cr_assert(SameClock(AsClock(m->context()), kClock3));
}

Test(roundtrip, get_request) {
  std::vector<uint64_t> s;
  auto env = RoundTrip(EncodeOne(GetRequestFields{.key = "key", .context = kClock3}),
                       Message::GetRequest, &s);
  auto m = env->message_as_GetRequest();
  cr_assert_eq(AsBytes(m->key()), "key");
  cr_assert(SameClock(AsClock(m->context()), kClock3));
}

Test(roundtrip, delete_request) {
  std::vector<uint64_t> s;
  auto env = RoundTrip(EncodeOne(DeleteRequestFields{.key = "gone", .context = {}}),
                       Message::DeleteRequest, &s);
  auto m = env->message_as_DeleteRequest();
  cr_assert_eq(AsBytes(m->key()), "gone");
  cr_assert_null(m->context(), "an empty context is left out");
  cr_assert(AsClock(m->context()).empty());
}

Test(roundtrip, reply) {
  std::vector<uint64_t> s;
  auto env = RoundTrip(EncodeOne(ReplyFields{.status = Status::NOT_FOUND,
                                             .message = "no such key",
                                             .found = false,
                                             .value = {},
                                             .version = kClock3},
                                 ~0ULL),
                       Message::Reply, &s, ~0ULL);
  auto m = env->message_as_Reply();
  cr_assert_eq(m->status(), Status::NOT_FOUND);
  cr_assert_eq(AsText(m->message()), "no such key");
  cr_assert_not(m->found());
  cr_assert(AsBytes(m->value()).empty());
  cr_assert(SameClock(AsClock(m->version()), kClock3));
}

// Replies with neither message nor value come from a prepared frame that
// is patched (encoder.cc): every field must still arrive as given, frame
// after frame from one encoder, whatever the previous frame held, and
// each frame must pass the verifier and CheckEnvelope (RoundTrip).
Test(roundtrip, bare_replies_from_one_encoder) {
  Encoder encoder;
  const uint64_t one[] = {5};
  const uint64_t big[] = {1ULL << 40, 0, 123456789};
  struct Case {
    uint64_t id;
    Status status;
    bool found;
    std::span<const uint64_t> version;
  };
  const Case cases[] = {{1, Status::OK, false, kClock3}, {~0ULL, Status::NOT_FOUND, true, big},
                        {0, Status::OK, true, kClock3},  {42, Status::TIMEOUT, false, big},
                        {7, Status::OK, false, one},     {8, Status::UNAVAILABLE, false, {}},
                        {9, Status::OK, false, kClock3}};
  for (const Case& c : cases) {
    std::string out;
    const size_t size = encoder.Encode(
        c.id, ReplyFields{.status = c.status, .found = c.found, .version = c.version}, &out);
    cr_assert_eq(size, out.size());
    std::vector<uint64_t> s;
    const kvd::fb::Envelope* env = DecodeOne(out, &s);
    cr_assert_eq(env->request_id(), c.id);
    cr_assert_eq(env->message_type(), Message::Reply);
    auto m = env->message_as_Reply();
    cr_assert_eq(m->status(), c.status);
    cr_assert_eq(m->found(), c.found);
    cr_assert(AsText(m->message()).empty());
    cr_assert(AsBytes(m->value()).empty());
    cr_assert(SameClock(AsClock(m->version()), c.version), "id %llu",
              static_cast<unsigned long long>(c.id));
    if (c.version.size() == std::size(kClock3)) {
      auto error = CheckEnvelope(*env, ThreeNodes());
      cr_assert(!error.has_value(), "check: %s", error ? error->message.c_str() : "");
    }
  }
}

// A second encoder's frames follow odd-length bytes already in `out`,
// one with a value among them (built, not patched): each must be exactly
// the frame a fresh encoder gives for the same fields, so nothing of one
// patch leaks into the next, and each still decodes.
Test(roundtrip, bare_replies_back_to_back) {
  Encoder encoder;
  std::string out = "x";
  std::vector<size_t> sizes;
  auto fields = [](uint64_t id) {
    const bool with_value = id == 3;
    return ReplyFields{.status = id == 4 ? Status::NOT_FOUND : Status::OK,
                       .found = with_value,
                       .value = with_value ? "v" : std::string_view(),
                       .version = kClock3};
  };
  for (uint64_t id = 1; id <= 5; ++id) sizes.push_back(encoder.Encode(id, fields(id), &out));
  size_t at = 1;
  for (uint64_t id = 1; id <= 5; ++id) {
    const std::string frame = out.substr(at, sizes[id - 1]);
    cr_assert(frame == EncodeOne(fields(id), id), "frame %llu differs from a fresh encoder's",
              static_cast<unsigned long long>(id));
    std::vector<uint64_t> s;
    auto env = RoundTrip(frame, Message::Reply, &s, id);
    cr_assert_eq(AsBytes(env->message_as_Reply()->value()), id == 3 ? "v" : "");
    at += sizes[id - 1];
  }
  cr_assert_eq(at, out.size());
}

// The bare path is the one taken: its frames carry every scalar, even at
// its default, so they are the same size whatever the id, status and
// `found` (a built frame leaves out a request id of 0 and a false `found`).
Test(encoder, bare_replies_have_one_size_per_clock_length) {
  Encoder encoder;
  std::string a, b;
  encoder.Encode(0, ReplyFields{.version = kClock3}, &a);
  encoder.Encode(~0ULL, ReplyFields{.status = Status::TIMEOUT, .found = true, .version = kClock3},
                 &b);
  cr_assert_eq(a.size(), b.size(), "%zu against %zu bytes", a.size(), b.size());
}

// Clocks as long as a cluster may be (kNodesMax entries) are patched, and
// a longer one is built; both arrive whole.
Test(roundtrip, bare_replies_at_the_clock_limit) {
  Encoder encoder;
  for (size_t n : {kNodesMax, kNodesMax + 1}) {
    std::vector<uint64_t> clock(n);
    for (size_t i = 0; i < n; ++i) clock[i] = 1000 + i;
    std::string out;
    encoder.Encode(11, ReplyFields{.found = true, .version = clock}, &out);
    std::vector<uint64_t> s;
    const kvd::fb::Envelope* env = DecodeOne(out, &s);
    cr_assert_eq(env->request_id(), 11u);
    cr_assert(env->message_as_Reply()->found());
    cr_assert(SameClock(AsClock(env->message_as_Reply()->version()), clock), "%zu entries", n);
  }
}

Test(roundtrip, hello) {
  std::vector<uint64_t> s;
  auto env = RoundTrip(EncodeOne(HelloFields{.cluster_fingerprint = 0x3a948c08660d056eULL,
                                             .node_index = 2,
                                             .nonce = std::string(32, 'n'),
                                             .auth = "a"}),
                       Message::Hello, &s);
  auto m = env->message_as_Hello();
  cr_assert_eq(m->cluster_fingerprint(), 0x3a948c08660d056eULL);
  cr_assert_eq(m->node_index(), 2u);
  cr_assert_eq(AsBytes(m->nonce()), std::string(32, 'n'));
  cr_assert_eq(AsBytes(m->auth()), "a");
}

Test(roundtrip, hello_ack) {
  std::vector<uint64_t> s;
  auto env = RoundTrip(EncodeOne(HelloAckFields{.node_index = 1, .clock = kClock3}),
                       Message::HelloAck, &s);
  auto m = env->message_as_HelloAck();
  cr_assert_eq(m->node_index(), 1u);
  cr_assert(SameClock(AsClock(m->clock()), kClock3));
  cr_assert_null(m->nonce());
  cr_assert_null(m->auth());
}

Test(roundtrip, write_batch) {
  std::vector<uint64_t> s;
  const uint64_t c1[] = {1, 0, 0};
  const uint64_t c2[] = {1, 1, 0};
  const WriteFields writes[] = {
      {.origin = 0, .clock = c1, .is_delete = false, .key = "x", .value = "1"},
      {.origin = 1, .clock = c2, .is_delete = true, .key = "x", .value = {}},
  };
  auto env = RoundTrip(EncodeOne(WriteBatchFields{.writes = writes}), Message::WriteBatch, &s);
  auto batch = env->message_as_WriteBatch()->writes();
  cr_assert_eq(batch->size(), 2u);
  for (unsigned i = 0; i < 2; ++i) {
    const kvd::fb::Write* w = batch->Get(i);
    cr_assert_eq(w->origin(), writes[i].origin);
    cr_assert(SameClock(AsClock(w->clock()), writes[i].clock));
    cr_assert_eq(w->is_delete(), writes[i].is_delete);
    cr_assert_eq(AsBytes(w->key()), writes[i].key);
    cr_assert_eq(AsBytes(w->value()), writes[i].value);
  }
}

Test(roundtrip, empty_write_batch) {
  std::vector<uint64_t> s;
  auto env = RoundTrip(EncodeOne(WriteBatchFields{}), Message::WriteBatch, &s);
  cr_assert_null(env->message_as_WriteBatch()->writes());
}

Test(roundtrip, ack) {
  std::vector<uint64_t> s;
  auto env = RoundTrip(EncodeOne(AckFields{.clock = kClock3}), Message::Ack, &s);
  cr_assert(SameClock(AsClock(env->message_as_Ack()->clock()), kClock3));
}

Test(roundtrip, status_request) {
  std::vector<uint64_t> s;
  auto env = RoundTrip(EncodeOne(StatusRequestFields{}), Message::StatusRequest, &s);
  cr_assert_not_null(env->message_as_StatusRequest());
}

Test(roundtrip, status_reply) {
  std::vector<uint64_t> s;
  const uint64_t acked[] = {1, 1, 0};
  const PeerStatusFields peers[] = {
      {.node_index = 1,
       .address = "127.0.0.1:7002",
       .connected_out = true,
       .connected_in = false,
       .held = true,
       .acked = acked},
      {.node_index = 2,
       .address = "127.0.0.1:7003",
       .connected_out = false,
       .connected_in = true,
       .held = false,
       .acked = {}},
  };
  auto env = RoundTrip(EncodeOne(StatusReplyFields{.node_index = 0,
                                                   .clock = kClock3,
                                                   .buffered = 4,
                                                   .keys = 5,
                                                   .accepting_writes = true,
                                                   .peers = peers,
                                                   .log_entries = 6}),
                       Message::StatusReply, &s);
  auto m = env->message_as_StatusReply();
  cr_assert_eq(m->node_index(), 0u);
  cr_assert(SameClock(AsClock(m->clock()), kClock3));
  cr_assert_eq(m->buffered(), 4u);
  cr_assert_eq(m->keys(), 5u);
  cr_assert(m->accepting_writes());
  cr_assert_eq(m->log_entries(), 6u);
  cr_assert_eq(m->peers()->size(), 2u);
  for (unsigned i = 0; i < 2; ++i) {
    const kvd::fb::PeerStatus* p = m->peers()->Get(i);
    cr_assert_eq(p->node_index(), peers[i].node_index);
    cr_assert_eq(AsText(p->address()), peers[i].address);
    cr_assert_eq(p->connected_out(), peers[i].connected_out);
    cr_assert_eq(p->connected_in(), peers[i].connected_in);
    cr_assert_eq(p->held(), peers[i].held);
    cr_assert(SameClock(AsClock(p->acked()), peers[i].acked));
  }
}

Test(roundtrip, buffer_request) {
  std::vector<uint64_t> s;
  auto env = RoundTrip(EncodeOne(BufferRequestFields{.limit = 50}), Message::BufferRequest, &s);
  cr_assert_eq(env->message_as_BufferRequest()->limit(), 50u);
}

Test(roundtrip, buffer_reply) {
  std::vector<uint64_t> s;
  const kvd::fb::MissingRange missing[] = {{0, 1, 1}, {1, 2, 5}};
  const BufferedWriteFields entries[] = {
      {.origin = 1, .seq = 1, .key = "y", .is_delete = false, .missing = missing},
      {.origin = 2, .seq = 9, .key = "z", .is_delete = true, .missing = {}},
  };
  auto env = RoundTrip(EncodeOne(BufferReplyFields{.entries = entries, .total = 12}),
                       Message::BufferReply, &s);
  auto m = env->message_as_BufferReply();
  cr_assert_eq(m->total(), 12u);
  cr_assert_eq(m->entries()->size(), 2u);
  for (unsigned i = 0; i < 2; ++i) {
    const kvd::fb::BufferedWrite* e = m->entries()->Get(i);
    cr_assert_eq(e->origin(), entries[i].origin);
    cr_assert_eq(e->seq(), entries[i].seq);
    cr_assert_eq(AsBytes(e->key()), entries[i].key);
    cr_assert_eq(e->is_delete(), entries[i].is_delete);
  }
  auto ranges = m->entries()->Get(0)->missing();
  cr_assert_eq(ranges->size(), 2u);
  cr_assert_eq(ranges->Get(1)->origin(), 1u);
  cr_assert_eq(ranges->Get(1)->seq_first(), 2u);
  cr_assert_eq(ranges->Get(1)->seq_last(), 5u);
  cr_assert_null(m->entries()->Get(1)->missing());
}

Test(roundtrip, link_request) {
  std::vector<uint64_t> s;
  auto env = RoundTrip(EncodeOne(LinkRequestFields{.peer_index = 2, .hold = true}),
                       Message::LinkRequest, &s);
  cr_assert_eq(env->message_as_LinkRequest()->peer_index(), 2u);
  cr_assert(env->message_as_LinkRequest()->hold());
}

Test(roundtrip, shutdown_request) {
  std::vector<uint64_t> s;
  auto env = RoundTrip(EncodeOne(ShutdownRequestFields{}), Message::ShutdownRequest, &s);
  cr_assert_not_null(env->message_as_ShutdownRequest());
}

Test(roundtrip, admin_reply) {
  std::vector<uint64_t> s;
  auto env = RoundTrip(
      EncodeOne(AdminReplyFields{.status = Status::UNAUTHORIZED, .message = "fault injection off"}),
      Message::AdminReply, &s);
  cr_assert_eq(env->message_as_AdminReply()->status(), Status::UNAUTHORIZED);
  cr_assert_eq(AsText(env->message_as_AdminReply()->message()), "fault injection off");
}

Test(roundtrip, error) {
  std::vector<uint64_t> s;
  auto env = RoundTrip(EncodeOne(ErrorFields{.status = Status::TOO_LARGE, .message = "too big"}, 0),
                       Message::Error, &s, 0);
  cr_assert_eq(env->message_as_Error()->status(), Status::TOO_LARGE);
  cr_assert_eq(AsText(env->message_as_Error()->message()), "too big");
}

Test(encoder, frames_append_and_sizes_add_up) {
  Encoder encoder;
  std::string out = "already here";
  const size_t a = encoder.Encode(1, GetRequestFields{.key = "a"}, &out);
  const size_t b = encoder.Encode(2, AckFields{.clock = kClock3}, &out);
  cr_assert_eq(out.size(), 12 + a + b);
  cr_assert_eq(out.substr(0, 12), "already here");
  // Each frame's prefix counts the bytes after it.
  cr_assert_eq(out.substr(12, 4), Prefix(static_cast<uint32_t>(a - 4)));
  cr_assert_eq(out.substr(12 + a, 4), Prefix(static_cast<uint32_t>(b - 4)));
  // The file identifier follows the root offset.
  cr_assert_eq(out.substr(12 + 8, 4), "CKV1");
}

Test(encoder, generic_finish) {
  Encoder encoder;
  std::string out;
  auto& fbb = encoder.builder();
  const uint8_t k = 'k';
  auto get = kvd::fb::CreateGetRequest(fbb, fbb.CreateVector(&k, 1));
  encoder.Finish(9, get, &out);
  std::vector<uint64_t> s;
  auto env = RoundTrip(out, Message::GetRequest, &s, 9);
  cr_assert_eq(AsBytes(env->message_as_GetRequest()->key()), "k");
}

Test(encoder, steady_state_allocates_nothing) {
  Encoder encoder;
  std::string out;
  out.reserve(1 << 20);
  const std::string value(300, 'v');
  const WriteFields writes[] = {{.origin = 0, .clock = kClock3, .key = "k", .value = value},
                                {.origin = 1, .clock = kClock3, .key = "k2", .value = value}};
  auto encode_all = [&](uint64_t id) {
    encoder.Encode(id, PutRequestFields{.key = "k", .value = value, .context = kClock3}, &out);
    encoder.Encode(id, ReplyFields{.status = Status::OK, .value = value, .version = kClock3}, &out);
    encoder.Encode(id, ReplyFields{.status = Status::OK, .version = kClock3}, &out);
    encoder.Encode(id, WriteBatchFields{.writes = writes}, &out);
  };
  encode_all(0);  // Warm up: the builder and its scratch vectors grow once.
  out.clear();
  const size_t before = NewCalls();
  for (uint64_t id = 1; id <= 1000; ++id) {
    if (out.size() > (1 << 19)) out.clear();
    encode_all(id);
  }
  cr_assert_eq(NewCalls(), before, "encoding allocated %zu times", NewCalls() - before);
}
