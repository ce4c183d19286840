#include "daemon/io/snapshot_file.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "daemon/io/file_util.h"
#include "daemon/io/log.h"
#include "daemon/storage/wal_format.h"

namespace kvd::io {
namespace {

std::string SnapshotName(uint64_t segment) { return NumberedName("snapshot-", segment, ".snap"); }

// Written first, renamed to SnapshotName once complete and synced.
std::string TemporaryName(uint64_t segment) { return NumberedName("snapshot-", segment, ".tmp"); }

core::Status WriteAll(int fd, const std::string& bytes, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("write " + path);
    done += static_cast<size_t>(n);
  }
  return core::Status::Ok();
}

}  // namespace

core::Status LoadSnapshot(const std::string& dir,
                          const std::function<core::Status(const core::Record&)>& replay,
                          uint64_t* segment, uint64_t* records) {
  *segment = 0;
  *records = 0;
  std::vector<uint64_t> snapshots = ListNumbered(dir, "snapshot-", ".snap");
  if (snapshots.empty()) return core::Status::Ok();
  std::string path = dir + "/" + SnapshotName(snapshots.back());
  std::string bytes;
  if (core::Status s = ReadFile(path, &bytes); !s.ok()) return s;
  core::Status replay_status;
  bool ended = false;
  storage::ParseResult result = storage::ParseRecords(bytes, [&](const core::Record& record) {
    if (ended) {
      replay_status = core::Status::Internal("records after the end marker");
      return false;
    }
    ended = record.kind == core::RecordKind::kSnapshotEnd;
    if (!ended) replay_status = replay(record);
    return replay_status.ok();
  });
  if (!replay_status.ok()) return core::Status::Internal(path + ": " + replay_status.message());
  if (result.stop != storage::ParseResult::Stop::kEnd || !ended) {
    return core::Status::Internal(
        path + ": " + (result.message.empty() ? "no end marker" : result.message) +
        "; the snapshot is damaged and the log before it may be gone: refusing to start "
        "(restore the data directory, or remove it and let the node recover from its peers)");
  }
  *segment = snapshots.back();
  *records = result.records;
  return core::Status::Ok();
}

void RemoveSnapshotsBefore(const std::string& dir, uint64_t segment) {
  for (uint64_t old : ListNumbered(dir, "snapshot-", ".snap")) {
    if (old >= segment) break;
    std::string path = dir + "/" + SnapshotName(old);
    if (unlink(path.c_str()) != 0) {
      KV_LOG(kWarn, "cannot remove %s: %s", path.c_str(), std::strerror(errno));
    }
  }
  // Left by a crash mid-write: never complete, never loaded.
  for (uint64_t old : ListNumbered(dir, "snapshot-", ".tmp")) {
    if (old < segment) unlink((dir + "/" + TemporaryName(old)).c_str());
  }
}

void SnapshotWriter::Start(uv_loop_t* loop, uint64_t segment, Encoder encode,
                           std::function<void()> encoded,
                           std::function<void(core::Status, size_t)> done) {
  segment_ = segment;
  bytes_ = 0;
  result_ = core::Status::Ok();
  done_ = std::move(done);
  encoded_ = std::move(encoded);
  encoded_delivered_ = false;
  stage_.store(kEncoding);
  int rc = uv_async_init(loop, &thread_progress_, OnThreadProgress);
  if (rc < 0) {
    encoded_ = nullptr;
    done_(core::Status::Internal(std::string("uv_async_init: ") + uv_strerror(rc)), 0);
    return;
  }
  thread_progress_.data = this;
  running_ = true;
  encode_ = std::move(encode);
  rc = uv_thread_create(&thread_, ThreadMain, this);
  if (rc < 0) {
    // No thread: report from the close callback, like a finished one.
    result_ = core::Status::Internal(std::string("uv_thread_create: ") + uv_strerror(rc));
    uv_close(reinterpret_cast<uv_handle_t*>(&thread_progress_), OnClosed);
  }
}

void SnapshotWriter::ThreadMain(void* arg) {
  auto* writer = static_cast<SnapshotWriter*>(arg);
  // Linux: PRIO_PROCESS with a thread id sets that thread's nice value.
  // Raising it needs no privilege; a failure only costs the loop some CPU.
  auto tid = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  int nice_now = getpriority(PRIO_PROCESS, tid);
  if (errno != 0 || setpriority(PRIO_PROCESS, tid, std::min(nice_now + 10, 19)) != 0) {
    // Said once per snapshot: a sandbox that refuses it (a seccomp filter
    // without setpriority) leaves the encoder competing with the loop.
    KV_LOG(kInfo,
           "snapshot: the encoder's nice +10 was refused (%s); it runs at the loop's "
           "priority",
           std::strerror(errno));
  }
  writer->Work();
  writer->stage_.store(kDone);
  uv_async_send(&writer->thread_progress_);
}

void SnapshotWriter::OnThreadProgress(uv_async_t* handle) {
  auto* writer = static_cast<SnapshotWriter*>(handle->data);
  int stage = writer->stage_.load();
  if (stage >= kEncoded && !writer->encoded_delivered_) {
    writer->encoded_delivered_ = true;
    if (writer->encoded_) writer->encoded_();
  }
  if (stage != kDone) return;
  uv_thread_join(&writer->thread_);
  uv_close(reinterpret_cast<uv_handle_t*>(handle), OnClosed);
}

void SnapshotWriter::OnClosed(uv_handle_t* handle) {
  auto* writer = static_cast<SnapshotWriter*>(handle->data);
  writer->running_ = false;
  // The encoder holds the frozen state: it goes here, on the loop.
  writer->encode_ = nullptr;
  writer->encoded_ = nullptr;
  writer->done_(writer->result_, writer->bytes_);
}

// On the snapshot thread: touches nothing but this writer's own fields
// (and what the encoder reads, which the loop leaves alone).
void SnapshotWriter::Work() {
  std::string final_path = dir_ + "/" + SnapshotName(segment_);
  std::string temporary = dir_ + "/" + TemporaryName(segment_);
  int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    result_ = Errno("open " + temporary);
    return;
  }
  core::Status s;
  std::string chunk;
  auto flush = [&] {
    if (s.ok()) s = WriteAll(fd, chunk, temporary);
    bytes_ += chunk.size();
    chunk.clear();
  };
  encode_(&chunk, flush);
  flush();
  stage_.store(kEncoded);
  uv_async_send(&thread_progress_);
  if (s.ok() && fsync(fd) != 0) s = Errno("fsync " + temporary);
  close(fd);
  if (s.ok() && rename(temporary.c_str(), final_path.c_str()) != 0) {
    s = Errno("rename " + temporary);
  }
  if (s.ok()) s = SyncDirectory(dir_);
  if (!s.ok()) unlink(temporary.c_str());
  result_ = s;
}

}  // namespace kvd::io
