// The shell's files: WalFile rotation (whichever way the old segment is
// synced, nothing appended is lost and syncs cover both segments) and
// SnapshotWriter's order of callbacks.
#include "daemon/io/wal_file.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <uv.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "daemon/core/record.h"
#include "daemon/io/snapshot_file.h"
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

// SnapshotWriter: `encoded` comes on the loop after the encoder returned
// and before `done`; the file then holds the records, readable by
// LoadSnapshot, and nothing else is left in the directory.
Test(snapshot_writer, encoded_comes_before_done_and_the_file_loads) {
  std::string dir = Dir();
  uv_loop_t loop;
  cr_assert_eq(uv_loop_init(&loop), 0);
  kvd::io::SnapshotWriter writer(dir);
  std::vector<std::string> order;
  bool encoder_returned = false;
  auto encode = [&](std::string* out, const std::function<void()>& flush) {
    for (int i = 0; i < 3000; ++i) {
      *out += Encoded("k" + std::to_string(i));
      if (out->size() > 4096) flush();
    }
    Record end;
    end.kind = RecordKind::kSnapshotEnd;
    kvd::storage::AppendRecord(end, out);
    encoder_returned = true;
  };
  size_t written = 0;
  writer.Start(
      &loop, 7, encode,
      [&] {
        cr_assert(encoder_returned, "encoded before the encoder returned");
        order.push_back("encoded");
      },
      [&](Status status, size_t bytes) {
        cr_assert(status.ok(), "%s", status.message().c_str());
        written = bytes;
        order.push_back("done");
      });
  cr_assert(writer.running());
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_not(writer.running());
  cr_assert(order == (std::vector<std::string>{"encoded", "done"}));
  cr_assert(std::filesystem::file_size(dir + "/snapshot-00000000000000000007.snap") == written);
  uint64_t segment = 0, records = 0;
  Status loaded = kvd::io::LoadSnapshot(
      dir, [](const Record&) { return Status::Ok(); }, &segment, &records);
  cr_assert(loaded.ok(), "%s", loaded.message().c_str());
  cr_assert_eq(segment, 7u);
  cr_assert_eq(records, 3001u);
  cr_assert_eq(uv_loop_close(&loop), 0);
  std::filesystem::remove_all(dir);
}
