#include "daemon/core/group_commit.h"

#include <algorithm>

namespace kvd::core {

void GroupCommit::SyncStarted(uint64_t now_ns) {
  at_sync_start_ = queued_;
  sync_started_ns_ = now_ns;
}

void GroupCommit::SyncFinished(uint64_t now_ns) {
  last_covered_ = at_sync_start_ - released_;
  released_ = at_sync_start_;
  last_sync_ns_ = now_ns >= sync_started_ns_ ? now_ns - sync_started_ns_ : 0;
  released_at_ns_ = now_ns;
  at_release_ = queued_;
}

uint64_t GroupCommit::StartBy() const {
  // Everyone the last sync released is back (or it released nobody).
  if (queued_ - at_release_ >= last_covered_) return 0;
  uint64_t hold = std::min(last_sync_ns_ * kHoldSyncMultiple, kHoldMaxNs);
  return released_at_ns_ + hold;
}

}  // namespace kvd::core
