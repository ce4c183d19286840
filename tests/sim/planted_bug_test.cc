// Built once per planted bug against a core compiled with that bug
// (KV_PLANTED_BUG, see daemon/core/planted_bug.h): the simulator and the
// checker must catch it within 1,000 seeds. Prints how many seeds it took.
#include <criterion/criterion.h>

#include <cstdio>

#include "tests/sim/simulation.h"

namespace {

// Seeds until the first failing run (0 if none in 1,000), and its first line.
uint64_t SeedsToCatch(uint32_t nodes, bool invariants, std::string* first_line) {
  for (uint64_t seed = 1; seed <= 1000; ++seed) {
    kvd::sim::Options options;
    options.nodes = nodes;
    options.seed = seed;
    options.invariants = invariants;
    kvd::sim::Result result = kvd::sim::Run(options);
    if (!result.ok) {
      *first_line = result.failure.substr(0, result.failure.find('\n'));
      return seed;
    }
  }
  return 0;
}

}  // namespace

Test(planted_bug, caught_within_1000_seeds) {
  for (uint32_t nodes : {3u, 5u}) {
    // With every check, and with the end-of-run checks and the history
    // checker alone (no step-by-step invariants).
    for (bool invariants : {true, false}) {
      std::string first_line;
      uint64_t caught_at = SeedsToCatch(nodes, invariants, &first_line);
      cr_assert_neq(caught_at, 0, "planted bug %d not caught in 1000 seeds with %u nodes%s",
                    KV_PLANTED_BUG, nodes, invariants ? "" : " (checker only)");
      std::printf("planted bug %d: caught at seed %llu with %u nodes%s: %s\n", KV_PLANTED_BUG,
                  (unsigned long long)caught_at, nodes, invariants ? "" : " (checker only)",
                  first_line.c_str());
    }
  }
}
