// WalFile: the node's write-ahead log on disk, in its data directory.
//
// Appends are plain write(2) calls on the loop thread: they only copy into
// the page cache, and a process kill after one loses nothing. Durability
// against power loss comes from fdatasync, which runs off the loop on
// libuv's thread pool (uv_fs_fdatasync): one sync covers every record
// written before it started (group commit), and the loop keeps serving
// meanwhile.
//
// Files: wal-<20-digit segment number>.log. A snapshot rotates the log to a
// new segment first; once the snapshot is durable, the segments before it
// are removed. Recovery reads the segments from the snapshot's on, in
// order; a torn tail (a crash mid-write) is truncated with a log line, a
// damaged record followed by more data stops start-up unless
// truncate_corrupt is set.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "daemon/core/record.h"
#include "daemon/core/status.h"

namespace kvd::io {

class WalFile {
 public:
  explicit WalFile(std::string dir);
  ~WalFile();
  WalFile(const WalFile&) = delete;
  WalFile& operator=(const WalFile&) = delete;

  // Replays every intact record through `replay` (which returns a Status;
  // an error stops recovery), truncates a torn tail, then opens the last
  // segment (or a new one) for appending. Blocking: start-up only.
  // Segments before `first_segment` are covered by a snapshot: they are
  // removed, not replayed.
  core::Status Recover(const std::function<core::Status(const core::Record&)>& replay,
                       bool truncate_corrupt, uint64_t first_segment, uint64_t* records);

  // What Rotate does with the segment it leaves.
  enum class RotateSync : uint8_t {
    // fdatasync it now, blocking (--fsync always: acks wait for it, and
    // group commit leaves little unsynced). Every byte appended so far is
    // durable afterwards.
    kNow,
    // The next SyncAsync syncs it, then the new segment (--fsync everysec:
    // up to a second of writes, too slow to sync on the loop).
    kLater,
    // Close it: the OS writes it back (--fsync no).
    kNever,
  };
  // Continues in a new segment, whose number it returns in *segment.
  // Unavailable while the previous rotation's segment or a sync is still
  // pending: try again on a later turn.
  core::Status Rotate(RotateSync sync, uint64_t* segment);
  // Removes the segments in `dir` before `segment` (a durable snapshot
  // covers them). Touches no WalFile, so any thread may call it.
  static void RemoveSegmentsBefore(const std::string& dir, uint64_t segment);
  uint64_t segment() const { return segment_; }

  // Appends encoded records (wal_format.h). An error means the disk
  // refused the write: the node must stop, it can no longer promise
  // durability.
  core::Status Append(const std::string& bytes);

  // Starts an fdatasync covering every byte appended so far, unless one is
  // running (then call again when `on_synced` fires). `on_synced(status)`
  // runs on the loop when it completes; durable_bytes() then covers it.
  void SyncAsync(uv_loop_t* loop, std::function<void(core::Status)> on_synced);
  // Blocking fdatasync, for shutdown.
  core::Status SyncNow();

  bool syncing() const { return syncing_; }
  uint64_t appended_bytes() const { return appended_; }
  // Bytes of log that recovery replayed (what the segments held at start).
  uint64_t recovered_bytes() const { return recovered_; }
  uint64_t durable_bytes() const { return durable_; }
  const std::string& path() const { return path_; }

 private:
  static void OnSynced(uv_fs_t* request);
  void StartFdatasync(int fd);

  std::string dir_;
  std::string path_;
  int fd_ = -1;
  // A segment rotated away while a sync of it was running: closed once
  // that sync completes.
  int retired_fd_ = -1;
  // A segment rotated away with RotateSync::kLater: the next SyncAsync
  // syncs and closes it before syncing fd_. (Recovery drops every segment
  // after a damaged one, so the old one must not lag behind the new.)
  int unsynced_fd_ = -1;
  bool syncing_unsynced_ = false;
  uv_loop_t* loop_ = nullptr;
  uint64_t segment_ = 1;
  uint64_t appended_ = 0;  // Bytes appended since open, in this process, all segments.
  uint64_t recovered_ = 0;
  uint64_t durable_ = 0;  // Of those, bytes covered by a completed sync.
  uint64_t sync_target_ = 0;
  bool syncing_ = false;
  uv_fs_t sync_request_;
  std::function<void(core::Status)> on_synced_;
};

}  // namespace kvd::io
