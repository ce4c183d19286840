// AlignedBuffer: a heap byte array whose start is 8-byte aligned, so a
// FlatBuffer placed at its start can be read without misaligned loads (the
// widest scalar in kv.fbs is 8 bytes). Not copyable; growth is explicit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

namespace kvd::wire {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  uint8_t* data() { return reinterpret_cast<uint8_t*>(words_.get()); }
  const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(words_.get()); }
  size_t capacity() const { return capacity_bytes_; }

  // Replaces the storage with `capacity_bytes` of new storage whose first
  // `keep_bytes` bytes are copied from offset `keep_offset` of the old one.
  // REQUIRES: keep_offset + keep_bytes <= capacity(), keep_bytes <= capacity_bytes.
  void Reallocate(size_t capacity_bytes, size_t keep_offset = 0, size_t keep_bytes = 0) {
    const size_t words = (capacity_bytes + sizeof(uint64_t) - 1) / sizeof(uint64_t);
    auto fresh = std::make_unique_for_overwrite<uint64_t[]>(words);
    if (keep_bytes > 0) std::memcpy(fresh.get(), data() + keep_offset, keep_bytes);
    words_ = std::move(fresh);
    capacity_bytes_ = words * sizeof(uint64_t);
  }

  void Release() {
    words_.reset();
    capacity_bytes_ = 0;
  }

 private:
  std::unique_ptr<uint64_t[]> words_;
  size_t capacity_bytes_ = 0;
};

}  // namespace kvd::wire
