// bench_micro: Google Benchmark micro-benchmarks of the hot paths of the
// core and the wire library, run by `make bench-micro`. They catch
// regressions in the pieces kvbench cannot isolate: vector-clock compare
// and merge, delivery of a causal-buffer backlog, store put/get, and frame
// encode/decode.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "daemon/core/causal_buffer.h"
#include "daemon/core/replica.h"
#include "daemon/core/replica_image.h"
#include "daemon/core/store.h"
#include "daemon/core/vector_clock.h"
#include "daemon/core/write.h"
#include "daemon/storage/crc32c.h"
#include "daemon/storage/wal_format.h"
#include "schema/encoder.h"
#include "schema/frame.h"

namespace {

using kvd::core::CausalBuffer;
using kvd::core::FrozenStore;
using kvd::core::Store;
using kvd::core::VectorClock;
using kvd::core::Write;

VectorClock MakeClock(size_t nodes, uint64_t base) {
  VectorClock clock(nodes);
  for (size_t i = 0; i < nodes; ++i) clock.Set(i, base + i * 7);
  return clock;
}

std::string KeyOf(uint64_t i) { return "key:" + std::to_string(1000000000000ULL + i).substr(1); }

void BM_ClockCompare(benchmark::State& state) {
  const size_t nodes = static_cast<size_t>(state.range(0));
  VectorClock a = MakeClock(nodes, 100);
  VectorClock b = MakeClock(nodes, 100);
  b.Set(nodes - 1, 1);  // Concurrent with a when nodes > 1: the full scan.
  a.Set(0, 1);
  for (auto _ : state) benchmark::DoNotOptimize(a.Compare(b));
}
BENCHMARK(BM_ClockCompare)->Arg(3)->Arg(5)->Arg(16)->Arg(64);

void BM_ClockMerge(benchmark::State& state) {
  const size_t nodes = static_cast<size_t>(state.range(0));
  VectorClock a = MakeClock(nodes, 100);
  const VectorClock b = MakeClock(nodes, 200);
  for (auto _ : state) {
    a.Merge(b);
    benchmark::DoNotOptimize(a);
  }
}
BENCHMARK(BM_ClockMerge)->Arg(3)->Arg(5)->Arg(16)->Arg(64);

// A three-node cluster: node 0 has applied nothing from origin 1, and
// writes 2..N of origin 1 arrived first. Measures buffering them plus
// delivering the whole backlog once write 1 arrives and is applied.
void BM_CausalBufferDeliverBacklog(benchmark::State& state) {
  const uint64_t backlog = static_cast<uint64_t>(state.range(0));
  std::vector<Write> writes;
  for (uint64_t seq = 1; seq <= backlog; ++seq) {
    Write w;
    w.origin = 1;
    w.clock = VectorClock(3);
    w.clock.Set(1, seq);
    w.key = KeyOf(seq);
    w.value = std::string(100, 'x');
    writes.push_back(std::move(w));
  }
  for (auto _ : state) {
    CausalBuffer buffer(3, backlog + 1);
    VectorClock applied(3);
    for (uint64_t i = 1; i < backlog; ++i) buffer.Insert(writes[i]);
    applied.Set(1, 1);  // Write 1 arrives and is applied directly.
    uint64_t delivered = 1;
    while (auto w = buffer.PopDeliverable(applied)) {
      applied.Set(w->origin, w->seq());
      ++delivered;
    }
    if (delivered != backlog) state.SkipWithError("backlog not fully delivered");
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(backlog));
}
BENCHMARK(BM_CausalBufferDeliverBacklog)->Arg(1000);

void BM_StorePut(benchmark::State& state) {
  const uint64_t keys = static_cast<uint64_t>(state.range(0));
  Store store;
  Write w;
  w.origin = 0;
  w.clock = VectorClock(3);
  w.value = std::string(100, 'x');
  std::vector<std::string> names;
  for (uint64_t i = 0; i < keys; ++i) names.push_back(KeyOf(i));
  uint64_t seq = 0;
  for (auto _ : state) {
    w.clock.Set(0, ++seq);
    w.key = names[seq % keys];
    benchmark::DoNotOptimize(store.Apply(w));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StorePut)->Arg(1000)->Arg(100000);

// Overwrites in batches of 64 at random keys of 1M (a peer's write batch),
// without (0) and with (1) Store::PrefetchForBatch, as PeerWrites uses it;
// 2: prefetches, under a snapshot: the store is frozen anew every 200k
// writes (freeze, writes that copy on write, detach, free what was retired).
void BM_StoreApplyBatch(benchmark::State& state) {
  constexpr uint64_t kKeys = 1000000;
  constexpr size_t kBatch = 64;
  constexpr uint64_t kWritesPerFreeze = 200000;
  const bool prefetch = state.range(0) != 0;
  const bool frozen = state.range(0) == 2;
  Store store;
  std::vector<Write> writes(kBatch);
  uint64_t seq = 0;
  for (uint64_t i = 0; i < kKeys; ++i) {
    Write w;
    w.clock = VectorClock(3);
    w.clock.Set(0, ++seq);
    w.key = KeyOf(i);
    w.value = std::string(100, 'x');
    store.Apply(w);
  }
  for (Write& w : writes) {
    w.clock = VectorClock(3);
    w.value = std::string(100, 'y');
  }
  uint64_t rng = 88172645463325252ull;
  FrozenStore view;
  if (frozen) view = store.Freeze();
  uint64_t writes_frozen = 0;
  for (auto _ : state) {
    if (frozen && (writes_frozen += kBatch) >= kWritesPerFreeze) {
      view.Detach();
      view = store.Freeze();  // The old view goes, with what it retired.
      writes_frozen = 0;
    }
    for (Write& w : writes) {
      rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
      w.key = KeyOf(rng % kKeys);
      w.clock.Set(0, ++seq);
    }
    auto key_at = [&](size_t j) -> std::string_view { return writes[j].key; };
    for (size_t i = 0; i < kBatch; ++i) {
      if (prefetch) store.PrefetchForBatch(i, kBatch, key_at);
      benchmark::DoNotOptimize(store.Apply(writes[i]));
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_StoreApplyBatch)->Arg(0)->Arg(1)->Arg(2);

// A snapshot's cost to the loop: Store::Freeze() of 1M keys, then the
// view's release (here with no writes in between, so nothing was retired).
void BM_StoreFreeze(benchmark::State& state) {
  constexpr uint64_t kKeys = 1000000;
  Store store;
  for (uint64_t i = 0; i < kKeys; ++i) {
    Write w;
    w.clock = VectorClock(3);
    w.clock.Set(0, i + 1);
    w.key = KeyOf(i);
    w.value = std::string(100, 'x');
    store.Apply(w);
  }
  for (auto _ : state) {
    FrozenStore frozen = store.Freeze();
    benchmark::DoNotOptimize(frozen.size());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StoreFreeze)->Unit(benchmark::kMillisecond);

// A snapshot's encoding, as kvd's snapshot thread does it: visit the frozen
// image of a 3-node replica with 1M keys of 100-byte values and append
// every record to 1 MiB chunks (the chunk is reset instead of written).
void BM_SnapshotEncode(benchmark::State& state) {
  constexpr uint64_t kKeys = 1000000;
  kvd::core::ReplicaConfig config;
  config.node_count = 3;
  config.cluster_id = "bench";
  kvd::core::Replica replica(config);
  std::string value(100, 'v');
  for (uint64_t i = 0; i < kKeys; ++i) {
    replica.Put(i, 1, KeyOf(i), value, nullptr, 0);
    if (i % 1024 == 0) replica.Ready(0);
  }
  replica.Ready(0);
  std::string chunk;
  for (auto _ : state) {
    kvd::core::ReplicaImage image = replica.Freeze();
    auto flush = [&] {
      if (chunk.size() >= (1 << 20)) chunk.clear();
    };
    image.Visit(
        [&](const kvd::core::Record& record) {
          kvd::storage::AppendRecord(record, &chunk);
          flush();
        },
        [&](const kvd::core::StoreEntry& entry) {
          kvd::storage::AppendWriteRecord(kvd::core::RecordKind::kTransferEntry, entry.origin(),
                                          entry.version_counts(), entry.tombstone(), entry.key(),
                                          entry.value(), &chunk);
          flush();
        });
  }
  state.SetItemsProcessed(state.iterations() * kKeys);
}
BENCHMARK(BM_SnapshotEncode)->Unit(benchmark::kMillisecond);

// A one-node replica's client path as the node drives it: a read's worth
// of requests (64, as 4 pipelined connections' share of a turn) through
// Replica::Submit, then Ready, its records encoded as the WAL would take
// them. Arg 0: PUTs (overwrites, 100-byte values), arg 1: GETs; 10k keys
// so that the store stays in cache and the figure is the path's own work
// (allocations, copies), not the store's misses.
void BM_ReplicaClientBatch(benchmark::State& state) {
  using kvd::core::Replica;
  constexpr uint64_t kKeys = 10000;
  constexpr size_t kBatch = 64;
  const bool gets = state.range(0) != 0;
  kvd::core::ReplicaConfig config;
  config.cluster_id = "bench";
  Replica replica(config);
  std::vector<std::string> keys;
  const std::string value(100, 'v');
  for (uint64_t i = 0; i < kKeys; ++i) {
    keys.push_back(KeyOf(i));
    replica.Put(i, 1, keys.back(), value, nullptr, 0);
    if (i % 1024 == 0) replica.Ready(0);
  }
  replica.Ready(0);
  std::vector<Replica::ClientRequest> requests(kBatch);
  std::string wal;
  uint64_t next = 0;
  for (auto _ : state) {
    for (Replica::ClientRequest& r : requests) {
      ++next;
      r = {gets ? Replica::RequestType::kGet : Replica::RequestType::kPut,
           next,
           1,
           keys[(next * 7919) % kKeys],
           value,
           nullptr};
    }
    replica.Submit(requests, 0);
    kvd::core::Output& out = replica.Ready(0);
    wal.clear();
    for (const kvd::core::Record& record : out.records) kvd::storage::AppendRecord(record, &wal);
    benchmark::DoNotOptimize(out.replies.data());
    benchmark::DoNotOptimize(wal.data());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_ReplicaClientBatch)->Arg(0)->Arg(1);

void BM_StoreGet(benchmark::State& state) {
  const uint64_t keys = static_cast<uint64_t>(state.range(0));
  Store store;
  std::vector<std::string> names;
  for (uint64_t i = 0; i < keys; ++i) {
    Write w;
    w.origin = 0;
    w.clock = VectorClock(3);
    w.clock.Set(0, i + 1);
    w.key = KeyOf(i);
    w.value = std::string(100, 'x');
    store.Apply(w);
    names.push_back(w.key);
  }
  uint64_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(store.Find(names[++i % keys]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StoreGet)->Arg(1000)->Arg(100000);

void BM_FrameEncodePut(benchmark::State& state) {
  kvd::wire::Encoder encoder;
  const std::string key = KeyOf(42);
  const std::string value(100, 'x');
  std::string out;
  uint64_t id = 0;
  for (auto _ : state) {
    out.clear();
    encoder.Encode(++id, kvd::wire::PutRequestFields{.key = key, .value = value}, &out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FrameEncodePut);

// A node's most common frame: the OK reply to a put, with a 3-node version.
// Arg 0: as kvd sends it; arg 1: a GET's reply with a 100-byte value.
void BM_FrameEncodeReply(benchmark::State& state) {
  kvd::wire::Encoder encoder;
  const uint64_t version[3] = {1234567, 7654321, 42};
  const std::string value(100, 'x');
  const bool with_value = state.range(0) != 0;
  std::string out;
  uint64_t id = 0;
  for (auto _ : state) {
    out.clear();
    for (int i = 0; i < 16; ++i) {
      encoder.Encode(++id,
                     kvd::wire::ReplyFields{.found = with_value,
                                            .value = with_value ? value : std::string_view(),
                                            .version = version},
                     &out);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * 16);
}
BENCHMARK(BM_FrameEncodeReply)->Arg(0)->Arg(1);

// Decodes a read's worth of pipelined frames (16 PutRequests back to back),
// split and verified by FrameDecoder, as a kvd connection would.
void BM_FrameDecodePut(benchmark::State& state) {
  constexpr int kFrames = 16;
  kvd::wire::Encoder encoder;
  const std::string value(100, 'x');
  std::string stream;
  for (int i = 0; i < kFrames; ++i) {
    const std::string key = KeyOf(static_cast<uint64_t>(i));
    encoder.Encode(static_cast<uint64_t>(i + 1),
                   kvd::wire::PutRequestFields{.key = key, .value = value}, &stream);
  }
  kvd::wire::FrameDecoder decoder(kvd::wire::kFrameBytesMaxDefault);
  for (auto _ : state) {
    decoder.Feed(stream.data(), stream.size());
    int frames = 0;
    for (;;) {
      kvd::wire::DecodeResult r = decoder.Next();
      if (r.kind != kvd::wire::DecodeResult::Kind::kFrame) break;
      benchmark::DoNotOptimize(r.frame.envelope);
      ++frames;
    }
    if (frames != kFrames) state.SkipWithError("decode failed");
  }
  state.SetItemsProcessed(state.iterations() * kFrames);
}
BENCHMARK(BM_FrameDecodePut);

// The WAL's checksum of one record: a 3-node put with a 100-byte value is
// about 160 bytes. 0: the portable table loop, 1: Crc32c (hardware where
// the CPU has it).
void BM_Crc32c(benchmark::State& state) {
  std::string record(static_cast<size_t>(state.range(1)), 'r');
  const bool dispatched = state.range(0) != 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(dispatched
                                 ? kvd::storage::Crc32c(record.data(), record.size())
                                 : kvd::storage::Crc32cPortable(record.data(), record.size()));
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(record.size()));
}
BENCHMARK(BM_Crc32c)->Args({0, 160})->Args({1, 160})->Args({0, 4096})->Args({1, 4096});

}  // namespace

BENCHMARK_MAIN();
