// Replaces the global operator new so tests can assert that a code path
// allocates nothing. Criterion runs each test in its own process, and the
// code under test is single-threaded, so a plain counter is enough.
#include <cstdlib>
#include <new>

#include "wire_test_util.h"

namespace {
size_t new_calls = 0;

void* Allocate(size_t bytes) {
  ++new_calls;
  if (void* p = std::malloc(bytes != 0 ? bytes : 1)) return p;
  throw std::bad_alloc();
}
}  // namespace

namespace kvd::wire::test {
size_t NewCalls() { return new_calls; }
}  // namespace kvd::wire::test

void* operator new(size_t bytes) { return Allocate(bytes); }
void* operator new[](size_t bytes) { return Allocate(bytes); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

// The allocation tests mean something only if this file's operator new is
// the one in use.
Test(alloc_counter, counts_operator_new) {
  static std::string* escaped = nullptr;
  const size_t before = kvd::wire::test::NewCalls();
  escaped = new std::string(100, 'x');
  cr_assert_eq(kvd::wire::test::NewCalls(), before + 2, "one string object, one heap buffer");
  delete escaped;
}
