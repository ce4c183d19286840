// Peer and client authentication (PROTOCOL.md, "Peer authentication" and
// "Client password"): the values both ends of a peer handshake compute from
// the cluster secret, and the constant-time comparisons that check them.
// Pure functions over bytes (HMAC-SHA256 from OpenSSL's libcrypto); the
// daemon and the fuzz harness call them, the tests check them against an
// independent implementation.
//
// The handshake, with a secret S shared by every node:
//
//   dialer D                                        acceptor A
//   Hello {fingerprint, D, nonce Nd}          ->
//                                             <-    HelloAck {A, clock, nonce Na,
//                                                             auth AcceptorProof}
//   HelloProof {auth DialerProof}             ->
//   ... every later frame, both ways, sealed with its direction's
//       SessionKeys entry (frame_mac.h) ...
//
// Every proof and key covers the whole Transcript, so a recorded handshake
// is worth nothing against fresh nonces, a proof made for one pair of
// nodes does not work for another, and the two directions never share a key.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace kvd::wire {

inline constexpr size_t kNonceBytes = 32;
inline constexpr size_t kProofBytes = 32;  // One HMAC-SHA256 output.
inline constexpr size_t kMacKeyBytes = 32;
// A shorter cluster secret is refused at start-up: it could be guessed
// offline from one recorded handshake.
inline constexpr size_t kClusterSecretBytesMin = 16;
// Secrets and passwords are read whole; longer files are refused.
inline constexpr size_t kSecretBytesMax = 4096;

using Nonce = std::array<uint8_t, kNonceBytes>;
using Proof = std::array<uint8_t, kProofBytes>;
using MacKey = std::array<uint8_t, kMacKeyBytes>;

// What both ends of one peer handshake agree on. Indexes are 0-based node
// indexes: the dialer sent Hello, the acceptor answered HelloAck.
struct Transcript {
  uint64_t cluster_fingerprint = 0;
  uint32_t dialer = 0;
  uint32_t acceptor = 0;
  Nonce dialer_nonce{};
  Nonce acceptor_nonce{};
};

// The acceptor's proof of S, in HelloAck.auth. It also covers the clock the
// HelloAck carries, so nobody can alter what the dialer learns from it.
Proof AcceptorProof(std::string_view secret, const Transcript& transcript,
                    std::span<const uint64_t> clock);

// The dialer's proof of S, in HelloProof.auth.
Proof DialerProof(std::string_view secret, const Transcript& transcript);

// The keys that seal frames after the handshake, one per direction.
struct SessionKeys {
  MacKey dialer_to_acceptor{};
  MacKey acceptor_to_dialer{};
};
SessionKeys DeriveSessionKeys(std::string_view secret, const Transcript& transcript);

// True if `received` is exactly `expected`, in time independent of where
// they differ (a length mismatch is refused at once: lengths are public).
bool ProofMatches(std::span<const uint8_t> received, const Proof& expected);

// True if a client's password equals the configured one, in time that
// depends on neither (both are hashed first, then compared in constant time).
bool PasswordMatches(std::string_view presented, std::string_view expected);

// A fresh random nonce from the operating system's generator. False only
// if that generator fails (the caller refuses the handshake).
bool RandomNonce(Nonce* out);

}  // namespace kvd::wire
