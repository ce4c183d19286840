// Template part of wal_format.h.
#pragma once

#include <cstring>

#include "daemon/storage/crc32c.h"

namespace kvd::storage {

inline uint32_t LoadU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <typename Visit>
ParseResult ParseRecords(std::string_view bytes, Visit visit) {
  ParseResult result;
  size_t offset = 0;
  core::Record record;
  std::string error;
  while (offset < bytes.size()) {
    size_t left = bytes.size() - offset;
    if (left < kRecordHeaderBytes) {
      result.stop = ParseResult::Stop::kTorn;
      result.message = "record header cut short at offset " + std::to_string(offset);
      break;
    }
    uint32_t payload_bytes = LoadU32(bytes.data() + offset);
    uint32_t crc = LoadU32(bytes.data() + offset + 4);
    bool fits =
        payload_bytes <= kRecordPayloadBytesMax && payload_bytes <= left - kRecordHeaderBytes;
    if (!fits) {
      // Past the end: a crash cut the record short (or its length word is
      // damaged, which looks the same and is handled the same).
      result.stop = ParseResult::Stop::kTorn;
      result.message = "record at offset " + std::to_string(offset) + " runs past the end";
      break;
    }
    std::string_view payload = bytes.substr(offset + kRecordHeaderBytes, payload_bytes);
    size_t next = offset + kRecordHeaderBytes + payload_bytes;
    bool last = next == bytes.size();
    if (Crc32c(payload.data(), payload.size()) != crc) {
      result.stop = last ? ParseResult::Stop::kTorn : ParseResult::Stop::kCorrupt;
      result.message = "record at offset " + std::to_string(offset) + " fails its checksum";
      break;
    }
    if (!DecodeRecordPayload(payload, &record, &error)) {
      result.stop = ParseResult::Stop::kCorrupt;
      result.message = "record at offset " + std::to_string(offset) + ": " + error;
      break;
    }
    if (!visit(static_cast<const core::Record&>(record))) {
      result.stop = ParseResult::Stop::kCorrupt;
      result.message = "record at offset " + std::to_string(offset) + " refused on replay";
      break;
    }
    offset = next;
    ++result.records;
  }
  result.valid_bytes = offset;
  return result;
}

}  // namespace kvd::storage
