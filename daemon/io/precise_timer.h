// PreciseTimer: a one-shot timer with microsecond resolution on the loop.
// libuv's timers count whole milliseconds of loop time, too coarse for the
// group-commit hold (a few hundred microseconds, core/group_commit.h); a
// timerfd watched by a uv_poll_t is not. Linux only, like the rest of kvd.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>

#include "daemon/core/status.h"

namespace kvd::io {

class PreciseTimer {
 public:
  PreciseTimer() = default;
  PreciseTimer(const PreciseTimer&) = delete;
  PreciseTimer& operator=(const PreciseTimer&) = delete;

  // `fire` runs on the loop once an armed deadline has passed. An error
  // (no timerfd) leaves the timer unusable: armed() stays false.
  core::Status Init(uv_loop_t* loop, std::function<void()> fire);
  // Fires at `deadline_ns` on uv_hrtime()'s clock (CLOCK_MONOTONIC);
  // re-arming replaces the deadline. False if the timer could not be set
  // (or is unusable): then it will not fire, and the caller must not wait
  // for it.
  [[nodiscard]] bool Arm(uint64_t deadline_ns);
  void Disarm();
  // Closes the handle (the loop must run once more to finish it). Once
  // called, the timer is unusable; calling it again does nothing.
  void Close();
  bool usable() const { return fd_ >= 0 && !closing_; }
  bool armed() const { return armed_; }

 private:
  static void OnReadable(uv_poll_t* handle, int status, int events);
  static void OnClosed(uv_handle_t* handle);

  uv_poll_t poll_{};
  int fd_ = -1;
  bool closing_ = false;
  bool armed_ = false;
  uint64_t deadline_ns_ = 0;  // While armed.
  std::function<void()> fire_;
};

}  // namespace kvd::io
