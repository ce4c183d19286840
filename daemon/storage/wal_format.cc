#include "daemon/storage/wal_format.h"

#include <vector>

#include "daemon/core/limits.h"

namespace kvd::storage {
namespace {

constexpr uint8_t kWriteRecord = 1;

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

}  // namespace

void AppendWriteRecord(const core::Write& write, std::string* out) {
  size_t header_at = out->size();
  out->append(kRecordHeaderBytes, '\0');
  size_t payload_at = out->size();
  PutU8(out, kWriteRecord);
  PutU32(out, write.origin);
  PutU16(out, static_cast<uint16_t>(write.clock.size()));
  for (uint64_t count : write.clock.counts()) PutU64(out, count);
  PutU8(out, write.is_delete ? 1 : 0);
  PutU32(out, static_cast<uint32_t>(write.key.size()));
  out->append(write.key);
  PutU32(out, static_cast<uint32_t>(write.value.size()));
  out->append(write.value);
  uint32_t payload_bytes = static_cast<uint32_t>(out->size() - payload_at);
  uint32_t crc = Crc32c(out->data() + payload_at, payload_bytes);
  std::memcpy(out->data() + header_at, &payload_bytes, 4);
  std::memcpy(out->data() + header_at + 4, &crc, 4);
}

bool DecodeWritePayload(std::string_view payload, core::Write* write, std::string* error) {
  Cursor cursor(payload);
  uint8_t type = 0;
  uint16_t entries = 0;
  uint8_t is_delete = 0;
  uint32_t key_bytes = 0;
  uint32_t value_bytes = 0;
  if (!cursor.Read(&type) || type != kWriteRecord) {
    *error = "unknown record type";
    return false;
  }
  if (!cursor.Read(&write->origin) || !cursor.Read(&entries) || entries == 0 ||
      entries > core::kNodesMax || write->origin >= entries) {
    *error = "bad origin or clock size";
    return false;
  }
  uint64_t counts[core::kNodesMax];
  for (uint16_t i = 0; i < entries; ++i) {
    if (!cursor.Read(&counts[i])) {
      *error = "clock cut short";
      return false;
    }
  }
  write->clock = core::VectorClock(std::span<const uint64_t>(counts, entries));
  if (!cursor.Read(&is_delete) || is_delete > 1 || !cursor.Read(&key_bytes) ||
      !cursor.ReadBytes(key_bytes, &write->key) || !cursor.Read(&value_bytes) ||
      !cursor.ReadBytes(value_bytes, &write->value) || !cursor.done()) {
    *error = "malformed write record";
    return false;
  }
  write->is_delete = is_delete == 1;
  return true;
}

}  // namespace kvd::storage
