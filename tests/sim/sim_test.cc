// Runs the simulator over many seeds. SIM_SEEDS=N (default 1000) sets how
// many seeds run for three nodes; five nodes run half as many. Seeds are
// split into blocks so Criterion spreads them over the cores.
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <cstdlib>
#include <string>

#include "tests/sim/simulation.h"

namespace {

constexpr uint64_t kBlockSeeds = 25;
constexpr size_t kBlocksMax = 4096;

struct Block {
  uint32_t nodes;
  uint64_t first_seed;
  uint64_t seeds;
};

uint64_t SeedsFor(uint32_t nodes) {
  const char* env = std::getenv("SIM_SEEDS");
  uint64_t seeds = env ? std::strtoull(env, nullptr, 10) : 1000;
  if (seeds == 0) seeds = 1000;
  return nodes == 3 ? seeds : (seeds + 1) / 2;
}

size_t MakeBlocks(uint32_t nodes, Block* blocks) {
  uint64_t total = SeedsFor(nodes);
  size_t count = 0;
  for (uint64_t first = 1; first <= total && count < kBlocksMax; first += kBlockSeeds) {
    blocks[count++] = {nodes, first, std::min(kBlockSeeds, total - first + 1)};
  }
  return count;
}

void RunBlock(const Block& block) {
  for (uint64_t seed = block.first_seed; seed < block.first_seed + block.seeds; ++seed) {
    kvd::sim::Options options;
    options.nodes = block.nodes;
    options.seed = seed;
    kvd::sim::Result result = kvd::sim::Run(options);
    cr_assert(result.ok, "seed %llu with %u nodes failed; replay: %s\n%s", (unsigned long long)seed,
              block.nodes, kvd::sim::ReplayCommand(options).c_str(), result.failure.c_str());
    cr_assert_gt(result.operations, 0, "seed %llu recorded no operations",
                 (unsigned long long)seed);
  }
}

}  // namespace

ParameterizedTestParameters(sim, three_nodes) {
  static Block blocks[kBlocksMax];
  size_t count = MakeBlocks(3, blocks);
  return cr_make_param_array(Block, blocks, count);
}

ParameterizedTest(Block* block, sim, three_nodes) { RunBlock(*block); }

ParameterizedTestParameters(sim, five_nodes) {
  static Block blocks[kBlocksMax];
  size_t count = MakeBlocks(5, blocks);
  return cr_make_param_array(Block, blocks, count);
}

ParameterizedTest(Block* block, sim, five_nodes) { RunBlock(*block); }

Test(sim, same_seed_same_trace) {
  for (uint32_t nodes : {3u, 5u}) {
    kvd::sim::Options options;
    options.nodes = nodes;
    options.seed = 77;
    kvd::sim::Result first = kvd::sim::Run(options);
    kvd::sim::Result second = kvd::sim::Run(options);
    cr_assert_eq(first.trace_hash, second.trace_hash, "seed 77 traced differently twice");
    cr_assert_eq(first.operations, second.operations);
    options.seed = 78;
    kvd::sim::Result other = kvd::sim::Run(options);
    cr_assert_neq(first.trace_hash, other.trace_hash, "different seeds gave one trace");
  }
}

// The faults must actually happen, or the seeds above prove little.
Test(sim, faults_exercise_the_core) {
  uint64_t buffered = 0, forwarded = 0, crashes = 0, disks_lost = 0, transfers = 0, snapshots = 0;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    kvd::sim::Options options;
    options.seed = seed;
    kvd::sim::Result result = kvd::sim::Run(options);
    buffered += result.buffered;
    forwarded += result.forwarded;
    crashes += result.crashes;
    disks_lost += result.disks_lost;
    transfers += result.transfers;
    snapshots += result.snapshots;
  }
  cr_assert_gt(buffered, 0, "no write was ever buffered");
  cr_assert_gt(forwarded, 0, "no write was ever forwarded");
  cr_assert_gt(crashes, 0, "no node ever crashed");
  cr_assert_gt(disks_lost, 0, "no disk was ever lost");
  cr_assert_gt(transfers, 0, "no state transfer ever happened");
  cr_assert_gt(snapshots, 0, "no snapshot was ever taken");
}

// Seeds that once failed, each with the bug it caught. They run whatever
// SIM_SEEDS says.
Test(sim, regression_seeds) {
  struct {
    uint32_t nodes;
    uint64_t seed;
    const char* bug;
  } const kSeeds[] = {
      {3, 1228, "a peer streamed from a log that a transfer install had made incomplete"},
      {3, 3464, "acks from before a disk loss let the log drop writes the peer lacked"},
  };
  for (const auto& entry : kSeeds) {
    kvd::sim::Options options;
    options.nodes = entry.nodes;
    options.seed = entry.seed;
    kvd::sim::Result result = kvd::sim::Run(options);
    cr_expect(result.ok, "%s (%s):\n%s", kvd::sim::ReplayCommand(options).c_str(), entry.bug,
              result.failure.c_str());
  }
}
