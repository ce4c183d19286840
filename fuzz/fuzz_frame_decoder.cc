// fuzz_frame_decoder: any byte stream, fed to a FrameDecoder at split
// points the input chooses. Every frame handed out goes through
// CheckEnvelope; every field of an accepted frame is read through view.h,
// so ASan and UBSan see each load a receiver could make.
//
// Input: byte 0 seeds the split sizes; byte 1 picks the limits (cluster
// size 0..4, frame cap); the rest is the stream.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_util.h"
#include "schema/check.h"
#include "schema/view.h"

namespace {

using namespace kvd;

// Folds what it reads into a sum the compiler cannot drop.
struct Reader {
  uint64_t sum = 0;

  void Bytes(const flatbuffers::Vector<uint8_t>* v) {
    for (char c : wire::AsBytes(v)) sum += static_cast<uint8_t>(c);
  }
  void Text(const flatbuffers::String* s) {
    for (char c : wire::AsText(s)) sum += static_cast<uint8_t>(c);
  }
  void Clock(const flatbuffers::Vector<uint64_t>* v) {
    for (uint64_t n : wire::AsClock(v)) sum += n;
  }
  void Add(uint64_t n) { sum += n; }

  void Read(const fb::Envelope& e) {
    Add(e.request_id());
    switch (e.message_type()) {
      case fb::Message::PutRequest: {
        const auto* m = e.message_as_PutRequest();
        Bytes(m->key());
        Bytes(m->value());
        Clock(m->context());
        break;
      }
      case fb::Message::GetRequest: {
        const auto* m = e.message_as_GetRequest();
        Bytes(m->key());
        Clock(m->context());
        break;
      }
      case fb::Message::DeleteRequest: {
        const auto* m = e.message_as_DeleteRequest();
        Bytes(m->key());
        Clock(m->context());
        break;
      }
      case fb::Message::Reply: {
        const auto* m = e.message_as_Reply();
        Add(static_cast<uint8_t>(m->status()));
        Text(m->message());
        Add(m->found());
        Bytes(m->value());
        Clock(m->version());
        break;
      }
      case fb::Message::Hello: {
        const auto* m = e.message_as_Hello();
        Add(m->cluster_fingerprint());
        Add(m->node_index());
        Bytes(m->nonce());
        Bytes(m->auth());
        break;
      }
      case fb::Message::HelloAck: {
        const auto* m = e.message_as_HelloAck();
        Add(m->node_index());
        Clock(m->clock());
        Bytes(m->nonce());
        Bytes(m->auth());
        break;
      }
      case fb::Message::WriteBatch: {
        const auto* m = e.message_as_WriteBatch();
        if (m->writes() == nullptr) break;
        for (const fb::Write* w : *m->writes()) {
          Add(w->origin());
          Clock(w->clock());
          Add(w->is_delete());
          Bytes(w->key());
          Bytes(w->value());
        }
        break;
      }
      case fb::Message::Ack:
        Clock(e.message_as_Ack()->clock());
        break;
      case fb::Message::TransferBegin:
        Clock(e.message_as_TransferBegin()->clock());
        break;
      case fb::Message::TransferChunk: {
        const auto* m = e.message_as_TransferChunk();
        if (m->entries() == nullptr) break;
        for (const fb::Write* w : *m->entries()) {
          Add(w->origin());
          Clock(w->clock());
          Bytes(w->key());
          Bytes(w->value());
        }
        break;
      }
      case fb::Message::StatusReply: {
        const auto* m = e.message_as_StatusReply();
        Add(m->node_index());
        Clock(m->clock());
        Add(m->buffered());
        Add(m->keys());
        Add(m->accepting_writes());
        Add(m->log_entries());
        if (const fb::LoopStatus* loop = m->loop()) {
          Add(loop->window_us());
          Add(loop->busy_us());
          Add(loop->cpu_us());
          Add(loop->turns());
          Add(loop->longest_turn_us());
          Add(loop->cpu_wait_us());
        }
        if (m->peers() == nullptr) break;
        for (const fb::PeerStatus* p : *m->peers()) {
          Add(p->node_index());
          Text(p->address());
          Add(p->connected_out() + p->connected_in() + p->held());
          Clock(p->acked());
        }
        break;
      }
      case fb::Message::BufferRequest:
        Add(e.message_as_BufferRequest()->limit());
        break;
      case fb::Message::BufferReply: {
        const auto* m = e.message_as_BufferReply();
        Add(m->total());
        if (m->entries() == nullptr) break;
        for (const fb::BufferedWrite* w : *m->entries()) {
          Add(w->origin());
          Add(w->seq());
          Bytes(w->key());
          Add(w->is_delete());
          if (w->missing() == nullptr) continue;
          for (const fb::MissingRange* r : *w->missing()) {
            Add(r->origin());
            Add(r->seq_first());
            Add(r->seq_last());
          }
        }
        break;
      }
      case fb::Message::LinkRequest: {
        const auto* m = e.message_as_LinkRequest();
        Add(m->peer_index());
        Add(m->hold());
        break;
      }
      case fb::Message::AdminReply: {
        const auto* m = e.message_as_AdminReply();
        Add(static_cast<uint8_t>(m->status()));
        Text(m->message());
        break;
      }
      case fb::Message::Error: {
        const auto* m = e.message_as_Error();
        Add(static_cast<uint8_t>(m->status()));
        Text(m->message());
        break;
      }
      case fb::Message::HelloProof:
        Bytes(e.message_as_HelloProof()->auth());
        break;
      case fb::Message::ClientAuth: {
        Bytes(e.message_as_ClientAuth()->password());
        break;
      }
      case fb::Message::NONE:
      case fb::Message::StatusRequest:
      case fb::Message::ShutdownRequest:
      case fb::Message::TransferEnd:
      case fb::Message::SnapshotRequest:
        break;
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint64_t seed = data[0];
  wire::Limits limits;
  limits.cluster_size = data[1] % 5;
  limits.key_bytes_max = 64;
  limits.value_bytes_max = 1024;
  // Small caps reach TOO_LARGE; the default one reaches the verifier with
  // any frame the fuzzer can build.
  limits.frame_bytes_max = (data[1] & 0x80) ? 48 : wire::kFrameBytesMaxDefault;

  wire::FrameDecoder decoder(limits.frame_bytes_max);
  Reader reader;
  fuzz::FeedInPieces(decoder, data + 2, size - 2, seed, [&](const wire::Frame& frame) {
    if (auto error = wire::CheckEnvelope(*frame.envelope, limits)) {
      FUZZ_CHECK(!error->message.empty());
      FUZZ_CHECK(error->status == fb::Status::BAD_REQUEST ||
                 error->status == fb::Status::TOO_LARGE);
      return true;  // A client connection answers and goes on.
    }
    FUZZ_CHECK(wire::ClassOf(frame.envelope->message_type()) != wire::MessageClass::kUnknown);
    reader.Read(*frame.envelope);
    return true;
  });
  volatile uint64_t sink = reader.sum;
  (void)sink;
  return 0;
}
