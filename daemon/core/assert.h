// Always-on assertions for programmer errors and broken invariants. They
// log file:line and abort, in every build type. Never use them on bytes
// from the network, a disk or a config file: those get a Status.
#pragma once

namespace kvd::core {
[[noreturn]] void AssertFailed(const char* expr, const char* file, int line);
}  // namespace kvd::core

#define KV_ASSERT(expr) \
  ((expr) ? static_cast<void>(0) : ::kvd::core::AssertFailed(#expr, __FILE__, __LINE__))
