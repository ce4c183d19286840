#include "schema/fingerprint.h"

namespace kvd::wire {

uint64_t Fnv1a64(std::string_view bytes, uint64_t hash) {
  for (const char c : bytes) {
    hash ^= static_cast<uint8_t>(c);
    hash *= kFnv1a64Prime;
  }
  return hash;
}

std::string CanonicalClusterList(std::span<const std::string> addresses) {
  std::string text;
  for (size_t i = 0; i < addresses.size(); ++i) {
    if (i > 0) text += ',';
    text += std::to_string(i + 1);
    text += '=';
    text += addresses[i];
  }
  return text;
}

uint64_t ClusterFingerprint(std::span<const std::string> addresses) {
  uint64_t hash = kFnv1a64Offset;
  for (size_t i = 0; i < addresses.size(); ++i) {
    if (i > 0) hash = Fnv1a64(",", hash);
    hash = Fnv1a64(std::to_string(i + 1), hash);
    hash = Fnv1a64("=", hash);
    hash = Fnv1a64(addresses[i], hash);
  }
  return hash;
}

}  // namespace kvd::wire
