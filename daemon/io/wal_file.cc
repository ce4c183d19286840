#include "daemon/io/wal_file.h"

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

std::string SegmentName(uint64_t segment) { return NumberedName("wal-", segment, ".log"); }

std::vector<uint64_t> ListSegments(const std::string& dir) {
  return ListNumbered(dir, "wal-", ".log");
}

}  // namespace

WalFile::WalFile(std::string dir) : dir_(std::move(dir)) {}

WalFile::~WalFile() {
  if (fd_ >= 0) close(fd_);
  if (retired_fd_ >= 0) close(retired_fd_);
  if (unsynced_fd_ >= 0) close(unsynced_fd_);
}

core::Status WalFile::Recover(const std::function<core::Status(const core::Record&)>& replay,
                              bool truncate_corrupt, uint64_t first_segment, uint64_t* records) {
  *records = 0;
  // Left by a crash between a snapshot's rename and the clean-up after it.
  RemoveSegmentsBefore(dir_, first_segment);
  std::vector<uint64_t> segments = ListSegments(dir_);
  std::string bytes;
  core::Status replay_status;
  for (size_t i = 0; i < segments.size(); ++i) {
    std::string path = dir_ + "/" + SegmentName(segments[i]);
    if (core::Status s = ReadFile(path, &bytes); !s.ok()) return s;
    storage::ParseResult result = storage::ParseRecords(bytes, [&](const core::Record& record) {
      replay_status = replay(record);
      return replay_status.ok();
    });
    *records += result.records;
    recovered_ += result.valid_bytes;
    if (!replay_status.ok()) return replay_status;
    if (result.stop == storage::ParseResult::Stop::kEnd) continue;
    bool last_segment = i + 1 == segments.size();
    bool torn = result.stop == storage::ParseResult::Stop::kTorn && last_segment;
    if (!torn && !truncate_corrupt) {
      return core::Status::Internal(path + ": " + result.message +
                                    "; refusing to start (--recover-truncate drops everything "
                                    "from there on)");
    }
    KV_LOG(kWarn, "%s: %s; truncating %zu bytes", path.c_str(), result.message.c_str(),
           bytes.size() - result.valid_bytes);
    if (truncate(path.c_str(), static_cast<off_t>(result.valid_bytes)) != 0) {
      return Errno("truncate " + path);
    }
    // Later segments were written after the damage: they cannot apply.
    for (size_t j = i + 1; j < segments.size(); ++j) {
      std::string later = dir_ + "/" + SegmentName(segments[j]);
      KV_LOG(kWarn, "%s: after a damaged segment; removing", later.c_str());
      unlink(later.c_str());
    }
    segments.resize(i + 1);
    break;
  }
  segment_ = segments.empty() ? std::max<uint64_t>(first_segment, 1) : segments.back();
  path_ = dir_ + "/" + SegmentName(segment_);
  fd_ = open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) return Errno("open " + path_);
  if (fdatasync(fd_) != 0) return Errno("fdatasync " + path_);
  if (segments.empty()) return SyncDirectory(dir_);
  return core::Status::Ok();
}

core::Status WalFile::Append(const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("write " + path_);
    done += static_cast<size_t>(n);
  }
  appended_ += bytes.size();
  return core::Status::Ok();
}

void WalFile::SyncAsync(uv_loop_t* loop, std::function<void(core::Status)> on_synced) {
  if (syncing_ || durable_ == appended_) return;
  syncing_ = true;
  loop_ = loop;
  sync_target_ = appended_;
  on_synced_ = std::move(on_synced);
  syncing_unsynced_ = unsynced_fd_ >= 0;
  StartFdatasync(syncing_unsynced_ ? unsynced_fd_ : fd_);
}

void WalFile::StartFdatasync(int fd) {
  sync_request_.data = this;
  int rc = uv_fs_fdatasync(loop_, &sync_request_, fd, OnSynced);
  if (rc < 0) {
    syncing_ = false;
    on_synced_(core::Status::Internal(std::string("fdatasync: ") + uv_strerror(rc)));
  }
}

void WalFile::OnSynced(uv_fs_t* request) {
  auto* wal = static_cast<WalFile*>(request->data);
  ssize_t result = request->result;
  uv_fs_req_cleanup(request);
  if (wal->syncing_unsynced_) {
    // The segment rotated away is on disk: now the current one.
    wal->syncing_unsynced_ = false;
    close(wal->unsynced_fd_);
    wal->unsynced_fd_ = -1;
    if (result >= 0) {
      wal->StartFdatasync(wal->fd_);
      return;
    }
  }
  wal->syncing_ = false;
  core::Status status;
  if (result < 0) {
    status = core::Status::Internal("fdatasync " + wal->path_ + ": " +
                                    uv_strerror(static_cast<int>(result)));
  } else {
    wal->durable_ = std::max(wal->durable_, wal->sync_target_);
  }
  if (wal->retired_fd_ >= 0) {
    close(wal->retired_fd_);
    wal->retired_fd_ = -1;
  }
  wal->on_synced_(status);
}

core::Status WalFile::Rotate(RotateSync sync, uint64_t* segment) {
  if (retired_fd_ >= 0 || unsynced_fd_ >= 0 || (sync == RotateSync::kLater && syncing_)) {
    return core::Status::Unavailable("the segment rotated away last is still syncing");
  }
  if (sync == RotateSync::kNow) {
    if (fdatasync(fd_) != 0) return Errno("fdatasync " + path_);
    durable_ = appended_;
  }
  std::string next_path = dir_ + "/" + SegmentName(segment_ + 1);
  int next_fd = open(next_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (next_fd < 0) return Errno("open " + next_path);
  if (core::Status s = SyncDirectory(dir_); !s.ok()) {
    close(next_fd);
    unlink(next_path.c_str());
    return s;
  }
  // A sync still running holds the old descriptor: it is closed when that
  // sync completes, not before.
  if (sync == RotateSync::kLater) {
    unsynced_fd_ = fd_;
  } else if (syncing_) {
    retired_fd_ = fd_;
  } else {
    close(fd_);
  }
  fd_ = next_fd;
  path_ = next_path;
  *segment = ++segment_;
  return core::Status::Ok();
}

void WalFile::RemoveSegmentsBefore(const std::string& dir, uint64_t segment) {
  for (uint64_t old : ListSegments(dir)) {
    if (old >= segment) break;
    std::string path = dir + "/" + SegmentName(old);
    if (unlink(path.c_str()) != 0) {
      KV_LOG(kWarn, "cannot remove %s: %s", path.c_str(), std::strerror(errno));
    }
  }
}

core::Status WalFile::SyncNow() {
  if (unsynced_fd_ >= 0 && !syncing_) {
    if (fdatasync(unsynced_fd_) != 0) return Errno("fdatasync of the previous segment");
    close(unsynced_fd_);
    unsynced_fd_ = -1;
  }
  if (fd_ < 0 || durable_ == appended_) return core::Status::Ok();
  if (fdatasync(fd_) != 0) return Errno("fdatasync " + path_);
  durable_ = appended_;
  return core::Status::Ok();
}

}  // namespace kvd::io
