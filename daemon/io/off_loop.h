// OffLoop: runs a job on libuv's thread pool and its continuation back on
// the loop, for work the loop must not wait for: making a snapshot's
// freeze buffer ready (page faults) and freeing what a snapshot retired.
#pragma once

#include <uv.h>

#include <functional>

#include "daemon/core/status.h"

namespace kvd::io {

// `work` runs on a pool thread and must touch nothing the loop changes;
// `after` then runs on the loop. The loop stays alive until `after` ran.
// An error (the job could not be queued) means neither will run.
core::Status RunOffLoop(uv_loop_t* loop, std::function<void()> work,
                        std::function<void()> after = nullptr);

}  // namespace kvd::io
