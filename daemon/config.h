// Config: kvd's settings, from flags or a config file (--config FILE, the
// same names without dashes, "key = value" lines; flags win over the file).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "daemon/core/limits.h"
#include "daemon/core/status.h"
#include "daemon/io/limits.h"
#include "daemon/io/log.h"

namespace kvd {

struct NodeAddress {
  std::string host;
  uint16_t port = 0;
  std::string text;  // "host:port", as written in the cluster list.
};

enum class FsyncPolicy { kAlways, kEverySec, kNo };

// Defaults come from daemon/core/limits.h, daemon/io/limits.h and
// schema/limits.h only.
struct Config {
  uint32_t id = 0;                   // 1-based position in `cluster`.
  std::vector<NodeAddress> cluster;  // Every node, in cluster order.
  std::string data_dir = ".";
  std::string admin_socket;  // Default: kvd.sock in $RUNTIME_DIRECTORY or data_dir.
  bool fault_injection = false;
  uint64_t context_wait_ms = core::kContextWaitMsDefault;
  uint64_t forward_after_ms = core::kForwardAfterMsDefault;
  io::LogLevel log_level = io::LogLevel::kInfo;
  // Largest frames from clients and from peers. 0 for the client cap means
  // key + value caps + io::kClientFrameBytesSlack (set by ParseConfig).
  size_t client_frame_bytes_max = 0;
  size_t peer_frame_bytes_max = io::kPeerFrameBytesMaxDefault;
  size_t key_bytes_max = core::kKeyBytesMaxDefault;
  size_t value_bytes_max = core::kValueBytesMaxDefault;
  size_t buffer_writes_max = core::kBufferWritesMaxDefault;
  FsyncPolicy fsync = FsyncPolicy::kAlways;
  // A connection that sends no complete frame this long after it opened is
  // closed (slowloris-style clients cannot hold connections forever).
  uint64_t handshake_timeout_ms = io::kHandshakeTimeoutMsDefault;
  size_t max_clients = io::kMaxClientsDefault;
  uint64_t idle_timeout_ms = io::kIdleTimeoutMsDefault;  // 0: never.
  size_t client_output_bytes_max = io::kClientOutputBytesMaxDefault;
  bool recover_truncate = false;  // Drop a damaged WAL tail instead of refusing to start.
  // A snapshot is written once the WAL grew this much since the last one
  // (0: only when asked, `kvctl snapshot`).
  uint64_t snapshot_wal_bytes = 64ull * 1024 * 1024;
  // The replication log's bound: a peer that falls further behind catches
  // up by state transfer instead.
  size_t log_bytes_max = core::kLogBytesMaxDefault;
  // Record this cluster identity at once if the data directory has none
  // (first start of a brand-new cluster only; see core::Replica::Bootstrap).
  std::string bootstrap_cluster_id;

  // Peer authentication (PROTOCOL.md, "Peer authentication"): the secret
  // read from cluster_secret_file. Empty: peers are not authenticated,
  // which only a node listening on loopback may do.
  std::string cluster_secret_file;
  std::string cluster_secret;
  // The password a TCP client must present before anything is served
  // (read from client_secret_file); empty: none.
  std::string client_secret_file;
  std::string client_secret;
  // The admin socket is 0600; with a group, 0660 and owned by that group.
  std::string admin_group;
  int64_t admin_gid = -1;

  uint32_t self() const { return id - 1; }
  const NodeAddress& listen() const { return cluster[self()]; }
};

// Parses argv. On --help or --version, prints and sets *exit_now with the
// exit code. Errors (bad flag, id not in the list, bad address) come back
// as a Status whose message is ready to print.
core::Status ParseConfig(int argc, char** argv, Config* config, int* exit_now);

// Parses "1=HOST:PORT,2=HOST:PORT,...": ids must be 1, 2, ... in order.
core::Status ParseCluster(const std::string& text, std::vector<NodeAddress>* cluster);

}  // namespace kvd
