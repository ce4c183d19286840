// The write-ahead log's record format: round trips, and what recovery does
// with every possible torn tail and every single-bit flip of the last
// records (it keeps exactly the intact prefix and never applies a record
// whose checksum fails).
#include "daemon/storage/wal_format.h"

#include <criterion/criterion.h>

#include <string>
#include <vector>

#include "daemon/storage/crc32c.h"

using kvd::core::VectorClock;
using kvd::core::Write;
using kvd::storage::AppendRecord;
using kvd::storage::ParseRecords;
using kvd::storage::ParseResult;

namespace {

Write MakeWrite(uint32_t origin, VectorClock clock, std::string key, std::string value,
                bool is_delete = false) {
  Write write;
  write.origin = origin;
  write.clock = std::move(clock);
  write.key = std::move(key);
  write.value = std::move(value);
  write.is_delete = is_delete;
  return write;
}

bool SameWrite(const Write& a, const Write& b) {
  return a.origin == b.origin && a.clock == b.clock && a.is_delete == b.is_delete &&
         a.key == b.key && a.value == b.value;
}

std::vector<Write> SampleWrites() {
  return {
      MakeWrite(0, {1, 0, 0}, "x", "1"),
      MakeWrite(1, {1, 1, 0}, std::string("bin\0key", 7), std::string("\xff\x00\x01", 3)),
      MakeWrite(2, {1, 1, 1}, "gone", "", /*is_delete=*/true),
      MakeWrite(0, {2, 1, 1}, "big", std::string(3000, 'v')),
      MakeWrite(1, {2, 2, 1}, "y", "two"),
  };
}

// Encodes writes; `ends[i]` is the offset right after record i.
std::string Encode(const std::vector<Write>& writes, std::vector<size_t>* ends) {
  std::string bytes;
  for (const Write& write : writes) {
    AppendRecord(write, &bytes);
    ends->push_back(bytes.size());
  }
  return bytes;
}

std::vector<Write> Parse(std::string_view bytes, ParseResult* result) {
  std::vector<Write> out;
  *result = ParseRecords(bytes, [&](const Write& write) {
    out.push_back(write);
    return true;
  });
  return out;
}

}  // namespace

Test(crc32c, known_vectors) {
  // RFC 3720 appendix B.4 test vectors.
  std::string zeros(32, '\0');
  cr_assert_eq(kvd::storage::Crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  std::string ones(32, '\xff');
  cr_assert_eq(kvd::storage::Crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  cr_assert_eq(kvd::storage::Crc32c("123456789", 9), 0xE3069283u);
  // Extending in pieces equals one pass.
  uint32_t part = kvd::storage::Crc32c("12345", 5);
  cr_assert_eq(kvd::storage::Crc32c("6789", 4, part), 0xE3069283u);
}

// The hardware path (where the CPU has one) and the portable one agree on
// every length and alignment, in one pass or extended in two.
Test(crc32c, hardware_and_portable_agree) {
  std::string bytes(600, '\0');
  uint32_t x = 12345;
  for (char& c : bytes) c = static_cast<char>((x = x * 1103515245 + 12345) >> 16);
  cr_assert_eq(kvd::storage::Crc32cPortable("123456789", 9), 0xE3069283u);
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t size = 0; size + offset <= 300; ++size) {
      const char* p = bytes.data() + offset;
      uint32_t portable = kvd::storage::Crc32cPortable(p, size);
      cr_assert_eq(kvd::storage::Crc32c(p, size), portable, "offset %zu size %zu", offset, size);
      size_t half = size / 2;
      uint32_t extended =
          kvd::storage::Crc32c(p + half, size - half, kvd::storage::Crc32c(p, half));
      cr_assert_eq(extended, portable, "offset %zu size %zu in two parts", offset, size);
    }
  }
}

Test(wal_format, round_trip) {
  std::vector<size_t> ends;
  std::vector<Write> writes = SampleWrites();
  std::string bytes = Encode(writes, &ends);
  ParseResult result;
  std::vector<Write> parsed = Parse(bytes, &result);
  cr_assert(result.stop == ParseResult::Stop::kEnd, "%s", result.message.c_str());
  cr_assert_eq(result.valid_bytes, bytes.size());
  cr_assert_eq(parsed.size(), writes.size());
  for (size_t i = 0; i < writes.size(); ++i)
    cr_assert(SameWrite(parsed[i], writes[i]), "write %zu", i);
}

// The exact bytes of a write record, spelled out from the format in
// wal_format.h: files written by earlier versions must stay readable, so
// an encoder rewrite must not change a byte. A tombstone's empty value is
// the other shape (and a null data() for the value).
Test(wal_format, write_record_bytes_are_the_documented_layout) {
  auto le = [](uint64_t v, size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
    return out;
  };
  std::string payload = le(1, 1) + le(2, 4) + le(3, 2) + le(7, 8) + le(0, 8) + le(9, 8) + le(0, 1) +
                        le(1, 4) + "k" + le(2, 4) + "vv";
  std::string expected = le(payload.size(), 4) +
                         le(kvd::storage::Crc32cPortable(payload.data(), payload.size()), 4) +
                         payload;
  const uint64_t clock[] = {7, 0, 9};
  std::string bytes = "prefix";
  kvd::storage::AppendWriteRecord(kvd::core::RecordKind::kWrite, 2, clock, false, "k", "vv",
                                  &bytes);
  cr_assert(bytes == "prefix" + expected, "the record's bytes changed");

  std::string tombstone_payload = le(3, 1) + le(0, 4) + le(3, 2) + le(1, 8) + le(0, 8) + le(0, 8) +
                                  le(1, 1) + le(1, 4) + "k" + le(0, 4);
  std::string tombstone;
  const uint64_t tombstone_clock[] = {1, 0, 0};
  kvd::storage::AppendWriteRecord(kvd::core::RecordKind::kTransferEntry, 0, tombstone_clock, true,
                                  "k", std::string_view(), &tombstone);
  cr_assert(tombstone.substr(8) == tombstone_payload);
}

Test(wal_format, empty_input_is_clean) {
  ParseResult result;
  cr_assert(Parse("", &result).empty());
  cr_assert(result.stop == ParseResult::Stop::kEnd);
}

// A crash can cut the file anywhere: every cut inside the last three records
// keeps exactly the records before the cut, and reports a torn tail.
Test(wal_format, every_truncation_of_the_last_three_records) {
  std::vector<size_t> ends;
  std::vector<Write> writes = SampleWrites();
  std::string bytes = Encode(writes, &ends);
  size_t first = ends[writes.size() - 4];  // Start of the third-last record.
  for (size_t cut = first; cut < bytes.size(); ++cut) {
    ParseResult result;
    std::vector<Write> parsed = Parse(std::string_view(bytes).substr(0, cut), &result);
    size_t intact = 0;
    while (intact < ends.size() && ends[intact] <= cut) ++intact;
    cr_assert_eq(parsed.size(), intact, "cut at %zu", cut);
    size_t prefix = intact == 0 ? 0 : ends[intact - 1];
    cr_assert_eq(result.valid_bytes, prefix, "cut at %zu", cut);
    bool at_boundary = cut == prefix;
    cr_assert(at_boundary ? result.stop == ParseResult::Stop::kEnd
                          : result.stop == ParseResult::Stop::kTorn,
              "cut at %zu: stop %d", cut, static_cast<int>(result.stop));
  }
}

// Every single-bit flip in the last three records: the records before the
// damaged one survive, and the damaged one is never applied.
Test(wal_format, every_bit_flip_in_the_last_three_records) {
  std::vector<size_t> ends;
  std::vector<Write> writes = SampleWrites();
  std::string bytes = Encode(writes, &ends);
  size_t first = ends[writes.size() - 4];
  for (size_t byte = first; byte < bytes.size(); ++byte) {
    size_t damaged = 0;
    while (ends[damaged] <= byte) ++damaged;
    for (int bit = 0; bit < 8; ++bit) {
      std::string copy = bytes;
      copy[byte] = static_cast<char>(copy[byte] ^ (1 << bit));
      ParseResult result;
      std::vector<Write> parsed = Parse(copy, &result);
      cr_assert_eq(parsed.size(), damaged, "flip byte %zu bit %d: %zu records applied", byte, bit,
                   parsed.size());
      for (size_t i = 0; i < parsed.size(); ++i) cr_assert(SameWrite(parsed[i], writes[i]));
      cr_assert(result.stop != ParseResult::Stop::kEnd, "flip byte %zu bit %d went unnoticed", byte,
                bit);
      cr_assert_eq(result.valid_bytes, damaged == 0 ? 0 : ends[damaged - 1]);
    }
  }
}

// Damage followed by intact records is corruption, not a torn tail.
Test(wal_format, damage_in_the_middle_is_corruption) {
  std::vector<size_t> ends;
  std::vector<Write> writes = SampleWrites();
  std::string bytes = Encode(writes, &ends);
  bytes[ends[0] + 12] ^= 0x40;  // Inside record 1's payload.
  ParseResult result;
  std::vector<Write> parsed = Parse(bytes, &result);
  cr_assert_eq(parsed.size(), 1u);
  cr_assert(result.stop == ParseResult::Stop::kCorrupt, "%s", result.message.c_str());
  cr_assert_eq(result.valid_bytes, ends[0]);
}

Test(wal_format, absurd_length_stops_without_allocating) {
  std::string bytes(8, '\0');
  uint32_t huge = 0xFFFFFFFFu;
  std::memcpy(bytes.data(), &huge, 4);
  ParseResult result;
  cr_assert(Parse(bytes, &result).empty());
  cr_assert(result.stop == ParseResult::Stop::kTorn);
  cr_assert_eq(result.valid_bytes, 0u);
}

Test(wal_format, replay_refusal_stops_the_parse) {
  std::vector<size_t> ends;
  std::string bytes = Encode(SampleWrites(), &ends);
  size_t seen = 0;
  ParseResult result = ParseRecords(bytes, [&](const Write&) { return ++seen < 2; });
  cr_assert_eq(seen, 2u);
  cr_assert_eq(result.records, 1u);
  cr_assert(result.stop == ParseResult::Stop::kCorrupt);
  cr_assert_eq(result.valid_bytes, ends[0]);
}

// Every record kind survives a round trip with the fields its kind uses.
Test(wal_format, every_record_kind_round_trips) {
  using kvd::core::Record;
  using kvd::core::RecordKind;
  std::vector<Record> records;
  records.emplace_back(RecordKind::kWrite, MakeWrite(0, {1, 0}, "k", "v"));
  Record begin;
  begin.kind = RecordKind::kTransferBegin;
  begin.origin = 1;
  begin.clock = VectorClock{4, 7};
  records.push_back(begin);
  records.emplace_back(RecordKind::kTransferEntry, MakeWrite(1, {0, 3}, "t", "", true));
  Record end;
  end.kind = RecordKind::kTransferEnd;
  end.origin = 1;
  records.push_back(end);
  Record base;
  base.kind = RecordKind::kLogBase;
  base.clock = VectorClock{2, 2};
  records.push_back(base);
  records.emplace_back(RecordKind::kLogEntry, MakeWrite(0, {3, 2}, "l", "w"));
  Record identity;
  identity.kind = RecordKind::kIdentity;
  identity.cluster_id = "0123456789abcdef";
  records.push_back(identity);
  Record snapshot_end;
  snapshot_end.kind = RecordKind::kSnapshotEnd;
  records.push_back(snapshot_end);

  std::string bytes;
  for (const Record& record : records) AppendRecord(record, &bytes);
  std::vector<Record> parsed;
  ParseResult result = ParseRecords(bytes, [&](const Record& record) {
    parsed.push_back(record);
    return true;
  });
  cr_assert(result.stop == ParseResult::Stop::kEnd, "%s", result.message.c_str());
  cr_assert_eq(parsed.size(), records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    cr_assert(parsed[i].kind == records[i].kind, "record %zu", i);
    cr_assert(SameWrite(parsed[i], records[i]), "record %zu", i);
    cr_assert(parsed[i].cluster_id == records[i].cluster_id, "record %zu", i);
  }
}

// A payload of a known kind that is cut short (with a valid checksum, so
// not a torn write) is damage: parsing stops there as corrupt.
Test(wal_format, kind_with_a_short_payload_is_corrupt) {
  std::string payload("\x02\x01\x00\x00\x00", 5);  // kTransferBegin, origin 1, no clock.
  std::string bytes;
  uint32_t size = static_cast<uint32_t>(payload.size());
  uint32_t crc = kvd::storage::Crc32c(payload.data(), payload.size());
  bytes.append(reinterpret_cast<const char*>(&size), 4);
  bytes.append(reinterpret_cast<const char*>(&crc), 4);
  bytes += payload;
  AppendRecord(MakeWrite(0, {1}, "after", "x"), &bytes);
  size_t visited = 0;
  ParseResult result = ParseRecords(bytes, [&](const kvd::core::Record&) {
    ++visited;
    return true;
  });
  cr_assert(result.stop == ParseResult::Stop::kCorrupt);
  cr_assert_eq(visited, 0u);
  cr_assert_eq(result.valid_bytes, 0u);
}
