// The cluster fingerprint: a 64-bit digest of the ordered cluster list that
// peers exchange in Hello, so two nodes configured with different lists
// refuse each other instead of mixing clocks of different clusters.
//
// It is FNV-1a (64-bit; offset basis 0xcbf29ce484222325, prime
// 0x100000001b3) over the canonical text of the list: "<id>=<address>" per
// node, ids 1-based in list order, joined by ",", for example
// "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003". Addresses are
// compared as written: every node's config must spell them the same way.
// FNV-1a is not a MAC; it catches mistakes, not attackers (Hello's auth
// field is reserved for that).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace kvd::wire {

inline constexpr uint64_t kFnv1a64Offset = 0xcbf29ce484222325ULL;
inline constexpr uint64_t kFnv1a64Prime = 0x100000001b3ULL;

// Continues an FNV-1a hash over `bytes`; start with kFnv1a64Offset.
uint64_t Fnv1a64(std::string_view bytes, uint64_t hash = kFnv1a64Offset);

// "1=a,2=b,..." for addresses {a, b, ...}.
std::string CanonicalClusterList(std::span<const std::string> addresses);

// Fnv1a64(CanonicalClusterList(addresses)), computed without building the text.
uint64_t ClusterFingerprint(std::span<const std::string> addresses);

}  // namespace kvd::wire
