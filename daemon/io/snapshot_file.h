// Snapshot files: the node's whole state (Replica::Image records, framed as
// in the write-ahead log, ending with a kSnapshotEnd record) in
// snapshot-<20-digit segment>.snap. The number is the first WAL segment
// the snapshot does not cover: recovery loads the newest complete
// snapshot, then replays the segments from that number on.
//
// Writing one: the node rotates its WAL and freezes its replica's state
// (Replica::Freeze: a copy of the store's slot array, the loop's only
// cost). On a thread of its own, at a lower priority than the loop (nice
// +10: on a busy machine encoding a large store must not take the loop's
// CPU), SnapshotWriter then encodes the frozen image in chunks into a
// temporary file, fsyncs it, renames it into place
// and fsyncs the directory. Only then are the older segments and snapshots
// removed, so a crash at any point leaves a recoverable set.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "daemon/core/record.h"
#include "daemon/core/status.h"

namespace kvd::io {

// Loads the newest complete snapshot in `dir`, if any: each record goes to
// `replay`. *segment is its number (0 if there is none), *records how many
// records it held. An incomplete or damaged newest snapshot is an error
// (the WAL before it may be gone): start-up must stop and say so.
core::Status LoadSnapshot(const std::string& dir,
                          const std::function<core::Status(const core::Record&)>& replay,
                          uint64_t* segment, uint64_t* records);

// Removes snapshots (and leftover temporary files) older than `segment`.
void RemoveSnapshotsBefore(const std::string& dir, uint64_t segment);

class SnapshotWriter {
 public:
  explicit SnapshotWriter(std::string dir) : dir_(std::move(dir)) {}
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  // Runs on the snapshot thread and produces the snapshot's bytes: appends to
  // *out and calls flush() whenever *out has grown enough (flush writes it
  // out and empties it). It must touch nothing the loop changes.
  using Encoder = std::function<void(std::string* out, const std::function<void()>& flush)>;
  // Encodes and writes the snapshot for `segment` off the loop. `encoded`
  // runs on the loop once `encode` has returned, before the file is synced
  // (the state it read may be let go then: syncing a large snapshot takes
  // a second or two); `done` runs on the loop with the outcome and the
  // file's size, after `encode` is destroyed (on the loop too). Keeps the
  // loop alive until then. REQUIRES: !running().
  void Start(uv_loop_t* loop, uint64_t segment, Encoder encode, std::function<void()> encoded,
             std::function<void(core::Status, size_t bytes)> done);
  bool running() const { return running_; }

 private:
  static void ThreadMain(void* arg);
  static void OnThreadProgress(uv_async_t* handle);
  static void OnClosed(uv_handle_t* handle);
  void Work();

  std::string dir_;
  uv_thread_t thread_;
  uv_async_t thread_progress_;  // Initialised per snapshot, closed after it.
  // Set by the thread before each uv_async_send (sends may coalesce, so
  // the loop may see kDone without having seen kEncoded).
  enum Stage : int { kEncoding, kEncoded, kDone };
  std::atomic<int> stage_{kEncoding};
  bool encoded_delivered_ = false;
  std::function<void()> encoded_;
  bool running_ = false;
  uint64_t segment_ = 0;
  Encoder encode_;
  size_t bytes_ = 0;
  core::Status result_;
  std::function<void(core::Status, size_t)> done_;
};

}  // namespace kvd::io
