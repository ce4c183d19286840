// ReplicaImage: a replica's state frozen at one instant (Replica::Freeze),
// to be turned into snapshot records on another thread while the replica
// goes on serving. It owns copies of the small parts (identity, clocks, the
// replication log's entries) and a FrozenStore view of the store.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "daemon/core/record.h"
#include "daemon/core/store.h"
#include "daemon/core/vector_clock.h"
#include "daemon/core/write.h"

namespace kvd::core {

class ReplicaImage {
 public:
  // Visits the records of the image in the order Replica::Restore expects:
  // identity (if recorded), the store as a transfer from this node, the
  // log's dropped clock, then the log's entries. Safe on any one thread.
  void Visit(const std::function<void(const Record&)>& visit) const;
  // The same, except that the store's entries go to `entry` as they are,
  // in place of their kTransferEntry records: no Record is built per key
  // (the snapshot encoder's path; see storage::AppendWriteRecord).
  void Visit(const std::function<void(const Record&)>& visit,
             const std::function<void(const StoreEntry&)>& entry) const;
  size_t keys() const { return store_.size(); }
  // See FrozenStore::Detach: on the replica's thread, once visited; the
  // image may then only be destroyed, on any thread.
  void Detach() { store_.Detach(); }
  // See FrozenStore::TakeBuffer.
  FreezeBuffer TakeBuffer() { return store_.TakeBuffer(); }

 private:
  friend class Replica;
  std::string cluster_id_;  // Empty: no identity recorded yet.
  uint32_t self_ = 0;
  VectorClock clock_;
  FrozenStore store_;
  VectorClock dropped_;
  std::vector<Write> log_;
};

}  // namespace kvd::core
