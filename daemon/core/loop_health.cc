#include "daemon/core/loop_health.h"

namespace kvd::core {

namespace {
// a - b, or 0 where a clock went backwards (it never should).
uint64_t Since(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }
}  // namespace

bool LoopHealth::OnTurn(uint64_t now_ns, uint64_t idle_total_ns) {
  if (turn_start_ns_ != 0) {
    uint64_t turn = Since(Since(now_ns, turn_start_ns_), Since(idle_total_ns, turn_idle_ns_));
    if (turn > longest_turn_ns_) longest_turn_ns_ = turn;
    ++turns_;
  }
  turn_start_ns_ = now_ns;
  turn_idle_ns_ = idle_total_ns;
  return !started_ || Since(now_ns, window_start_ns_) >= kWindowNs;
}

void LoopHealth::Close(uint64_t now_ns, const Counters& totals) {
  if (started_) {
    last_.wall_ns = Since(now_ns, window_start_ns_);
    last_.busy_ns = Since(last_.wall_ns, Since(totals.idle_ns, window_start_.idle_ns));
    last_.cpu_ns = Since(totals.cpu_ns, window_start_.cpu_ns);
    last_.cpu_wait_ns = Since(totals.cpu_wait_ns, window_start_.cpu_wait_ns);
    last_.turns = turns_;
    last_.longest_turn_ns = longest_turn_ns_;
  }
  started_ = true;
  window_start_ns_ = now_ns;
  window_start_ = totals;
  turns_ = 0;
  longest_turn_ns_ = 0;
}

}  // namespace kvd::core
