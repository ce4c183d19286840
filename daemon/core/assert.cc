#include "daemon/core/assert.h"

#include <cstdio>
#include <cstdlib>

namespace kvd::core {

void AssertFailed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "assertion failed: %s (%s:%d)\n", expr, file, line);
  std::fflush(stderr);
  std::abort();
}

}  // namespace kvd::core
