#include "daemon/io/snapshot_file.h"

#include <fcntl.h>
#include <sys/stat.h>
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

void SnapshotWriter::Start(uv_loop_t* loop, uint64_t segment, std::string bytes,
                           std::function<void(core::Status)> done) {
  running_ = true;
  segment_ = segment;
  bytes_ = std::move(bytes);
  done_ = std::move(done);
  request_.data = this;
  int rc = uv_queue_work(loop, &request_, OnWork, OnDone);
  if (rc < 0) {
    running_ = false;
    bytes_.clear();
    done_(core::Status::Internal(std::string("uv_queue_work: ") + uv_strerror(rc)));
  }
}

// On a thread-pool thread: touches nothing but this writer's own fields.
void SnapshotWriter::OnWork(uv_work_t* request) {
  auto* writer = static_cast<SnapshotWriter*>(request->data);
  std::string final_path = writer->dir_ + "/" + SnapshotName(writer->segment_);
  std::string temporary = writer->dir_ + "/" + TemporaryName(writer->segment_);
  int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    writer->result_ = Errno("open " + temporary);
    return;
  }
  core::Status s = WriteAll(fd, writer->bytes_, temporary);
  if (s.ok() && fsync(fd) != 0) s = Errno("fsync " + temporary);
  close(fd);
  if (s.ok() && rename(temporary.c_str(), final_path.c_str()) != 0) {
    s = Errno("rename " + temporary);
  }
  if (s.ok()) s = SyncDirectory(writer->dir_);
  if (!s.ok()) unlink(temporary.c_str());
  writer->result_ = s;
}

void SnapshotWriter::OnDone(uv_work_t* request, int status) {
  auto* writer = static_cast<SnapshotWriter*>(request->data);
  writer->running_ = false;
  std::string().swap(writer->bytes_);  // Give the memory back now.
  core::Status result = writer->result_;
  if (status < 0) result = core::Status::Internal("snapshot write cancelled");
  writer->done_(result);
}

}  // namespace kvd::io
