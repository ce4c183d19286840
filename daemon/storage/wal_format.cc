#include "daemon/storage/wal_format.h"

#include <cstring>
#include <vector>

#include "daemon/core/limits.h"

namespace kvd::storage {
namespace {

void PutU8(std::string* out, uint8_t v) { out->push_back(static_cast<char>(v)); }
void PutU16(std::string* out, uint16_t v) { out->append(reinterpret_cast<const char*>(&v), 2); }
void PutU32(std::string* out, uint32_t v) { out->append(reinterpret_cast<const char*>(&v), 4); }
void PutU64(std::string* out, uint64_t v) { out->append(reinterpret_cast<const char*>(&v), 8); }

// Reads little-endian fields off a payload, refusing to read past it.
class Cursor {
 public:
  explicit Cursor(std::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  bool Read(T* v) {
    if (bytes_.size() - offset_ < sizeof(T)) return false;
    std::memcpy(v, bytes_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return true;
  }
  bool ReadBytes(size_t n, std::string* out) {
    if (bytes_.size() - offset_ < n) return false;
    out->assign(bytes_.data() + offset_, n);
    offset_ += n;
    return true;
  }
  bool done() const { return offset_ == bytes_.size(); }

 private:
  std::string_view bytes_;
  size_t offset_ = 0;
};

bool HasWriteFields(core::RecordKind kind) {
  return kind == core::RecordKind::kWrite || kind == core::RecordKind::kTransferEntry ||
         kind == core::RecordKind::kLogEntry;
}

bool HasClockOnly(core::RecordKind kind) {
  return kind == core::RecordKind::kTransferBegin || kind == core::RecordKind::kLogBase;
}

void PutClock(const core::VectorClock& clock, std::string* out) {
  PutU16(out, static_cast<uint16_t>(clock.size()));
  for (uint64_t count : clock.counts()) PutU64(out, count);
}

bool ReadClock(Cursor* cursor, uint32_t origin, core::VectorClock* clock, std::string* error) {
  uint16_t entries = 0;
  if (!cursor->Read(&entries) || entries == 0 || entries > core::kNodesMax || origin >= entries) {
    *error = "bad origin or clock size";
    return false;
  }
  uint64_t counts[core::kNodesMax];
  for (uint16_t i = 0; i < entries; ++i) {
    if (!cursor->Read(&counts[i])) {
      *error = "clock cut short";
      return false;
    }
  }
  *clock = core::VectorClock(std::span<const uint64_t>(counts, entries));
  return true;
}

}  // namespace

void AppendWriteRecord(core::RecordKind kind, uint32_t origin, std::span<const uint64_t> clock,
                       bool is_delete, std::string_view key, std::string_view value,
                       std::string* out) {
  // One resize, then the fields in place: the layout in the header comment.
  const size_t payload_bytes = 1 + 4 + 2 + 8 * clock.size() + 1 + 4 + key.size() + 4 + value.size();
  const size_t header_at = out->size();
  out->resize(header_at + kRecordHeaderBytes + payload_bytes);
  char* p = out->data() + header_at + kRecordHeaderBytes;
  char* payload = p;
  auto put = [&p](const void* bytes, size_t n) {
    if (n == 0) return;  // An empty view's data() may be null.
    std::memcpy(p, bytes, n);
    p += n;
  };
  auto kind_byte = static_cast<uint8_t>(kind);
  auto clock_entries = static_cast<uint16_t>(clock.size());
  auto delete_byte = static_cast<uint8_t>(is_delete ? 1 : 0);
  auto key_bytes = static_cast<uint32_t>(key.size());
  auto value_bytes = static_cast<uint32_t>(value.size());
  put(&kind_byte, 1);
  put(&origin, 4);
  put(&clock_entries, 2);
  put(clock.data(), 8 * clock.size());
  put(&delete_byte, 1);
  put(&key_bytes, 4);
  put(key.data(), key.size());
  put(&value_bytes, 4);
  put(value.data(), value.size());
  auto payload_size = static_cast<uint32_t>(payload_bytes);
  uint32_t crc = Crc32c(payload, payload_bytes);
  std::memcpy(out->data() + header_at, &payload_size, 4);
  std::memcpy(out->data() + header_at + 4, &crc, 4);
}

void AppendRecord(const core::Record& record, std::string* out) {
  if (HasWriteFields(record.kind)) {
    AppendWriteRecord(record.kind, record.origin, record.clock.counts(), record.is_delete,
                      record.key, record.value, out);
    return;
  }
  size_t header_at = out->size();
  out->append(kRecordHeaderBytes, '\0');
  size_t payload_at = out->size();
  PutU8(out, static_cast<uint8_t>(record.kind));
  if (HasClockOnly(record.kind)) {
    PutU32(out, record.origin);
    PutClock(record.clock, out);
  }
  if (record.kind == core::RecordKind::kTransferEnd) {
    PutU32(out, record.origin);
  } else if (record.kind == core::RecordKind::kIdentity) {
    PutU32(out, static_cast<uint32_t>(record.cluster_id.size()));
    out->append(record.cluster_id);
  }
  uint32_t payload_bytes = static_cast<uint32_t>(out->size() - payload_at);
  uint32_t crc = Crc32c(out->data() + payload_at, payload_bytes);
  std::memcpy(out->data() + header_at, &payload_bytes, 4);
  std::memcpy(out->data() + header_at + 4, &crc, 4);
}

bool DecodeRecordPayload(std::string_view payload, core::Record* record, std::string* error) {
  Cursor cursor(payload);
  uint8_t kind = 0;
  if (!cursor.Read(&kind) || kind < static_cast<uint8_t>(core::RecordKind::kWrite) ||
      kind > static_cast<uint8_t>(core::RecordKind::kSnapshotEnd)) {
    *error = "unknown record type";
    return false;
  }
  record->kind = static_cast<core::RecordKind>(kind);
  record->origin = 0;
  record->clock = core::VectorClock();
  record->is_delete = false;
  record->key.clear();
  record->value.clear();
  record->cluster_id.clear();
  bool ok = true;
  if (HasWriteFields(record->kind) || HasClockOnly(record->kind)) {
    ok = cursor.Read(&record->origin) && ReadClock(&cursor, record->origin, &record->clock, error);
    if (!ok) return false;
  }
  if (HasWriteFields(record->kind)) {
    uint8_t is_delete = 0;
    uint32_t key_bytes = 0;
    uint32_t value_bytes = 0;
    ok = cursor.Read(&is_delete) && is_delete <= 1 && cursor.Read(&key_bytes) &&
         cursor.ReadBytes(key_bytes, &record->key) && cursor.Read(&value_bytes) &&
         cursor.ReadBytes(value_bytes, &record->value);
    record->is_delete = is_delete == 1;
  } else if (record->kind == core::RecordKind::kTransferEnd) {
    ok = cursor.Read(&record->origin);
  } else if (record->kind == core::RecordKind::kIdentity) {
    uint32_t id_bytes = 0;
    ok = cursor.Read(&id_bytes) && cursor.ReadBytes(id_bytes, &record->cluster_id);
  }
  if (!ok || !cursor.done()) {
    *error = "malformed record";
    return false;
  }
  return true;
}

}  // namespace kvd::storage
