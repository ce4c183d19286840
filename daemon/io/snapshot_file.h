// Snapshot files: the node's whole state (Replica::Image records, framed as
// in the write-ahead log, ending with a kSnapshotEnd record) in
// snapshot-<20-digit segment>.snap. The number is the first WAL segment
// the snapshot does not cover: recovery loads the newest complete
// snapshot, then replays the segments from that number on.
//
// Writing one: the node rotates its WAL and encodes the image on the loop
// (one consistent state, the loop's only cost), then SnapshotWriter writes
// it to a temporary file, fsyncs it, renames it into place and fsyncs the
// directory on libuv's thread pool. Only then are the older segments and
// snapshots removed, so a crash at any point leaves a recoverable set.
#pragma once

#include <uv.h>

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

  // Writes `bytes` as the snapshot for `segment` off the loop; `done` runs
  // on the loop with the outcome. REQUIRES: !running().
  void Start(uv_loop_t* loop, uint64_t segment, std::string bytes,
             std::function<void(core::Status)> done);
  bool running() const { return running_; }

 private:
  static void OnWork(uv_work_t* request);
  static void OnDone(uv_work_t* request, int status);

  std::string dir_;
  uv_work_t request_;
  bool running_ = false;
  uint64_t segment_ = 0;
  std::string bytes_;
  core::Status result_;
  std::function<void(core::Status)> done_;
};

}  // namespace kvd::io
