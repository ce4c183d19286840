#include "daemon/io/snapshot_file.h"

#include <dirent.h>
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

std::string SnapshotName(uint64_t segment) {
  char name[64];
  std::snprintf(name, sizeof(name), "snapshot-%020llu.snap",
                static_cast<unsigned long long>(segment));
  return name;
}

// Snapshot numbers in `dir`, ascending; temporary files go to *temporary.
std::vector<uint64_t> ListSnapshots(const std::string& dir, std::vector<std::string>* temporary) {
  std::vector<uint64_t> snapshots;
  DIR* d = opendir(dir.c_str());
  if (!d) return snapshots;
  while (dirent* entry = readdir(d)) {
    unsigned long long segment = 0;
    char tail[8] = {};
    if (std::sscanf(entry->d_name, "snapshot-%20llu.%5s", &segment, tail) != 2) continue;
    if (std::strcmp(tail, "snap") == 0) {
      snapshots.push_back(segment);
    } else if (temporary && std::strcmp(tail, "tmp") == 0) {
      temporary->push_back(entry->d_name);
    }
  }
  closedir(d);
  std::sort(snapshots.begin(), snapshots.end());
  return snapshots;
}

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
  std::vector<uint64_t> snapshots = ListSnapshots(dir, nullptr);
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
  std::vector<std::string> temporary;
  for (uint64_t old : ListSnapshots(dir, &temporary)) {
    if (old >= segment) break;
    std::string path = dir + "/" + SnapshotName(old);
    if (unlink(path.c_str()) != 0) {
      KV_LOG(kWarn, "cannot remove %s: %s", path.c_str(), std::strerror(errno));
    }
  }
  for (const std::string& name : temporary) unlink((dir + "/" + name).c_str());
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
  std::string temporary = final_path + ".tmp";
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
