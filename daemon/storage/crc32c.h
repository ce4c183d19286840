// CRC-32C (Castagnoli), the checksum of every write-ahead-log record and
// snapshot. Software, table driven (slicing by 8): portable and fast
// enough that checksumming is far below the cost of the write itself.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kvd::storage {

// Extends `crc` (start with 0) over `size` bytes.
uint32_t Crc32c(const void* data, size_t size, uint32_t crc = 0);

}  // namespace kvd::storage
