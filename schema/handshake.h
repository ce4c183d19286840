// The two sides of an authenticated peer handshake (auth.h has the
// picture): what each side checks in the other's frames and what it
// answers. Pure: the caller supplies its random nonce and sends the frames;
// the daemon (dispatch.cc, peer_link.cc) and the fuzz target drive these
// the same way.
//
// Both classes keep a view of `secret`: it must outlive them. Every
// failure is a WireError with status UNAUTHORIZED and a message that names
// the likely cause without revealing anything about the secret.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "schema/auth.h"
#include "schema/kv_generated.h"
#include "schema/wire_error.h"

namespace kvd::wire {

// The node that accepted a connection and received a Hello.
class AcceptorHandshake {
 public:
  AcceptorHandshake(std::string_view secret, uint64_t fingerprint, uint32_t self);

  // Takes a checked Hello whose fingerprint and node index the caller has
  // accepted, and prepares the HelloAck that carries `clock` and `nonce`
  // (fresh and random): send nonce() and proof() in it.
  std::optional<WireError> OnHello(const fb::Hello& hello, const Nonce& nonce,
                                   std::span<const uint64_t> clock);
  std::string_view nonce() const { return View(transcript_.acceptor_nonce); }
  std::string_view proof() const { return View(proof_); }
  uint32_t dialer() const { return transcript_.dialer; }

  // Takes a checked HelloProof. On success fills *keys: frames from the
  // dialer are opened with keys->dialer_to_acceptor, ours sealed with
  // keys->acceptor_to_dialer. REQUIRES: OnHello succeeded.
  std::optional<WireError> OnProof(const fb::HelloProof& proof, SessionKeys* keys) const;

 private:
  template <typename Array>
  static std::string_view View(const Array& bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }

  std::string_view secret_;
  Transcript transcript_;
  Proof proof_{};
};

// The node that dialed a peer and sent a Hello.
class DialerHandshake {
 public:
  // `nonce`: fresh and random, sent in our Hello (nonce()).
  DialerHandshake(std::string_view secret, uint64_t fingerprint, uint32_t self, uint32_t peer,
                  const Nonce& nonce);
  std::string_view nonce() const {
    return {reinterpret_cast<const char*>(transcript_.dialer_nonce.data()), kNonceBytes};
  }

  // Takes a checked HelloAck from the peer we dialed (its node index
  // checked by the caller). On success fills *keys (ours sealed with
  // keys->dialer_to_acceptor) and proof() holds what to send in HelloProof.
  std::optional<WireError> OnHelloAck(const fb::HelloAck& ack, SessionKeys* keys);
  std::string_view proof() const {
    return {reinterpret_cast<const char*>(proof_.data()), proof_.size()};
  }

 private:
  std::string_view secret_;
  Transcript transcript_;
  Proof proof_{};
};

}  // namespace kvd::wire
