// GroupCommit: when the next fdatasync of the write-ahead log should start
// under --fsync always. Pure: the shell reports appends and syncs with the
// time (uv_hrtime), and asks.
//
// Starting the next sync the moment one completes (and the moment a write
// arrives while none runs) splits closed-loop clients into two groups that
// take turns: the clients a sync releases send their next writes while
// the next sync, which covers only the other group, already runs. Each
// sync then covers about half of them. Measured on a 2-core VM, one node,
// C=50 P=1 puts: 1,550 fdatasync/s of 25 writes each, 38k puts/s. Sending
// the 25 replies and reading the 25 writes that follow takes the loop
// 200-500 us (loopback TCP costs about 7 us per write call, the receiver's
// side included), as long as the sync itself (350-550 us).
//
// So after a sync, the next one waits until as many requests have queued
// as that sync released (the clients it answered are back), but no longer
// than twice the last sync's duration and never more than kHoldMaxNs: a
// sync covers the whole group, 1,100 fdatasync/s of 50 writes, 55k puts/s
// (bench/README.md). A lone client loses nothing (one reply released, one
// request back: the sync starts at once); clients that do not come back
// cost their peers at most the hold. Only client replies count: writes
// replicated from peers arrive with their batches, not in answer to
// anything this node released, so a sync that released no client waits
// for nobody.
//
// Counts cannot tell those clients from ones that write at their own pace
// whatever we answer (paced load, many independent writers): there too the
// last sync released as many as arrived since the one before it started.
// But such clients never "come back" in answer to a release, so each hold
// would have to wait for the arrivals of the last sync and the last hold
// together, and every hold would run to its limit, adding up to twice a
// sync to every write for nothing. So after a hold that lasted to its end
// (the clients were not back before it), the next sync is not held: under
// steady paced load the holds then cycle from none up to two syncs (1.2
// syncs on average in group_commit_test's model, against 2), and a
// closed-loop group, which comes back well within its hold, keeps all of
// it.
#pragma once

#include <cstdint>

namespace kvd::core {

class GroupCommit {
 public:
  // The hold, as a multiple of the last sync's duration, and its bound.
  // Measured at C=50 P=1: 1x recovered half of the gain, 1.5-2x all of it,
  // 3x less again (the hold outlasts the clients' return).
  static constexpr uint64_t kHoldSyncMultiple = 2;
  static constexpr uint64_t kHoldMaxNs = 1'000'000;

  // `replies` more replies to clients queued behind the log's next sync.
  void Queued(uint64_t replies) { queued_ += replies; }
  // A sync of everything appended so far started at `now_ns` (at or after
  // StartBy(), or earlier when the shell could not wait: shutting down).
  void SyncStarted(uint64_t now_ns);
  // The sync that started last completed at `now_ns`.
  void SyncFinished(uint64_t now_ns);

  // Whether to start a sync now, given outputs wait for one and none runs.
  bool ShouldStart(uint64_t now_ns) const { return now_ns >= StartBy(); }
  // The latest time at which the next sync starts: until then, it waits
  // for the released clients' next requests. 0 when it need not wait.
  uint64_t StartBy() const;

  uint64_t last_covered() const { return last_covered_; }
  uint64_t last_sync_ns() const { return last_sync_ns_; }

 private:
  // As many requests have queued since the last sync completed as it
  // released: everyone it answered is back (or it answered nobody).
  bool ClientsBack() const { return queued_ - at_release_ >= last_covered_; }
  // When the hold after the last completed sync is over, at the latest.
  uint64_t HoldEnd() const;

  uint64_t queued_ = 0;         // Replies queued, all time.
  uint64_t at_sync_start_ = 0;  // queued_ when the running (or last) sync started.
  uint64_t released_ = 0;       // Replies queued before a completed sync started.
  uint64_t last_covered_ = 0;   // Replies the last completed sync released.
  uint64_t at_release_ = 0;     // queued_ when it completed.
  uint64_t released_at_ns_ = 0;
  uint64_t sync_started_ns_ = 0;
  uint64_t last_sync_ns_ = 0;
  // False for the sync after one that was held to the end of its hold.
  bool hold_after_this_sync_ = true;
  bool hold_after_last_sync_ = true;
};

}  // namespace kvd::core
