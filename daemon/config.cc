#include "daemon/config.h"

#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "daemon/config_secret.h"
#include "schema/auth.h"

namespace kvd {

core::Status ParseCluster(const std::string& text, std::vector<NodeAddress>* cluster) {
  cluster->clear();
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    start = end + 1;
    size_t eq = item.find('=');
    size_t colon = item.rfind(':');
    if (eq == std::string::npos || colon == std::string::npos || colon < eq) {
      return core::Status::BadRequest("cluster entry '" + item + "' is not ID=HOST:PORT");
    }
    std::string id = item.substr(0, eq);
    if (id != std::to_string(cluster->size() + 1)) {
      return core::Status::BadRequest("cluster entry '" + item + "': expected id " +
                                      std::to_string(cluster->size() + 1) +
                                      " (ids are 1, 2, ... in order)");
    }
    NodeAddress address;
    address.host = item.substr(eq + 1, colon - eq - 1);
    std::string port = item.substr(colon + 1);
    char* port_end = nullptr;
    unsigned long port_value = std::strtoul(port.c_str(), &port_end, 10);
    if (address.host.empty() || port.empty() || *port_end != '\0' || port_value == 0 ||
        port_value > 65535) {
      return core::Status::BadRequest("cluster entry '" + item + "': bad host or port");
    }
    address.port = static_cast<uint16_t>(port_value);
    address.text = item.substr(eq + 1);
    cluster->push_back(std::move(address));
    if (cluster->size() > core::kNodesMax) {
      return core::Status::BadRequest("cluster has more than " + std::to_string(core::kNodesMax) +
                                      " nodes");
    }
    if (end == text.size()) break;
  }
  if (cluster->empty()) return core::Status::BadRequest("empty cluster list");
  return core::Status::Ok();
}

namespace {

// True if every address `host` resolves to is a loopback address (127/8,
// ::1). A name that does not resolve counts as not loopback: start-up
// fails on it later anyway.
bool IsLoopbackHost(const std::string& host) {
  std::string name = host;
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
    name = name.substr(1, name.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(name.c_str(), nullptr, &hints, &found) != 0 || found == nullptr) return false;
  bool loopback = true;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
      loopback = loopback && (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    } else if (a->ai_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->ai_addr);
      loopback = loopback && IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    } else {
      loopback = false;
    }
  }
  freeaddrinfo(found);
  return loopback;
}

// Reads the secret files and checks what depends on them.
core::Status LoadSecurity(Config* config) {
  if (!config->cluster_secret_file.empty()) {
    if (core::Status s = ReadSecretFile(config->cluster_secret_file, "--cluster-secret-file",
                                        wire::kClusterSecretBytesMin, &config->cluster_secret);
        !s.ok()) {
      return s;
    }
  } else if (!IsLoopbackHost(config->listen().host)) {
    return core::Status::BadRequest(
        "node " + std::to_string(config->id) + " listens on " + config->listen().text +
        ", which is not a loopback address: peers must authenticate there; give every node the "
        "same --cluster-secret-file (see kvd(8), SECURITY)");
  }
  if (!config->client_secret_file.empty()) {
    if (core::Status s = ReadSecretFile(config->client_secret_file, "--client-secret-file", 1,
                                        &config->client_secret);
        !s.ok()) {
      return s;
    }
  }
  if (!config->admin_group.empty()) {
    struct group* entry = getgrnam(config->admin_group.c_str());
    if (entry == nullptr) {
      return core::Status::BadRequest("--admin-group " + config->admin_group + ": no such group");
    }
    config->admin_gid = entry->gr_gid;
  }
  return core::Status::Ok();
}

}  // namespace

core::Status ParseConfig(int argc, char** argv, Config* config, int* exit_now) {
  *exit_now = -1;
  CLI::App app{"kvd: one node of a causalkv cluster (causal+ consistent key-value store)"};
  app.set_version_flag("--version", "kvd 0.1.0");
  app.set_config("--config", "", "Read settings from this file (key = value lines)");
  // A misspelt key in a config file must stop start-up, not be ignored.
  app.allow_config_extras(CLI::config_extras_mode::error);
  std::string cluster_text;
  std::string log_level = "info";
  app.add_option("--id", config->id, "This node's id: its 1-based position in --cluster")
      ->required();
  app.add_option("--cluster", cluster_text,
                 "Every node in order: 1=HOST:PORT,2=HOST:PORT,... (same on every node)")
      ->required();
  app.add_option("--data-dir", config->data_dir, "Directory for this node's data");
  app.add_option("--admin-socket", config->admin_socket,
                 "Unix socket for administration (default: kvd.sock in $RUNTIME_DIRECTORY, "
                 "else in --data-dir)");
  app.add_flag("--fault-injection", config->fault_injection,
               "Allow 'link hold/release' on the admin socket");
  app.add_option("--context-wait-ms", config->context_wait_ms,
                 "How long a request may wait for its session context before TIMEOUT");
  app.add_option("--forward-after-ms", config->forward_after_ms,
                 "Forward other nodes' writes a peer still lacks after this long");
  app.add_option("--log-level", log_level, "error, warn, info or debug")
      ->check(CLI::IsMember({"error", "warn", "info", "debug"}));
  size_t frame_bytes_max = 0;
  app.add_option("--max-frame-bytes", frame_bytes_max,
                 "Sets both --max-client-frame-bytes and --max-peer-frame-bytes")
      ->check(CLI::Range(size_t{64}, size_t{1} << 30));
  auto* client_frame =
      app.add_option("--max-client-frame-bytes", config->client_frame_bytes_max,
                     "Largest frame accepted from a client (default: the key and value "
                     "limits plus 64 KiB)")
          ->check(CLI::Range(size_t{64}, size_t{1} << 30));
  auto* peer_frame = app.add_option("--max-peer-frame-bytes", config->peer_frame_bytes_max,
                                    "Largest frame accepted from a peer (replication batches)")
                         ->check(CLI::Range(size_t{64}, size_t{1} << 30));
  app.add_option("--max-key-bytes", config->key_bytes_max, "Largest key accepted")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20));
  app.add_option("--max-value-bytes", config->value_bytes_max, "Largest value accepted")
      ->check(CLI::Range(size_t{0}, size_t{1} << 29));
  app.add_option("--max-buffered-writes", config->buffer_writes_max,
                 "Writes held waiting for their dependencies, per node")
      ->check(CLI::Range(size_t{1}, size_t{10'000'000}));
  std::string fsync = "always";
  app.add_option("--fsync", fsync,
                 "always: reply after fdatasync (group commit); everysec: fdatasync once a "
                 "second; no: leave it to the OS")
      ->check(CLI::IsMember({"always", "everysec", "no"}));
  app.add_option("--handshake-timeout-ms", config->handshake_timeout_ms,
                 "Close a connection whose first frame has not arrived by then")
      ->check(CLI::Range(uint64_t{1}, uint64_t{3'600'000}));
  app.add_option("--max-clients", config->max_clients,
                 "TCP connections besides peer links; beyond it new ones get UNAVAILABLE")
      ->check(CLI::Range(size_t{1}, size_t{1'000'000}));
  app.add_option("--idle-timeout-ms", config->idle_timeout_ms,
                 "Close a client connection idle this long (0: never)")
      ->check(CLI::Range(uint64_t{0}, uint64_t{86'400'000}));
  app.add_option("--client-output-bytes-max", config->client_output_bytes_max,
                 "Disconnect a client whose unsent replies pass this many bytes")
      ->check(CLI::Range(size_t{4096}, size_t{1} << 34));
  app.add_flag("--recover-truncate", config->recover_truncate,
               "Start even if the write-ahead log is damaged mid-file, dropping the rest");
  app.add_option("--snapshot-wal-bytes", config->snapshot_wal_bytes,
                 "Write a snapshot (and drop older log segments) once the write-ahead log grew "
                 "this much and by at least twice the last snapshot's size (plus a random "
                 "0-50 %, so that nodes do not all snapshot at once); 0: only on "
                 "'kvctl snapshot'");
  app.add_option("--bootstrap-cluster-id", config->bootstrap_cluster_id,
                 "First start of a new cluster only: take this identity now instead of waiting "
                 "until every node has met (never on a node that lost its data)");
  app.add_option("--max-log-bytes", config->log_bytes_max,
                 "Replication log bound: a peer further behind catches up by state transfer")
      ->check(CLI::Range(size_t{1} << 16, size_t{1} << 40));
  app.add_option("--cluster-secret-file", config->cluster_secret_file,
                 "File holding the secret every node shares; peers then prove it (HMAC-SHA256) "
                 "and every peer frame carries a MAC. Required unless listening on loopback");
  app.add_option("--client-secret-file", config->client_secret_file,
                 "File holding a password TCP clients must present before any request");
  app.add_option("--admin-group", config->admin_group,
                 "Make the admin socket 0660 and owned by this group (default: 0600)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version arrive as "errors" with exit code 0.
    if (e.get_exit_code() == 0) {
      *exit_now = app.exit(e);
      return core::Status::Ok();
    }
    return core::Status::BadRequest(e.what());
  }
  if (core::Status s = ParseCluster(cluster_text, &config->cluster); !s.ok()) return s;
  if (config->id < 1 || config->id > config->cluster.size()) {
    return core::Status::BadRequest("--id " + std::to_string(config->id) +
                                    " is not in the cluster list (1.." +
                                    std::to_string(config->cluster.size()) + ")");
  }
  io::ParseLogLevel(log_level, &config->log_level);
  config->fsync = fsync == "always"     ? FsyncPolicy::kAlways
                  : fsync == "everysec" ? FsyncPolicy::kEverySec
                                        : FsyncPolicy::kNo;
  if (frame_bytes_max != 0) {
    if (client_frame->count() == 0) config->client_frame_bytes_max = frame_bytes_max;
    if (peer_frame->count() == 0) config->peer_frame_bytes_max = frame_bytes_max;
  }
  const size_t put_bytes = config->value_bytes_max + config->key_bytes_max + 1024;
  if (config->client_frame_bytes_max == 0) {
    config->client_frame_bytes_max =
        std::min(put_bytes - 1024 + io::kClientFrameBytesSlack, wire::kFrameBytesMaxLimit);
  }
  // A put of the largest key and value must fit a client's frame, and the
  // write it makes must fit a peer's (sealed, with its clock).
  if (config->client_frame_bytes_max < put_bytes) {
    return core::Status::BadRequest(
        "--max-client-frame-bytes must exceed the key and value limits by 1024");
  }
  if (config->peer_frame_bytes_max < put_bytes + 64 * core::kNodesMax) {
    return core::Status::BadRequest(
        "--max-peer-frame-bytes must exceed the key and value limits by " +
        std::to_string(1024 + 64 * core::kNodesMax));
  }
  if (core::Status s = LoadSecurity(config); !s.ok()) return s;
  if (config->bootstrap_cluster_id.size() > 64) {
    return core::Status::BadRequest("--bootstrap-cluster-id is longer than 64 bytes");
  }
  if (config->admin_socket.empty()) {
    const char* runtime = std::getenv("RUNTIME_DIRECTORY");
    config->admin_socket = std::string(runtime ? runtime : config->data_dir.c_str()) + "/kvd.sock";
  }
  return core::Status::Ok();
}

}  // namespace kvd
