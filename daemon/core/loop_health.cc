#include "daemon/core/loop_health.h"

namespace kvd::core {

namespace {
// a - b, or 0 where a clock went backwards (it never should).
uint64_t Since(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }
}  // namespace

void LoopHealth::OnTurn(uint64_t now_ns, uint64_t idle_total_ns) {
  if (turn_start_ns_ != 0) {
    uint64_t turn = Since(Since(now_ns, turn_start_ns_), Since(idle_total_ns, turn_idle_ns_));
    if (turn > longest_turn_ns_) longest_turn_ns_ = turn;
    ++turns_;
  }
  turn_start_ns_ = now_ns;
  turn_idle_ns_ = idle_total_ns;
}

bool LoopHealth::Close(uint64_t now_ns, uint64_t idle_total_ns, uint64_t thread_cpu_ns) {
  if (!started_) {
    started_ = true;
    window_start_ns_ = now_ns;
    window_idle_ns_ = idle_total_ns;
    window_cpu_ns_ = thread_cpu_ns;
    turns_ = 0;
    longest_turn_ns_ = 0;
    return false;
  }
  uint64_t wall = Since(now_ns, window_start_ns_);
  if (wall < kWindowNs) return false;
  last_.wall_ns = wall;
  last_.busy_ns = Since(wall, Since(idle_total_ns, window_idle_ns_));
  last_.cpu_ns = Since(thread_cpu_ns, window_cpu_ns_);
  last_.turns = turns_;
  last_.longest_turn_ns = longest_turn_ns_;
  window_start_ns_ = now_ns;
  window_idle_ns_ = idle_total_ns;
  window_cpu_ns_ = thread_cpu_ns;
  turns_ = 0;
  longest_turn_ns_ = 0;
  return true;
}

}  // namespace kvd::core
