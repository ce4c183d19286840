#include "daemon/io/precise_timer.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace kvd::io {

core::Status PreciseTimer::Init(uv_loop_t* loop, std::function<void()> fire) {
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) return core::Status::Internal(std::string("timerfd_create: ") + strerror(errno));
  if (int rc = uv_poll_init(loop, &poll_, fd); rc < 0) {
    close(fd);
    return core::Status::Internal(std::string("uv_poll_init: ") + uv_strerror(rc));
  }
  fd_ = fd;
  poll_.data = this;
  fire_ = std::move(fire);
  return core::Status::Ok();
}

bool PreciseTimer::Arm(uint64_t deadline_ns) {
  if (!usable()) return false;
  // An all-zero it_value would disarm: a deadline at 0 means "now".
  if (deadline_ns == 0) deadline_ns = 1;
  // A held sync asks again every loop turn: one system call per change.
  if (armed_ && deadline_ns == deadline_ns_) return true;
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(deadline_ns / 1'000'000'000);
  spec.it_value.tv_nsec = static_cast<long>(deadline_ns % 1'000'000'000);
  if (timerfd_settime(fd_, TFD_TIMER_ABSTIME, &spec, nullptr) != 0) {
    Disarm();
    return false;
  }
  if (!armed_ && uv_poll_start(&poll_, UV_READABLE, OnReadable) < 0) {
    itimerspec off{};
    timerfd_settime(fd_, 0, &off, nullptr);
    return false;
  }
  armed_ = true;
  deadline_ns_ = deadline_ns;
  return true;
}

void PreciseTimer::Disarm() {
  if (!armed_) return;
  armed_ = false;
  itimerspec off{};
  timerfd_settime(fd_, 0, &off, nullptr);
  uv_poll_stop(&poll_);
}

void PreciseTimer::Close() {
  if (fd_ < 0 || closing_) return;
  Disarm();
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), OnClosed);
}

void PreciseTimer::OnClosed(uv_handle_t* handle) {
  auto* timer = static_cast<PreciseTimer*>(handle->data);
  close(timer->fd_);
  timer->fd_ = -1;
}

void PreciseTimer::OnReadable(uv_poll_t* handle, int status, int /*events*/) {
  auto* timer = static_cast<PreciseTimer*>(handle->data);
  uint64_t expirations = 0;
  ssize_t n = read(timer->fd_, &expirations, sizeof expirations);
  // Nothing to read: a re-arm moved the deadline after the wake-up.
  if (status == 0 && n < 0 && errno == EAGAIN) return;
  timer->Disarm();
  timer->fire_();
}

}  // namespace kvd::io
