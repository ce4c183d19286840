// fuzz_peer_auth: the peer authentication handshake and the sealed frames
// after it, from either side, as the daemon runs them (dispatch.cc for the
// acceptor, peer_link.cc for the dialer) minus the sockets.
//
// Input: byte 0 picks the side (even: this node accepted the connection and
// is node 0 of a 3-node cluster; odd: it dialed node 1), the rest is the
// stream of frames the other side sent, fed in input-chosen pieces. The
// secret, fingerprint and this side's nonce are fixed (fuzz_util.h), so
// the corpus can hold complete, valid handshakes for the fuzzer to mutate.
//
// Invariants: nothing but the handshake frames is accepted before the
// proof checks out; the link is accepted only with exactly the proof the
// secret gives; from then on every frame handed out was sealed with the
// right key and sequence number (the MAC counts one per frame), and its
// bytes re-seal to what arrived.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "fuzz/fuzz_util.h"
#include "schema/auth.h"
#include "schema/check.h"
#include "schema/frame_mac.h"
#include "schema/handshake.h"
#include "schema/view.h"

namespace {

using namespace kvd;

constexpr uint32_t kAcceptorSelf = 0;
constexpr uint32_t kDialerSelf = 0;
constexpr uint32_t kDialedPeer = 1;

wire::Limits Limits() {
  wire::Limits limits;
  limits.cluster_size = 3;
  limits.frame_bytes_max = 64 * 1024;
  return limits;
}

std::string_view Secret() { return {fuzz::kAuthSecret, sizeof(fuzz::kAuthSecret) - 1}; }

std::span<const uint8_t> Bytes(const flatbuffers::Vector<uint8_t>* v) {
  return v == nullptr ? std::span<const uint8_t>() : std::span<const uint8_t>(v->data(), v->size());
}

// One side of one connection. OnFrame returns false when the daemon would
// close the connection.
class Side {
 public:
  explicit Side(bool acceptor, wire::FrameDecoder* decoder)
      : acceptor_(acceptor), decoder_(decoder) {}

  bool OnFrame(const wire::Frame& frame) {
    const fb::Envelope& envelope = *frame.envelope;
    if (opener_ != nullptr) {
      // Every frame since the handshake passed the MAC, one sequence
      // number each, and re-seals to the bytes that arrived.
      ++sealed_frames_;
      FUZZ_CHECK(opener_->sequence() == sealed_frames_);
      // Open() works in place, so the tag that arrived still follows the
      // plain frame.
      std::string again(reinterpret_cast<const char*>(frame.bytes), frame.size);
      resealer_->Seal(&again, frame.size);
      FUZZ_CHECK(again.size() == frame.size + wire::kMacBytes);
      FUZZ_CHECK(
          std::memcmp(again.data() + frame.size, frame.bytes + frame.size, wire::kMacBytes) == 0);
    }
    if (wire::CheckEnvelope(envelope, Limits())) return false;
    return acceptor_ ? Acceptor(envelope) : Dialer(envelope);
  }

 private:
  bool Acceptor(const fb::Envelope& envelope) {
    switch (state_) {
      case State::kStart: {
        const fb::Hello* hello = envelope.message_as_Hello();
        if (hello == nullptr || hello->cluster_fingerprint() != fuzz::kAuthFingerprint ||
            hello->node_index() == kAcceptorSelf) {
          return false;
        }
        acceptor_handshake_ = std::make_unique<wire::AcceptorHandshake>(
            Secret(), fuzz::kAuthFingerprint, kAcceptorSelf);
        const uint64_t clock[] = {0, 0, 0};
        if (acceptor_handshake_->OnHello(*hello, fuzz::AuthNonce(fuzz::kAcceptorNonceFill),
                                         clock)) {
          return false;
        }
        transcript_.cluster_fingerprint = fuzz::kAuthFingerprint;
        transcript_.dialer = hello->node_index();
        transcript_.acceptor = kAcceptorSelf;
        std::copy(hello->nonce()->begin(), hello->nonce()->end(), transcript_.dialer_nonce.begin());
        transcript_.acceptor_nonce = fuzz::AuthNonce(fuzz::kAcceptorNonceFill);
        FUZZ_CHECK(acceptor_handshake_->proof() ==
                   View(wire::AcceptorProof(Secret(), transcript_, clock)));
        state_ = State::kAwaitProof;
        return true;
      }
      case State::kAwaitProof: {
        // Anything but the proof ends the connection before it counts.
        const fb::HelloProof* proof = envelope.message_as_HelloProof();
        if (proof == nullptr) return false;
        wire::SessionKeys keys;
        const bool accepted = !acceptor_handshake_->OnProof(*proof, &keys);
        const bool genuine =
            wire::ProofMatches(Bytes(proof->auth()), wire::DialerProof(Secret(), transcript_));
        FUZZ_CHECK(accepted == genuine);
        if (!accepted) return false;
        Seal(keys.dialer_to_acceptor);
        state_ = State::kSealed;
        return true;
      }
      case State::kSealed:
        // The daemon takes WriteBatch here and refuses the rest: only
        // sealed frames get this far.
        FUZZ_CHECK(opener_ != nullptr);
        return envelope.message_type() == fb::Message::WriteBatch;
      case State::kConfirming:
        break;
    }
    return false;
  }

  bool Dialer(const fb::Envelope& envelope) {
    switch (state_) {
      case State::kStart: {
        const fb::HelloAck* ack = envelope.message_as_HelloAck();
        if (ack == nullptr || ack->node_index() != kDialedPeer) return false;
        wire::DialerHandshake handshake(Secret(), fuzz::kAuthFingerprint, kDialerSelf, kDialedPeer,
                                        fuzz::AuthNonce(fuzz::kDialerNonceFill));
        wire::SessionKeys keys;
        const bool accepted = !handshake.OnHelloAck(*ack, &keys);
        wire::Transcript t;
        t.cluster_fingerprint = fuzz::kAuthFingerprint;
        t.dialer = kDialerSelf;
        t.acceptor = kDialedPeer;
        t.dialer_nonce = fuzz::AuthNonce(fuzz::kDialerNonceFill);
        const bool has_nonce = ack->nonce() != nullptr && ack->nonce()->size() == wire::kNonceBytes;
        if (has_nonce)
          std::copy(ack->nonce()->begin(), ack->nonce()->end(), t.acceptor_nonce.begin());
        const bool genuine =
            has_nonce &&
            wire::ProofMatches(Bytes(ack->auth()),
                               wire::AcceptorProof(Secret(), t, wire::AsClock(ack->clock())));
        FUZZ_CHECK(accepted == genuine);
        if (!accepted) return false;
        FUZZ_CHECK(handshake.proof() == View(wire::DialerProof(Secret(), t)));
        Seal(keys.acceptor_to_dialer);
        state_ = State::kConfirming;
        return true;
      }
      case State::kConfirming:
      case State::kSealed:
        FUZZ_CHECK(opener_ != nullptr);
        if (envelope.message_type() != fb::Message::Ack) return false;
        state_ = State::kSealed;
        return true;
      case State::kAwaitProof:
        break;
    }
    return false;
  }

  void Seal(const wire::MacKey& key) {
    opener_ = std::make_unique<wire::FrameMac>(key);
    resealer_ = std::make_unique<wire::FrameMac>(key);
    decoder_->set_mac(opener_.get());
  }

  template <typename Array>
  static std::string_view View(const Array& a) {
    return {reinterpret_cast<const char*>(a.data()), a.size()};
  }

  enum class State { kStart, kAwaitProof, kConfirming, kSealed };
  bool acceptor_;
  wire::FrameDecoder* decoder_;
  State state_ = State::kStart;
  wire::Transcript transcript_;
  std::unique_ptr<wire::AcceptorHandshake> acceptor_handshake_;
  std::unique_ptr<wire::FrameMac> opener_;
  std::unique_ptr<wire::FrameMac> resealer_;
  uint64_t sealed_frames_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  kvd::wire::FrameDecoder decoder(Limits().frame_bytes_max);
  Side side(data[0] % 2 == 0, &decoder);
  kvd::fuzz::FeedInPieces(decoder, data + 1, size - 1, /*seed=*/size,
                          [&](const kvd::wire::Frame& frame) { return side.OnFrame(frame); });
  return 0;
}
