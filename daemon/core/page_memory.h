// PageArray: zeroed memory for the store's large arrays, its slot table and
// a freeze's copy of that table.
//
// Why not operator new: a 1M-key table is 16-32 MB, and every fresh 4 KiB
// page of it costs a fault on first touch. On the virtual machines we run
// on, preparing a freeze's copy that way (8,000 faults) on the thread pool
// took 10-27 ms of CPU per node and visibly raised the replication lag of
// all three nodes; the live table's growth paid the same on the loop. From
// 2 MiB up, a PageArray is mapped on its own, 2 MiB aligned, with
// MADV_HUGEPAGE: one fault per 2 MiB where the kernel has huge pages, and
// a random probe of the table then misses the TLB far less often. Below
// that it is plain calloc memory, which also keeps small stores (tests)
// under the sanitizers' eye. The cost to know: where the kernel's THP
// defrag setting lets faults compact memory, a huge-page fault may wait for
// that. Measured here for 32 MB: 2-3 ms in huge pages, 12-16 ms in 4 KiB
// pages, and once 78 ms (the VM's first huge pages).
//
// The mapped memory is used as T without constructing objects, which is
// why T must be trivially copyable and valid as all-zero bytes.
#pragma once

#include <cstddef>
#include <memory>
#include <type_traits>

namespace kvd::core {

class PageMemoryDeleter {
 public:
  PageMemoryDeleter() = default;
  // `mapped`: the bytes mapped for the array, or 0 for calloc memory.
  explicit PageMemoryDeleter(size_t mapped) : mapped_(mapped) {}
  void operator()(void* memory) const;

 private:
  size_t mapped_ = 0;
};

template <typename T>
using PageArray = std::unique_ptr<T[], PageMemoryDeleter>;

// `bytes` of zeroed memory; *mapped as for PageMemoryDeleter. Throws
// std::bad_alloc when there is none, as new does.
void* AllocateZeroedPages(size_t bytes, size_t* mapped);

// `count` zero-filled elements. T must be valid as all-zero bytes.
template <typename T>
PageArray<T> AllocatePageArray(size_t count) {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);
  size_t mapped = 0;
  void* memory = AllocateZeroedPages(count * sizeof(T), &mapped);
  return PageArray<T>(static_cast<T*>(memory), PageMemoryDeleter(mapped));
}

}  // namespace kvd::core
