// PreciseTimer, on a real loop: it fires once its deadline has passed and
// not before, a re-arm replaces the deadline, a disarmed or closed timer
// never fires, and closing it lets the loop close. (The group-commit hold
// relies on it firing: closed-loop clients coming back and the node's
// 10 ms tick would hide a timer that never does.)
#include "daemon/io/precise_timer.h"

#include <criterion/criterion.h>
#include <uv.h>

#include <cstdint>

using kvd::io::PreciseTimer;

namespace {

constexpr uint64_t kMs = 1'000'000;

struct Fixture {
  uv_loop_t loop;
  uv_timer_t guard;  // Ends the run if nothing else does.
  PreciseTimer timer;
  int fired = 0;
  uint64_t fired_at_ns = 0;

  Fixture() {
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(uv_timer_init(&loop, &guard), 0);
    guard.data = this;
    kvd::core::Status s = timer.Init(&loop, [this] {
      ++fired;
      fired_at_ns = uv_hrtime();
    });
    cr_assert(s.ok(), "%s", s.message().c_str());
  }

  // Runs the loop until `guard_ms` of loop time have passed, then closes
  // everything; the loop must then close cleanly.
  void RunFor(uint64_t guard_ms) {
    uv_timer_start(
        &guard,
        [](uv_timer_t* handle) {
          auto* self = static_cast<Fixture*>(handle->data);
          self->timer.Close();
          uv_close(reinterpret_cast<uv_handle_t*>(&self->guard), nullptr);
        },
        guard_ms, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0, "a handle was left open");
  }
};

}  // namespace

Test(precise_timer, fires_once_after_its_deadline) {
  Fixture f;
  uint64_t deadline = uv_hrtime() + kMs / 2;
  cr_assert(f.timer.Arm(deadline));
  cr_assert(f.timer.armed());
  f.RunFor(200);
  cr_assert_eq(f.fired, 1);
  cr_assert_geq(f.fired_at_ns, deadline);
  cr_assert_not(f.timer.armed());
}

// A deadline already past fires at the next loop turn (0 means "now").
Test(precise_timer, a_past_deadline_fires_at_once) {
  Fixture f;
  cr_assert(f.timer.Arm(0));
  f.RunFor(200);
  cr_assert_eq(f.fired, 1);
}

// Moving the deadline later: the wake-up the first one would have caused
// reads nothing, and the timer fires only at the second.
Test(precise_timer, a_later_re_arm_replaces_the_deadline) {
  Fixture f;
  uint64_t now = uv_hrtime();
  cr_assert(f.timer.Arm(now + kMs));
  uint64_t later = now + 30 * kMs;
  cr_assert(f.timer.Arm(later));
  f.RunFor(300);
  cr_assert_eq(f.fired, 1);
  cr_assert_geq(f.fired_at_ns, later);
}

Test(precise_timer, a_disarmed_timer_never_fires) {
  Fixture f;
  cr_assert(f.timer.Arm(uv_hrtime() + kMs));
  f.timer.Disarm();
  cr_assert_not(f.timer.armed());
  f.RunFor(50);
  cr_assert_eq(f.fired, 0);
}

// Closing twice is harmless; a closed timer cannot be armed (a caller
// waiting for it would wait forever) and never fires.
Test(precise_timer, a_closed_timer_refuses_to_arm) {
  Fixture f;
  cr_assert(f.timer.Arm(uv_hrtime() + kMs));
  f.timer.Close();
  f.timer.Close();
  cr_assert_not(f.timer.usable());
  cr_assert_not(f.timer.Arm(uv_hrtime() + kMs));
  f.RunFor(50);
  cr_assert_eq(f.fired, 0);
}
