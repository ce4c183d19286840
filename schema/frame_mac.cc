#include "schema/frame_mac.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace kvd::wire {
namespace {

constexpr size_t kPrefix = 4;

uint32_t LoadLe32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

void StoreLe32(uint32_t value, uint8_t* p) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(value >> (8 * i));
}

// libcrypto refusing HMAC-SHA256 is a broken installation, not bad input.
[[noreturn]] void CryptoFailure(const char* what) {
  std::fprintf(stderr, "kvd::wire::FrameMac: %s failed in libcrypto\n", what);
  std::abort();
}

}  // namespace

FrameMac::FrameMac(const MacKey& key) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) CryptoFailure("EVP_MAC_fetch(HMAC)");
  context_ = EVP_MAC_CTX_new(mac);
  EVP_MAC_free(mac);  // The context keeps its own reference.
  if (context_ == nullptr) CryptoFailure("EVP_MAC_CTX_new");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(context_, key.data(), key.size(), params) != 1) CryptoFailure("EVP_MAC_init");
}

FrameMac::~FrameMac() { EVP_MAC_CTX_free(context_); }

void FrameMac::Tag(const uint8_t* bytes, size_t size, uint8_t* tag) {
  // A null key re-initialises with the key given at construction (its
  // padded states are kept), so each frame costs no key schedule and no
  // allocation.
  uint8_t sequence[8];
  for (int i = 0; i < 8; ++i) sequence[i] = static_cast<uint8_t>(sequence_ >> (8 * i));
  size_t length = 0;
  if (EVP_MAC_init(context_, nullptr, 0, nullptr) != 1 ||
      EVP_MAC_update(context_, sequence, sizeof(sequence)) != 1 ||
      EVP_MAC_update(context_, bytes, size) != 1 ||
      EVP_MAC_final(context_, tag, &length, kMacBytes) != 1 || length != kMacBytes) {
    CryptoFailure("HMAC-SHA256");
  }
  ++sequence_;
}

void FrameMac::Seal(std::string* out, size_t frame_bytes) {
  auto* frame = reinterpret_cast<uint8_t*>(out->data() + out->size() - frame_bytes);
  StoreLe32(LoadLe32(frame) + static_cast<uint32_t>(kMacBytes), frame);
  uint8_t tag[kMacBytes];
  Tag(frame, frame_bytes, tag);
  out->append(reinterpret_cast<const char*>(tag), kMacBytes);
}

bool FrameMac::Open(uint8_t* frame, size_t* size) {
  // A sealed frame holds at least a tag and the 8 bytes every FlatBuffer
  // starts with (root offset, file identifier).
  if (*size < kPrefix + 8 + kMacBytes) return false;
  const size_t body = *size - kMacBytes;
  uint8_t expected[kMacBytes];
  const uint64_t sequence = sequence_;
  Tag(frame, body, expected);
  if (CRYPTO_memcmp(expected, frame + body, kMacBytes) != 0) {
    sequence_ = sequence;  // Nothing was opened.
    return false;
  }
  StoreLe32(LoadLe32(frame) - static_cast<uint32_t>(kMacBytes), frame);
  *size = body;
  return true;
}

}  // namespace kvd::wire
