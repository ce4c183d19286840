#include "schema/handshake.h"

#include <algorithm>
#include <string>

#include "schema/view.h"

namespace kvd::wire {
namespace {

WireError Unauthorized(std::string message) {
  return WireError{fb::Status::UNAUTHORIZED, std::move(message)};
}

std::span<const uint8_t> Bytes(const flatbuffers::Vector<uint8_t>* bytes) {
  if (bytes == nullptr) return {};
  return {bytes->data(), bytes->size()};
}

}  // namespace

AcceptorHandshake::AcceptorHandshake(std::string_view secret, uint64_t fingerprint, uint32_t self)
    : secret_(secret) {
  transcript_.cluster_fingerprint = fingerprint;
  transcript_.acceptor = self;
}

std::optional<WireError> AcceptorHandshake::OnHello(const fb::Hello& hello, const Nonce& nonce,
                                                    std::span<const uint64_t> clock) {
  std::span<const uint8_t> dialer_nonce = Bytes(hello.nonce());
  if (dialer_nonce.size() != kNonceBytes) {
    return Unauthorized(
        "this cluster requires peer authentication: give every node the same "
        "--cluster-secret-file");
  }
  transcript_.dialer = hello.node_index();
  std::copy(dialer_nonce.begin(), dialer_nonce.end(), transcript_.dialer_nonce.begin());
  transcript_.acceptor_nonce = nonce;
  proof_ = AcceptorProof(secret_, transcript_, clock);
  return std::nullopt;
}

std::optional<WireError> AcceptorHandshake::OnProof(const fb::HelloProof& proof,
                                                    SessionKeys* keys) const {
  if (!ProofMatches(Bytes(proof.auth()), DialerProof(secret_, transcript_))) {
    return Unauthorized("HelloProof does not match: the nodes have different cluster secrets");
  }
  *keys = DeriveSessionKeys(secret_, transcript_);
  return std::nullopt;
}

DialerHandshake::DialerHandshake(std::string_view secret, uint64_t fingerprint, uint32_t self,
                                 uint32_t peer, const Nonce& nonce)
    : secret_(secret) {
  transcript_.cluster_fingerprint = fingerprint;
  transcript_.dialer = self;
  transcript_.acceptor = peer;
  transcript_.dialer_nonce = nonce;
}

std::optional<WireError> DialerHandshake::OnHelloAck(const fb::HelloAck& ack, SessionKeys* keys) {
  std::span<const uint8_t> acceptor_nonce = Bytes(ack.nonce());
  if (acceptor_nonce.size() != kNonceBytes) {
    return Unauthorized("its HelloAck carries no proof: is --cluster-secret-file set on it?");
  }
  std::copy(acceptor_nonce.begin(), acceptor_nonce.end(), transcript_.acceptor_nonce.begin());
  if (!ProofMatches(Bytes(ack.auth()), AcceptorProof(secret_, transcript_, AsClock(ack.clock())))) {
    return Unauthorized(
        "its HelloAck proof does not match: the nodes have different cluster secrets");
  }
  proof_ = DialerProof(secret_, transcript_);
  *keys = DeriveSessionKeys(secret_, transcript_);
  return std::nullopt;
}

}  // namespace kvd::wire
