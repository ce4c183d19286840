#include "daemon/core/store.h"

#include <criterion/criterion.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/core/test_util.h"

using namespace kvd::core;
using kvd::core::testing::MakeDelete;
using kvd::core::testing::MakeWrite;

Test(store, empty) {
  Store store;
  cr_assert_null(store.Find("x"));
  cr_assert_eq(store.live_keys(), 0u);
  cr_assert_eq(store.tombstones(), 0u);
}

Test(store, put_and_find) {
  Store store;
  cr_assert(store.Apply(MakeWrite(1, {0, 1, 0}, "x", "one")));
  const Store::Entry* entry = store.Find("x");
  cr_assert_not_null(entry);
  cr_assert(entry->value() == "one");
  cr_assert(entry->version() == (VectorClock{0, 1, 0}));
  cr_assert_eq(entry->origin(), 1u);
  cr_assert_not(entry->tombstone());
  cr_assert_eq(store.live_keys(), 1u);
  cr_assert_eq(store.tombstones(), 0u);
}

Test(store, binary_safe_keys_and_values) {
  Store store;
  const std::string key_a("k\0a", 3);
  const std::string key_b("k\0b", 3);
  const std::string key_ff("\xff\xfe\x00\xff", 4);
  const std::string value_a("\0\0\0", 3);
  const std::string value_ff("\xff\x00\xff\x00", 4);
  cr_assert(store.Apply(MakeWrite(0, {1, 0}, key_a, value_a)));
  cr_assert(store.Apply(MakeWrite(0, {2, 0}, key_b, value_ff)));
  cr_assert(store.Apply(MakeWrite(0, {3, 0}, key_ff, value_ff + value_a)));

  cr_assert_eq(store.live_keys(), 3u, "keys differing after a NUL must stay distinct");
  cr_assert_null(store.Find("k"), "a key must not be cut at its NUL");
  cr_assert_null(store.Find(std::string("k\0", 2)));
  const Store::Entry* a = store.Find(key_a);
  const Store::Entry* b = store.Find(key_b);
  const Store::Entry* ff = store.Find(key_ff);
  cr_assert(a && b && ff);
  cr_assert_eq(a->value().size(), 3u);
  cr_assert(a->value() == value_a);
  cr_assert(b->value() == value_ff);
  cr_assert_eq(ff->value().size(), 7u);
  cr_assert(ff->value() == value_ff + value_a);
}

Test(store, concurrent_writes_greater_sum_wins) {
  // [2,0,0] (sum 2, origin 0) and [0,1,0] (sum 1, origin 1) are concurrent:
  // the greater sum wins even against the higher origin index.
  Write high_sum = MakeWrite(0, {2, 0, 0}, "x", "a");
  Write high_origin = MakeWrite(1, {0, 1, 0}, "x", "b");
  {
    Store store;
    cr_assert(store.Apply(high_sum));
    cr_assert_not(store.Apply(high_origin), "the losing write must report false");
    cr_assert(store.Find("x")->value() == "a");
  }
  {
    Store store;
    cr_assert(store.Apply(high_origin));
    cr_assert(store.Apply(high_sum));
    cr_assert(store.Find("x")->value() == "a");
    cr_assert_eq(store.Find("x")->origin(), 0u);
  }
}

Test(store, concurrent_writes_equal_sum_higher_origin_wins) {
  Write low = MakeWrite(0, {1, 0, 0}, "x", "low");
  Write high = MakeWrite(2, {0, 0, 1}, "x", "high");
  for (int order = 0; order < 2; ++order) {
    Store store;
    store.Apply(order == 0 ? low : high);
    store.Apply(order == 0 ? high : low);
    const Store::Entry* entry = store.Find("x");
    cr_assert(entry->value() == "high", "order %d: got %s", order,
              std::string(entry->value()).c_str());
    cr_assert_eq(entry->origin(), 2u);
    cr_assert(entry->version() == (VectorClock{0, 0, 1}));
  }
}

Test(store, causal_overwrite_always_wins) {
  // A write that follows another causally has a strictly greater sum, so
  // it wins whatever the origins.
  Store store;
  cr_assert(store.Apply(MakeWrite(2, {0, 0, 5}, "x", "old")));
  cr_assert(store.Apply(MakeWrite(0, {1, 0, 5}, "x", "new")));
  cr_assert(store.Find("x")->value() == "new");
  cr_assert(store.Apply(MakeWrite(1, {1, 1, 5}, "x", "newer")));
  cr_assert(store.Find("x")->value() == "newer");
  cr_assert_eq(store.live_keys(), 1u);
}

Test(store, same_write_twice_is_not_reapplied) {
  Store store;
  Write write = MakeWrite(1, {0, 1}, "x", "a");
  cr_assert(store.Apply(write));
  cr_assert_not(store.Apply(write));
  cr_assert_eq(store.live_keys(), 1u);
}

Test(store, arrival_order_does_not_change_winner) {
  // Three mutually concurrent writes plus a causal successor of one of
  // them; the (sum, origin)-greatest must win in all 24 arrival orders.
  std::array<Write, 4> writes = {
      MakeWrite(0, {2, 0, 0}, "k", "w0"),     // sum 2
      MakeWrite(1, {0, 2, 0}, "k", "w1"),     // sum 2, higher origin
      MakeWrite(2, {0, 0, 1}, "k", "w2"),     // sum 1
      MakeWrite(2, {0, 0, 2}, "k", "w2bis"),  // after w2, sum 2, origin 2: the winner
  };
  std::array<int, 4> order = {0, 1, 2, 3};
  int orders = 0;
  do {
    Store store;
    for (int i : order) store.Apply(writes[i]);
    const Store::Entry* entry = store.Find("k");
    cr_assert(entry->value() == "w2bis", "order %d%d%d%d: got %s", order[0], order[1], order[2],
              order[3], std::string(entry->value()).c_str());
    cr_assert(entry->version() == (VectorClock{0, 0, 2}));
    ++orders;
  } while (std::next_permutation(order.begin(), order.end()));
  cr_assert_eq(orders, 24);
}

Test(store, delete_leaves_tombstone) {
  Store store;
  store.Apply(MakeWrite(0, {1, 0}, "x", "a"));
  cr_assert(store.Apply(MakeDelete(0, {2, 0}, "x")));
  const Store::Entry* entry = store.Find("x");
  cr_assert_not_null(entry, "a delete must keep a tombstone");
  cr_assert(entry->tombstone());
  cr_assert(entry->value().empty());
  cr_assert(entry->version() == (VectorClock{2, 0}));
  cr_assert_eq(entry->origin(), 0u);
  cr_assert_eq(store.live_keys(), 0u);
  cr_assert_eq(store.tombstones(), 1u);
}

Test(store, delete_of_unknown_key_leaves_tombstone) {
  Store store;
  cr_assert(store.Apply(MakeDelete(1, {0, 1}, "ghost")));
  cr_assert(store.Find("ghost")->tombstone());
  cr_assert_eq(store.tombstones(), 1u);
  cr_assert_eq(store.live_keys(), 0u);
}

Test(store, delayed_losing_write_does_not_resurrect) {
  Store store;
  store.Apply(MakeWrite(0, {1, 0}, "x", "a"));
  store.Apply(MakeDelete(0, {2, 0}, "x"));
  // Concurrent with the delete, smaller sum: it loses and must not bring
  // the key back.
  cr_assert_not(store.Apply(MakeWrite(1, {0, 1}, "x", "zombie")));
  const Store::Entry* entry = store.Find("x");
  cr_assert(entry->tombstone());
  cr_assert(entry->value().empty());
  cr_assert_eq(store.tombstones(), 1u);
  cr_assert_eq(store.live_keys(), 0u);
}

Test(store, put_after_delete_revives) {
  Store store;
  store.Apply(MakeDelete(0, {1, 0}, "x"));
  cr_assert(store.Apply(MakeWrite(1, {1, 1}, "x", "back")));
  cr_assert_not(store.Find("x")->tombstone());
  cr_assert(store.Find("x")->value() == "back");
  cr_assert_eq(store.tombstones(), 0u);
  cr_assert_eq(store.live_keys(), 1u);
}

// --- Tombstone collection ---------------------------------------------------

Test(store, tombstone_waits_for_all_applied) {
  Store store;
  store.Apply(MakeDelete(0, {2, 1, 0}, "x"));
  // Some node has not applied the tombstone (entry 1 short).
  cr_assert_eq(store.CollectTombstones({2, 0, 5}, {9, 9, 9}, {9, 9, 9}), 0u);
  cr_assert_eq(store.tombstones(), 1u);
  cr_assert_not_null(store.Find("x"));
  // Entry 0 short.
  cr_assert_eq(store.CollectTombstones({1, 1, 0}, {0, 0, 0}, {9, 9, 9}), 0u);
  cr_assert_not_null(store.Find("x"));
}

Test(store, tombstone_waits_for_issued_bound) {
  Store store;
  store.Apply(MakeDelete(0, {2, 1, 0}, "x"));
  // Stable now; the bound says node 1 issued 3 and node 2 issued 1 writes
  // before applying the tombstone, and we have applied only [2,2,0].
  cr_assert_eq(store.CollectTombstones({2, 1, 0}, {2, 3, 1}, {2, 2, 0}), 0u);
  cr_assert_not_null(store.Find("x"));
  // The bound is the one taken when stability was first seen: a smaller
  // bound passed later does not apply.
  cr_assert_eq(store.CollectTombstones({2, 1, 0}, {0, 0, 0}, {2, 3, 0}), 0u);
  cr_assert_not_null(store.Find("x"));
  cr_assert_eq(store.tombstones(), 1u);
  // Once applied dominates the recorded bound, it goes.
  cr_assert_eq(store.CollectTombstones({2, 1, 0}, {0, 0, 0}, {2, 3, 1}), 1u);
  cr_assert_null(store.Find("x"));
  cr_assert_eq(store.tombstones(), 0u);
  cr_assert_eq(store.live_keys(), 0u);
  cr_assert_eq(store.size(), 0u);
  // Nothing left to collect.
  cr_assert_eq(store.CollectTombstones({9, 9, 9}, {9, 9, 9}, {9, 9, 9}), 0u);
}

Test(store, overwritten_tombstone_is_skipped) {
  Store store;
  store.Apply(MakeWrite(0, {1, 0}, "a", "1"));
  store.Apply(MakeDelete(0, {2, 0}, "a"));
  store.Apply(MakeWrite(1, {2, 1}, "a", "again"));  // Overwrites the tombstone.
  store.Apply(MakeDelete(0, {3, 1}, "b"));
  cr_assert_eq(store.tombstones(), 1u);
  cr_assert_eq(store.live_keys(), 1u);

  cr_assert_eq(store.CollectTombstones({3, 1}, {3, 1}, {3, 1}), 1u);
  cr_assert_null(store.Find("b"));
  cr_assert_not_null(store.Find("a"), "the live value must survive");
  cr_assert(store.Find("a")->value() == "again");
  cr_assert_eq(store.tombstones(), 0u);
  cr_assert_eq(store.live_keys(), 1u);
}

Test(store, tombstone_replaced_by_newer_tombstone) {
  Store store;
  store.Apply(MakeDelete(0, {1, 0}, "x"));
  store.Apply(MakeDelete(1, {1, 1}, "x"));
  cr_assert_eq(store.tombstones(), 1u, "one key, one tombstone");
  // The first tombstone is stale; the second is not stable yet.
  cr_assert_eq(store.CollectTombstones({1, 0}, {1, 0}, {1, 1}), 0u);
  cr_assert_not_null(store.Find("x"));
  cr_assert_eq(store.CollectTombstones({1, 1}, {1, 1}, {1, 1}), 1u);
  cr_assert_null(store.Find("x"));
  cr_assert_eq(store.tombstones(), 0u);
}

Test(store, collection_counts_and_order) {
  Store store;
  store.Apply(MakeWrite(0, {1, 0}, "live", "v"));
  store.Apply(MakeDelete(0, {2, 0}, "t1"));
  store.Apply(MakeDelete(0, {3, 0}, "t2"));
  store.Apply(MakeDelete(1, {3, 1}, "t3"));
  cr_assert_eq(store.live_keys(), 1u);
  cr_assert_eq(store.tombstones(), 3u);

  // Only the first two are stable.
  cr_assert_eq(store.CollectTombstones({3, 0}, {3, 0}, {3, 1}), 2u);
  cr_assert_eq(store.tombstones(), 1u);
  cr_assert_null(store.Find("t1"));
  cr_assert_null(store.Find("t2"));
  cr_assert_not_null(store.Find("t3"));
  cr_assert_eq(store.CollectTombstones({3, 1}, {3, 1}, {3, 1}), 1u);
  cr_assert_eq(store.tombstones(), 0u);
  cr_assert_eq(store.live_keys(), 1u);
  cr_assert_eq(store.size(), 1u);
}

// --- The table itself ---------------------------------------------------------

namespace {
std::string KeyNumber(int i) { return "key:" + std::to_string(i); }
}  // namespace

Test(store, many_keys_survive_growth_and_are_each_visited_once) {
  Store store;
  constexpr int kKeys = 20000;
  for (int i = 0; i < kKeys; ++i) {
    cr_assert(store.Apply(MakeWrite(0, {static_cast<uint64_t>(i + 1)}, KeyNumber(i),
                                    std::string(static_cast<size_t>(i % 300), 'v'))));
  }
  cr_assert_eq(store.size(), static_cast<size_t>(kKeys));
  std::vector<int> seen(kKeys, 0);
  for (const Store::Entry& entry : store) {
    int i = std::stoi(std::string(entry.key().substr(4)));
    ++seen[static_cast<size_t>(i)];
    cr_assert_eq(entry.value().size(), static_cast<size_t>(i % 300), "key %d", i);
  }
  cr_assert(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
  for (int i = 0; i < kKeys; ++i) {
    const Store::Entry* entry = store.Find(KeyNumber(i));
    cr_assert_not_null(entry, "key %d lost", i);
    cr_assert_eq(entry->version()[0], static_cast<uint64_t>(i + 1));
  }
  cr_assert_null(store.Find(KeyNumber(kKeys)));
}

Test(store, overwrite_with_another_value_size) {
  Store store;
  store.Apply(MakeWrite(0, {1}, "x", "short"));
  cr_assert(store.Apply(MakeWrite(0, {2}, "x", std::string(1000, 'L'))));
  cr_assert(store.Find("x")->value() == std::string(1000, 'L'));
  cr_assert(store.Apply(MakeWrite(0, {3}, "x", "")));
  cr_assert(store.Find("x")->value().empty());
  cr_assert_not(store.Find("x")->tombstone(), "an empty value is not a delete");
  cr_assert(store.Apply(MakeWrite(0, {4}, "x", "same")));
  cr_assert(store.Apply(MakeWrite(0, {5}, "x", "SAME")));
  cr_assert(store.Find("x")->value() == "SAME");
  cr_assert(store.Find("x")->version() == (VectorClock{5}));
  cr_assert_eq(store.size(), 1u);
}

// Collected tombstones leave holes in probe chains: every other key must
// still be found, so chains are repaired, not cut.
Test(store, collecting_half_the_keys_keeps_the_rest_findable) {
  Store store;
  constexpr int kKeys = 5000;
  uint64_t seq = 0;
  for (int i = 0; i < kKeys; ++i) store.Apply(MakeWrite(0, {++seq}, KeyNumber(i), "v"));
  for (int i = 0; i < kKeys; i += 2) store.Apply(MakeDelete(0, {++seq}, KeyNumber(i)));
  cr_assert_eq(store.tombstones(), static_cast<size_t>(kKeys / 2));
  VectorClock all{seq};
  cr_assert_eq(store.CollectTombstones(all, all, all), static_cast<size_t>(kKeys / 2));
  cr_assert_eq(store.size(), static_cast<size_t>(kKeys / 2));
  for (int i = 0; i < kKeys; ++i) {
    const Store::Entry* entry = store.Find(KeyNumber(i));
    if (i % 2 == 0) {
      cr_assert_null(entry, "key %d was collected", i);
    } else {
      cr_assert(entry && entry->value() == "v", "key %d lost after collection", i);
    }
  }
  // And keys inserted afterwards land and are found.
  for (int i = 0; i < kKeys; i += 2) store.Apply(MakeWrite(0, {++seq}, KeyNumber(i), "again"));
  for (int i = 0; i < kKeys; ++i) {
    cr_assert_not_null(store.Find(KeyNumber(i)), "key %d", i);
  }
}

Test(store, move_hands_over_every_entry) {
  Store store;
  store.Apply(MakeWrite(0, {1, 0}, "a", "1"));
  store.Apply(MakeDelete(0, {2, 0}, "b"));
  Store moved = std::move(store);
  cr_assert_eq(moved.size(), 2u);
  cr_assert_eq(moved.tombstones(), 1u);
  cr_assert(moved.Find("a")->value() == "1");
  Store assigned;
  assigned.Apply(MakeWrite(1, {0, 1}, "c", "3"));
  assigned = std::move(moved);
  cr_assert_null(assigned.Find("c"), "assignment replaces the old entries");
  cr_assert_eq(assigned.size(), 2u);
  cr_assert_eq(assigned.CollectTombstones({2, 0}, {2, 0}, {2, 0}), 1u,
               "pending tombstones move with their entries");
}

// --- Freezing (snapshots off the loop) -----------------------------------------

namespace {
// The frozen view's content as key -> value, tombstones as "<deleted>".
std::map<std::string, std::string> Contents(const FrozenStore& frozen) {
  std::map<std::string, std::string> out;
  for (const Store::Entry& entry : frozen) {
    out[std::string(entry.key())] = entry.tombstone() ? "<deleted>" : std::string(entry.value());
  }
  return out;
}
}  // namespace

Test(store, frozen_view_keeps_the_state_it_was_taken_at) {
  Store store;
  uint64_t seq = 0;
  std::map<std::string, std::string> expected;
  for (int i = 0; i < 1000; ++i) {
    store.Apply(MakeWrite(0, {++seq}, KeyNumber(i), "v" + std::to_string(i)));
    expected[KeyNumber(i)] = "v" + std::to_string(i);
  }
  store.Apply(MakeDelete(0, {++seq}, KeyNumber(7)));
  expected[KeyNumber(7)] = "<deleted>";

  FrozenStore frozen = store.Freeze();
  cr_assert_eq(frozen.size(), 1000u);
  // Everything that can happen to a block: same-size and other-size
  // overwrites, deletes, collection, new keys and table growth.
  for (int i = 0; i < 1000; i += 3) store.Apply(MakeWrite(0, {++seq}, KeyNumber(i), "w"));
  for (int i = 1; i < 1000; i += 3) {
    store.Apply(MakeWrite(0, {++seq}, KeyNumber(i), "v" + std::to_string(i + 1000)));
  }
  for (int i = 2; i < 1000; i += 3) store.Apply(MakeDelete(0, {++seq}, KeyNumber(i)));
  VectorClock all{seq};
  cr_assert_gt(store.CollectTombstones(all, all, all), 300u);
  for (int i = 1000; i < 5000; ++i) store.Apply(MakeWrite(0, {++seq}, KeyNumber(i), "new"));

  cr_assert(Contents(frozen) == expected, "the frozen view changed with the store");
  // And the live store has every change.
  cr_assert(store.Find(KeyNumber(0))->value() == "w");
  cr_assert(store.Find(KeyNumber(1))->value() == "v1001");
  cr_assert_null(store.Find(KeyNumber(2)));
  cr_assert_eq(store.size(), 5000u - 333u);

  // After the view goes, blocks are written in place again and a new
  // freeze sees the new state.
  frozen = FrozenStore();
  store.Apply(MakeWrite(0, {++seq}, KeyNumber(0), "x"));
  FrozenStore again = store.Freeze();
  cr_assert(Contents(again)[KeyNumber(0)] == "x");
  cr_assert_eq(again.size(), store.size());
}

Test(store, frozen_view_outlives_the_store) {
  auto store = std::make_unique<Store>();
  for (int i = 0; i < 100; ++i) {
    store->Apply(MakeWrite(0, {static_cast<uint64_t>(i + 1)}, KeyNumber(i), "kept"));
  }
  FrozenStore frozen = store->Freeze();
  // A state transfer may replace the store while a snapshot is written.
  Store replacement;
  replacement.Apply(MakeWrite(0, {1000}, "other", "x"));
  *store = std::move(replacement);
  store.reset();
  std::map<std::string, std::string> contents = Contents(frozen);
  cr_assert_eq(contents.size(), 100u);
  cr_assert(std::all_of(contents.begin(), contents.end(),
                        [](const auto& kv) { return kv.second == "kept"; }));
}

// The reason for freezing: another thread reads the view while this one
// writes. (The sanitizer build catches a block written or freed under it.)
Test(store, frozen_view_is_readable_from_another_thread_during_writes) {
  Store store;
  uint64_t seq = 0;
  for (int i = 0; i < 20000; ++i) store.Apply(MakeWrite(0, {++seq}, KeyNumber(i), "before"));
  FrozenStore frozen = store.Freeze();
  size_t seen_before = 0;
  std::thread reader([&] {
    for (int round = 0; round < 5; ++round) {
      for (const Store::Entry& entry : frozen) seen_before += entry.value() == "before";
    }
  });
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 20000; ++i) {
      store.Apply(MakeWrite(0, {++seq}, KeyNumber(i), round % 2 ? "after" : "after, longer"));
    }
  }
  reader.join();
  cr_assert_eq(seen_before, 5u * 20000u);
  cr_assert(store.Find(KeyNumber(0))->value() == "after, longer");
}

// Freezing into a buffer made ready ahead gives the same view as without
// one, whether the buffer is large enough or too small (the table grew
// since: the sanitizer build catches a copy written past it). Whether the
// buffer was used is not visible here; BM_StoreFreeze and kvd's "frozen
// in" log line show the time it saves.
Test(store, freeze_into_a_prepared_buffer) {
  Store store;
  uint64_t seq = 0;
  for (int i = 0; i < 1000; ++i) store.Apply(MakeWrite(0, {++seq}, KeyNumber(i), "v"));
  for (size_t capacity : {store.slot_count(), store.slot_count() / 2}) {
    FreezeBuffer buffer = FreezeBuffer::Allocate(capacity);
    cr_assert_eq(buffer.capacity(), capacity);
    FrozenStore frozen = store.Freeze(std::move(buffer));
    cr_assert_eq(frozen.size(), 1000u);
    cr_assert_eq(Contents(frozen).size(), 1000u);
  }
  FrozenStore empty = Store().Freeze(FreezeBuffer::Allocate(16));
  cr_assert_eq(empty.size(), 0u);
  cr_assert(empty.begin() == empty.end());
}

// A node keeps the last snapshot's freeze buffer for the next one (fresh
// memory is what costs on a VM). Large enough to be mapped memory, and the
// taken buffer must hold a whole, correct second freeze.
Test(store, a_detached_view_gives_its_buffer_back) {
  Store store;
  uint64_t seq = 0;
  for (int i = 0; i < 150000; ++i) store.Apply(MakeWrite(0, {++seq}, KeyNumber(i), "first"));
  const size_t slots = store.slot_count();
  FrozenStore frozen = store.Freeze(FreezeBuffer::Allocate(slots));
  for (int i = 0; i < 150000; i += 2) store.Apply(MakeWrite(0, {++seq}, KeyNumber(i), "second"));
  cr_assert_eq(Contents(frozen).at(KeyNumber(0)), "first");
  frozen.Detach();
  FreezeBuffer buffer = frozen.TakeBuffer();
  cr_assert_eq(buffer.capacity(), slots);
  cr_assert_eq(frozen.size(), 0u);
  cr_assert(frozen.begin() == frozen.end());

  cr_assert_eq(buffer.capacity(), slots);
  FreezeBuffer moved = std::move(buffer);
  cr_assert_eq(buffer.capacity(), 0u, "a moved-from buffer is empty");
  FrozenStore again = store.Freeze(std::move(moved));
  for (int i = 0; i < 150000; ++i) store.Apply(MakeWrite(0, {++seq}, KeyNumber(i), "third"));
  std::map<std::string, std::string> seen = Contents(again);
  cr_assert_eq(seen.size(), 150000u);
  cr_assert_eq(seen.at(KeyNumber(0)), "second");
  cr_assert_eq(seen.at(KeyNumber(1)), "first");
  again.Detach();

  // A buffer larger than the table (the store shrank) is used and comes
  // back whole; an empty one makes Freeze copy into memory of its own.
  Store few;
  for (int i = 0; i < 10; ++i) few.Apply(MakeWrite(0, {++seq}, KeyNumber(i), "few"));
  FrozenStore roomy = few.Freeze(FreezeBuffer::Allocate(few.slot_count() * 4));
  cr_assert_eq(Contents(roomy).size(), 10u);
  roomy.Detach();
  cr_assert_eq(roomy.TakeBuffer().capacity(), few.slot_count() * 4);
  FrozenStore unbuffered = few.Freeze(FreezeBuffer());
  cr_assert_eq(Contents(unbuffered).size(), 10u);
  unbuffered.Detach();

  // Once the store has grown past it, a kept buffer is too small: Freeze
  // makes its own copy and the view is still whole.
  FreezeBuffer small = again.TakeBuffer();
  cr_assert_eq(small.capacity(), slots, "the freeze used the buffer it was given");
  for (int i = 150000; i < 400000; ++i) store.Apply(MakeWrite(0, {++seq}, KeyNumber(i), "grown"));
  cr_assert_lt(small.capacity(), store.slot_count());
  FrozenStore grown = store.Freeze(std::move(small));
  cr_assert_eq(Contents(grown).size(), 400000u);
}

// Detach ends the freeze: the store writes in place again and the next
// freeze may start, while the detached view (with every block the freeze
// retired) is destroyed on another thread, as a node does. The sanitizer
// build catches a block freed twice, leaked, or freed under the store.
Test(store, detached_view_is_destroyed_on_another_thread) {
  Store store;
  uint64_t seq = 0;
  for (int i = 0; i < 5000; ++i) store.Apply(MakeWrite(0, {++seq}, KeyNumber(i), "before"));
  auto frozen = std::make_unique<FrozenStore>(store.Freeze());
  for (int i = 0; i < 5000; ++i) store.Apply(MakeWrite(0, {++seq}, KeyNumber(i), "during"));
  cr_assert_eq(Contents(*frozen).at(KeyNumber(7)), "before");
  frozen->Detach();
  // The freeze is over although the view still exists: another may start.
  FrozenStore next = store.Freeze();
  std::thread disposer([view = std::move(frozen)]() mutable { view.reset(); });
  for (int i = 0; i < 5000; ++i) store.Apply(MakeWrite(0, {++seq}, KeyNumber(i), "after!"));
  disposer.join();
  cr_assert_eq(Contents(next).at(KeyNumber(7)), "during");
  cr_assert_eq(store.Find(KeyNumber(4999))->value(), "after!");
}
