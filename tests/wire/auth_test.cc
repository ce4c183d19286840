// Peer authentication: the handshake values against an independent
// computation of PROTOCOL.md's formulas, both sides of the handshake,
// sealed frames through the decoder, and every way of forging one.
#include "schema/auth.h"

#include <criterion/criterion.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include "schema/frame_mac.h"
#include "schema/handshake.h"
#include "wire_test_util.h"

using namespace kvd::wire;
using namespace kvd::wire::test;
using kvd::fb::Message;
using kvd::fb::Status;
using Kind = DecodeResult::Kind;

namespace {

const std::string kSecret = "correct horse battery staple";
constexpr uint64_t kFingerprint = 0x3a948c08660d056eULL;

Nonce Filled(uint8_t byte) {
  Nonce n;
  n.fill(byte);
  return n;
}

Transcript Sample() {
  Transcript t;
  t.cluster_fingerprint = kFingerprint;
  t.dialer = 2;
  t.acceptor = 0;
  t.dialer_nonce = Filled(0xD1);
  t.acceptor_nonce = Filled(0xA0);
  return t;
}

std::string Le(uint64_t v, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  return out;
}

// PROTOCOL.md section 9, written out again without schema/auth.cc.
std::string Reference(const std::string& label, const Transcript& t, const std::string& tail = "") {
  std::string message = label + std::string(1, '\0') + Le(t.cluster_fingerprint, 8) +
                        Le(t.dialer, 4) + Le(t.acceptor, 4) +
                        std::string(t.dialer_nonce.begin(), t.dialer_nonce.end()) +
                        std::string(t.acceptor_nonce.begin(), t.acceptor_nonce.end()) + tail;
  unsigned char out[32];
  unsigned int length = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), out, &length);
  cr_assert_eq(length, 32u);
  return std::string(reinterpret_cast<char*>(out), 32);
}

std::string Join(const std::vector<std::string>& frames) {
  std::string stream;
  for (const auto& f : frames) stream += f;
  return stream;
}

template <typename Array>
std::string Str(const Array& a) {
  return std::string(a.begin(), a.end());
}

// Decodes one plain frame into aligned storage (as the daemon would hand
// it to the handshake) and returns its envelope.
const kvd::fb::Envelope* Decode(const std::string& frame, std::vector<uint64_t>* storage) {
  return DecodeOne(frame, storage);
}

}  // namespace

Test(auth, values_follow_the_documented_formulas) {
  const Transcript t = Sample();
  const uint64_t clock[] = {5, 0, 7};
  const std::string clock_bytes = Le(5, 8) + Le(0, 8) + Le(7, 8);
  cr_assert_eq(Str(AcceptorProof(kSecret, t, clock)),
               Reference("causalkv-v1 acceptor proof", t, clock_bytes));
  cr_assert_eq(Str(DialerProof(kSecret, t)), Reference("causalkv-v1 dialer proof", t));
  SessionKeys keys = DeriveSessionKeys(kSecret, t);
  cr_assert_eq(Str(keys.dialer_to_acceptor), Reference("causalkv-v1 key dialer->acceptor", t));
  cr_assert_eq(Str(keys.acceptor_to_dialer), Reference("causalkv-v1 key acceptor->dialer", t));
  cr_assert_neq(Str(keys.dialer_to_acceptor), Str(keys.acceptor_to_dialer));
}

Test(auth, every_transcript_field_changes_every_value) {
  const uint64_t clock[] = {1, 2, 3};
  const Transcript base = Sample();
  std::vector<Transcript> changed(5, base);
  changed[0].cluster_fingerprint ^= 1;
  changed[1].dialer = 1;
  changed[2].acceptor = 1;
  changed[3].dialer_nonce[31] ^= 1;
  changed[4].acceptor_nonce[0] ^= 1;
  for (const Transcript& t : changed) {
    cr_assert_neq(Str(AcceptorProof(kSecret, t, clock)), Str(AcceptorProof(kSecret, base, clock)));
    cr_assert_neq(Str(DialerProof(kSecret, t)), Str(DialerProof(kSecret, base)));
    cr_assert_neq(Str(DeriveSessionKeys(kSecret, t).dialer_to_acceptor),
                  Str(DeriveSessionKeys(kSecret, base).dialer_to_acceptor));
  }
  const uint64_t other_clock[] = {1, 2, 4};
  cr_assert_neq(Str(AcceptorProof(kSecret, base, clock)),
                Str(AcceptorProof(kSecret, base, other_clock)));
  cr_assert_neq(Str(DialerProof(kSecret, base)), Str(DialerProof(kSecret + "x", base)));
}

Test(auth, proof_and_password_comparisons) {
  const Proof p = DialerProof(kSecret, Sample());
  std::vector<uint8_t> same(p.begin(), p.end());
  cr_assert(ProofMatches(same, p));
  for (size_t i = 0; i < same.size(); ++i) {
    std::vector<uint8_t> flipped = same;
    flipped[i] ^= 0x80;
    cr_assert_not(ProofMatches(flipped, p), "byte %zu", i);
  }
  cr_assert_not(ProofMatches(std::span<const uint8_t>(same.data(), 31), p));
  cr_assert_not(ProofMatches({}, p));
  cr_assert(PasswordMatches("hunter2", "hunter2"));
  cr_assert_not(PasswordMatches("hunter3", "hunter2"));
  cr_assert_not(PasswordMatches("hunter2 ", "hunter2"));
  cr_assert_not(PasswordMatches("", "hunter2"));
}

Test(auth, random_nonces_differ) {
  Nonce a, b;
  cr_assert(RandomNonce(&a));
  cr_assert(RandomNonce(&b));
  cr_assert_neq(Str(a), Str(b));
}

// --- The handshake, both sides -------------------------------------------------

namespace {

struct Exchange {
  std::string hello, hello_ack, hello_proof;
  SessionKeys dialer_keys, acceptor_keys;
  std::optional<WireError> dialer_error, acceptor_error;
};

// Runs one handshake through real frames. The acceptor uses `acceptor_secret`.
Exchange Run(const std::string& dialer_secret, const std::string& acceptor_secret,
             const uint64_t* clock = kClock3) {
  Exchange x;
  DialerHandshake dialer(dialer_secret, kFingerprint, 2, 0, Filled(0x11));
  AcceptorHandshake acceptor(acceptor_secret, kFingerprint, 0);
  x.hello = EncodeOne(
      HelloFields{.cluster_fingerprint = kFingerprint, .node_index = 2, .nonce = dialer.nonce()});
  std::vector<uint64_t> s1, s2, s3;
  const auto* hello = Decode(x.hello, &s1)->message_as_Hello();
  cr_assert_not(acceptor.OnHello(*hello, Filled(0x22), std::span<const uint64_t>(clock, 3)));
  cr_assert_eq(acceptor.dialer(), 2u);
  x.hello_ack = EncodeOne(HelloAckFields{.node_index = 0,
                                         .clock = std::span<const uint64_t>(kClock3, 3),
                                         .nonce = acceptor.nonce(),
                                         .auth = acceptor.proof()});
  const auto* ack_env = Decode(x.hello_ack, &s2);
  cr_assert_not(CheckEnvelope(*ack_env, ThreeNodes()));
  x.dialer_error = dialer.OnHelloAck(*ack_env->message_as_HelloAck(), &x.dialer_keys);
  if (x.dialer_error) return x;
  x.hello_proof = EncodeOne(HelloProofFields{.auth = dialer.proof()});
  const auto* proof_env = Decode(x.hello_proof, &s3);
  cr_assert_not(CheckEnvelope(*proof_env, ThreeNodes()));
  x.acceptor_error = acceptor.OnProof(*proof_env->message_as_HelloProof(), &x.acceptor_keys);
  return x;
}

}  // namespace

Test(handshake, same_secret_agrees_on_keys) {
  Exchange x = Run(kSecret, kSecret);
  cr_assert_not(x.dialer_error, "%s", x.dialer_error ? x.dialer_error->message.c_str() : "");
  cr_assert_not(x.acceptor_error);
  cr_assert_eq(Str(x.dialer_keys.dialer_to_acceptor), Str(x.acceptor_keys.dialer_to_acceptor));
  cr_assert_eq(Str(x.dialer_keys.acceptor_to_dialer), Str(x.acceptor_keys.acceptor_to_dialer));
}

Test(handshake, wrong_secret_fails_at_the_dialer) {
  Exchange x = Run(kSecret + "!", kSecret);
  cr_assert(x.dialer_error.has_value());
  cr_assert_eq(x.dialer_error->status, Status::UNAUTHORIZED);
}

Test(handshake, a_clock_that_differs_from_the_proven_one_fails) {
  // The acceptor proves clock {9,9,9} but the HelloAck carries kClock3:
  // what a man in the middle altering the clock would produce.
  const uint64_t proven[] = {9, 9, 9};
  Exchange x = Run(kSecret, kSecret, proven);
  cr_assert(x.dialer_error.has_value());
}

Test(handshake, acceptor_refuses_a_wrong_proof_and_a_replayed_one) {
  AcceptorHandshake acceptor(kSecret, kFingerprint, 0);
  std::vector<uint64_t> s1, s2;
  std::string hello = EncodeOne(HelloFields{
      .cluster_fingerprint = kFingerprint, .node_index = 2, .nonce = Str(Filled(0x11))});
  cr_assert_not(acceptor.OnHello(*Decode(hello, &s1)->message_as_Hello(), Filled(0x33), kClock3));
  // The proof of an earlier handshake (acceptor nonce 0x22) is worthless
  // against this one's nonce.
  Exchange earlier = Run(kSecret, kSecret);
  SessionKeys keys;
  auto error = acceptor.OnProof(*Decode(earlier.hello_proof, &s2)->message_as_HelloProof(), &keys);
  cr_assert(error.has_value());
  cr_assert_eq(error->status, Status::UNAUTHORIZED);
}

Test(handshake, hello_without_nonce_is_refused) {
  AcceptorHandshake acceptor(kSecret, kFingerprint, 0);
  std::vector<uint64_t> s;
  std::string hello = EncodeOne(HelloFields{.cluster_fingerprint = kFingerprint, .node_index = 2});
  auto error = acceptor.OnHello(*Decode(hello, &s)->message_as_Hello(), Filled(1), kClock3);
  cr_assert(error.has_value());
  cr_assert_eq(error->status, Status::UNAUTHORIZED);
}

Test(handshake, hello_ack_without_proof_is_refused) {
  DialerHandshake dialer(kSecret, kFingerprint, 2, 0, Filled(1));
  std::vector<uint64_t> s;
  std::string ack = EncodeOne(HelloAckFields{.node_index = 0, .clock = kClock3});
  SessionKeys keys;
  auto error = dialer.OnHelloAck(*Decode(ack, &s)->message_as_HelloAck(), &keys);
  cr_assert(error.has_value());
  cr_assert_eq(error->status, Status::UNAUTHORIZED);
}

Test(handshake, checks_refuse_odd_sizes) {
  std::vector<uint64_t> s;
  auto refused = [&](const std::string& frame) {
    return CheckEnvelope(*Decode(frame, &s), ThreeNodes()).has_value();
  };
  cr_assert(refused(EncodeOne(HelloFields{.node_index = 1, .nonce = std::string(31, 'n')})));
  cr_assert_not(refused(EncodeOne(HelloFields{.node_index = 1, .nonce = std::string(32, 'n')})));
  cr_assert(refused(EncodeOne(HelloAckFields{
      .node_index = 1, .clock = kClock3, .nonce = std::string(32, 'n')})));  // No auth.
  cr_assert(refused(EncodeOne(HelloAckFields{
      .node_index = 1, .clock = kClock3, .nonce = "n", .auth = std::string(32, 'a')})));
  cr_assert(refused(EncodeOne(HelloProofFields{})));
  cr_assert(refused(EncodeOne(HelloProofFields{.auth = std::string(33, 'a')})));
  cr_assert(
      refused(EncodeOne(ClientAuthFields{.password = std::string(kSecretBytesMax + 1, 'p')})));
  cr_assert_not(refused(EncodeOne(ClientAuthFields{.password = "p"})));
}

// --- Sealed frames -------------------------------------------------------------------

namespace {

MacKey Key(uint8_t byte) {
  MacKey k;
  k.fill(byte);
  return k;
}

// `count` plain frames of assorted kinds and sizes.
std::vector<std::string> Plain(size_t count) {
  std::vector<std::string> frames;
  for (size_t i = 0; i < count; ++i) {
    const std::string key(1 + i % 7, 'k');
    const std::string value(i * 37 % 300, 'v');  // Outlives the views below.
    const WriteFields w[] = {{.origin = 1, .clock = kClock3, .key = key, .value = value}};
    if (i % 2 == 0) {
      frames.push_back(EncodeOne(WriteBatchFields{.writes = w}, i));
    } else {
      frames.push_back(EncodeOne(AckFields{.clock = kClock3}, i));
    }
  }
  return frames;
}

std::string SealAll(const std::vector<std::string>& frames, const MacKey& key) {
  FrameMac mac(key);
  std::string out;
  for (const std::string& f : frames) {
    out += f;
    mac.Seal(&out, f.size());
  }
  return out;
}

}  // namespace

Test(sealed, frames_open_to_their_plain_bytes_at_any_split) {
  const std::vector<std::string> frames = Plain(20);
  const std::string stream = SealAll(frames, Key(7));
  cr_assert_eq(stream.size(), Join(frames).size() + frames.size() * kMacBytes);
  Rng rng(1);
  for (int round = 0; round < 50; ++round) {
    FrameMac mac(Key(7));
    FrameDecoder decoder(kFrameBytesMaxDefault);
    decoder.set_mac(&mac);
    std::vector<std::string> out;
    for (size_t at = 0; at < stream.size();) {
      size_t n = std::min<size_t>(1 + rng.Below(200), stream.size() - at);
      decoder.Feed(stream.data() + at, n);
      at += n;
      WireError error;
      cr_assert_eq(Drain(decoder, &out, &error), Kind::kNeedMore, "%s", error.message.c_str());
    }
    cr_assert_eq(out, frames);
    cr_assert_eq(mac.sequence(), frames.size());
  }
}

Test(sealed, any_flipped_bit_is_unauthorized) {
  const std::vector<std::string> frames = Plain(3);
  const std::string stream = SealAll(frames, Key(7));
  for (size_t i = 0; i < stream.size(); ++i) {
    std::string bad = stream;
    bad[i] ^= static_cast<char>(1 << (i % 8));
    FrameMac mac(Key(7));
    FrameDecoder decoder(kFrameBytesMaxDefault);
    decoder.set_mac(&mac);
    FeedString(decoder, bad);
    std::vector<std::string> out;
    WireError error;
    Kind kind = Drain(decoder, &out, &error);
    // A flipped prefix bit may also make the frame too large or leave it
    // incomplete; it never yields a frame that differs from what was sent.
    for (size_t k = 0; k < out.size(); ++k) cr_assert_eq(out[k], frames[k], "byte %zu", i);
    cr_assert_lt(out.size(), frames.size(), "byte %zu: a forged stream opened", i);
    if (kind == Kind::kError && error.status == Status::UNAUTHORIZED) continue;
    cr_assert(kind == Kind::kNeedMore || error.status == Status::TOO_LARGE ||
                  error.status == Status::BAD_REQUEST,
              "byte %zu: %s", i, error.message.c_str());
  }
}

Test(sealed, reordered_replayed_dropped_and_foreign_frames_fail) {
  const std::vector<std::string> frames = Plain(3);
  std::vector<std::string> sealed;
  {
    FrameMac mac(Key(7));
    for (const std::string& f : frames) {
      std::string one = f;
      mac.Seal(&one, one.size());
      sealed.push_back(one);
    }
  }
  std::string foreign = frames[0];
  FrameMac other(Key(8));
  other.Seal(&foreign, foreign.size());
  const std::vector<std::vector<std::string>> attacks = {
      {sealed[1], sealed[0]},  // reordered
      {sealed[0], sealed[0]},  // replayed
      {sealed[0], sealed[2]},  // one dropped
      {foreign},               // another connection's key
      {frames[0]},             // not sealed at all
  };
  for (size_t a = 0; a < attacks.size(); ++a) {
    FrameMac mac(Key(7));
    FrameDecoder decoder(kFrameBytesMaxDefault);
    decoder.set_mac(&mac);
    FeedString(decoder, Join(attacks[a]));
    std::vector<std::string> out;
    WireError error;
    cr_assert_eq(Drain(decoder, &out, &error), Kind::kError, "attack %zu", a);
    cr_assert_eq(error.status, Status::UNAUTHORIZED, "attack %zu: %s", a, error.message.c_str());
    cr_assert_leq(out.size(), 1u);
  }
}

Test(sealed, mac_set_between_frames_applies_to_bytes_already_buffered) {
  // A HelloProof and the first sealed frame behind it can arrive in one
  // read: the decoder opens frames as it hands them out.
  const std::string proof = EncodeOne(HelloProofFields{.auth = std::string(32, 'p')});
  const std::vector<std::string> after = Plain(2);
  const std::string stream = proof + SealAll(after, Key(9));
  FrameDecoder decoder(kFrameBytesMaxDefault);
  FeedString(decoder, stream);
  DecodeResult first = decoder.Next();
  cr_assert_eq(first.kind, Kind::kFrame);
  cr_assert_eq(first.frame.envelope->message_type(), Message::HelloProof);
  FrameMac mac(Key(9));
  decoder.set_mac(&mac);
  std::vector<std::string> out;
  cr_assert_eq(Drain(decoder, &out), Kind::kNeedMore);
  cr_assert_eq(out, after);
}

namespace {

// libcrypto's allocations, counted through CRYPTO_set_mem_functions, which
// works only before libcrypto's first allocation in the process: hence a
// constructor that runs before main().
std::atomic<size_t> g_crypto_allocations{0};
bool g_crypto_counted = false;
void* CountingMalloc(size_t n, const char*, int) {
  ++g_crypto_allocations;
  return std::malloc(n);
}
void* CountingRealloc(void* p, size_t n, const char*, int) {
  ++g_crypto_allocations;
  return std::realloc(p, n);
}
void PlainFree(void* p, const char*, int) { std::free(p); }

__attribute__((constructor)) void CountCryptoAllocations() {
  g_crypto_counted = CRYPTO_set_mem_functions(CountingMalloc, CountingRealloc, PlainFree) == 1;
}

}  // namespace

// Our code allocates nothing per frame once warm. libcrypto 3.0 does: each
// HMAC restart duplicates its provider digest context (EVP_MD_CTX_copy_ex),
// two small allocations per frame whatever its size. The test pins that
// bound so a change that allocates per write or per byte shows up.
Test(sealed, steady_sealing_allocates_a_constant_per_frame) {
  cr_assert(g_crypto_counted, "libcrypto allocated before the counting allocator was installed");
  const std::vector<std::string> frames = Plain(50);
  FrameMac seal(Key(3));
  FrameMac open(Key(3));
  FrameDecoder decoder(kFrameBytesMaxDefault);
  decoder.set_mac(&open);
  std::string out;
  out.reserve(1 << 20);
  auto round = [&] {
    out.clear();
    for (const std::string& f : frames) {
      out += f;
      seal.Seal(&out, f.size());
    }
    FeedString(decoder, out);
    size_t n = 0;
    for (DecodeResult r = decoder.Next(); r.kind == Kind::kFrame; r = decoder.Next()) ++n;
    cr_assert_eq(n, frames.size());
  };
  round();  // Warm up the decoder's buffers.
  const size_t before = NewCalls();
  const size_t crypto_before = g_crypto_allocations.load();
  cr_assert_gt(crypto_before, 0u, "the counting allocator is not in use");
  for (int i = 0; i < 10; ++i) round();
  cr_assert_eq(NewCalls(), before);
  const size_t frames_macd = 10 * 2 * frames.size();  // Sealed and opened.
  const size_t crypto = g_crypto_allocations.load() - crypto_before;
  cr_log_info("libcrypto: %zu allocations for %zu frames", crypto, frames_macd);
  cr_assert_leq(crypto, 2 * frames_macd, "libcrypto: %zu allocations for %zu frames", crypto,
                frames_macd);
}
