// SnapshotSchedule: how much the write-ahead log may grow before the node
// writes its next snapshot. Pure: the shell tells it the log's growth and
// the sizes of the snapshots it wrote.
//
// The bound is the larger of --snapshot-wal-bytes and twice the last
// snapshot (a snapshot rewrites the whole store, so the ratio keeps its
// work at most half a byte per byte logged), times a jitter drawn afresh
// for every snapshot, uniform in [1, 1 + kJitter).
//
// Why the jitter: every node of a cluster logs every write, so their logs
// reach the same bound together and, without it, all of them snapshot in
// the same second, every time. Measured on a 2-core VM with three nodes at
// 110k puts/s: the second in which one node snapshots has a replication-lag
// p99 of 4-6 ms; when all three do, 7-18 ms over two to four seconds
// (bench/README.md). HBase spreads its major compactions the same way
// (hbase.hregion.majorcompaction.jitter), Kafka its segment rolls.
//
// The jitter only lengthens the bound, so --snapshot-wal-bytes stays a
// floor: no snapshot happens before it. The log then holds 2-3 times the
// last snapshot at the most (without the jitter, 2), and recovery replays
// that much.
#pragma once

#include <cstdint>

namespace kvd::core {

class SnapshotSchedule {
 public:
  static constexpr uint64_t kLogRatio = 2;
  static constexpr double kJitter = 0.5;

  // min_log_bytes: --snapshot-wal-bytes (0: automatic snapshots are off).
  // seed: differs between nodes (their id), so their jitters differ.
  SnapshotSchedule(uint64_t min_log_bytes, uint64_t seed);

  // Whether a log grown by `log_bytes_since` since the last snapshot (or,
  // before the first, since the oldest log this node holds) is due one.
  bool Due(uint64_t log_bytes_since) const {
    return min_log_bytes_ > 0 && log_bytes_since >= bound_;
  }

  // A snapshot of `snapshot_bytes` was written: sets the next bound.
  void Written(uint64_t snapshot_bytes);

  uint64_t bound() const { return bound_; }

 private:
  void DrawBound();

  uint64_t min_log_bytes_;
  uint64_t last_snapshot_bytes_ = 0;
  uint64_t rng_state_;
  uint64_t bound_ = 0;
};

}  // namespace kvd::core
