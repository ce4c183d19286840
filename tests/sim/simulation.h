// Simulation: N replicas of the real core, client sessions and a seeded,
// hostile virtual network, all in one process and in virtual time.
//
// The network delays and reorders messages, duplicates some, breaks
// connections (which then redial and resend from the replication log),
// cuts single links, partitions the cluster, holds replication links, and
// crashes nodes, which restart from the records they persisted. Client
// sessions move between nodes carrying their causal context. One run
// records every session's history and, at the end, heals everything, waits
// for quiescence and checks:
//   - the history with the causal-consistency checker (tests/checker);
//   - no write applied before its dependencies, clocks never go backwards,
//     every causal buffer within its bound (checked after every step);
//   - all replicas equal once healed and quiet; no acknowledged write lost.
// The same seed always gives the same run and the same trace hash.
#pragma once

#include <cstdint>
#include <string>

namespace kvd::sim {

struct Options {
  uint64_t seed = 1;
  uint32_t nodes = 3;
  uint32_t sessions = 3;         // Move between nodes, carry their context.
  uint32_t sticky_sessions = 2;  // Stay on one node, send no context.
  uint32_t keys = 4;
  uint64_t client_phase_ms = 2000;  // Virtual time with traffic and faults.
  uint64_t settle_ms_max = 120000;  // Bound on the heal-and-quiesce phase.
  bool faults = true;
  bool verbose = false;  // Print every step to stderr.
  // Step-by-step invariants (causal delivery, clocks never going back).
  // Off, only the end-of-run checks and the history checker judge a run:
  // the planted-bug tests use that to show the checker alone catches bugs.
  bool invariants = true;
};

struct Result {
  bool ok = true;
  std::string failure;  // Every violation found, one per line.
  uint64_t trace_hash = 0;
  uint64_t operations = 0;  // Client operations recorded in the history.
  uint64_t buffered = 0;    // Writes that had to wait in a causal buffer.
  uint64_t duplicates = 0;  // Writes a node received again and dropped.
  uint64_t crashes = 0;
  uint64_t forwarded = 0;  // Writes that reached a peer through a third node.
  uint64_t transfers = 0;  // State transfers installed.
  uint64_t disks_lost = 0;
  uint64_t snapshots = 0;
};

Result Run(const Options& options);

// The command that replays one run, for failure messages.
std::string ReplayCommand(const Options& options);

}  // namespace kvd::sim
