#include "schema/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace kvd::wire {
namespace {

// Domain separation: each value is an HMAC of a distinct label followed by
// fixed-size fields, so no two of them can ever be computed over the same
// bytes. The labels end in NUL; none is a prefix of another.
constexpr char kAcceptorLabel[] = "causalkv-v1 acceptor proof";
constexpr char kDialerLabel[] = "causalkv-v1 dialer proof";
constexpr char kDialerKeyLabel[] = "causalkv-v1 key dialer->acceptor";
constexpr char kAcceptorKeyLabel[] = "causalkv-v1 key acceptor->dialer";

// A label with its terminating NUL.
template <size_t N>
constexpr std::string_view Label(const char (&text)[N]) {
  return {text, N};
}

void AppendLe(uint64_t value, size_t bytes, std::string* out) {
  for (size_t i = 0; i < bytes; ++i) out->push_back(static_cast<char>(value >> (8 * i)));
}

// label || fingerprint (8, LE) || dialer (4, LE) || acceptor (4, LE) ||
// dialer nonce (32) || acceptor nonce (32).
std::string Message(std::string_view label, const Transcript& t) {
  std::string out(label);
  AppendLe(t.cluster_fingerprint, 8, &out);
  AppendLe(t.dialer, 4, &out);
  AppendLe(t.acceptor, 4, &out);
  out.append(reinterpret_cast<const char*>(t.dialer_nonce.data()), t.dialer_nonce.size());
  out.append(reinterpret_cast<const char*>(t.acceptor_nonce.data()), t.acceptor_nonce.size());
  return out;
}

std::array<uint8_t, 32> Hmac(std::string_view key, std::string_view message) {
  std::array<uint8_t, 32> out{};
  unsigned int length = 0;
  // HMAC() fails only if libcrypto itself is broken (no SHA-256): a fault
  // of the installation, not of any input.
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(),
           &length) == nullptr ||
      length != out.size()) {
    std::fprintf(stderr, "kvd::wire: HMAC-SHA256 unavailable in libcrypto\n");
    std::abort();
  }
  return out;
}

}  // namespace

Proof AcceptorProof(std::string_view secret, const Transcript& transcript,
                    std::span<const uint64_t> clock) {
  std::string message = Message(Label(kAcceptorLabel), transcript);
  // The clock's length is the cluster size, which both ends know and the
  // fingerprint covers: no length field is needed.
  for (uint64_t entry : clock) AppendLe(entry, 8, &message);
  return Hmac(secret, message);
}

Proof DialerProof(std::string_view secret, const Transcript& transcript) {
  return Hmac(secret, Message(Label(kDialerLabel), transcript));
}

SessionKeys DeriveSessionKeys(std::string_view secret, const Transcript& transcript) {
  SessionKeys keys;
  keys.dialer_to_acceptor = Hmac(secret, Message(Label(kDialerKeyLabel), transcript));
  keys.acceptor_to_dialer = Hmac(secret, Message(Label(kAcceptorKeyLabel), transcript));
  return keys;
}

bool ProofMatches(std::span<const uint8_t> received, const Proof& expected) {
  if (received.size() != expected.size()) return false;
  return CRYPTO_memcmp(received.data(), expected.data(), expected.size()) == 0;
}

bool PasswordMatches(std::string_view presented, std::string_view expected) {
  std::array<uint8_t, 32> a{};
  std::array<uint8_t, 32> b{};
  unsigned int length = 0;
  if (EVP_Digest(presented.data(), presented.size(), a.data(), &length, EVP_sha256(), nullptr) !=
          1 ||
      EVP_Digest(expected.data(), expected.size(), b.data(), &length, EVP_sha256(), nullptr) != 1) {
    return false;
  }
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool RandomNonce(Nonce* out) { return RAND_bytes(out->data(), static_cast<int>(out->size())) == 1; }

}  // namespace kvd::wire
