// FrameDecoder: splitting, caps, verification, alignment, allocation.
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <string>
#include <vector>

#include "wire_test_util.h"

using namespace kvd::wire;
using namespace kvd::wire::test;
using kvd::fb::Message;
using kvd::fb::Status;
using Kind = DecodeResult::Kind;

namespace {

// A Get frame whose size is 4 mod 8, so the frame after it in a stream
// starts misaligned and the decoder must copy it to aligned storage.
std::string OddSizedFrame() {
  for (size_t key_bytes = 1; key_bytes <= 16; ++key_bytes) {
    std::string frame = EncodeOne(GetRequestFields{.key = std::string(key_bytes, 'k')}, 0);
    if (frame.size() % 8 == 4) return frame;
  }
  cr_assert_fail("no odd-sized frame found");
  return {};
}

std::vector<std::string> ThreeFrames() {
  return {OddSizedFrame(),
          EncodeOne(PutRequestFields{.key = "x", .value = "1", .context = kClock3}, 1),
          EncodeOne(ReplyFields{.status = Status::OK, .message = "ok", .version = kClock3}, 2)};
}

// Frames of every kind and several sizes, odd-sized ones among them.
std::vector<std::string> ManyFrames(size_t count) {
  std::vector<std::string> frames;
  for (size_t i = 0; i < count; ++i) {
    const std::string key(1 + i % 13, 'a' + i % 26);
    switch (i % 4) {
      case 0:
        frames.push_back(EncodeOne(GetRequestFields{.key = key}, 0));
        break;
      case 1:
        frames.push_back(EncodeOne(
            PutRequestFields{.key = key, .value = std::string(i % 97, 'v'), .context = kClock3},
            i));
        break;
      case 2: {
        const WriteFields w[] = {{.origin = 1, .clock = kClock3, .key = key, .value = "v"}};
        frames.push_back(EncodeOne(WriteBatchFields{.writes = w}, i));
        break;
      }
      default:
        frames.push_back(EncodeOne(StatusRequestFields{}, 0));
    }
  }
  return frames;
}

std::string Join(const std::vector<std::string>& frames) {
  std::string stream;
  for (const auto& f : frames) stream += f;
  return stream;
}

// Feeds `stream` in pieces cut at `cuts` (ascending), draining after each.
std::vector<std::string> DecodeInPieces(const std::string& stream, std::vector<size_t> cuts) {
  FrameDecoder decoder(kFrameBytesMaxDefault);
  std::vector<std::string> frames;
  size_t at = 0;
  cuts.push_back(stream.size());
  for (size_t cut : cuts) {
    decoder.Feed(stream.data() + at, cut - at);
    at = cut;
    cr_assert_eq(Drain(decoder, &frames), Kind::kNeedMore);
  }
  cr_assert_eq(decoder.buffered_bytes(), 0u);
  return frames;
}

void AssertFramesEqual(const std::vector<std::string>& got, const std::vector<std::string>& want) {
  cr_assert_eq(got.size(), want.size(), "got %zu frames, want %zu", got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) cr_assert(got[i] == want[i], "frame %zu differs", i);
}

// Reads every field of a checked message; sanitizers catch any bad read.
uint64_t Walk(const kvd::fb::Envelope& env) {
  uint64_t sum = env.request_id();
  auto clock = [&](const flatbuffers::Vector<uint64_t>* c) {
    for (uint64_t v : AsClock(c)) sum += v;
  };
  auto bytes = [&](const flatbuffers::Vector<uint8_t>* b) {
    for (char c : AsBytes(b)) sum += static_cast<uint8_t>(c);
  };
  auto text = [&](const flatbuffers::String* t) { sum += AsText(t).size(); };
  switch (env.message_type()) {
    case Message::PutRequest: {
      auto m = env.message_as_PutRequest();
      bytes(m->key());
      bytes(m->value());
      clock(m->context());
      break;
    }
    case Message::GetRequest:
      bytes(env.message_as_GetRequest()->key());
      clock(env.message_as_GetRequest()->context());
      break;
    case Message::DeleteRequest:
      bytes(env.message_as_DeleteRequest()->key());
      clock(env.message_as_DeleteRequest()->context());
      break;
    case Message::Reply: {
      auto m = env.message_as_Reply();
      text(m->message());
      bytes(m->value());
      clock(m->version());
      sum += m->found() + static_cast<uint8_t>(m->status());
      break;
    }
    case Message::Hello: {
      auto m = env.message_as_Hello();
      sum += m->cluster_fingerprint() + m->node_index();
      bytes(m->nonce());
      bytes(m->auth());
      break;
    }
    case Message::HelloAck: {
      auto m = env.message_as_HelloAck();
      sum += m->node_index();
      clock(m->clock());
      bytes(m->nonce());
      bytes(m->auth());
      break;
    }
    case Message::WriteBatch:
      if (auto writes = env.message_as_WriteBatch()->writes()) {
        for (const kvd::fb::Write* w : *writes) {
          sum += w->origin() + w->is_delete();
          clock(w->clock());
          bytes(w->key());
          bytes(w->value());
        }
      }
      break;
    case Message::Ack:
      clock(env.message_as_Ack()->clock());
      break;
    case Message::StatusReply: {
      auto m = env.message_as_StatusReply();
      sum += m->node_index() + m->buffered() + m->keys() + m->accepting_writes() + m->log_entries();
      clock(m->clock());
      if (m->peers()) {
        for (const kvd::fb::PeerStatus* p : *m->peers()) {
          sum += p->node_index() + p->connected_in() + p->connected_out() + p->held();
          text(p->address());
          clock(p->acked());
        }
      }
      break;
    }
    case Message::BufferRequest:
      sum += env.message_as_BufferRequest()->limit();
      break;
    case Message::BufferReply: {
      auto m = env.message_as_BufferReply();
      sum += m->total();
      if (m->entries()) {
        for (const kvd::fb::BufferedWrite* e : *m->entries()) {
          sum += e->origin() + e->seq() + e->is_delete();
          bytes(e->key());
          if (e->missing()) {
            for (const kvd::fb::MissingRange* r : *e->missing()) {
              sum += r->origin() + r->seq_first() + r->seq_last();
            }
          }
        }
      }
      break;
    }
    case Message::LinkRequest:
      sum += env.message_as_LinkRequest()->peer_index() + env.message_as_LinkRequest()->hold();
      break;
    case Message::AdminReply:
      text(env.message_as_AdminReply()->message());
      break;
    case Message::Error:
      text(env.message_as_Error()->message());
      break;
    case Message::HelloProof:
      bytes(env.message_as_HelloProof()->auth());
      break;
    case Message::ClientAuth:
      bytes(env.message_as_ClientAuth()->password());
      break;
    default:
      break;
  }
  return sum;
}

const std::string kNonce(32, 'n');

// One valid frame of every message kind.
std::vector<std::string> EveryKind() {
  const uint64_t c1[] = {1, 0, 0};
  const WriteFields writes[] = {{.origin = 0, .clock = c1, .key = "x", .value = "1"},
                                {.origin = 0, .clock = kClock3, .is_delete = true, .key = "y"}};
  const PeerStatusFields peers[] = {{.node_index = 1, .address = "a:1", .acked = kClock3}};
  const kvd::fb::MissingRange missing[] = {{0, 1, 2}};
  const BufferedWriteFields entries[] = {{.origin = 1, .seq = 1, .key = "y", .missing = missing}};
  return {
      EncodeOne(PutRequestFields{.key = "k", .value = "v", .context = kClock3}),
      EncodeOne(GetRequestFields{.key = "k", .context = kClock3}),
      EncodeOne(DeleteRequestFields{.key = "k"}),
      EncodeOne(ReplyFields{.message = "m", .found = true, .value = "v", .version = kClock3}),
      EncodeOne(HelloFields{.cluster_fingerprint = 5, .node_index = 1, .nonce = kNonce}),
      EncodeOne(HelloAckFields{
          .node_index = 2, .clock = kClock3, .nonce = kNonce, .auth = std::string(32, 'a')}),
      EncodeOne(HelloProofFields{.auth = std::string(32, 'p')}),
      EncodeOne(ClientAuthFields{.password = "secret"}),
      EncodeOne(WriteBatchFields{.writes = writes}),
      EncodeOne(AckFields{.clock = kClock3}),
      EncodeOne(StatusRequestFields{}),
      EncodeOne(StatusReplyFields{.clock = kClock3, .buffered = 1, .peers = peers}),
      EncodeOne(BufferRequestFields{.limit = 3}),
      EncodeOne(BufferReplyFields{.entries = entries, .total = 1}),
      EncodeOne(LinkRequestFields{.peer_index = 1, .hold = true}),
      EncodeOne(ShutdownRequestFields{}),
      EncodeOne(AdminReplyFields{.message = "done"}),
      EncodeOne(ErrorFields{.message = "bad"}),
  };
}

}  // namespace

Test(decoder, every_split_point_of_three_frames) {
  const auto frames = ThreeFrames();
  const std::string stream = Join(frames);
  cr_assert_eq(frames[0].size() % 8, 4u, "the second frame must start misaligned");
  for (size_t i = 0; i <= stream.size(); ++i) {
    AssertFramesEqual(DecodeInPieces(stream, {i}), frames);
  }
}

Test(decoder, every_pair_of_split_points_of_three_frames) {
  const auto frames = ThreeFrames();
  const std::string stream = Join(frames);
  for (size_t i = 0; i <= stream.size(); ++i) {
    for (size_t j = i; j <= stream.size(); ++j) {
      AssertFramesEqual(DecodeInPieces(stream, {i, j}), frames);
    }
  }
}

Test(decoder, one_byte_feeds) {
  const auto frames = ManyFrames(40);
  const std::string stream = Join(frames);
  std::vector<size_t> cuts;
  for (size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
  AssertFramesEqual(DecodeInPieces(stream, cuts), frames);
}

ParameterizedTestParameters(decoder, chunked_feeds) {
  static size_t chunk_bytes[] = {2, 3, 4, 5, 7, 8, 9, 16, 31, 100, 1000, 4095, 4096, 65536};
  return cr_make_param_array(size_t, chunk_bytes, sizeof(chunk_bytes) / sizeof(chunk_bytes[0]));
}

ParameterizedTest(size_t* chunk_bytes, decoder, chunked_feeds) {
  auto frames = ManyFrames(60);
  // A large frame in the middle makes the input buffer grow and compact.
  frames.insert(frames.begin() + 30,
                EncodeOne(PutRequestFields{.key = "big", .value = std::string(200000, 'b')}));
  const std::string stream = Join(frames);
  std::vector<size_t> cuts;
  for (size_t i = *chunk_bytes; i < stream.size(); i += *chunk_bytes) cuts.push_back(i);
  AssertFramesEqual(DecodeInPieces(stream, cuts), frames);
}

Test(decoder, thousand_frames_in_one_feed) {
  std::vector<std::string> frames;
  for (uint64_t id = 0; id < 1000; ++id) {
    frames.push_back(
        EncodeOne(GetRequestFields{.key = std::string(1 + id % 11, 'k'), .context = {}}, id));
  }
  FrameDecoder decoder(kFrameBytesMaxDefault);
  FeedString(decoder, Join(frames));
  uint64_t want_id = 0;
  for (;;) {
    DecodeResult r = decoder.Next();
    if (r.kind == Kind::kNeedMore) break;
    cr_assert_eq(r.kind, Kind::kFrame);
    cr_assert_eq(reinterpret_cast<uintptr_t>(r.frame.bytes) % 8, 0u);
    cr_assert_eq(r.frame.envelope->request_id(), want_id, "frames come out in order");
    cr_assert(std::string(reinterpret_cast<const char*>(r.frame.bytes), r.frame.size) ==
              frames[want_id]);
    ++want_id;
  }
  cr_assert_eq(want_id, 1000u);
}

struct BadPrefix {
  uint32_t prefix;
  size_t frame_bytes_max;
  Status status;
};

ParameterizedTestParameters(decoder, bad_prefix) {
  static BadPrefix cases[] = {
      {0, kFrameBytesMaxDefault, Status::BAD_REQUEST},
      {1001, 1000, Status::TOO_LARGE},  // cap + 1
      {kFrameBytesMaxDefault + 1, kFrameBytesMaxDefault, Status::TOO_LARGE},
      {0x80000000u, kFrameBytesMaxDefault, Status::TOO_LARGE},
      {0xFFFFFFFFu, kFrameBytesMaxDefault, Status::TOO_LARGE},
      {0xFFFFFFFFu, SIZE_MAX, Status::TOO_LARGE},  // An absurd cap is clamped.
  };
  return cr_make_param_array(BadPrefix, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(BadPrefix* c, decoder, bad_prefix) {
  FrameDecoder decoder(c->frame_bytes_max);
  // The bad prefix and, in the same feed, plenty of would-be body.
  FeedString(decoder, Prefix(c->prefix) + std::string(100000, 'x'));
  cr_assert(decoder.has_error());
  cr_assert_eq(decoder.buffered_bytes(), 4u, "the body must not be buffered");
  cr_assert_leq(decoder.capacity_bytes(), 4096u, "nothing may be allocated for the claim");
  DecodeResult r = decoder.Next();
  cr_assert_eq(r.kind, Kind::kError);
  cr_assert_eq(r.error.status, c->status, "status %d: %s", static_cast<int>(r.error.status),
               r.error.message.c_str());
  cr_assert_eq(decoder.capacity_bytes(), 0u, "a failed decoder releases its memory");
}

Test(decoder, prefix_equal_to_cap_is_accepted) {
  const std::string frame = EncodeOne(PutRequestFields{.key = "k", .value = "value"});
  const size_t body = frame.size() - 4;
  {
    FrameDecoder decoder(body);  // The cap is inclusive.
    FeedString(decoder, frame);
    std::vector<std::string> frames;
    cr_assert_eq(Drain(decoder, &frames), Kind::kNeedMore);
    cr_assert_eq(frames.size(), 1u);
  }
  {
    FrameDecoder decoder(body - 1);
    FeedString(decoder, frame);
    WireError error;
    std::vector<std::string> frames;
    cr_assert_eq(Drain(decoder, &frames, &error), Kind::kError);
    cr_assert_eq(error.status, Status::TOO_LARGE);
    cr_assert(frames.empty());
  }
  {
    // A prefix claiming exactly the default cap waits for its body, and
    // nothing is allocated for it until the bytes arrive.
    FrameDecoder decoder(kFrameBytesMaxDefault);
    FeedString(decoder, Prefix(kFrameBytesMaxDefault));
    cr_assert_eq(decoder.Next().kind, Kind::kNeedMore);
    cr_assert_not(decoder.has_error());
    cr_assert_leq(decoder.capacity_bytes(), 4096u);
  }
}

Test(decoder, frames_before_a_bad_prefix_come_out_first) {
  const auto frames = ThreeFrames();
  FrameDecoder decoder(kFrameBytesMaxDefault);
  FeedString(decoder, frames[0] + frames[1] + Prefix(0xFFFFFFFF) + frames[2]);
  std::vector<std::string> got;
  WireError error;
  cr_assert_eq(Drain(decoder, &got, &error), Kind::kError);
  AssertFramesEqual(got, {frames[0], frames[1]});
  cr_assert_eq(error.status, Status::TOO_LARGE);
  cr_assert(error.message.find("4294967295") != std::string::npos, "%s", error.message.c_str());
}

Test(decoder, error_is_sticky) {
  FrameDecoder decoder(kFrameBytesMaxDefault);
  FeedString(decoder, Prefix(0));
  cr_assert_eq(decoder.Next().kind, Kind::kError);
  FeedString(decoder, Join(ThreeFrames()));
  for (int i = 0; i < 3; ++i) {
    DecodeResult r = decoder.Next();
    cr_assert_eq(r.kind, Kind::kError);
    cr_assert_eq(r.error.status, Status::BAD_REQUEST);
  }
  cr_assert_eq(decoder.buffered_bytes(), 0u);
}

Test(decoder, random_garbage_fails_verification) {
  for (uint64_t seed = 0; seed < 500; ++seed) {
    Rng rng(seed);
    std::string body(8 + rng.Below(500), '\0');
    for (char& c : body) c = static_cast<char>(rng.Next());
    if (seed % 2 == 0) body.replace(4, 4, "CKV1");  // Get past the identifier check.
    FrameDecoder decoder(kFrameBytesMaxDefault);
    FeedString(decoder, Prefix(static_cast<uint32_t>(body.size())) + body);
    DecodeResult r = decoder.Next();
    cr_assert_eq(r.kind, Kind::kError, "seed %lu verified", static_cast<unsigned long>(seed));
    cr_assert_eq(r.error.status, Status::BAD_REQUEST);
    cr_assert(r.error.message.find("verification") != std::string::npos);
  }
}

Test(decoder, truncated_frame_fails_verification) {
  const std::string frame = EncodeOne(PutRequestFields{.key = "k", .value = "some value"});
  const std::string body = frame.substr(4, frame.size() - 4 - 8);
  FrameDecoder decoder(kFrameBytesMaxDefault);
  FeedString(decoder, Prefix(static_cast<uint32_t>(body.size())) + body);
  DecodeResult r = decoder.Next();
  cr_assert_eq(r.kind, Kind::kError);
  cr_assert_eq(r.error.status, Status::BAD_REQUEST);
}

Test(decoder, wrong_file_identifier_fails_verification) {
  std::string frame = EncodeOne(GetRequestFields{.key = "k"});
  frame.replace(8, 4, "CKV2");
  FrameDecoder decoder(kFrameBytesMaxDefault);
  FeedString(decoder, frame);
  cr_assert_eq(decoder.Next().kind, Kind::kError);
}

// Mutated valid frames: whatever the decoder and CheckEnvelope let through
// must be safe to read in full (ASan and UBSan watch).
Test(decoder, mutated_frames_are_refused_or_safe) {
  const auto kinds = EveryKind();
  size_t accepted = 0, refused = 0;
  for (uint64_t seed = 0; seed < 4000; ++seed) {
    Rng rng(seed);
    std::string frame = kinds[seed % kinds.size()];
    const size_t flips = 1 + rng.Below(4);
    for (size_t i = 0; i < flips; ++i) {
      frame[4 + rng.Below(frame.size() - 4)] = static_cast<char>(rng.Next());
    }
    FrameDecoder decoder(kFrameBytesMaxDefault);
    FeedString(decoder, frame);
    DecodeResult r = decoder.Next();
    if (r.kind != Kind::kFrame || CheckEnvelope(*r.frame.envelope, ThreeNodes())) {
      ++refused;
      continue;
    }
    ++accepted;
    volatile uint64_t sink = Walk(*r.frame.envelope);
    (void)sink;
  }
  cr_assert_gt(refused, 0u);
  cr_assert_gt(accepted, 0u);
}

Test(decoder, every_kind_walks_cleanly) {
  for (const std::string& frame : EveryKind()) {
    std::vector<uint64_t> storage;
    const kvd::fb::Envelope* env = DecodeOne(frame, &storage);
    auto error = CheckEnvelope(*env, ThreeNodes());
    cr_assert(!error.has_value(), "%s: %s", kvd::fb::EnumNameMessage(env->message_type()),
              error ? error->message.c_str() : "");
    Walk(*env);
  }
}

Test(decoder, steady_state_allocates_nothing) {
  const std::string stream = Join(ManyFrames(100));
  FrameDecoder decoder(kFrameBytesMaxDefault);
  size_t frames = 0;
  auto run = [&] {
    for (size_t at = 0; at < stream.size(); at += 100) {
      decoder.Feed(stream.data() + at, std::min<size_t>(100, stream.size() - at));
      for (DecodeResult r = decoder.Next(); r.kind == Kind::kFrame; r = decoder.Next()) ++frames;
    }
  };
  run();  // Warm up: the input and scratch buffers reach their working size.
  const size_t before = NewCalls();
  for (int round = 0; round < 10; ++round) run();
  cr_assert_eq(NewCalls(), before, "decoding allocated %zu times", NewCalls() - before);
  cr_assert_eq(frames, 1100u);
}

// One Write table referenced by 50,000 offsets of a batch: each reference
// would be verified again, 50,000 table visits for a 200 KB frame. The
// verifier's table cap (kVerifierTableBytesMin) refuses it; a batch of as
// many distinct small writes, which really is that large, still verifies.
Test(decoder, shared_table_offsets_are_refused_distinct_tables_verify) {
  constexpr size_t kReferences = 50000;
  flatbuffers::FlatBufferBuilder fbb;
  const uint64_t clock[] = {1, 0, 0};
  auto one = kvd::fb::CreateWrite(fbb, 0, fbb.CreateVector(clock, 3), false,
                                  fbb.CreateVector(reinterpret_cast<const uint8_t*>("k"), 1));
  std::vector<flatbuffers::Offset<kvd::fb::Write>> shared(kReferences, one);
  auto batch = kvd::fb::CreateWriteBatch(fbb, fbb.CreateVector(shared));
  fbb.FinishSizePrefixed(
      kvd::fb::CreateEnvelope(fbb, 0, kvd::fb::Message::WriteBatch, batch.Union()),
      kvd::fb::EnvelopeIdentifier());
  std::string frame(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
  FrameDecoder decoder(kFrameBytesMaxDefault);
  FeedString(decoder, frame);
  DecodeResult r = decoder.Next();
  cr_assert_eq(r.kind, Kind::kError, "a %zu-byte frame of shared offsets verified", frame.size());

  std::vector<WriteFields> writes(kReferences,
                                  WriteFields{.origin = 0, .clock = clock, .key = "k"});
  std::string distinct = EncodeOne(WriteBatchFields{writes});
  FrameDecoder again(kFrameBytesMaxDefault);
  FeedString(again, distinct);
  DecodeResult ok = again.Next();
  cr_assert_eq(ok.kind, Kind::kFrame, "%s", ok.error.message.c_str());
}
