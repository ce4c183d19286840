// The on-disk format of records (core/record.h), shared by write-ahead-log
// segments and snapshot files. Pure: encodes records into bytes and parses
// bytes back; the file I/O lives in daemon/io/wal_file and snapshot_file.
//
// A file is a sequence of framed records:
//   u32 payload_bytes | u32 crc32c(payload) | payload
// all little-endian. A payload starts with a one-byte kind (RecordKind):
//   write-like (kWrite, kTransferEntry, kLogEntry):
//     u8 kind | u32 origin | u16 clock_entries | u64 clock[clock_entries]
//     | u8 is_delete | u32 key_bytes | key | u32 value_bytes | value
//   clock-only (kTransferBegin, kLogBase):
//     u8 kind | u32 origin | u16 clock_entries | u64 clock[clock_entries]
//   kTransferEnd: u8 kind | u32 origin
//   kIdentity:    u8 kind | u32 id_bytes | id
//   kSnapshotEnd: u8 kind
// Records are logged in the order the replica produced them, so replaying
// them through Replica::Restore rebuilds the node's state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "daemon/core/record.h"

namespace kvd::storage {

inline constexpr size_t kRecordHeaderBytes = 8;
// A payload claiming more than this is damage, not data: the reader stops
// there without allocating.
inline constexpr size_t kRecordPayloadBytesMax = 1u << 30;

// Appends one framed record to *out.
void AppendRecord(const core::Record& record, std::string* out);
// The same for a write-like record (kWrite, kTransferEntry, kLogEntry)
// from its fields, with no Record to build: a snapshot's store entries.
void AppendWriteRecord(core::RecordKind kind, uint32_t origin, std::span<const uint64_t> clock,
                       bool is_delete, std::string_view key, std::string_view value,
                       std::string* out);

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
// intact one (as const core::Record&) in order; stops at the first that is
// torn or corrupt.
// `visit` returns false to stop early (then stop=kCorrupt with its message).
template <typename Visit>
ParseResult ParseRecords(std::string_view bytes, Visit visit);

// Decodes one payload (without its header). Returns false if malformed.
bool DecodeRecordPayload(std::string_view payload, core::Record* record, std::string* error);

}  // namespace kvd::storage

#include "daemon/storage/wal_format_inl.h"
