// PageArray: the store's table memory. Large arrays are mapped on their
// own, 2 MiB aligned (so the kernel can back them with huge pages); small
// ones are calloc memory. Both must come zeroed, since an all-zero slot is
// an empty one.
#include "daemon/core/page_memory.h"

#include <criterion/criterion.h>
#include <sys/mman.h>

#include <cstdint>

using kvd::core::AllocatePageArray;
using kvd::core::PageArray;

namespace {

bool AllZero(const uint64_t* words, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (words[i] != 0) return false;
  }
  return true;
}

// msync answers ENOMEM for a range that is not mapped.
bool Mapped(const void* address) {
  void* page = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(address) & ~uintptr_t{4095});
  return msync(page, 4096, MS_ASYNC) == 0;
}

}  // namespace

Test(page_memory, large_arrays_are_zeroed_writable_and_huge_page_aligned) {
  // 3 MiB + 8 bytes: not a multiple of the huge page, so the rounding and
  // the trimmed ends are exercised.
  constexpr size_t kCount = (size_t{3} << 20) / sizeof(uint64_t) + 1;
  for (int round = 0; round < 3; ++round) {
    PageArray<uint64_t> words = AllocatePageArray<uint64_t>(kCount);
    cr_assert_not_null(words.get());
    cr_assert_eq(reinterpret_cast<uintptr_t>(words.get()) % (size_t{2} << 20), 0u);
    cr_assert(AllZero(words.get(), kCount));
    for (size_t i = 0; i < kCount; ++i) words[i] = i + 1;  // Every byte is ours.
    cr_assert_eq(words[kCount - 1], kCount);
  }
}

Test(page_memory, a_freed_large_array_is_unmapped_whole) {
  constexpr size_t kCount = (size_t{5} << 20) / sizeof(uint64_t);  // 5 MiB: rounded to 6.
  PageArray<uint64_t> words = AllocatePageArray<uint64_t>(kCount);
  const uint64_t* first = words.get();
  const uint64_t* last = first + kCount - 1;
  const char* rounded_end = reinterpret_cast<const char*>(first) + (size_t{6} << 20) - 1;
  cr_assert(Mapped(first) && Mapped(last) && Mapped(rounded_end));
  words.reset();
  cr_assert_not(Mapped(first), "the first page is still mapped");
  cr_assert_not(Mapped(last), "the last page is still mapped");
  cr_assert_not(Mapped(rounded_end), "the rounding's last page is still mapped");
}

Test(page_memory, small_arrays_are_zeroed) {
  for (size_t count : {size_t{0}, size_t{1}, size_t{1000}}) {
    PageArray<uint64_t> words = AllocatePageArray<uint64_t>(count);
    cr_assert_not_null(words.get());
    cr_assert(AllZero(words.get(), count));
  }
}

Test(page_memory, arrays_move_and_free_once) {
  PageArray<uint64_t> large = AllocatePageArray<uint64_t>(size_t{4} << 20);
  PageArray<uint64_t> small = AllocatePageArray<uint64_t>(16);
  large[0] = 7;
  PageArray<uint64_t> moved = std::move(large);
  cr_assert_null(large.get());
  cr_assert_eq(moved[0], 7u);
  small = std::move(moved);  // Frees the small one, keeps the large one.
  cr_assert_eq(small[0], 7u);
}
