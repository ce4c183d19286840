#include "daemon/core/group_commit.h"

#include <algorithm>

namespace kvd::core {

void GroupCommit::SyncStarted(uint64_t now_ns) {
  // A sync that starts only once its hold is over (whether or not the
  // clients came back just then) is not followed by another hold; one that
  // was not held is.
  bool held_to_the_end = hold_after_last_sync_ && last_covered_ > 0 && now_ns >= HoldEnd();
  hold_after_this_sync_ = !held_to_the_end;
  at_sync_start_ = queued_;
  sync_started_ns_ = now_ns;
}

void GroupCommit::SyncFinished(uint64_t now_ns) {
  last_covered_ = at_sync_start_ - released_;
  released_ = at_sync_start_;
  last_sync_ns_ = now_ns >= sync_started_ns_ ? now_ns - sync_started_ns_ : 0;
  released_at_ns_ = now_ns;
  at_release_ = queued_;
  hold_after_last_sync_ = hold_after_this_sync_;
}

uint64_t GroupCommit::StartBy() const {
  if (!hold_after_last_sync_ || ClientsBack()) return 0;
  return HoldEnd();
}

uint64_t GroupCommit::HoldEnd() const {
  return released_at_ns_ + std::min(last_sync_ns_ * kHoldSyncMultiple, kHoldMaxNs);
}

}  // namespace kvd::core
