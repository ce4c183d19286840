// make_corpus: writes the seed corpus of every fuzz target, valid inputs
// and edge cases, built with kvd::wire::Encoder and
// storage::AppendRecord so the seeds follow the real formats.
//
//   make_corpus OUT_DIR     writes OUT_DIR/<target>/<name> for each target
//
// The checked-in fuzz/corpus/ is this program's output; rerun it after a
// format change (fuzz/run.sh --regen-corpus does).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "daemon/core/write.h"
#include "daemon/storage/crc32c.h"
#include "daemon/storage/wal_format.h"
#include "fuzz/fuzz_util.h"
#include "schema/auth.h"
#include "schema/encoder.h"
#include "schema/frame_mac.h"

namespace {

namespace fs = std::filesystem;
using namespace kvd;

// The cluster of fuzz_util.h: three nodes, this one is node 0.
constexpr uint32_t kSelf = 0;

class CorpusWriter {
 public:
  explicit CorpusWriter(fs::path dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }

  void Write(const std::string& name, const std::string& bytes) {
    std::ofstream out(dir_ / name, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::fprintf(stderr, "make_corpus: cannot write %s\n", (dir_ / name).c_str());
      std::exit(1);
    }
  }

 private:
  fs::path dir_;
};

// Little-endian size prefix alone, for framing edge cases.
std::string Prefix(uint32_t n) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

// A frame whose union type is one this build does not know.
std::string UnknownTypeFrame() {
  flatbuffers::FlatBufferBuilder fbb;
  auto body = fb::CreateAck(fbb);
  auto envelope = fb::CreateEnvelope(fbb, 9, static_cast<fb::Message>(77), body.Union());
  fb::FinishSizePrefixedEnvelopeBuffer(fbb, envelope);
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

// A request_id for the dispatch harness: advance time by `step_ms`
// (< 128) and name client session `session` (< 4).
uint64_t Id(uint64_t step_ms, uint64_t session = 0) { return step_ms | (session << 8); }

struct Frames {
  wire::Encoder encoder;
  std::string bytes;

  template <typename Fields>
  Frames& Add(uint64_t request_id, const Fields& fields) {
    encoder.Encode(request_id, fields, &bytes);
    return *this;
  }
  Frames& Raw(const std::string& raw) {
    bytes += raw;
    return *this;
  }
};

std::string OneFrame(uint64_t request_id, const auto& fields) {
  Frames f;
  f.Add(request_id, fields);
  return f.bytes;
}

// ----------------------------------------------------------- frame decoder --

void FrameDecoderCorpus(const fs::path& dir) {
  CorpusWriter out(dir / "fuzz_frame_decoder");
  const uint64_t clock3[] = {1, 2, 3};
  const uint64_t clock1[] = {5};
  const wire::WriteFields writes[] = {
      {1, clock3, false, "k", "v"},
      {2, clock3, true, "gone", ""},
  };
  const wire::PeerStatusFields peers[] = {{1, "127.0.0.1:7001", true, false, false, clock3}};
  const fb::MissingRange missing[] = {fb::MissingRange(1, 1, 2)};
  const wire::BufferedWriteFields buffered[] = {{2, 4, "key", false, missing}};

  // Header: [split seed][limits: cluster size = b % 5, b & 0x80 = 48-byte cap].
  const std::string h3 = std::string("\x07\x03", 2);  // Cluster of 3.
  const std::string h0 = std::string("\x01\x00", 2);  // Cluster size unknown.
  out.Write("put", h3 + OneFrame(1, wire::PutRequestFields{"key", "value", clock3}));
  out.Write("put_no_context", h0 + OneFrame(2, wire::PutRequestFields{"key", "value"}));
  out.Write("get", h3 + OneFrame(3, wire::GetRequestFields{"key", clock3}));
  out.Write("delete", h3 + OneFrame(4, wire::DeleteRequestFields{"key", {}}));
  out.Write("reply", h3 + OneFrame(5, wire::ReplyFields{fb::Status::OK, "", true, "v", clock3}));
  out.Write("hello", h3 + OneFrame(0, wire::HelloFields{0x1234, 1, std::string(32, 'n'), ""}));
  out.Write("hello_ack", h3 + OneFrame(0, wire::HelloAckFields{2, clock3, "n", "a"}));
  out.Write("write_batch", h3 + OneFrame(0, wire::WriteBatchFields{writes}));
  out.Write("ack", h3 + OneFrame(0, wire::AckFields{clock3}));
  out.Write("status_request", h3 + OneFrame(6, wire::StatusRequestFields{}));
  wire::StatusReplyFields status;
  status.node_index = 0;
  status.clock = clock3;
  status.buffered = 1;
  status.keys = 2;
  status.peers = peers;
  status.loop = {1000000, 450000, 350000, 7012, 3100, 90000};
  out.Write("status_reply", h3 + OneFrame(6, status));
  out.Write("buffer_request", h3 + OneFrame(7, wire::BufferRequestFields{10}));
  out.Write("buffer_reply", h3 + OneFrame(7, wire::BufferReplyFields{buffered, 1}));
  out.Write("link_request", h3 + OneFrame(8, wire::LinkRequestFields{2, true}));
  out.Write("shutdown_request", h3 + OneFrame(9, wire::ShutdownRequestFields{}));
  out.Write("admin_reply", h3 + OneFrame(9, wire::AdminReplyFields{fb::Status::OK, "done"}));
  out.Write("error", h3 + OneFrame(0, wire::ErrorFields{fb::Status::TOO_LARGE, "too big"}));

  Frames many;
  for (uint64_t i = 0; i < 20; ++i) many.Add(i, wire::GetRequestFields{"k" + std::to_string(i)});
  out.Write("many_frames", h3 + many.bytes);
  out.Write("many_frames_one_byte_pieces", std::string("\x00\x03", 2) + many.bytes);
  out.Write("wrong_clock_length", h3 + OneFrame(1, wire::AckFields{clock1}));
  out.Write("unknown_cluster_clock", h0 + OneFrame(1, wire::AckFields{clock1}));
  out.Write("empty_key", h3 + OneFrame(1, wire::GetRequestFields{""}));
  out.Write("big_key", h3 + OneFrame(1, wire::GetRequestFields{std::string(65, 'k')}));
  out.Write("node_index_out_of_range", h3 + OneFrame(0, wire::HelloFields{1, 3}));
  out.Write("unknown_union_type", h3 + UnknownTypeFrame());
  out.Write("prefix_zero", h3 + Prefix(0));
  out.Write("prefix_ffffffff", h3 + Prefix(0xffffffffu));
  out.Write("prefix_over_small_cap", std::string("\x05\x83", 2) + Prefix(49) + "x");
  out.Write("frame_then_bad_prefix", h3 + many.bytes.substr(0, 40) + Prefix(0));
  const std::string put = OneFrame(1, wire::PutRequestFields{"key", "value", clock3});
  out.Write("truncated_frame", h3 + put.substr(0, put.size() - 3));
  std::string flipped = put;
  flipped[8] = static_cast<char>(flipped[8] ^ 0x40);  // Breaks the root offset.
  out.Write("fails_verification", h3 + flipped);
  // An odd start offset: the decoder must copy the next frame to aligned
  // storage before verifying it.
  out.Write("misaligned_second_frame", h3 + OneFrame(1, wire::GetRequestFields{"a"}) +
                                           OneFrame(2, wire::GetRequestFields{"bc"}));
}

// ---------------------------------------------------------- client dispatch --

void ClientDispatchCorpus(const fs::path& dir) {
  CorpusWriter out(dir / "fuzz_client_dispatch");
  const uint64_t zero3[] = {0, 0, 0};
  const uint64_t own1[] = {1, 0, 0};
  const uint64_t future[] = {0, 5, 0};  // Never reached: parks, then TIMEOUT.
  const uint64_t short_clock[] = {1};

  out.Write("put_get", Frames()
                           .Add(Id(1), wire::PutRequestFields{"k", "v"})
                           .Add(Id(1), wire::GetRequestFields{"k"})
                           .bytes);
  out.Write("put_delete_get", Frames()
                                  .Add(Id(1), wire::PutRequestFields{"k", "v"})
                                  .Add(Id(2), wire::DeleteRequestFields{"k"})
                                  .Add(Id(3), wire::GetRequestFields{"k"})
                                  .bytes);
  out.Write("get_missing", OneFrame(Id(0), wire::GetRequestFields{"nothing"}));
  out.Write("context_reached", Frames()
                                   .Add(Id(1), wire::PutRequestFields{"k", "v", zero3})
                                   .Add(Id(1), wire::GetRequestFields{"k", own1})
                                   .bytes);
  out.Write("context_parks_then_times_out", Frames()
                                                .Add(Id(1, 1), wire::GetRequestFields{"k", future})
                                                .Add(Id(1, 1), wire::PutRequestFields{"k", "v"})
                                                .Add(Id(100, 2), wire::GetRequestFields{"k"})
                                                .bytes);
  Frames park_many;
  for (uint64_t i = 0; i < 8; ++i) {
    park_many.Add(Id(0, i % 4), wire::GetRequestFields{"k", future});
  }
  out.Write("parked_over_limit", park_many.bytes);
  Frames sessions;
  for (uint64_t i = 0; i < 12; ++i) {
    sessions.Add(Id(i * 7 % 128, i % 4), wire::PutRequestFields{"k" + std::to_string(i % 3), "v"});
  }
  out.Write("sessions_interleaved", sessions.bytes);
  out.Write("empty_key", OneFrame(Id(1), wire::PutRequestFields{"", "v"}));
  out.Write("key_at_cap", OneFrame(Id(1), wire::PutRequestFields{std::string(32, 'k'), "v"}));
  out.Write("key_over_cap", OneFrame(Id(1), wire::PutRequestFields{std::string(33, 'k'), "v"}));
  out.Write("value_at_cap", OneFrame(Id(1), wire::PutRequestFields{"k", std::string(256, 'v')}));
  out.Write("value_over_cap", OneFrame(Id(1), wire::PutRequestFields{"k", std::string(257, 'v')}));
  out.Write("wrong_context_length", OneFrame(Id(1), wire::GetRequestFields{"k", short_clock}));
  out.Write("binary_key", OneFrame(Id(1), wire::PutRequestFields{std::string("\0\xff\n", 3), "v"}));
  out.Write(
      "peer_message_on_client",
      Frames().Add(Id(1), wire::AckFields{zero3}).Add(Id(1), wire::GetRequestFields{"k"}).bytes);
  out.Write("admin_then_put", Frames()
                                  .Add(Id(1), wire::StatusRequestFields{})
                                  .Add(Id(1), wire::PutRequestFields{"k", "v"})
                                  .bytes);
  out.Write("unknown_union_type", UnknownTypeFrame());
  out.Write("bad_prefix_after_put",
            OneFrame(Id(1), wire::PutRequestFields{"k", "v"}) + Prefix(0xffffffffu));
}

// ------------------------------------------------------------ peer dispatch --

void PeerDispatchCorpus(const fs::path& dir) {
  CorpusWriter out(dir / "fuzz_peer_dispatch");
  const uint64_t zero3[] = {0, 0, 0};
  const uint64_t c010[] = {0, 1, 0};
  const uint64_t c020[] = {0, 2, 0};
  const uint64_t c030[] = {0, 3, 0};
  const uint64_t c011[] = {0, 1, 1};
  const uint64_t c100[] = {1, 0, 0};
  const uint64_t c500[] = {5, 0, 0};
  const uint64_t c0_1000[] = {0, 1000, 0};
  const uint64_t short_clock[] = {1, 1};

  const wire::WriteFields in_order[] = {
      {1, c010, false, "a", "1"}, {1, c020, false, "b", "2"}, {2, c011, false, "a", "3"}};
  const wire::WriteFields out_of_order[] = {
      {1, c030, false, "c", "3"}, {1, c020, true, "b", ""}, {1, c010, false, "a", "1"}};
  const wire::WriteFields gap[] = {{1, c0_1000, false, "far", "x"}};
  const wire::WriteFields dup[] = {{1, c010, false, "a", "1"}, {1, c010, false, "a", "1"}};
  const wire::WriteFields own_origin[] = {{0, c500, false, "mine", "x"}};
  const wire::WriteFields bad_origin[] = {{kSelf + 1, zero3, false, "z", "x"}};

  auto hello = [](uint32_t peer) { return wire::HelloFields{0, peer, {}, {}}; };
  out.Write("hello", OneFrame(0, hello(1)));
  out.Write("hello_self", OneFrame(0, hello(kSelf)));
  out.Write("hello_writes_in_order",
            Frames().Add(1, hello(1)).Add(2, wire::WriteBatchFields{in_order}).bytes);
  out.Write("hello_writes_out_of_order",
            Frames().Add(1, hello(1)).Add(2, wire::WriteBatchFields{out_of_order}).bytes);
  Frames fill;
  fill.Add(1, hello(2));
  for (uint64_t i = 0; i < 12; ++i) {
    const uint64_t clock[] = {0, 0, 2 + i};
    const std::string key = "k" + std::to_string(i);
    const wire::WriteFields w[] = {{2, clock, false, key, "v"}};
    fill.Add(1, wire::WriteBatchFields{w});
  }
  out.Write("causal_buffer_overflow", fill.bytes);
  out.Write("gap_then_redial", Frames()
                                   .Add(1, hello(1))
                                   .Add(1, wire::WriteBatchFields{gap})
                                   .Add(1, hello(1))
                                   .Add(1, wire::WriteBatchFields{in_order})
                                   .bytes);
  out.Write("duplicates", Frames().Add(1, hello(1)).Add(1, wire::WriteBatchFields{dup}).bytes);
  out.Write("own_writes_known_by_peer", Frames()
                                            .Add(1, hello(1))
                                            .Add(1, wire::WriteBatchFields{own_origin})
                                            .Add(1, wire::PutRequestFields{"k", "v"})
                                            .bytes);
  out.Write("write_seq_zero",
            Frames().Add(1, hello(1)).Add(1, wire::WriteBatchFields{bad_origin}).bytes);
  out.Write("writes_before_hello", OneFrame(1, wire::WriteBatchFields{in_order}));
  out.Write("hello_ack_and_acks", Frames()
                                      .Add(1, wire::PutRequestFields{"k", "v"})
                                      .Add(1, wire::HelloAckFields{1, zero3})
                                      .Add(30, wire::AckFields{c100})
                                      .Add(30, wire::DeleteRequestFields{"k"})
                                      .Add(30, wire::AckFields{c100})
                                      .bytes);
  out.Write("hello_ack_peer_ahead_of_us", Frames()
                                              .Add(1, wire::HelloAckFields{2, c500})
                                              .Add(1, wire::PutRequestFields{"k", "v"})
                                              .bytes);
  out.Write(
      "hello_ack_twice",
      Frames().Add(1, wire::HelloAckFields{1, zero3}).Add(1, wire::HelloAckFields{1, zero3}).bytes);
  out.Write("ack_without_link", OneFrame(1, wire::AckFields{zero3}));
  out.Write(
      "ack_wrong_length",
      Frames().Add(1, wire::HelloAckFields{1, zero3}).Add(1, wire::AckFields{short_clock}).bytes);
  Frames full;
  full.Add(1, hello(1)).Add(1, hello(2)).Add(1, wire::HelloAckFields{1, zero3});
  full.Add(1, wire::HelloAckFields{2, zero3});
  for (uint64_t i = 0; i < 6; ++i)
    full.Add(10, wire::PutRequestFields{"p" + std::to_string(i), "v"});
  full.Add(120, wire::AckFields{c100}).Add(120, wire::WriteBatchFields{in_order});
  full.Add(120, wire::AckFields{zero3});
  out.Write("full_mesh", full.bytes);
  out.Write("client_context_from_peer", Frames()
                                            .Add(Id(1, 1), wire::GetRequestFields{"a", c010})
                                            .Add(1, hello(1))
                                            .Add(1, wire::WriteBatchFields{in_order})
                                            .bytes);
  out.Write("unknown_union_type", Frames().Add(1, hello(1)).Raw(UnknownTypeFrame()).bytes);
}

// --------------------------------------------------------------- WAL reader --

core::Write MakeWrite(uint32_t origin, std::initializer_list<uint64_t> clock, std::string key,
                      std::string value, bool is_delete = false) {
  core::Write w;
  w.origin = origin;
  w.clock = core::VectorClock(clock);
  w.key = std::move(key);
  w.value = std::move(value);
  w.is_delete = is_delete;
  return w;
}

std::string Records(const std::vector<core::Write>& writes) {
  std::string out;
  for (const core::Write& w : writes) storage::AppendRecord(w, &out);
  return out;
}

void WalReaderCorpus(const fs::path& dir) {
  CorpusWriter out(dir / "fuzz_wal_reader");
  const std::string good = Records(
      {MakeWrite(0, {1, 0, 0}, "a", "1"), MakeWrite(1, {1, 1, 0}, "b", "2"),
       MakeWrite(0, {2, 1, 0}, "a", "", true), MakeWrite(2, {2, 1, 1}, "c", std::string(40, 'x'))});
  out.Write("empty", "");
  out.Write("one_record", Records({MakeWrite(0, {1, 0, 0}, "k", "v")}));
  out.Write("sequence", good);
  out.Write("torn_header", good + good.substr(0, 5));
  out.Write("torn_payload", good.substr(0, good.size() - 7));
  std::string bad_crc = good;
  bad_crc[4] = static_cast<char>(bad_crc[4] ^ 1);
  out.Write("corrupt_first_crc", bad_crc);
  std::string bad_last = good;
  bad_last[bad_last.size() - 1] ^= 1;
  out.Write("corrupt_last_record", bad_last);
  out.Write("gap", Records({MakeWrite(0, {1, 0, 0}, "a", "1"), MakeWrite(0, {3, 0, 0}, "a", "3")}));
  out.Write("wrong_cluster_size", Records({MakeWrite(0, {1, 0}, "a", "1")}));
  out.Write("seq_zero", Records({MakeWrite(1, {0, 0, 0}, "a", "1")}));
  out.Write("empty_key", Records({MakeWrite(0, {1, 0, 0}, "", "1")}));
  out.Write("key_over_cap", Records({MakeWrite(0, {1, 0, 0}, std::string(33, 'k'), "1")}));
  out.Write("value_over_cap", Records({MakeWrite(0, {1, 0, 0}, "k", std::string(257, 'v'))}));
  out.Write("duplicate",
            Records({MakeWrite(0, {1, 0, 0}, "a", "1"), MakeWrite(0, {1, 0, 0}, "a", "1")}));
  std::vector<core::Write> long_run;
  for (uint64_t i = 1; i <= 30; ++i) {
    long_run.push_back(MakeWrite(static_cast<uint32_t>(i % 3), {(i + 2) / 3, (i + 1) / 3, i / 3},
                                 "k" + std::to_string(i % 5), "v", i % 7 == 0));
  }
  out.Write("long_run", Records(long_run));
  out.Write("max_clock", Records({MakeWrite(0, {~0ull, 0, 0}, "a", "1")}));
  // Header claiming more than kRecordPayloadBytesMax.
  out.Write("huge_length", std::string("\xff\xff\xff\x7f\0\0\0\0", 8) + "abc");
  // A length word one off from the payload's real length.
  std::string record = Records({MakeWrite(0, {1, 0, 0}, "a", "1")});
  out.Write("length_off_by_one",
            std::string(1, static_cast<char>(record[0] - 1)) + record.substr(1));
  // A valid CRC over a payload of an unknown type.
  record[8] = '\x02';
  const uint32_t crc = storage::Crc32c(record.data() + 8, record.size() - 8);
  std::memcpy(record.data() + 4, &crc, 4);
  out.Write("unknown_type", record);
}

// Seeds for fuzz_peer_auth: byte 0 picks the side (0 acceptor, 1 dialer),
// then what the other side sends, with fuzz_util.h's fixed secret and nonces
// so the proofs and tags are valid.
void PeerAuthCorpus(const fs::path& dir) {
  CorpusWriter out(dir / "fuzz_peer_auth");
  const std::string_view secret(fuzz::kAuthSecret, sizeof(fuzz::kAuthSecret) - 1);
  const uint64_t zero_clock[] = {0, 0, 0};
  const uint64_t c1[] = {0, 1, 0};
  const uint64_t c2[] = {0, 2, 0};
  const wire::WriteFields w1[] = {{1, c1, false, "a", "1"}};
  const wire::WriteFields w2[] = {{1, c2, false, "b", "2"}};

  // Acceptor: node 1 dials us (node 0).
  wire::Transcript a;
  a.cluster_fingerprint = fuzz::kAuthFingerprint;
  a.dialer = 1;
  a.acceptor = 0;
  a.dialer_nonce = fuzz::AuthNonce(0x42);
  a.acceptor_nonce = fuzz::AuthNonce(fuzz::kAcceptorNonceFill);
  const wire::Proof dialer_proof = wire::DialerProof(secret, a);
  const wire::SessionKeys keys = wire::DeriveSessionKeys(secret, a);
  auto view = [](const auto& bytes) {
    return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  };
  Frames hello;
  hello.Add(0, wire::HelloFields{fuzz::kAuthFingerprint, 1, view(a.dialer_nonce), ""});
  Frames proof;
  proof.Add(0, wire::HelloProofFields{view(dialer_proof)});
  auto sealed = [&](const wire::MacKey& key, std::initializer_list<std::string> frames) {
    wire::FrameMac mac(key);
    std::string bytes;
    for (const std::string& frame : frames) {
      bytes += frame;
      mac.Seal(&bytes, frame.size());
    }
    return bytes;
  };
  const std::string batch1 = OneFrame(0, wire::WriteBatchFields{w1});
  const std::string batch2 = OneFrame(0, wire::WriteBatchFields{w2});
  const std::string side_a(1, '\0');
  out.Write("acceptor_full",
            side_a + hello.bytes + proof.bytes + sealed(keys.dialer_to_acceptor, {batch1, batch2}));
  out.Write("acceptor_hello_only", side_a + hello.bytes);
  Frames wrong;
  wrong.Add(0, wire::HelloProofFields{std::string(32, 'x')});
  out.Write("acceptor_wrong_proof", side_a + hello.bytes + wrong.bytes);
  out.Write("acceptor_batch_before_proof", side_a + hello.bytes + batch1);
  out.Write("acceptor_unsealed_after_proof", side_a + hello.bytes + proof.bytes + batch1);
  const std::string both = sealed(keys.dialer_to_acceptor, {batch1, batch2});
  const size_t first = batch1.size() + wire::kMacBytes;
  out.Write("acceptor_reordered",
            side_a + hello.bytes + proof.bytes + both.substr(first) + both.substr(0, first));
  out.Write("acceptor_wrong_direction_key",
            side_a + hello.bytes + proof.bytes + sealed(keys.acceptor_to_dialer, {batch1}));
  Frames no_nonce;
  no_nonce.Add(0, wire::HelloFields{fuzz::kAuthFingerprint, 1, "", ""});
  out.Write("acceptor_hello_without_nonce", side_a + no_nonce.bytes);

  // Dialer: we (node 0) dialed node 1.
  wire::Transcript d;
  d.cluster_fingerprint = fuzz::kAuthFingerprint;
  d.dialer = 0;
  d.acceptor = 1;
  d.dialer_nonce = fuzz::AuthNonce(fuzz::kDialerNonceFill);
  d.acceptor_nonce = fuzz::AuthNonce(0x77);
  const wire::Proof acceptor_proof = wire::AcceptorProof(secret, d, zero_clock);
  const wire::SessionKeys dkeys = wire::DeriveSessionKeys(secret, d);
  Frames ack;
  ack.Add(0, wire::HelloAckFields{1, zero_clock, view(d.acceptor_nonce), view(acceptor_proof)});
  const std::string acks =
      sealed(dkeys.acceptor_to_dialer,
             {OneFrame(0, wire::AckFields{zero_clock}), OneFrame(0, wire::AckFields{c1})});
  const std::string side_d(1, '\1');
  out.Write("dialer_full", side_d + ack.bytes + acks);
  Frames forged;
  forged.Add(0, wire::HelloAckFields{1, c1, view(d.acceptor_nonce), view(acceptor_proof)});
  out.Write("dialer_clock_altered", side_d + forged.bytes + acks);
  Frames plain_ack;
  plain_ack.Add(0, wire::HelloAckFields{1, zero_clock, "", ""});
  out.Write("dialer_no_proof", side_d + plain_ack.bytes);
  out.Write("dialer_unsealed_ack", side_d + ack.bytes + OneFrame(0, wire::AckFields{c1}));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path dir(argv[1]);
  FrameDecoderCorpus(dir);
  ClientDispatchCorpus(dir);
  PeerDispatchCorpus(dir);
  WalReaderCorpus(dir);
  PeerAuthCorpus(dir);
  return 0;
}
