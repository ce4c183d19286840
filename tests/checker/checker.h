// A checker for causal consistency of recorded client histories, after
// Bouajjani, Enea, Guerraoui and Hamza, "On Verifying Causal Consistency"
// (POPL 2017). When every written value is unique, a history violates
// causal convergence (CCv, the promise of causalkv) exactly when it contains
// one of a few bad patterns over the causal order, and each can be found in
// polynomial time. The simulator calls Check() on the history of every seed,
// so it is built to take milliseconds for a few hundred operations.
//
// Beyond the paper's patterns, the checker names the session guarantee a
// stale read breaks (read-your-writes, monotonic reads, monotonic writes,
// writes-follow-reads) and, given the nodes' final states, reports lost
// writes and nodes that did not converge.
//
// Unacknowledged writes: a write the client got no OK for may or may not
// have taken effect. One that no read returned and no final state holds is
// treated as never having happened, so it constrains nothing; one that was
// observed took effect and is an ordinary write in its session's order.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kvd::checker {

struct Op {
  enum class Type : uint8_t { kWrite, kRead };
  Type type = Type::kRead;
  std::string key;
  // kWrite: the unique id of the value written (> 0; unique across the whole
  //         history).
  // kRead:  the id of the write whose value was returned, or 0 when the read
  //         returned the initial (absent) value. A delete is modelled by the
  //         caller as a write of a unique id.
  uint64_t value = 0;
  // kWrite only: the client received OK. Unacknowledged writes may or may
  // not have taken effect.
  bool acknowledged = true;
  std::string label;  // Free text for reports, e.g. "s2#5 put x@n3".
};

struct History {
  // Each session's ops in program (session) order.
  std::vector<std::vector<Op>> sessions;
  // Optional: the final state of each node after all traffic has been
  // delivered: for each node, key -> value id (0 or missing = absent). Used
  // for the lost-write and divergence checks. A key whose last write was a
  // delete must map to that delete's id, not to 0, or every earlier write
  // of the key looks lost.
  std::vector<std::map<std::string, uint64_t>> final_states;
};

// PO is session order, WR links a write to the reads that returned it, and
// the causal order CO is (PO u WR)+. A stale read breaking a session
// guarantee is reported both as that guarantee and as the general
// WriteCOInitRead or WriteCORead it is an instance of.
enum class ViolationKind {
  kThinAirRead,  // A read (or a final state) holds a value no write of its key wrote.
  // CO has a cycle. Only ThinAirRead and Divergence, which need no order,
  // are checked besides.
  kCyclicCO,
  kWriteCOInitRead,  // A read returned init although a write of its key is in its CO past.
  kWriteCORead,      // r returned w1, yet w1 -CO-> w2 -CO-> r for another write w2 of the key.
  // CF orders w1 before w2 (same key) when a read of w2 has w1 in its CO
  // past; CF u CO must be acyclic. A CF edge w1 -> w2 with w2 -CO-> w1 is
  // exactly a WriteCORead, so such edges are left out here: this names only
  // the cycles CO alone does not explain (same verdict, less repetition).
  kCyclicCF,
  kReadYourWrites,     // A read misses its own session's earlier write.
  kMonotonicReads,     // A read is older than its session's earlier read of the key.
  kMonotonicWrites,    // A session sees w2 but then misses a write its writer made before w2.
  kWritesFollowReads,  // A session sees w2 but then misses what w2's writer had read before it.
  kLostWrite,          // A node's final state misses an acknowledged write.
  kDivergence,         // Two nodes' final states differ.
};
inline constexpr size_t kViolationKindCount = 11;

// "ThinAirRead", "CyclicCO", ...: the enumerator without its k.
std::string_view ViolationName(ViolationKind kind);

// An operation of a history: index is the position within sessions[session].
struct OpRef {
  uint32_t session;
  uint32_t index;
};

struct Violation {
  ViolationKind kind;
  std::vector<OpRef> witness;  // The ops that make up the pattern.
  std::string description;     // Names the ops, key and values.
};

struct Report {
  // At most kWitnessesPerKind of each kind, so a badly broken history still
  // gives a readable report; found_by_kind counts all of them.
  static constexpr size_t kWitnessesPerKind = 5;

  std::vector<Violation> violations;
  std::array<size_t, kViolationKindCount> found_by_kind{};
  // A history outside the checker's assumptions (a write of value 0, two
  // writes of one value). Nothing else is checked when this is non-empty.
  std::vector<std::string> input_errors;

  bool ok() const { return violations.empty() && input_errors.empty(); }
  // How many violations of `kind` were found, shown or not.
  size_t Count(ViolationKind kind) const { return found_by_kind[static_cast<size_t>(kind)]; }
  bool Has(ViolationKind kind) const { return Count(kind) > 0; }
  // A multi-line, human-readable account. REQUIRES: `history` is the one
  // this report was made from (the witnesses index into it).
  std::string ToString(const History& history) const;
};

// Checks `history` for every pattern above. Patterns that presuppose an
// acyclic causal order are skipped when it has a cycle (reported as
// kCyclicCO); the final-state checks run when final_states is non-empty.
Report Check(const History& history);

}  // namespace kvd::checker
