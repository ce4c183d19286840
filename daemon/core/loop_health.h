// LoopHealth: how the node's event loop spent each second. The shell feeds
// it timestamps and counters; it reads no clock itself, so it is tested
// with made-up times.
//
// Why: one loop serves everything, so its own lateness is every client's
// and every peer's. Two different troubles look the same from outside (slow
// replies, replication lag), and this tells them apart:
//   - the loop's own work is slow: cpu close to busy, a long turn;
//   - the loop is ready but not running. On a host whose cores are all
//     taken (several nodes and their clients on two cores, a snapshot
//     encoding beside them) it waits for a CPU: cpu_wait, the kernel's own
//     count of the time the thread sat in the run queue. Or it is blocked
//     in a system call (a write the disk holds up): busy well above cpu.
// Measured on a 2-core VM with three nodes at 130k puts/s: each loop spent
// about 10 % of the second ready but not running, and 20-33 % while a
// snapshot was being written (bench/README.md).
//
// Definitions, per window (at least `kWindowNs` long, closed at the first
// turn boundary after that, so it holds whole turns):
//   busy     = wall time not spent waiting for events in the poll call
//              (libuv counts the wait until the thread runs again, so a
//              wait for a CPU after a wake-up counts as poll, not busy);
//   cpu      = the loop thread's CPU time (user and system). It is not a
//              part of busy: the kernel's work entering and leaving
//              epoll_wait falls in libuv's poll time, so on an idle node
//              cpu exceeds busy (7 ms against 2 ms a second, measured);
//   cpu_wait = the loop thread's time ready to run but not running, from
//              the kernel (0 where it does not report it);
//   a turn   = the time from one loop iteration's prepare phase to the
//              next, less the poll wait between: what one round of
//              handling cost the clients that waited through it.
#pragma once

#include <cstdint>

namespace kvd::core {

class LoopHealth {
 public:
  static constexpr uint64_t kWindowNs = 1'000'000'000;

  // Totals so far, as the shell reads them (each only ever grows).
  struct Counters {
    uint64_t idle_ns = 0;      // Waiting in the poll call.
    uint64_t cpu_ns = 0;       // The loop thread on a CPU.
    uint64_t cpu_wait_ns = 0;  // The loop thread ready but not running.
  };

  struct Window {
    uint64_t wall_ns = 0;
    uint64_t busy_ns = 0;
    uint64_t cpu_ns = 0;
    uint64_t cpu_wait_ns = 0;
    uint64_t turns = 0;
    uint64_t longest_turn_ns = 0;
  };

  // At every loop iteration's prepare phase: the monotonic time and the
  // poll wait so far. Returns true if the window is due to close: the
  // caller then reads the other counters and calls Close with the same
  // time (the CPU counters cost a system call; a turn costs a compare).
  bool OnTurn(uint64_t now_ns, uint64_t idle_total_ns);

  // Closes the window at `now_ns` (the time OnTurn was given); last() then
  // holds it. The first call only starts the first window.
  void Close(uint64_t now_ns, const Counters& totals);

  // The last closed window; all zero until one has closed.
  const Window& last() const { return last_; }

 private:
  bool started_ = false;
  // Where the open window began.
  uint64_t window_start_ns_ = 0;
  Counters window_start_;
  // The open window's turns so far.
  uint64_t turns_ = 0;
  uint64_t longest_turn_ns_ = 0;
  // The last turn's start, 0 before the first.
  uint64_t turn_start_ns_ = 0;
  uint64_t turn_idle_ns_ = 0;
  Window last_;
};

}  // namespace kvd::core
