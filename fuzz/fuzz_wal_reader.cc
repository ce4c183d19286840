// fuzz_wal_reader: the input is a WAL segment. storage::ParseRecords parses
// it and every intact record is replayed into a Replica through Restore, as
// kvd does at start-up. Refused records are fine; crashes are not. Also
// checks ParseResult's promises and that each decoded record re-encodes to
// the bytes it was read from.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/core/replica.h"
#include "daemon/storage/wal_format.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvd;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const core::ReplicaConfig config = fuzz::SmallClusterConfig();
  core::Replica replica(config);
  core::VectorClock last_clock = replica.clock();
  size_t visited = 0;
  size_t offset = 0;  // Where the record being visited starts.
  uint64_t now_ms = 1;
  std::string encoded;
  storage::ParseResult result = storage::ParseRecords(bytes, [&](const core::Record& write) {
    encoded.clear();
    storage::AppendRecord(write, &encoded);
    FUZZ_CHECK(encoded == bytes.substr(offset, encoded.size()));
    offset += encoded.size();
    ++visited;
    // An error leaves the replica as it was; go on to reach more states.
    (void)replica.Restore(write, now_ms++);
    FUZZ_CHECK(replica.clock().Dominates(last_clock));
    last_clock = replica.clock();
    return true;
  });
  FUZZ_CHECK(result.records == visited);
  FUZZ_CHECK(result.valid_bytes == offset);
  FUZZ_CHECK(result.valid_bytes <= size);
  FUZZ_CHECK((result.stop == storage::ParseResult::Stop::kEnd) == (result.valid_bytes == size));
  FUZZ_CHECK(result.stop == storage::ParseResult::Stop::kEnd || !result.message.empty());
  // Restored records are durable already: nothing may be persisted again.
  core::Output& out = replica.Ready(now_ms);
  FUZZ_CHECK(out.records.empty());
  return 0;
}
