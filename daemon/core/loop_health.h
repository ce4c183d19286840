// LoopHealth: how the node's event loop spent each second. The shell feeds
// it timestamps; it reads no clock itself, so it is tested with made-up
// times.
//
// Why: one loop serves everything, so its own lateness is every client's
// and every peer's. Two different troubles look the same from outside (slow
// replies, replication lag), and this tells them apart:
//   - the loop's own work is slow: cpu close to busy, a long turn;
//   - the loop is ready but not running: busy well above cpu. On a host
//     whose cores are all taken (several nodes and their clients on two
//     cores, a snapshot encoding beside them) it waits for a CPU; or it is
//     blocked in a system call (a write the disk holds up).
// Measured this way on a 2-core VM with three nodes at 130k puts/s, each
// loop spent about 10 % of the second ready but not running, and 20-33 %
// while a snapshot was being written (bench/README.md).
//
// Definitions, per window (at least `kWindowNs` long, closed by the first
// Close call after that):
//   busy    = wall time not spent waiting for events in the poll call;
//   cpu     = the loop thread's CPU time (user and system);
//   waiting = busy - cpu: ready or in a system call, but not on a CPU;
//   a turn  = the time between two starts of a loop iteration, less the
//             poll wait inside it: what one round of handling cost the
//             clients that waited through it.
#pragma once

#include <cstdint>

namespace kvd::core {

class LoopHealth {
 public:
  static constexpr uint64_t kWindowNs = 1'000'000'000;

  struct Window {
    uint64_t wall_ns = 0;
    uint64_t busy_ns = 0;
    uint64_t cpu_ns = 0;
    uint64_t turns = 0;
    uint64_t longest_turn_ns = 0;
    // Ready or in a system call, not on a CPU (0 if the clocks disagree).
    uint64_t waiting_ns() const { return busy_ns > cpu_ns ? busy_ns - cpu_ns : 0; }
  };

  // At the start of every loop iteration: the monotonic time and the
  // loop's total poll wait so far (both only ever grow).
  void OnTurn(uint64_t now_ns, uint64_t idle_total_ns);

  // Closes the window if it is at least kWindowNs old; returns true if it
  // did, and last() then holds it. `thread_cpu_ns` is the loop thread's
  // total CPU time so far. The first call only starts the first window.
  bool Close(uint64_t now_ns, uint64_t idle_total_ns, uint64_t thread_cpu_ns);

  // The last closed window; all zero until one has closed.
  const Window& last() const { return last_; }

 private:
  bool started_ = false;
  // Where the open window began.
  uint64_t window_start_ns_ = 0;
  uint64_t window_idle_ns_ = 0;
  uint64_t window_cpu_ns_ = 0;
  // The open window's turns so far.
  uint64_t turns_ = 0;
  uint64_t longest_turn_ns_ = 0;
  // The last turn's start, 0 before the first.
  uint64_t turn_start_ns_ = 0;
  uint64_t turn_idle_ns_ = 0;
  Window last_;
};

}  // namespace kvd::core
