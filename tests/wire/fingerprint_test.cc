// The cluster fingerprint peers compare in Hello.
#include "schema/fingerprint.h"

#include <criterion/criterion.h>

#include <string>
#include <vector>

using namespace kvd::wire;

namespace {
const std::vector<std::string> kCluster = {"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"};
}  // namespace

// Published FNV-1a 64-bit test vectors.
Test(fingerprint, fnv1a64_known_vectors) {
  cr_assert_eq(Fnv1a64(""), 0xcbf29ce484222325ULL);
  cr_assert_eq(Fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  cr_assert_eq(Fnv1a64("foobar"), 0x85944171f73967e8ULL);
  cr_assert_eq(Fnv1a64("bar", Fnv1a64("foo")), Fnv1a64("foobar"), "hashing continues");
}

Test(fingerprint, canonical_list) {
  cr_assert_eq(CanonicalClusterList(kCluster),
               "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003");
  cr_assert_eq(CanonicalClusterList(std::vector<std::string>{}), "");
}

Test(fingerprint, is_the_hash_of_the_canonical_list) {
  cr_assert_eq(ClusterFingerprint(kCluster), Fnv1a64(CanonicalClusterList(kCluster)));
  // Computed independently of this code.
  cr_assert_eq(ClusterFingerprint(kCluster), 0x3a948c08660d056eULL);
}

Test(fingerprint, order_and_spelling_matter) {
  const std::vector<std::string> reordered = {kCluster[1], kCluster[0], kCluster[2]};
  const std::vector<std::string> respelled = {"localhost:7001", kCluster[1], kCluster[2]};
  const std::vector<std::string> shorter = {kCluster[0], kCluster[1]};
  const uint64_t base = ClusterFingerprint(kCluster);
  cr_assert_neq(ClusterFingerprint(reordered), base);
  cr_assert_neq(ClusterFingerprint(respelled), base);
  cr_assert_neq(ClusterFingerprint(shorter), base);
}
