#include "daemon/io/notify.h"

#include <systemd/sd-daemon.h>

#include <cstdlib>

#include "daemon/io/log.h"

namespace kvd::io {

Notifier::Notifier(uv_loop_t* loop, std::function<std::string()> summary)
    : loop_(loop),
      summary_(std::move(summary)),
      enabled_(std::getenv("NOTIFY_SOCKET") != nullptr) {}

void Notifier::Start(uint64_t status_interval_ms) {
  if (!enabled_) return;
  started_ = true;
  uv_timer_init(loop_, &status_timer_);
  status_timer_.data = this;
  uv_timer_start(&status_timer_, OnStatusTimer, 0, status_interval_ms);
  uv_timer_init(loop_, &watchdog_timer_);
  watchdog_timer_.data = this;
  // sd_watchdog_enabled reads WATCHDOG_USEC (and WATCHDOG_PID); half the
  // interval leaves room for one late turn before systemd gives up on us.
  if (sd_watchdog_enabled(0, &watchdog_usec_) > 0 && watchdog_usec_ >= 2000) {
    uint64_t period_ms = watchdog_usec_ / 2000;
    uv_timer_start(&watchdog_timer_, OnWatchdogTimer, period_ms, period_ms);
    KV_LOG(kInfo, "systemd watchdog every %llu ms", (unsigned long long)period_ms);
  }
}

void Notifier::Send(const std::string& message) {
  if (!enabled_) return;
  int rc = sd_notify(0, message.c_str());
  if (rc < 0) KV_LOG(kWarn, "sd_notify(%s): error %d", message.c_str(), rc);
}

void Notifier::Ready() { Send("READY=1"); }

void Notifier::Reloading() { Send("RELOADING=1"); }

void Notifier::Stopping() { Send("STOPPING=1"); }

void Notifier::Stop() {
  if (!started_) return;
  started_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&status_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&watchdog_timer_), nullptr);
}

void Notifier::OnStatusTimer(uv_timer_t* timer) {
  auto* self = static_cast<Notifier*>(timer->data);
  std::string status = self->summary_();
  if (status == self->last_status_) return;
  self->last_status_ = status;
  self->Send("STATUS=" + status);
}

void Notifier::OnWatchdogTimer(uv_timer_t* timer) {
  // Runs on the loop thread: if the loop wedges, the pings stop and
  // systemd restarts the service.
  static_cast<Notifier*>(timer->data)->Send("WATCHDOG=1");
}

}  // namespace kvd::io
