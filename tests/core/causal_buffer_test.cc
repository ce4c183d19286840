#include "daemon/core/causal_buffer.h"

#include <criterion/criterion.h>

#include <algorithm>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "tests/core/test_util.h"

using namespace kvd::core;
using kvd::core::testing::MakeWrite;

namespace {

bool SameRange(const MissingRange& range, uint32_t origin, uint64_t first, uint64_t last) {
  return range.origin == origin && range.seq_first == first && range.seq_last == last;
}

}  // namespace

// --- IsDeliverable / MissingDependencies ----------------------------------------

Test(causal_buffer, is_deliverable) {
  const VectorClock applied{1, 0, 2};
  // Next of its origin, dependencies met (equal or below).
  cr_assert(IsDeliverable(MakeWrite(1, {1, 1, 2}, "k"), applied));
  cr_assert(IsDeliverable(MakeWrite(1, {0, 1, 0}, "k"), applied));
  cr_assert(IsDeliverable(MakeWrite(0, {2, 0, 2}, "k"), applied));
  // A gap in its own origin.
  cr_assert_not(IsDeliverable(MakeWrite(1, {1, 2, 2}, "k"), applied));
  // Already applied.
  cr_assert_not(IsDeliverable(MakeWrite(0, {1, 0, 0}, "k"), applied));
  cr_assert_not(IsDeliverable(MakeWrite(2, {0, 0, 2}, "k"), applied));
  // A missing dependency on another origin.
  cr_assert_not(IsDeliverable(MakeWrite(1, {2, 1, 2}, "k"), applied));
  cr_assert_not(IsDeliverable(MakeWrite(1, {1, 1, 3}, "k"), applied));
}

Test(causal_buffer, missing_dependencies_exact_ranges) {
  const VectorClock applied{1, 0, 2, 0};
  std::vector<MissingRange> missing = MissingDependencies(MakeWrite(1, {3, 4, 2, 1}, "k"), applied);
  cr_assert_eq(missing.size(), 3u);
  cr_assert(SameRange(missing[0], 0, 2, 3), "origin 0 seq 2..3");
  cr_assert(SameRange(missing[1], 1, 1, 3), "own origin: the three earlier writes, not itself");
  cr_assert(SameRange(missing[2], 3, 1, 1), "origin 3 seq 1..1");

  // Only its own predecessor missing.
  missing = MissingDependencies(MakeWrite(2, {0, 0, 4, 0}, "k"), applied);
  cr_assert_eq(missing.size(), 1u);
  cr_assert(SameRange(missing[0], 2, 3, 3));

  // A deliverable write misses nothing.
  cr_assert(MissingDependencies(MakeWrite(3, {1, 0, 2, 1}, "k"), applied).empty());
}

// --- The buffer ----------------------------------------------------------------

Test(causal_buffer, insert_and_duplicate) {
  CausalBuffer buffer(3, 10);
  cr_assert_eq(buffer.size(), 0u);
  cr_assert_eq(buffer.writes_max(), 10u);
  cr_assert_eq(buffer.Insert(MakeWrite(0, {2, 0, 0}, "a")), CausalBuffer::InsertResult::kBuffered);
  cr_assert_eq(buffer.Insert(MakeWrite(0, {2, 0, 0}, "a")), CausalBuffer::InsertResult::kDuplicate);
  cr_assert_eq(buffer.size(), 1u);
  // Same seq, other origin: a different write.
  cr_assert_eq(buffer.Insert(MakeWrite(1, {0, 2, 0}, "a")), CausalBuffer::InsertResult::kBuffered);
  cr_assert_eq(buffer.size(), 2u);
}

Test(causal_buffer, per_origin_queues_in_seq_order) {
  CausalBuffer buffer(3, 100);
  buffer.Insert(MakeWrite(2, {0, 0, 3}, "c3"));
  buffer.Insert(MakeWrite(0, {5, 0, 0}, "a5"));
  buffer.Insert(MakeWrite(2, {0, 0, 2}, "c2"));
  buffer.Insert(MakeWrite(0, {3, 0, 0}, "a3"));
  buffer.Insert(MakeWrite(1, {9, 2, 0}, "b2"));

  std::vector<std::string> seen;
  buffer.ForEach(100, [&](const Write& write) { seen.push_back(write.key); });
  std::vector<std::string> expected = {"a3", "a5", "b2", "c2", "c3"};
  cr_assert(seen == expected, "ForEach visits origin by origin in sequence order");

  seen.clear();
  buffer.ForEach(2, [&](const Write& write) { seen.push_back(write.key); });
  cr_assert_eq(seen.size(), 2u, "ForEach honours its limit");
  cr_assert(seen[0] == "a3" && seen[1] == "a5");
  seen.clear();
  buffer.ForEach(0, [&](const Write& write) { seen.push_back(write.key); });
  cr_assert(seen.empty());
}

Test(causal_buffer, pop_returns_only_deliverable_heads) {
  CausalBuffer buffer(2, 100);
  buffer.Insert(MakeWrite(0, {2, 0}, "a2"));
  buffer.Insert(MakeWrite(1, {2, 1}, "b1"));  // Needs a1 and a2.
  VectorClock applied{0, 0};
  cr_assert_not(buffer.PopDeliverable(applied).has_value(), "a2 waits for a1");
  cr_assert_eq(buffer.size(), 2u, "nothing is lost by a failed pop");

  applied.Set(0, 1);  // a1 applied elsewhere.
  std::optional<Write> next = buffer.PopDeliverable(applied);
  cr_assert(next.has_value());
  cr_assert(next->key == "a2");
  cr_assert_eq(buffer.size(), 1u);
  cr_assert_not(buffer.PopDeliverable(applied).has_value(), "b1 still needs a2 applied");
  applied.Set(0, 2);
  next = buffer.PopDeliverable(applied);
  cr_assert(next.has_value() && next->key == "b1");
  cr_assert_eq(buffer.size(), 0u);
  cr_assert_not(buffer.PopDeliverable(applied).has_value());
}

Test(causal_buffer, pop_drops_heads_already_applied) {
  CausalBuffer buffer(2, 100);
  buffer.Insert(MakeWrite(0, {2, 0}, "a2"));
  buffer.Insert(MakeWrite(0, {3, 0}, "a3"));
  buffer.Insert(MakeWrite(0, {5, 0}, "a5"));
  // a2 and a3 arrived by another path and were applied.
  std::optional<Write> next = buffer.PopDeliverable(VectorClock{3, 0});
  cr_assert_not(next.has_value(), "a5 is not deliverable at [3,0]");
  cr_assert_eq(buffer.size(), 1u, "applied heads are dropped");
  next = buffer.PopDeliverable(VectorClock{4, 0});
  cr_assert(next.has_value() && next->key == "a5");
  cr_assert_eq(buffer.size(), 0u);
}

Test(causal_buffer, bound) {
  CausalBuffer buffer(2, 3);
  cr_assert_eq(buffer.Insert(MakeWrite(0, {2, 0}, "a2")), CausalBuffer::InsertResult::kBuffered);
  cr_assert_eq(buffer.Insert(MakeWrite(0, {3, 0}, "a3")), CausalBuffer::InsertResult::kBuffered);
  cr_assert_eq(buffer.Insert(MakeWrite(1, {0, 2}, "b2")), CausalBuffer::InsertResult::kBuffered);
  cr_assert_eq(buffer.Insert(MakeWrite(1, {0, 3}, "b3")), CausalBuffer::InsertResult::kFull);
  cr_assert_eq(buffer.size(), 3u);
  // A duplicate of a buffered write is reported as such even when full.
  cr_assert_eq(buffer.Insert(MakeWrite(0, {2, 0}, "a2")), CausalBuffer::InsertResult::kDuplicate);

  std::optional<Write> next = buffer.PopDeliverable(VectorClock{1, 0});
  cr_assert(next.has_value() && next->key == "a2");
  cr_assert_eq(buffer.Insert(MakeWrite(1, {0, 3}, "b3")), CausalBuffer::InsertResult::kBuffered,
               "room again after a pop");
  cr_assert_eq(buffer.size(), 3u);
  cr_assert_eq(buffer.Insert(MakeWrite(1, {0, 4}, "b4")), CausalBuffer::InsertResult::kFull);
}

Test(causal_buffer, thousand_write_backlog_drains_in_order) {
  // Origin 1 wrote 1,000 writes after seeing origin 0's first write; they
  // arrive shuffled, before that first write.
  constexpr uint64_t kBacklog = 1000;
  CausalBuffer buffer(3, kBacklog);
  std::vector<uint64_t> seqs;
  for (uint64_t seq = 1; seq <= kBacklog; ++seq) seqs.push_back(seq);
  std::mt19937 rng(42);
  std::shuffle(seqs.begin(), seqs.end(), rng);
  for (uint64_t seq : seqs) {
    cr_assert_eq(buffer.Insert(MakeWrite(1, {1, seq, 0}, "k" + std::to_string(seq))),
                 CausalBuffer::InsertResult::kBuffered);
  }
  cr_assert_eq(buffer.size(), kBacklog);

  VectorClock applied(3);
  cr_assert_not(buffer.PopDeliverable(applied).has_value(), "all wait for origin 0 seq 1");
  cr_assert_eq(buffer.size(), kBacklog);

  applied.Set(0, 1);  // The missing write is applied.
  uint64_t expected = 1;
  while (std::optional<Write> next = buffer.PopDeliverable(applied)) {
    cr_assert_eq(next->origin, 1u);
    cr_assert_eq(next->seq(), expected, "popped seq %llu, expected %llu",
                 static_cast<unsigned long long>(next->seq()),
                 static_cast<unsigned long long>(expected));
    cr_assert(IsDeliverable(*next, applied));
    applied.Set(1, next->seq());
    ++expected;
  }
  cr_assert_eq(expected, kBacklog + 1, "drained %llu writes",
               static_cast<unsigned long long>(expected - 1));
  cr_assert_eq(buffer.size(), 0u);
  cr_assert(applied == (VectorClock{1, kBacklog, 0}));
}

Test(causal_buffer, cross_origin_chain_drains) {
  // a1 <- b1 <- a2 <- b2 ... chained across two origins, inserted newest
  // first; nothing until a1 arrives, then everything in causal order.
  CausalBuffer buffer(2, 100);
  for (uint64_t i = 10; i >= 1; --i) {
    if (i > 1) buffer.Insert(MakeWrite(0, {i, i - 1}, "a" + std::to_string(i)));
    buffer.Insert(MakeWrite(1, {i, i}, "b" + std::to_string(i)));
  }
  VectorClock applied(2);
  cr_assert_not(buffer.PopDeliverable(applied).has_value());
  applied.Set(0, 1);
  std::vector<std::string> order;
  while (std::optional<Write> next = buffer.PopDeliverable(applied)) {
    cr_assert(IsDeliverable(*next, applied));
    applied.Set(next->origin, next->seq());
    order.push_back(next->key);
  }
  cr_assert_eq(order.size(), 19u);
  cr_assert(order.front() == "b1");
  cr_assert(order.back() == "b10");
  cr_assert_eq(buffer.size(), 0u);
}
