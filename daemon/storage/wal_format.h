// The write-ahead log's on-disk format. Pure: encodes records into bytes and
// parses bytes back; the file I/O lives in daemon/io/wal_file.
//
// A WAL segment is a sequence of records:
//   u32 payload_bytes | u32 crc32c(payload) | payload
// all little-endian. A payload starts with a one-byte type; today the only
// type is a write:
//   u8 type=1 | u32 origin | u16 clock_entries | u64 clock[clock_entries]
//   | u8 is_delete | u32 key_bytes | key | u32 value_bytes | value
// Writes are logged in the order the node applied them, so replaying a
// segment through Replica::Restore rebuilds the node's state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/core/write.h"

namespace kvd::storage {

inline constexpr size_t kRecordHeaderBytes = 8;
// A payload claiming more than this is damage, not data: the reader stops
// there without allocating.
inline constexpr size_t kRecordPayloadBytesMax = 1u << 30;

// Appends one framed write record to *out.
void AppendWriteRecord(const core::Write& write, std::string* out);

struct ParseResult {
  enum class Stop : uint8_t {
    kEnd,      // Every byte parsed.
    kTorn,     // The last record is incomplete or fails its CRC: a crash
               // mid-write. Expected; truncate at valid_bytes.
    kCorrupt,  // A damaged record with more data after it: not a crash
               // artefact. Refuse to start unless told to truncate.
  };
  Stop stop = Stop::kEnd;
  size_t valid_bytes = 0;  // Length of the intact prefix.
  size_t records = 0;
  std::string message;  // Why it stopped, for kTorn and kCorrupt.
};

// Parses records from `bytes`, calling visit(const core::Write&) for each
// intact one in order; stops at the first that is torn or corrupt.
// `visit` returns false to stop early (then stop=kCorrupt with its message).
template <typename Visit>
ParseResult ParseRecords(std::string_view bytes, Visit visit);

// Decodes one payload (without its header). Returns false if malformed.
bool DecodeWritePayload(std::string_view payload, core::Write* write, std::string* error);

}  // namespace kvd::storage

#include "daemon/storage/wal_format_inl.h"
