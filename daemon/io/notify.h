// Notifier: the systemd notify protocol (sd_notify), for Type=notify units.
// READY=1 once the node listens, STATUS= lines when the summary changes (at
// most every status_interval_ms), WATCHDOG=1 from a timer at half the
// interval systemd asked for, RELOADING=1 / STOPPING=1 around reloads and
// shutdown. Without NOTIFY_SOCKET in the environment it does nothing.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

namespace kvd::io {

class Notifier {
 public:
  // `summary` is called on each status tick and returns the STATUS= text.
  Notifier(uv_loop_t* loop, std::function<std::string()> summary);

  bool enabled() const { return enabled_; }
  void Start(uint64_t status_interval_ms = 250);
  void Ready();
  void Reloading();
  void Stopping();
  // Closes the timers (part of shutdown).
  void Stop();

 private:
  static void OnStatusTimer(uv_timer_t* timer);
  static void OnWatchdogTimer(uv_timer_t* timer);
  void Send(const std::string& message);

  uv_loop_t* loop_;
  std::function<std::string()> summary_;
  bool enabled_;
  bool started_ = false;
  uint64_t watchdog_usec_ = 0;
  uv_timer_t status_timer_;
  uv_timer_t watchdog_timer_;
  std::string last_status_;
};

}  // namespace kvd::io
