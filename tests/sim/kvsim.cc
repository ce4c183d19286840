// kvsim: runs simulator seeds from the command line, to replay a failure
// printed by the tests or to run many more seeds than `make test` does.
//   kvsim --nodes 3 --seed 42 --verbose     one run, every step on stderr
//   kvsim --nodes 5 --seeds 100000          a long run; stops at a failure
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/sim/simulation.h"

int main(int argc, char** argv) {
  kvd::sim::Options options;
  uint64_t seeds = 1;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> uint64_t {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "kvsim: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return std::strtoull(argv[++i], nullptr, 10);
    };
    if (arg == "--seed") {
      options.seed = value();
    } else if (arg == "--seeds") {
      seeds = value();
    } else if (arg == "--nodes") {
      options.nodes = static_cast<uint32_t>(value());
    } else if (arg == "--sessions") {
      options.sessions = static_cast<uint32_t>(value());
    } else if (arg == "--client-ms") {
      options.client_phase_ms = value();
    } else if (arg == "--no-faults") {
      options.faults = false;
    } else if (arg == "--verbose") {
      options.verbose = true;
    } else {
      std::fprintf(stderr,
                   "usage: kvsim [--nodes N] [--seed S] [--seeds COUNT] [--sessions N]\n"
                   "             [--client-ms MS] [--no-faults] [--verbose]\n");
      return 2;
    }
  }
  if (options.nodes < 2 || options.nodes > 64) {
    std::fprintf(stderr, "kvsim: --nodes must be 2..64\n");
    return 2;
  }
  uint64_t first = options.seed;
  for (uint64_t seed = first; seed < first + seeds; ++seed) {
    options.seed = seed;
    kvd::sim::Result result = kvd::sim::Run(options);
    std::printf(
        "seed %llu: %s ops=%llu buffered=%llu duplicates=%llu forwarded=%llu crashes=%llu "
        "disks_lost=%llu transfers=%llu snapshots=%llu trace=%016llx\n",
        (unsigned long long)seed, result.ok ? "ok" : "FAIL", (unsigned long long)result.operations,
        (unsigned long long)result.buffered, (unsigned long long)result.duplicates,
        (unsigned long long)result.forwarded, (unsigned long long)result.crashes,
        (unsigned long long)result.disks_lost, (unsigned long long)result.transfers,
        (unsigned long long)result.snapshots, (unsigned long long)result.trace_hash);
    if (!result.ok) {
      std::printf("%s", result.failure.c_str());
      return 1;
    }
  }
  return 0;
}
