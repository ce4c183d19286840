// Built once per planted bug against a core compiled with that bug
// (KV_PLANTED_BUG, see daemon/core/planted_bug.h): the simulator and the
// checker must catch it within 1,000 seeds. Prints how many seeds it took.
#include <criterion/criterion.h>

#include <cstdio>

#include "tests/sim/simulation.h"

Test(planted_bug, caught_within_1000_seeds) {
  for (uint32_t nodes : {3u, 5u}) {
    uint64_t caught_at = 0;
    kvd::sim::Result result;
    for (uint64_t seed = 1; seed <= 1000 && caught_at == 0; ++seed) {
      kvd::sim::Options options;
      options.nodes = nodes;
      options.seed = seed;
      result = kvd::sim::Run(options);
      if (!result.ok) caught_at = seed;
    }
    cr_assert_neq(caught_at, 0, "planted bug %d not caught in 1000 seeds with %u nodes",
                  KV_PLANTED_BUG, nodes);
    std::string first_line = result.failure.substr(0, result.failure.find('\n'));
    std::printf("planted bug %d: caught at seed %llu with %u nodes: %s\n", KV_PLANTED_BUG,
                (unsigned long long)caught_at, nodes, first_line.c_str());
  }
}
