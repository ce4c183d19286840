// Record: one entry of what a node persists, in the order its replica
// produced them. The write-ahead log is a sequence of records, and so is a
// snapshot; replaying a node's records through Replica::Restore, in order,
// rebuilds its state.
//
// Most records are writes. A record carries a write's fields and a kind
// that says what they mean:
//   kWrite          a write applied here (own or delivered).
//   kTransferBegin  a state transfer from peer `origin` starts; `clock` is
//                   the sender's clock, which the transferred state covers.
//   kTransferEntry  one key of that state: its winning write (is_delete for
//                   a tombstone).
//   kTransferEnd    the transfer is complete: install it (see
//                   Replica::PeerTransferEnd). A begin with no end is
//                   dropped on replay.
//   kLogBase        snapshots only: `clock` covers every write the
//                   replication log no longer holds.
//   kLogEntry       snapshots only: a write still in the replication log
//                   (its effect is in the store already).
//   kIdentity       the cluster this node belongs to: `cluster_id`.
//   kSnapshotEnd    the last record of a snapshot file: without it the
//                   file is incomplete. Restore ignores it.
// A snapshot (Replica::Image) is: kIdentity (if known), kTransferBegin
// (origin = self), one kTransferEntry per key, kTransferEnd, kLogBase, one
// kLogEntry per log entry. Loading it into an empty replica is the same
// install as a transfer from a peer.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "daemon/core/write.h"

namespace kvd::core {

// Values are on disk: append only, never renumber.
enum class RecordKind : uint8_t {
  kWrite = 1,
  kTransferBegin = 2,
  kTransferEntry = 3,
  kTransferEnd = 4,
  kLogBase = 5,
  kLogEntry = 6,
  kIdentity = 7,
  kSnapshotEnd = 8,
};

struct Record : Write {
  RecordKind kind = RecordKind::kWrite;
  std::string cluster_id;  // kIdentity.

  Record() = default;
  // A write is the common record.
  Record(const Write& write) : Write(write) {}        // NOLINT: implicit on purpose.
  Record(Write&& write) : Write(std::move(write)) {}  // NOLINT: implicit on purpose.
  Record(RecordKind record_kind, const Write& write) : Write(write), kind(record_kind) {}
  Record(RecordKind record_kind, Write&& write) : Write(std::move(write)), kind(record_kind) {}
};

}  // namespace kvd::core
