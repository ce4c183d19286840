#include "daemon/core/vector_clock.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <utility>

#include "daemon/core/limits.h"
#include "tests/core/test_util.h"

using namespace kvd::core;

namespace {

// A clock of `n` entries with entry i = base + i.
VectorClock Ramp(size_t n, uint64_t base) {
  VectorClock clock(n);
  for (size_t i = 0; i < n; ++i) clock.Set(i, base + i);
  return clock;
}

bool IsRamp(const VectorClock& clock, size_t n, uint64_t base) {
  if (clock.size() != n) return false;
  for (size_t i = 0; i < n; ++i) {
    if (clock[i] != base + i) return false;
  }
  return true;
}

}  // namespace

Test(vector_clock, zero_initialised) {
  VectorClock clock(3);
  cr_assert_eq(clock.size(), 3u);
  for (size_t i = 0; i < 3; ++i) cr_assert_eq(clock[i], 0u);
  cr_assert_eq(clock.Sum(), 0u);
  KV_ASSERT_STR_EQ(clock.ToString(), "[0,0,0]");

  VectorClock empty;
  cr_assert_eq(empty.size(), 0u);
  KV_ASSERT_STR_EQ(empty.ToString(), "[]");

  VectorClock large(kNodesMax);
  cr_assert_eq(large.size(), kNodesMax);
  for (size_t i = 0; i < kNodesMax; ++i) cr_assert_eq(large[i], 0u);
}

Test(vector_clock, initializer_list_and_to_string) {
  VectorClock clock{1, 0, 2};
  cr_assert_eq(clock.size(), 3u);
  cr_assert_eq(clock[0], 1u);
  cr_assert_eq(clock[1], 0u);
  cr_assert_eq(clock[2], 2u);
  KV_ASSERT_STR_EQ(clock.ToString(), "[1,0,2]");
  KV_ASSERT_STR_EQ(VectorClock{18446744073709551615ull}.ToString(), "[18446744073709551615]");
  KV_ASSERT_STR_EQ(Ramp(7, 10).ToString(), "[10,11,12,13,14,15,16]");
}

Test(vector_clock, set_and_increment) {
  VectorClock clock(4);
  clock.Set(2, 7);
  clock.Increment(2);
  clock.Increment(0);
  cr_assert(clock == (VectorClock{1, 0, 8, 0}), "got %s", clock.ToString().c_str());

  VectorClock large(64);
  large.Set(63, 41);
  large.Increment(63);
  large.Increment(5);
  cr_assert_eq(large[63], 42u);
  cr_assert_eq(large[5], 1u);
  cr_assert_eq(large.Sum(), 43u);
}

// --- Compare --------------------------------------------------------------

struct CompareCase {
  uint64_t a[4];
  uint64_t b[4];
  ClockOrder order;  // a.Compare(b)
};

ParameterizedTestParameters(vector_clock, compare) {
  static CompareCase cases[] = {
      {{0, 0, 0, 0}, {0, 0, 0, 0}, ClockOrder::kEqual},
      {{3, 1, 4, 1}, {3, 1, 4, 1}, ClockOrder::kEqual},
      {{1, 0, 0, 0}, {2, 0, 0, 0}, ClockOrder::kBefore},
      {{1, 2, 3, 4}, {1, 2, 3, 5}, ClockOrder::kBefore},
      {{0, 0, 0, 0}, {9, 9, 9, 9}, ClockOrder::kBefore},
      {{5, 1, 0, 0}, {5, 0, 0, 0}, ClockOrder::kAfter},
      {{2, 2, 2, 2}, {1, 2, 1, 2}, ClockOrder::kAfter},
      {{1, 0, 0, 0}, {0, 1, 0, 0}, ClockOrder::kConcurrent},
      {{9, 9, 9, 0}, {0, 0, 0, 1}, ClockOrder::kConcurrent},
      {{1, 2, 3, 4}, {4, 3, 2, 1}, ClockOrder::kConcurrent},
  };
  return cr_make_param_array(CompareCase, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(CompareCase* c, vector_clock, compare) {
  VectorClock a{c->a[0], c->a[1], c->a[2], c->a[3]};
  VectorClock b{c->b[0], c->b[1], c->b[2], c->b[3]};
  cr_assert_eq(a.Compare(b), c->order, "%s vs %s", a.ToString().c_str(), b.ToString().c_str());

  ClockOrder mirrored = c->order == ClockOrder::kBefore  ? ClockOrder::kAfter
                        : c->order == ClockOrder::kAfter ? ClockOrder::kBefore
                                                         : c->order;
  cr_assert_eq(b.Compare(a), mirrored);

  // Dominates is "equal or after"; == is "equal".
  bool a_dominates = c->order == ClockOrder::kEqual || c->order == ClockOrder::kAfter;
  bool b_dominates = c->order == ClockOrder::kEqual || c->order == ClockOrder::kBefore;
  cr_assert_eq(a.Dominates(b), a_dominates);
  cr_assert_eq(b.Dominates(a), b_dominates);
  cr_assert_eq(a == b, c->order == ClockOrder::kEqual);

  // Sum grows strictly along happened-before.
  if (c->order == ClockOrder::kBefore) cr_assert_lt(a.Sum(), b.Sum());
  if (c->order == ClockOrder::kAfter) cr_assert_gt(a.Sum(), b.Sum());
}

Test(vector_clock, compare_large_heap_clocks) {
  VectorClock a(64);
  VectorClock b(64);
  cr_assert_eq(a.Compare(b), ClockOrder::kEqual);
  b.Set(63, 1);  // The last entry lives on the heap too.
  cr_assert_eq(a.Compare(b), ClockOrder::kBefore);
  cr_assert_eq(b.Compare(a), ClockOrder::kAfter);
  a.Set(0, 1);
  cr_assert_eq(a.Compare(b), ClockOrder::kConcurrent);
  cr_assert_not(a.Dominates(b));
  cr_assert_not(b.Dominates(a));
  a.Merge(b);
  cr_assert(a.Dominates(b));
  cr_assert_eq(a.Compare(b), ClockOrder::kAfter);
}

Test(vector_clock, dominates) {
  VectorClock a{2, 3, 1};
  cr_assert(a.Dominates(a));
  cr_assert(a.Dominates(VectorClock{2, 3, 1}));
  cr_assert(a.Dominates(VectorClock{0, 0, 0}));
  cr_assert(a.Dominates(VectorClock{2, 0, 1}));
  cr_assert_not(a.Dominates(VectorClock{3, 0, 0}));
  cr_assert_not(a.Dominates(VectorClock{0, 0, 2}));
  cr_assert_not(VectorClock(3).Dominates(VectorClock{0, 1, 0}));
}

Test(vector_clock, merge_is_entrywise_max) {
  VectorClock a{1, 5, 0, 7};
  a.Merge(VectorClock{3, 2, 0, 9});
  cr_assert(a == (VectorClock{3, 5, 0, 9}), "got %s", a.ToString().c_str());
  a.Merge(VectorClock(4));  // Merging zeros changes nothing.
  cr_assert(a == (VectorClock{3, 5, 0, 9}));

  VectorClock large = Ramp(64, 0);
  VectorClock other(64);
  other.Set(0, 100);
  other.Set(40, 1);
  large.Merge(other);
  cr_assert_eq(large[0], 100u);
  cr_assert_eq(large[40], 40u);
  cr_assert_eq(large[63], 63u);
}

Test(vector_clock, meet_is_entrywise_min) {
  VectorClock a{1, 5, 0, 7};
  a.Meet(VectorClock{3, 2, 4, 9});
  cr_assert(a == (VectorClock{1, 2, 0, 7}), "got %s", a.ToString().c_str());

  VectorClock large = Ramp(64, 10);
  VectorClock other = Ramp(64, 0);
  other.Set(63, 1000);
  large.Meet(other);
  cr_assert_eq(large[0], 0u);
  cr_assert_eq(large[62], 62u);
  cr_assert_eq(large[63], 73u);
}

Test(vector_clock, sum) {
  cr_assert_eq((VectorClock{1, 0, 2}).Sum(), 3u);
  cr_assert_eq(VectorClock(5).Sum(), 0u);
  cr_assert_eq(Ramp(64, 1).Sum(), 64u * 65u / 2u);
}

Test(vector_clock, equality_needs_same_size) {
  cr_assert(VectorClock(2) == VectorClock(2));
  cr_assert_not(VectorClock(2) == VectorClock(3));
  cr_assert_not((VectorClock{0, 1}) == (VectorClock{1, 0}));
  cr_assert(Ramp(64, 3) == Ramp(64, 3));
  VectorClock other = Ramp(64, 3);
  other.Increment(63);
  cr_assert_not(Ramp(64, 3) == other);
}

// --- Copy and move, inline (<= kInlineNodes) and heap clocks ---------------

struct SizeCase {
  size_t n;
};

ParameterizedTestParameters(vector_clock, copy_and_move) {
  static SizeCase sizes[] = {
      {1}, {3}, {VectorClock::kInlineNodes}, {VectorClock::kInlineNodes + 1}, {17}, {kNodesMax}};
  return cr_make_param_array(SizeCase, sizes, sizeof(sizes) / sizeof(sizes[0]));
}

ParameterizedTest(SizeCase* c, vector_clock, copy_and_move) {
  const size_t n = c->n;
  VectorClock original = Ramp(n, 100);

  // Copy construction yields an independent clock.
  VectorClock copy(original);
  cr_assert(copy == original);
  copy.Increment(n - 1);
  cr_assert(IsRamp(original, n, 100), "original changed: %s", original.ToString().c_str());
  cr_assert_eq(copy[n - 1], 100 + n);

  // Copy assignment over clocks of every other shape.
  VectorClock small_target{9, 9};
  small_target = original;
  cr_assert(IsRamp(small_target, n, 100));
  VectorClock heap_target = Ramp(kNodesMax, 7);
  heap_target = original;
  cr_assert(IsRamp(heap_target, n, 100), "got %s", heap_target.ToString().c_str());
  VectorClock same_size(n);
  same_size = original;
  cr_assert(IsRamp(same_size, n, 100));
  same_size.Set(0, 1);
  cr_assert(IsRamp(original, n, 100));

  // Self-assignment keeps the contents.
  VectorClock& alias = copy;
  copy = alias;
  cr_assert_eq(copy.size(), n);
  cr_assert_eq(copy[n - 1], 100 + n);

  // Move construction takes the contents; the source is left empty.
  VectorClock source = Ramp(n, 100);
  VectorClock moved(std::move(source));
  cr_assert(IsRamp(moved, n, 100));
  cr_assert_eq(source.size(), 0u);  // NOLINT(bugprone-use-after-move)

  // Move assignment over small and heap clocks.
  VectorClock to_small{1};
  VectorClock src1 = Ramp(n, 5);
  to_small = std::move(src1);
  cr_assert(IsRamp(to_small, n, 5));
  VectorClock to_heap = Ramp(kNodesMax, 1);
  VectorClock src2 = Ramp(n, 6);
  to_heap = std::move(src2);
  cr_assert(IsRamp(to_heap, n, 6), "got %s", to_heap.ToString().c_str());

  // The moved-from clock is usable again after assignment.
  src1 = original;
  cr_assert(IsRamp(src1, n, 100));
  src1.Increment(0);
  cr_assert_eq(src1[0], 101u);
  cr_assert(IsRamp(original, n, 100));

  // A moved clock is still independent of others built from the same data.
  moved.Increment(0);
  cr_assert(IsRamp(original, n, 100));
}
