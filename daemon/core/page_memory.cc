#include "daemon/core/page_memory.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <new>

namespace kvd::core {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

size_t RoundUp(size_t bytes, size_t unit) { return (bytes + unit - 1) / unit * unit; }

}  // namespace

void* AllocateZeroedPages(size_t bytes, size_t* mapped) {
  *mapped = 0;
  if (bytes < kHugePage) {
    void* memory = std::calloc(bytes == 0 ? 1 : bytes, 1);
    if (memory == nullptr) throw std::bad_alloc();
    return memory;
  }
  // Map a huge page more than needed and cut the ends off, so the array
  // starts on a 2 MiB boundary (mmap only promises 4 KiB).
  const size_t size = RoundUp(bytes, kHugePage);
  void* raw =
      mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  auto start = reinterpret_cast<uintptr_t>(raw);
  uintptr_t aligned = RoundUp(start, kHugePage);
  if (aligned > start) munmap(raw, aligned - start);
  size_t tail = start + size + kHugePage - (aligned + size);
  if (tail > 0) munmap(reinterpret_cast<void*>(aligned + size), tail);
  // Advice only: without huge pages (disabled, or none free) the memory is
  // the same, just in 4 KiB pages.
  madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);
  *mapped = size;
  return reinterpret_cast<void*>(aligned);
}

void PageMemoryDeleter::operator()(void* memory) const {
  if (memory == nullptr) return;
  if (mapped_ == 0) {
    std::free(memory);
  } else {
    munmap(memory, mapped_);
  }
}

}  // namespace kvd::core
