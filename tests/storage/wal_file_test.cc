// WalFile rotation: whichever way the old segment is synced, nothing
// appended is lost and syncs cover both segments.
#include "daemon/io/wal_file.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <uv.h>

#include <filesystem>
#include <string>
#include <vector>

#include "daemon/core/record.h"
#include "daemon/storage/wal_format.h"

using kvd::core::Record;
using kvd::core::RecordKind;
using kvd::core::Status;
using kvd::io::WalFile;
using RotateSync = WalFile::RotateSync;

namespace {

std::string Dir() {
  char templ[] = "/tmp/kv-wal-test-XXXXXX";
  cr_assert_not_null(mkdtemp(templ));
  return templ;
}

std::string Encoded(const std::string& key) {
  Record record;
  record.kind = RecordKind::kWrite;
  record.origin = 0;
  record.clock = kvd::core::VectorClock{1};
  record.key = key;
  record.value = "value of " + key;
  std::string bytes;
  kvd::storage::AppendRecord(record, &bytes);
  return bytes;
}

std::vector<std::string> Replayed(const std::string& dir) {
  WalFile wal(dir);
  std::vector<std::string> keys;
  uint64_t records = 0;
  Status s = wal.Recover(
      [&](const Record& record) {
        keys.push_back(record.key);
        return Status::Ok();
      },
      false, 0, &records);
  cr_assert(s.ok(), "%s", s.message().c_str());
  return keys;
}

void Open(WalFile* wal) {
  uint64_t records = 0;
  Status s = wal->Recover([](const Record&) { return Status::Ok(); }, false, 0, &records);
  cr_assert(s.ok(), "%s", s.message().c_str());
}

// Runs one SyncAsync to completion.
void SyncAndWait(WalFile* wal, uv_loop_t* loop) {
  bool done = false;
  wal->SyncAsync(loop, [&](Status s) {
    cr_assert(s.ok(), "%s", s.message().c_str());
    done = true;
  });
  while (!done) uv_run(loop, UV_RUN_ONCE);
}

}  // namespace

Test(wal_file, rotate_later_is_synced_by_the_next_sync_async) {
  std::string dir = Dir();
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    WalFile wal(dir);
    Open(&wal);
    cr_assert(wal.Append(Encoded("a")).ok());
    uint64_t segment = 0;
    cr_assert(wal.Rotate(RotateSync::kLater, &segment).ok());
    cr_assert_eq(segment, 2u);
    cr_assert_lt(wal.durable_bytes(), wal.appended_bytes(), "nothing synced on the loop");
    cr_assert(wal.Append(Encoded("b")).ok());
    Status again = wal.Rotate(RotateSync::kLater, &segment);
    cr_assert_eq(again.code(), kvd::core::Code::kUnavailable,
                 "a second rotation waits for the first segment's sync");
    SyncAndWait(&wal, &loop);
    cr_assert_eq(wal.durable_bytes(), wal.appended_bytes(), "both segments are covered");
    cr_assert(wal.Rotate(RotateSync::kLater, &segment).ok(), "the old segment was closed");
    cr_assert_eq(segment, 3u);
    cr_assert(wal.Append(Encoded("c")).ok());
    cr_assert(wal.SyncNow().ok());
  }
  uv_loop_close(&loop);
  std::vector<std::string> keys = Replayed(dir);
  cr_assert_eq(keys.size(), 3u);
  cr_assert(keys[0] == "a" && keys[1] == "b" && keys[2] == "c");
  std::filesystem::remove_all(dir);
}

Test(wal_file, rotate_now_and_never) {
  std::string dir = Dir();
  {
    WalFile wal(dir);
    Open(&wal);
    cr_assert(wal.Append(Encoded("a")).ok());
    uint64_t segment = 0;
    cr_assert(wal.Rotate(RotateSync::kNow, &segment).ok());
    cr_assert_eq(wal.durable_bytes(), wal.appended_bytes(), "kNow syncs before returning");
    cr_assert(wal.Append(Encoded("b")).ok());
    cr_assert(wal.Rotate(RotateSync::kNever, &segment).ok());
    cr_assert(wal.Append(Encoded("c")).ok());
    cr_assert(wal.Rotate(RotateSync::kNever, &segment).ok(), "kNever leaves nothing pending");
    cr_assert_eq(segment, 4u);
    cr_assert(wal.Append(Encoded("d")).ok());
  }
  std::vector<std::string> keys = Replayed(dir);
  cr_assert_eq(keys.size(), 4u);
  cr_assert(keys[0] == "a" && keys[3] == "d");
  std::filesystem::remove_all(dir);
}
