// Tests for the causal-consistency checker: one hand-made history per
// violation kind, worked out from the definitions in checker.h, and valid
// histories (hand-made and simulated) that must pass untouched.
#include "tests/checker/checker.h"

#include <criterion/criterion.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace {

using kvd::checker::Check;
using kvd::checker::History;
using kvd::checker::kViolationKindCount;
using kvd::checker::Op;
using kvd::checker::Report;
using kvd::checker::Violation;
using kvd::checker::ViolationKind;
using kvd::checker::ViolationName;

Op W(const std::string& key, uint64_t value, bool acknowledged = true) {
  Op op;
  op.type = Op::Type::kWrite;
  op.key = key;
  op.value = value;
  op.acknowledged = acknowledged;
  return op;
}

Op R(const std::string& key, uint64_t value) {
  Op op;
  op.type = Op::Type::kRead;
  op.key = key;
  op.value = value;
  return op;
}

History Sessions(std::vector<std::vector<Op>> sessions) {
  History history;
  history.sessions = std::move(sessions);
  return history;
}

// Asserts that the kinds found are exactly `expected`, printing the report
// when they are not.
void ExpectKinds(const History& history, std::initializer_list<ViolationKind> expected) {
  const Report report = Check(history);
  const std::set<ViolationKind> want(expected);
  cr_assert(report.input_errors.empty(), "%s", report.ToString(history).c_str());
  for (size_t i = 0; i < kViolationKindCount; ++i) {
    const auto kind = static_cast<ViolationKind>(i);
    const bool wanted = want.count(kind) > 0;
    cr_assert_eq(report.Has(kind), wanted, "%s: expected %s, report:\n%s",
                 std::string(ViolationName(kind)).c_str(), wanted ? "present" : "absent",
                 report.ToString(history).c_str());
  }
  cr_assert_eq(report.ok(), want.empty());
}

void ExpectValid(const History& history) { ExpectKinds(history, {}); }

// The single violation of `kind` in `report`.
const Violation& Only(const Report& report, ViolationKind kind) {
  const Violation* found = nullptr;
  for (const Violation& v : report.violations) {
    if (v.kind != kind) continue;
    cr_assert_null(found, "more than one %s", std::string(ViolationName(kind)).c_str());
    found = &v;
  }
  cr_assert_not_null(found);
  return *found;
}

// A history produced by one sequentially consistent store serving random
// sessions in a random interleaving, which is causally consistent by
// construction. Some writes go unacknowledged: half of those take effect,
// the other half are lost and so can never be read.
History SequentialHistory(uint64_t seed, size_t session_count, size_t ops_per_session,
                          size_t key_count) {
  std::mt19937_64 rng(seed);
  History history;
  history.sessions.resize(session_count);
  std::map<std::string, uint64_t> store;
  std::vector<size_t> remaining(session_count, ops_per_session);
  size_t total = session_count * ops_per_session;
  uint64_t next_value = 1;
  for (; total > 0; --total) {
    size_t s = rng() % session_count;
    while (remaining[s] == 0) s = (s + 1) % session_count;
    --remaining[s];
    const std::string key = "k" + std::to_string(rng() % key_count);
    if (rng() % 2 == 0) {
      const bool acknowledged = rng() % 10 != 0;
      const bool applied = acknowledged || rng() % 2 == 0;
      const uint64_t value = next_value++;
      if (applied) store[key] = value;
      history.sessions[s].push_back(W(key, value, acknowledged));
    } else {
      auto it = store.find(key);
      history.sessions[s].push_back(R(key, it == store.end() ? 0 : it->second));
    }
  }
  history.final_states.assign(3, store);
  return history;
}

}  // namespace

// ---- Valid histories -------------------------------------------------------

Test(checker_valid, empty_history) {
  ExpectValid(History{});
  ExpectValid(Sessions({{}, {}}));
}

Test(checker_valid, single_session_reads_its_writes) {
  History h = Sessions({{W("x", 1), R("x", 1), R("y", 0), W("x", 2), R("x", 2), W("y", 3)}});
  h.final_states = {{{"x", 2}, {"y", 3}}, {{"x", 2}, {"y", 3}}};
  ExpectValid(h);
}

// Concurrent writes may be seen in either order, as long as everybody who
// sees both sees them in the same order; a node may keep either.
Test(checker_valid, concurrent_writes_read_in_same_order_by_all) {
  History h = Sessions({
      {W("x", 1)},
      {W("x", 2)},
      {R("x", 1), R("x", 2)},
      {R("x", 1), R("x", 2), R("x", 2)},
      {R("x", 0), R("x", 2)},
  });
  h.final_states = {{{"x", 2}}, {{"x", 2}}, {{"x", 2}}};
  ExpectValid(h);
}

// Writes from different sessions that nobody relates stay concurrent, and
// a session may read its own write and then a concurrent one.
Test(checker_valid, own_write_then_concurrent_write) {
  ExpectValid(Sessions({
      {W("x", 1), R("x", 1), R("x", 2)},
      {W("x", 2), R("x", 2)},
  }));
}

// An unacknowledged write nobody observed may never have happened, so a
// later read by someone who saw the rest of its session may miss it, and a
// node may end without it.
Test(checker_valid, unacknowledged_write_never_read) {
  History h = Sessions({
      {W("x", 1, /*acknowledged=*/false), W("y", 2)},
      {R("y", 2), R("x", 0)},
  });
  h.final_states = {{{"y", 2}}, {{"y", 2}}};
  ExpectValid(h);
}

// Reading the initial value is fine as long as no write of the key is in
// the reader's causal past, even if the read happens later in real time.
Test(checker_valid, init_reads_before_any_causal_write) {
  ExpectValid(Sessions({
      {R("x", 0), W("x", 1), W("y", 2)},
      {R("x", 0), R("y", 0), R("x", 1), R("y", 2)},
      {R("y", 0), R("x", 0), R("x", 1)},
  }));
}

// The seed scenario of DESIGN.md: x=1 at node 1, read at node 2, y=2 at
// node 2; whoever sees y=2 must see x=1.
Test(checker_valid, design_seed_scenario) {
  History h = Sessions({
      {W("x", 1)},
      {R("x", 1), W("y", 2)},
      {R("y", 2), R("x", 1)},
  });
  h.final_states.assign(3, {{"x", 1}, {"y", 2}});
  ExpectValid(h);
}

Test(checker_valid, random_sequential_histories) {
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    const History h = SequentialHistory(seed, 6, 50, 4);
    const Report report = Check(h);
    cr_assert(report.ok(), "seed %llu:\n%s", static_cast<unsigned long long>(seed),
              report.ToString(h).c_str());
  }
}

// About 2,000 ops: must finish (the simulator's histories are smaller, but
// integration runs record more).
Test(checker_valid, large_history) {
  const History h = SequentialHistory(42, 20, 100, 10);
  const Report report = Check(h);
  cr_assert(report.ok(), "%s", report.ToString(h).c_str());
}

// ---- One history per violation kind -------------------------------------

Test(checker_violation, thin_air_read) {
  ExpectKinds(Sessions({{W("x", 1)}, {R("x", 7)}}), {ViolationKind::kThinAirRead});
  // A value written to another key is thin air for this one.
  ExpectKinds(Sessions({{W("y", 1)}, {R("x", 1)}}), {ViolationKind::kThinAirRead});
}

Test(checker_violation, thin_air_final_state) {
  History h = Sessions({{W("x", 1)}});
  h.final_states = {{{"x", 9}}};
  ExpectKinds(h, {ViolationKind::kThinAirRead});
}

// Each session reads the other's write, which comes after the read in the
// other session: x=2 -WR-> r(x) -PO-> y=1 -WR-> r(y) -PO-> x=2.
Test(checker_violation, cyclic_causal_order) {
  const History h = Sessions({
      {R("x", 2), W("y", 1)},
      {R("y", 1), W("x", 2), R("z", 0)},
  });
  ExpectKinds(h, {ViolationKind::kCyclicCO});
  const Report report = Check(h);
  cr_assert_eq(Only(report, ViolationKind::kCyclicCO).witness.size(), 4u);
}

// x=1 reaches the read of x through three sessions, so no session
// guarantee explains it: x=1 -PO-> y=2 -WR-> r(y) -PO-> z=3 -WR-> r(z)
// -PO-> r(x)=init.
Test(checker_violation, write_co_init_read) {
  const History h = Sessions({
      {W("x", 1), W("y", 2)},
      {R("y", 2), W("z", 3)},
      {R("z", 3), R("x", 0)},
  });
  ExpectKinds(h, {ViolationKind::kWriteCOInitRead});
  const Report report = Check(h);
  const auto& witness = Only(report, ViolationKind::kWriteCOInitRead).witness;
  cr_assert_eq(witness.size(), 2u);
  cr_assert(witness[0].session == 0 && witness[0].index == 0);
  cr_assert(witness[1].session == 2 && witness[1].index == 1);
}

// w1 = x=1, w2 = x=3, r = r(x)=1 with w1 -CO-> w2 -CO-> r, through four
// sessions so that no session guarantee applies:
// x=1 -PO-> y=2 -WR-> r(y) -PO-> x=3 -PO-> z=4 -WR-> r(z) -PO-> u=5 -WR->
// r(u) -PO-> r(x)=1.
Test(checker_violation, write_co_read) {
  const History h = Sessions({
      {W("x", 1), W("y", 2)},
      {R("y", 2), W("x", 3), W("z", 4)},
      {R("z", 4), W("u", 5)},
      {R("u", 5), R("x", 1)},
  });
  ExpectKinds(h, {ViolationKind::kWriteCORead});
  const Report report = Check(h);
  cr_assert_eq(Only(report, ViolationKind::kWriteCORead).witness.size(), 3u);
}

// The classic history that is causally consistent but not convergent: each
// session writes x, then reads the other's write, so each orders the
// other's write last: x=1 CF x=2 (session 0) and x=2 CF x=1 (session 1).
Test(checker_violation, cyclic_conflict_order_own_writes) {
  ExpectKinds(Sessions({
                  {W("x", 1), R("x", 2)},
                  {W("x", 2), R("x", 1)},
              }),
              {ViolationKind::kCyclicCF});
}

// Two readers see two concurrent writes in opposite orders.
Test(checker_violation, cyclic_conflict_order_readers_disagree) {
  ExpectKinds(Sessions({
                  {W("x", 1)},
                  {W("x", 2)},
                  {R("x", 1), R("x", 2)},
                  {R("x", 2), R("x", 1)},
              }),
              {ViolationKind::kCyclicCF});
}

Test(checker_violation, read_your_writes_init) {
  ExpectKinds(Sessions({{W("x", 1), R("x", 0)}}),
              {ViolationKind::kReadYourWrites, ViolationKind::kWriteCOInitRead});
}

// Session 1 overwrites the x=1 it read with x=2, then reads x=1 again.
Test(checker_violation, read_your_writes_older_write) {
  ExpectKinds(Sessions({
                  {W("x", 1)},
                  {R("x", 1), W("x", 2), R("x", 1)},
              }),
              {ViolationKind::kReadYourWrites, ViolationKind::kWriteCORead});
}

Test(checker_violation, monotonic_reads_init) {
  ExpectKinds(Sessions({{W("x", 1)}, {R("x", 1), R("x", 0)}}),
              {ViolationKind::kMonotonicReads, ViolationKind::kWriteCOInitRead});
}

Test(checker_violation, monotonic_reads_older_write) {
  ExpectKinds(Sessions({
                  {W("x", 1), W("x", 2)},
                  {R("x", 2), R("x", 1)},
              }),
              {ViolationKind::kMonotonicReads, ViolationKind::kWriteCORead});
}

// Session 1 sees y=2, which session 0 wrote after x=1, yet misses x=1.
Test(checker_violation, monotonic_writes_init) {
  ExpectKinds(Sessions({
                  {W("x", 1), W("y", 2)},
                  {R("y", 2), R("x", 0)},
              }),
              {ViolationKind::kMonotonicWrites, ViolationKind::kWriteCOInitRead});
}

Test(checker_violation, monotonic_writes_older_write) {
  const History h = Sessions({
      {W("x", 1), W("x", 2), W("y", 3)},
      {R("y", 3), R("x", 1)},
  });
  ExpectKinds(h, {ViolationKind::kMonotonicWrites, ViolationKind::kWriteCORead});
  const Report report = Check(h);
  // w1 = x=2, w2 = y=3, r2 = r(y), r3 = r(x), then the write r3 returned.
  cr_assert_eq(Only(report, ViolationKind::kMonotonicWrites).witness.size(), 5u);
}

// Session 1 read x=1 before writing y=2; session 2 sees y=2 but not x=1.
Test(checker_violation, writes_follow_reads_init) {
  ExpectKinds(Sessions({
                  {W("x", 1)},
                  {R("x", 1), W("y", 2)},
                  {R("y", 2), R("x", 0)},
              }),
              {ViolationKind::kWritesFollowReads, ViolationKind::kWriteCOInitRead});
}

Test(checker_violation, writes_follow_reads_older_write) {
  ExpectKinds(Sessions({
                  {W("x", 1), W("x", 2)},
                  {R("x", 2), W("y", 3)},
                  {R("y", 3), R("x", 1)},
              }),
              {ViolationKind::kWritesFollowReads, ViolationKind::kWriteCORead});
}

// Both nodes agree, on nothing: divergence is not the problem, loss is.
Test(checker_violation, lost_write_absent) {
  History h = Sessions({{W("x", 1)}});
  h.final_states = {{}, {{"x", 0}}};
  ExpectKinds(h, {ViolationKind::kLostWrite});
}

Test(checker_violation, lost_write_overwritten_by_older) {
  History h = Sessions({{W("x", 1), W("x", 2)}});
  h.final_states = {{{"x", 1}}, {{"x", 1}}};
  ExpectKinds(h, {ViolationKind::kLostWrite});
  const Report report = Check(h);
  cr_assert_eq(report.Count(ViolationKind::kLostWrite), 2u);  // One per node.
}

// An unacknowledged write that no read saw may be missing at the end; an
// acknowledged one may not, even when a node kept nothing else either.
Test(checker_violation, lost_write_only_when_acknowledged) {
  History h = Sessions({{W("x", 1, /*acknowledged=*/false), W("y", 2)}});
  h.final_states = {{}};
  ExpectKinds(h, {ViolationKind::kLostWrite});
  const Report report = Check(h);
  const auto& witness = Only(report, ViolationKind::kLostWrite).witness;
  cr_assert_eq(witness.size(), 1u);
  cr_assert_eq(witness[0].index, 1u);
}

// Concurrent writes: each node may keep either, but they must agree.
Test(checker_violation, divergence) {
  History h = Sessions({{W("x", 1)}, {W("x", 2)}});
  h.final_states = {{{"x", 1}}, {{"x", 2}}, {{"x", 1}}};
  ExpectKinds(h, {ViolationKind::kDivergence});
  const Report report = Check(h);
  const Violation& v = Only(report, ViolationKind::kDivergence);
  cr_assert_eq(v.witness.size(), 2u);
  cr_assert_neq(v.description.find("nodes 0 and 1"), std::string::npos, "%s",
                v.description.c_str());
}

// ---- Checker behaviour ----------------------------------------------------

// A write that was observed took effect, acknowledged or not.
Test(checker_behaviour, unacknowledged_write_that_was_read_counts) {
  ExpectKinds(Sessions({
                  {W("x", 1, /*acknowledged=*/false)},
                  {R("x", 1), R("x", 0)},
              }),
              {ViolationKind::kMonotonicReads, ViolationKind::kWriteCOInitRead});
}

// A random valid history with one read made stale on purpose: the read
// after a session's own acknowledged write of the key returns init.
Test(checker_behaviour, injected_stale_read_is_caught) {
  History h = SequentialHistory(7, 6, 50, 4);
  bool injected = false;
  for (auto& session : h.sessions) {
    std::set<std::string> written;
    for (Op& op : session) {
      if (op.type == Op::Type::kWrite && op.acknowledged) written.insert(op.key);
      if (op.type == Op::Type::kRead && written.count(op.key) > 0) {
        op.value = 0;
        injected = true;
        break;
      }
    }
    if (injected) break;
  }
  cr_assert(injected);
  const Report report = Check(h);
  cr_assert(report.Has(ViolationKind::kReadYourWrites), "%s", report.ToString(h).c_str());
  cr_assert(report.Has(ViolationKind::kWriteCOInitRead), "%s", report.ToString(h).c_str());
}

// Session guarantees only count what came before in program order: the
// session's own earlier reads, and what another session did before the
// write that was seen. In each history the stale read is stale only through
// a longer chain (a WriteCORead), while the op that would make it a session
// violation comes too late.
Test(checker_behaviour, session_guarantees_respect_program_order) {
  // The newer x=3 is read after the stale read, not before it.
  ExpectKinds(Sessions({
                  {W("x", 1), W("y", 2)},
                  {R("y", 2), W("x", 3), W("z", 4)},
                  {R("z", 4), W("u", 5)},
                  {R("u", 5), R("x", 1), R("x", 3)},
              }),
              {ViolationKind::kWriteCORead});
  // Session 1 writes x=2 after y=3, which session 2 sees.
  ExpectKinds(Sessions({
                  {W("x", 1)},
                  {R("x", 1), W("y", 3), W("x", 2), W("u", 4)},
                  {R("y", 3), R("v", 5), R("x", 1)},
                  {R("u", 4), W("v", 5)},
              }),
              {ViolationKind::kWriteCORead});
  // Session 1 reads x=2 after y=3, which session 2 sees.
  ExpectKinds(Sessions({
                  {W("x", 1), W("x", 2), W("u", 4)},
                  {W("y", 3), R("x", 2)},
                  {R("y", 3), R("v", 5), R("x", 1)},
                  {R("u", 4), W("v", 5)},
              }),
              {ViolationKind::kWriteCORead});
}

Test(checker_behaviour, cyclic_co_skips_patterns_that_need_an_order) {
  // The cycle of cyclic_causal_order, plus a session that would be a
  // ReadYourWrites violation in an acyclic history.
  ExpectKinds(Sessions({
                  {R("x", 2), W("y", 1)},
                  {R("y", 1), W("x", 2)},
                  {W("z", 3), R("z", 0)},
              }),
              {ViolationKind::kCyclicCO});
}

Test(checker_behaviour, witnesses_are_capped_but_counted) {
  History h = Sessions({{}});
  for (uint64_t i = 1; i <= 20; ++i) h.sessions[0].push_back(R("x", 100 + i));
  const Report report = Check(h);
  cr_assert_eq(report.Count(ViolationKind::kThinAirRead), 20u);
  cr_assert_eq(report.violations.size(), Report::kWitnessesPerKind);
  const std::string text = report.ToString(h);
  cr_assert_neq(text.find("and 15 more ThinAirRead"), std::string::npos, "%s", text.c_str());
}

Test(checker_behaviour, descriptions_name_ops_keys_and_values) {
  History h = Sessions({
      {W("x", 1), W("y", 2)},
      {R("y", 2), R("x", 0)},
  });
  h.sessions[0][0].label = "s0#0 put x@n1";
  const Report report = Check(h);
  const Violation& v = Only(report, ViolationKind::kMonotonicWrites);
  cr_assert_neq(v.description.find("s0#0 put x@n1 (write x=1)"), std::string::npos, "%s",
                v.description.c_str());
  cr_assert_neq(v.description.find("s1#1 (read x=init)"), std::string::npos, "%s",
                v.description.c_str());
  const std::string text = report.ToString(h);
  cr_assert_neq(text.find("WriteCOInitRead: "), std::string::npos, "%s", text.c_str());
}

Test(checker_behaviour, duplicate_or_zero_write_ids_are_input_errors) {
  const History duplicate = Sessions({{W("x", 1)}, {W("y", 1)}});
  Report report = Check(duplicate);
  cr_assert(!report.ok());
  cr_assert_eq(report.input_errors.size(), 1u);
  cr_assert(report.violations.empty());

  report = Check(Sessions({{W("x", 0)}}));
  cr_assert(!report.ok());
  cr_assert_eq(report.input_errors.size(), 1u);
}

Test(checker_behaviour, violation_names) {
  cr_assert_eq(ViolationName(ViolationKind::kThinAirRead), "ThinAirRead");
  cr_assert_eq(ViolationName(ViolationKind::kCyclicCF), "CyclicCF");
  cr_assert_eq(ViolationName(ViolationKind::kDivergence), "Divergence");
  std::set<std::string> names;
  for (size_t i = 0; i < kViolationKindCount; ++i) {
    names.insert(std::string(ViolationName(static_cast<ViolationKind>(i))));
  }
  cr_assert_eq(names.size(), kViolationKindCount);
  cr_assert_eq(names.count("Unknown"), 0u);
}
