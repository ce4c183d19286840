#include "daemon/io/node.h"

#include <fcntl.h>
#include <netdb.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "daemon/io/file_util.h"
#include "daemon/io/log.h"
#include "daemon/io/off_loop.h"
#include "daemon/storage/wal_format.h"
#include "schema/fingerprint.h"

namespace kvd::io {
namespace {

// Replies carry core::Code values on the wire as fb::Status.
static_assert(static_cast<int>(core::Code::kOk) == static_cast<int>(fb::Status::OK));
static_assert(static_cast<int>(core::Code::kNotFound) == static_cast<int>(fb::Status::NOT_FOUND));
static_assert(static_cast<int>(core::Code::kTimeout) == static_cast<int>(fb::Status::TIMEOUT));
static_assert(static_cast<int>(core::Code::kInternal) == static_cast<int>(fb::Status::INTERNAL));

// 128 random bits in hex: the identity this node gives the cluster if it
// founds it (see core::Replica, "Identity").
std::string NewClusterId() {
  unsigned char bytes[16] = {};
  size_t done = 0;
  while (done < sizeof(bytes)) {
    ssize_t n = getrandom(bytes + done, sizeof(bytes) - done, 0);
    if (n > 0) done += static_cast<size_t>(n);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char byte : bytes) {
    id.push_back(kHex[byte >> 4]);
    id.push_back(kHex[byte & 15]);
  }
  return id;
}

core::ReplicaConfig MakeReplicaConfig(const Config& config) {
  core::ReplicaConfig replica;
  replica.self = config.self();
  replica.node_count = config.cluster.size();
  replica.key_bytes_max = config.key_bytes_max;
  replica.value_bytes_max = config.value_bytes_max;
  replica.buffer_writes_max = config.buffer_writes_max;
  replica.context_wait_ms = config.context_wait_ms;
  replica.forward_after_ms = config.forward_after_ms;
  replica.log_bytes_max = config.log_bytes_max;
  replica.new_cluster_id = NewClusterId();
  return replica;
}

std::vector<std::string> AddressTexts(const Config& config) {
  std::vector<std::string> texts;
  for (const NodeAddress& address : config.cluster) texts.push_back(address.text);
  return texts;
}

// Resolves once, at start-up, where blocking is fine.
core::Status Resolve(const NodeAddress& address, sockaddr_storage* out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* result = nullptr;
  std::string port = std::to_string(address.port);
  int rc = getaddrinfo(address.host.c_str(), port.c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    return core::Status::BadRequest("cannot resolve " + address.text + ": " + gai_strerror(rc));
  }
  std::memset(out, 0, sizeof(*out));
  std::memcpy(out, result->ai_addr, result->ai_addrlen);
  freeaddrinfo(result);
  return core::Status::Ok();
}

core::Status UvError(const std::string& what, int rc) {
  return core::Status::Internal(what + ": " + uv_err_name(rc) + " (" + uv_strerror(rc) + ")");
}

}  // namespace

Node::Node(const Config& config)
    : config_(config),
      replica_(MakeReplicaConfig(config)),
      fingerprint_(wire::ClusterFingerprint(AddressTexts(config))),
      wal_(config.data_dir),
      snapshot_writer_(config.data_dir),
      snapshot_schedule_(config.snapshot_wal_bytes, config.id) {
  limits_.cluster_size = config.cluster.size();
  limits_.key_bytes_max = config.key_bytes_max;
  limits_.value_bytes_max = config.value_bytes_max;
  limits_.frame_bytes_max = config.client_frame_bytes_max;
  inbound_peers_.assign(config.cluster.size(), nullptr);
  links_.resize(config.cluster.size());
}

Node::~Node() = default;

core::Status Node::Start(uv_loop_t* loop) {
  loop_ = loop;
  // Every handle is initialised before anything can fail, so Shutdown()
  // can close them all whatever happened next (libuv: each initialised
  // handle must be closed).
  uv_tcp_init(loop_, &tcp_listener_);
  tcp_listener_.data = this;
  uv_pipe_init(loop_, &admin_listener_, 0);
  admin_listener_.data = this;
  uv_prepare_init(loop_, &prepare_);
  prepare_.data = this;
  uv_timer_init(loop_, &tick_);
  tick_.data = this;
  for (uv_signal_t* signal : {&sigterm_, &sigint_, &sighup_}) {
    uv_signal_init(loop_, signal);
    signal->data = this;
  }
  uv_timer_init(loop_, &everysec_);
  everysec_.data = this;
  uv_timer_init(loop_, &shutdown_timer_);
  shutdown_timer_.data = this;
  handles_initialised_ = true;

  // Recovery comes first: nothing is served from a half-restored state.
  if (core::Status s = Recover(); !s.ok()) return s;
  if (!config_.bootstrap_cluster_id.empty()) {
    if (core::Status s = replica_.Bootstrap(config_.bootstrap_cluster_id); !s.ok()) return s;
  }

  RaiseFileLimit();
  if (core::Status s = Listen(); !s.ok()) return s;
  if (config_.fsync == FsyncPolicy::kEverySec) uv_timer_start(&everysec_, OnEverySec, 1000, 1000);
  if (config_.fsync == FsyncPolicy::kAlways) {
    if (core::Status s = sync_hold_.Init(loop_, [this] { StartSync(/*hold_expired=*/true); });
        !s.ok()) {
      KV_LOG(kWarn, "group commit without its hold (%s): each sync starts at once",
             s.message().c_str());
    }
  }
  // The poll wait is what LoopHealth subtracts; without it, a loop would
  // look busy all the time (status says so with busy == window). The cost:
  // a poll that would block is tried once without blocking first (libuv
  // does so to tell the wait from the work), one more system call for a
  // loop that then sleeps.
  if (int rc = uv_loop_configure(loop_, UV_METRICS_IDLE_TIME); rc < 0) {
    KV_LOG(kWarn, "loop idle-time metrics unavailable (%s): status shows the loop always busy",
           uv_strerror(rc));
  }
  uv_prepare_start(&prepare_, OnPrepare);
  // The tick lets time-driven work happen on an idle node: acks, forwarding,
  // context deadlines. Turn() runs after it like after any callback.
  uv_timer_start(&tick_, OnTick, 10, 10);
  uv_signal_start(&sigterm_, OnSignal, SIGTERM);
  uv_signal_start(&sigint_, OnSignal, SIGINT);
  uv_signal_start(&sighup_, OnSignal, SIGHUP);

  for (uint32_t peer = 0; peer < config_.cluster.size(); ++peer) {
    if (peer == config_.self()) continue;
    PeerLink::Options options;
    options.peer = peer;
    options.name = PeerName(peer);
    options.frame_bytes_max = config_.peer_frame_bytes_max;
    options.cluster_size = config_.cluster.size();
    options.cluster_secret = config_.cluster_secret;
    options.cluster_fingerprint = fingerprint_;
    options.self = config_.self();
    if (core::Status s = Resolve(config_.cluster[peer], &options.address); !s.ok()) return s;
    links_[peer] = std::make_unique<PeerLink>(loop_, options, this);
    if (int rc = links_[peer]->Start(); rc < 0) return UvError("peer link", rc);
  }
  KV_LOG(kInfo, "listening on %s, admin socket %s, %zu nodes, clock %s",
         config_.listen().text.c_str(), config_.admin_socket.c_str(), config_.cluster.size(),
         replica_.clock().ToString().c_str());
  notifier_ = std::make_unique<Notifier>(loop_, [this] { return Summary(); });
  notifier_->Start();
  notifier_->Ready();
  return core::Status::Ok();
}

core::Status Node::Recover() {
  uint64_t started_ms = uv_hrtime() / 1000000;
  // A new node's directory may not exist yet (etcd creates it too); its
  // parent must.
  if (mkdir(config_.data_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Errno("create data directory " + config_.data_dir);
  }
  auto restore = [this](const core::Record& record) { return replica_.Restore(record, now_ms()); };
  uint64_t segment = 0;
  uint64_t snapshot_records = 0;
  if (core::Status s = LoadSnapshot(config_.data_dir, restore, &segment, &snapshot_records);
      !s.ok()) {
    return s;
  }
  if (segment > 0) {
    KV_LOG(kInfo, "loaded snapshot %llu (%llu records)", (unsigned long long)segment,
           (unsigned long long)snapshot_records);
  }
  uint64_t records = 0;
  if (core::Status s = wal_.Recover(restore, config_.recover_truncate, segment, &records);
      !s.ok()) {
    return s;
  }
  // A snapshot just before a crash may have left older files behind.
  if (segment > 0) RemoveSnapshotsBefore(config_.data_dir, segment);
  KV_LOG(kInfo, "recovered %llu snapshot records and %llu log records in %llu ms; clock %s",
         (unsigned long long)snapshot_records, (unsigned long long)records,
         (unsigned long long)(uv_hrtime() / 1000000 - started_ms),
         replica_.clock().ToString().c_str());
  return core::Status::Ok();
}

core::Status Node::Listen() {
  sockaddr_storage address;
  if (core::Status s = Resolve(config_.listen(), &address); !s.ok()) return s;
  int rc = uv_tcp_bind(&tcp_listener_, reinterpret_cast<const sockaddr*>(&address), 0);
  if (rc == 0)
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&tcp_listener_), 1024, OnTcpConnection);
  if (rc < 0) return UvError("cannot listen on " + config_.listen().text, rc);

  // A socket file left by a previous run would make bind fail.
  struct stat info;
  if (stat(config_.admin_socket.c_str(), &info) == 0 && S_ISSOCK(info.st_mode)) {
    unlink(config_.admin_socket.c_str());
  }
  // Owner-only (or owner and --admin-group): the admin socket can stop the
  // node and inject faults.
  const bool group = config_.admin_gid >= 0;
  mode_t old_mask = umask(group ? 0117 : 0177);
  rc = uv_pipe_bind(&admin_listener_, config_.admin_socket.c_str());
  umask(old_mask);
  if (rc == 0 && group &&
      chown(config_.admin_socket.c_str(), static_cast<uid_t>(-1),
            static_cast<gid_t>(config_.admin_gid)) != 0) {
    return core::Status::Internal("cannot give admin socket " + config_.admin_socket +
                                  " to group " + config_.admin_group + ": " + strerror(errno));
  }
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&admin_listener_), 64, OnAdminConnection);
  }
  if (rc < 0) return UvError("cannot listen on admin socket " + config_.admin_socket, rc);
  admin_bound_ = true;
  return core::Status::Ok();
}

void Node::OnTcpConnection(uv_stream_t* server, int status) {
  auto* node = static_cast<Node*>(server->data);
  if (status < 0) {
    KV_LOG(kWarn, "accept: %s", uv_err_name(status));
    return;
  }
  node->Accept(server, Stream::Transport::kTcp);
}

void Node::OnAdminConnection(uv_stream_t* server, int status) {
  auto* node = static_cast<Node*>(server->data);
  if (status < 0) {
    KV_LOG(kWarn, "admin accept: %s", uv_err_name(status));
    return;
  }
  node->Accept(server, Stream::Transport::kUnix);
}

// Every connection costs a descriptor: without enough of them accept()
// fails (libuv then drops connections) long before --max-clients. Raise
// the soft limit as far as the hard one allows, as Redis does.
void Node::RaiseFileLimit() {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t want = static_cast<rlim_t>(config_.max_clients + kFdsBeyondClients);
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < want) {
    rlim_t raised = limit.rlim_max == RLIM_INFINITY ? want : std::min(want, limit.rlim_max);
    struct rlimit fresh = {raised, limit.rlim_max};
    if (raised > limit.rlim_cur && setrlimit(RLIMIT_NOFILE, &fresh) == 0) limit.rlim_cur = raised;
  }
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < want) {
    KV_LOG(kWarn,
           "only %llu file descriptors (RLIMIT_NOFILE): fewer than --max-clients %zu connections "
           "will fit",
           (unsigned long long)limit.rlim_cur, config_.max_clients);
  }
}

void Node::Accept(uv_stream_t* server, Stream::Transport transport) {
  int rc = 0;
  auto* stream =
      new Stream(loop_, transport, next_stream_id_++, config_.client_frame_bytes_max, this, &rc);
  AddStream(*stream);
  if (rc == 0) rc = uv_accept(server, stream->handle());
  if (rc < 0) {
    KV_LOG(kWarn, "accept: %s", uv_err_name(rc));
    stream->Close();
    return;
  }
  if (transport == Stream::Transport::kTcp && !Admit(*stream)) {
    RefuseOverLimit(*stream, 0);
    return;
  }
  if (rc = stream->StartReading(); rc < 0) {
    KV_LOG(kWarn, "accept: %s", uv_err_name(rc));
    stream->Close();
    return;
  }
  handshake_deadlines_.emplace_back(now_ms() + config_.handshake_timeout_ms, stream->id());
}

bool Node::Admit(Stream& stream) {
  if (client_connections_ < config_.max_clients) {
    ++client_connections_;
    stream.counted = Stream::Counted::kClient;
    return true;
  }
  if (reserve_connections_ + 1 < config_.cluster.size()) {
    ++reserve_connections_;
    stream.counted = Stream::Counted::kPeerReserve;
    return true;
  }
  return false;
}

void Node::Uncount(Stream& stream) {
  if (stream.counted == Stream::Counted::kClient) --client_connections_;
  if (stream.counted == Stream::Counted::kPeerReserve) --reserve_connections_;
  stream.counted = Stream::Counted::kNone;
}

// The listener keeps accepting: a refused connection is told why and
// closed. Refusals come in floods, so their log lines are rate limited.
void Node::RefuseOverLimit(Stream& stream, uint64_t request_id) {
  uint64_t now = now_ms();
  if (now - refusal_window_start_ms_ >= 1000) {
    if (refusals_in_window_ > kRefusalLinesPerSecond) {
      KV_LOG(kWarn, "refused %llu more connection(s) over --max-clients %zu in the last second",
             (unsigned long long)(refusals_in_window_ - kRefusalLinesPerSecond),
             config_.max_clients);
    }
    refusal_window_start_ms_ = now;
    refusals_in_window_ = 0;
  }
  if (++refusals_in_window_ <= kRefusalLinesPerSecond) {
    KV_LOG(kWarn, "%s: %zu client connections open (--max-clients); refusing",
           StreamName(stream).c_str(), client_connections_);
  }
  Uncount(stream);
  SendError(stream, request_id, fb::Status::UNAVAILABLE,
            "too many connections (--max-clients " + std::to_string(config_.max_clients) + ")",
            /*close=*/true);
}

void Node::CloseSilentConnections() {
  uint64_t now = now_ms();
  while (!handshake_deadlines_.empty() && handshake_deadlines_.front().first <= now) {
    auto it = streams_.find(handshake_deadlines_.front().second);
    handshake_deadlines_.pop_front();
    if (it == streams_.end() || it->second->greeted || it->second->closing()) continue;
    KV_LOG(kInfo, "%s: no complete frame within %llu ms; closing", StreamName(*it->second).c_str(),
           (unsigned long long)config_.handshake_timeout_ms);
    SendError(*it->second, 0, fb::Status::TIMEOUT, "no complete frame in time", /*close=*/true);
  }
}

void Node::OnPrepare(uv_prepare_t* handle) {
  auto* node = static_cast<Node*>(handle->data);
  uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(node->loop_);
  if (node->loop_health_.OnTurn(now, idle)) node->CloseLoopWindow(now, idle);
  node->Turn();
}

// Time-driven work of the shell; Turn() follows every loop iteration.
void Node::OnTick(uv_timer_t* handle) {
  auto* node = static_cast<Node*>(handle->data);
  node->CloseSilentConnections();
  node->CloseIdleConnections();
}

namespace {
uint64_t ThreadCpuNs() {
  timespec now{};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now) != 0) return 0;
  return static_cast<uint64_t>(now.tv_sec) * 1000000000u + static_cast<uint64_t>(now.tv_nsec);
}

// The calling thread's time in the run queue (ready, not running), from
// /proc/thread-self/schedstat ("on-cpu-ns wait-ns timeslices"); 0 where
// the kernel has no schedstat. Read once a second, so opening it each time
// costs nothing worth a descriptor kept open.
uint64_t ThreadCpuWaitNs() {
  int fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[96];
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return 0;
  text[n] = '\0';
  unsigned long long on_cpu = 0, waiting = 0;
  if (std::sscanf(text, "%llu %llu", &on_cpu, &waiting) != 2) return 0;
  return waiting;
}
}  // namespace

void Node::CloseLoopWindow(uint64_t now_ns, uint64_t idle_ns) {
  loop_health_.Close(now_ns, {idle_ns, ThreadCpuNs(), ThreadCpuWaitNs()});
  const core::LoopHealth::Window& w = loop_health_.last();
  if (w.wall_ns == 0 || w.longest_turn_ns < kSlowTurnWarnNs) return;
  auto percent = [&w](uint64_t ns) { return 100.0 * static_cast<double>(ns) / w.wall_ns; };
  KV_LOG(kWarn,
         "loop: a turn took %.0f ms; in the last %.1f s the loop was busy %.0f %%, on a CPU %.0f "
         "%%, waiting for a CPU %.0f %%",
         static_cast<double>(w.longest_turn_ns) / 1e6, static_cast<double>(w.wall_ns) / 1e9,
         percent(w.busy_ns), percent(w.cpu_ns), percent(w.cpu_wait_ns));
}

// A client that sends nothing and waits for nothing holds a descriptor and
// buffers for no one. Peer links are not clients: their liveness is the
// peer link's business.
void Node::CloseIdleConnections() {
  if (config_.idle_timeout_ms == 0 || shutting_down_) return;
  const uint64_t now = now_ms();
  const uint64_t every =
      std::min(kIdleSweepMsMax, std::max<uint64_t>(config_.idle_timeout_ms / 4, 1));
  if (now - last_idle_sweep_ms_ < every) return;
  last_idle_sweep_ms_ = now;
  scratch_streams_.clear();
  for (auto& [id, stream] : streams_) {
    if (stream->peer_role() || !stream->greeted || stream->closing()) continue;
    if (stream->open_slots() != 0 || stream->pending_output_bytes() != 0) continue;
    if (now - stream->last_input_ms() >= config_.idle_timeout_ms)
      scratch_streams_.push_back(stream);
  }
  for (Stream* stream : scratch_streams_) {
    KV_LOG(kInfo, "%s: idle for %llu ms; closing", StreamName(*stream).c_str(),
           (unsigned long long)(now - stream->last_input_ms()));
    SendError(*stream, 0, fb::Status::TIMEOUT, "idle timeout", /*close=*/true);
  }
}

void Node::OnSignal(uv_signal_t* handle, int signum) {
  auto* node = static_cast<Node*>(handle->data);
  if (signum == SIGHUP) {
    node->Reload();
    return;
  }
  if (node->shutting_down_) {
    node->ForceCloseStreams();  // Asked twice: stop waiting for slow clients.
    return;
  }
  node->Shutdown(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

void Node::Reload() {
  if (!reload_) return;
  notifier_->Reloading();
  Config fresh;
  core::Status s = reload_(&fresh);
  if (s.ok()) {
    SetLogLevel(fresh.log_level);
    config_.log_level = fresh.log_level;
    KV_LOG(kInfo, "reloaded configuration (log level applied; other changes need a restart)");
  } else {
    KV_LOG(kWarn, "reload failed, keeping the running configuration: %s", s.message().c_str());
  }
  notifier_->Ready();
}

// One line for systemd's STATUS= and `systemctl status`.
std::string Node::Summary() const {
  size_t peers = 0;
  size_t connected = 0;
  for (uint32_t peer = 0; peer < config_.cluster.size(); ++peer) {
    if (peer == config_.self()) continue;
    ++peers;
    core::PeerInfo info = replica_.peer_info(peer);
    if (info.link_to_up && info.link_from_up) ++connected;
  }
  return "clock " + replica_.clock().ToString() + ", peers " + std::to_string(connected) + "/" +
         std::to_string(peers) + " connected, " + std::to_string(replica_.buffer().size()) +
         " buffered, " + std::to_string(replica_.store().live_keys()) + " keys" +
         (!replica_.identity_recorded() ? ", waiting for the cluster identity"
          : replica_.accepting_writes() ? ""
                                        : ", recovering own writes");
}

void Node::Turn() {
  for (int round = 0; round < kResumeRoundsPerTurn; ++round) {
    Execute(replica_.Ready(now_ms()));
    MaybeSnapshot();
    FlushDirty();
    if (!ResumeInputs()) break;
  }
}

bool Node::ResumeInputs() {
  if (resume_.empty()) return false;
  std::vector<uint64_t> ids;
  ids.swap(resume_);
  bool resumed = false;
  for (uint64_t id : ids) {
    auto it = streams_.find(id);
    if (it == streams_.end()) continue;
    Stream& stream = *it->second;
    stream.resume_queued = false;
    if (stream.closing()) continue;
    stream.ResumeInput();
    resumed = true;
  }
  return resumed;
}

bool Node::CloseIfOverOutputCap(Stream& stream) {
  if (stream.pending_output_bytes() <= config_.client_output_bytes_max) return false;
  KV_LOG(kWarn, "%s: not reading its replies (%zu bytes queued); closing",
         StreamName(stream).c_str(), stream.pending_output_bytes());
  stream.Close();
  return true;
}

// --- Snapshots -------------------------------------------------------------------

void Node::MaybeSnapshot() {
  if (shutting_down_ || snapshot_busy_) return;
  // The log found at start-up counts too: restarts must not let it grow
  // past the bound a running node keeps.
  // And the log must grow by at least twice the last snapshot's size. A
  // snapshot rewrites the whole store, so at a ratio r the background work
  // is 1/r byte of snapshot per byte logged: at 1 (Redis's
  // auto-aof-rewrite-percentage 100) a 1M-key node under 660k puts/s was
  // snapshotting all the time and lost 7-13 % of its throughput to it. At 2
  // recovery replays at most about two snapshots' worth of log (1M records:
  // 0.7-0.9 s), three with the schedule's jitter.
  uint64_t wal_bytes = wal_.recovered_bytes() + wal_.appended_bytes();
  bool wal_large = snapshot_schedule_.Due(wal_bytes - wal_bytes_at_snapshot_);
  if (!wal_large && !snapshot_requested_) return;
  // A transfer being received is staged outside the state an image shows,
  // and its begin record must stay in the log: wait until it is installed.
  if (replica_.receiving_transfer()) return;
  PrepareSnapshot();
}

// The loop's share of a freeze is the copy (~2 ms for 1M keys) into a
// buffer made ready beforehand: the last snapshot's, or else a new one
// whose page faults (10-27 ms on this kind of VM) happen on the thread
// pool.
void Node::PrepareSnapshot() {
  snapshot_busy_ = true;
  size_t slots = replica_.freeze_slots();
  if (spare_freeze_buffer_.capacity() >= slots) {
    StartSnapshot(std::move(spare_freeze_buffer_));
    return;
  }
  spare_freeze_buffer_ = {};  // Too small for the grown store: a new one.
  auto buffer = std::make_shared<core::FreezeBuffer>();
  core::Status queued = RunOffLoop(
      loop_, [buffer, slots] { *buffer = core::FreezeBuffer::Allocate(slots); },
      [this, buffer] {
        // The snapshot starts from the next Turn, right after its Execute.
        // Not here: this runs amid the poll phase's reads, whose writes
        // the replica has applied but the log has not yet received, and a
        // freeze now would put them in the snapshot and in the segment
        // after it as well (recovery then refuses that segment).
        snapshot_busy_ = false;
        if (!shutting_down_) spare_freeze_buffer_ = std::move(*buffer);
      });
  if (!queued.ok()) StartSnapshot(core::FreezeBuffer());
}

void Node::StartSnapshot(core::FreezeBuffer buffer) {
  uint64_t started_ms = uv_hrtime() / 1000000;
  uint64_t segment = 0;
  // Only --fsync always syncs the old segment here: acks wait on it, and
  // group commit leaves little to sync. Otherwise it could hold a second
  // of writes (or, with no, up to --snapshot-wal-bytes): a stall.
  WalFile::RotateSync sync = config_.fsync == FsyncPolicy::kAlways ? WalFile::RotateSync::kNow
                             : config_.fsync == FsyncPolicy::kEverySec
                                 ? WalFile::RotateSync::kLater
                                 : WalFile::RotateSync::kNever;
  if (core::Status s = wal_.Rotate(sync, &segment); !s.ok()) {
    snapshot_busy_ = false;
    spare_freeze_buffer_ = std::move(buffer);          // For the retry.
    if (s.code() == core::Code::kUnavailable) return;  // Try again next turn.
    Fatal(s.message());
    return;
  }
  snapshot_requested_ = false;
  wal_bytes_at_snapshot_ = wal_.recovered_bytes() + wal_.appended_bytes();
  ReleaseDurable();  // With kNow, the rotation synced everything appended so far.
  // The loop's whole cost: a copy of the store's slot array and of the
  // replication log. Encoding and writing happen on the snapshot thread.
  auto image = std::make_shared<core::ReplicaImage>(replica_.Freeze(std::move(buffer)));
  uint64_t frozen_ms = uv_hrtime() / 1000000 - started_ms;
  KV_LOG(kInfo, "snapshot %llu: %zu keys frozen in %llu ms; writing", (unsigned long long)segment,
         image->keys(), (unsigned long long)frozen_ms);
  auto encode = [image](std::string* out, const std::function<void()>& flush) {
    constexpr size_t kChunkBytes = 1 << 20;
    image->Visit(
        [&](const core::Record& record) {
          storage::AppendRecord(record, out);
          if (out->size() >= kChunkBytes) flush();
        },
        [&](const core::StoreEntry& entry) {
          storage::AppendWriteRecord(core::RecordKind::kTransferEntry, entry.origin(),
                                     entry.version_counts(), entry.tombstone(), entry.key(),
                                     entry.value(), out);
          if (out->size() >= kChunkBytes) flush();
        });
    core::Record end;
    end.kind = core::RecordKind::kSnapshotEnd;
    storage::AppendRecord(end, out);
  };
  // The freeze ends as soon as the image is encoded, not once the file is
  // synced: every write meanwhile copies its key's block (BM_StoreApplyBatch
  // /2), and syncing 170 MB takes a second or two.
  auto encoded = [frozen = image.get()] { frozen->Detach(); };
  snapshot_writer_.Start(
      loop_, segment, std::move(encode), std::move(encoded),
      [this, segment, started_ms, image](core::Status status, size_t bytes) mutable {
        // The encoder's reference is gone: free what the freeze retired
        // (up to every block written meanwhile) on the thread pool;
        // should that fail, it is freed here instead.
        image->Detach();  // If `encoded` never ran (no thread).
        spare_freeze_buffer_ = image->TakeBuffer();
        (void)RunOffLoop(loop_, [held = std::move(image)]() mutable { held.reset(); });
        OnSnapshotWritten(status, segment, bytes, started_ms);
      });
}

void Node::OnSnapshotWritten(core::Status status, uint64_t segment, size_t bytes,
                             uint64_t started_ms) {
  if (!status.ok()) {
    // The log still holds everything: nothing is lost, only not compacted.
    KV_LOG(kError, "snapshot %llu failed: %s", (unsigned long long)segment,
           status.message().c_str());
    snapshot_busy_ = false;
    ReplySnapshotWaiters(fb::Status::INTERNAL, status.message());
    return;
  }
  snapshot_schedule_.Written(bytes);
  // Unlinking a few hundred MB of segments and the old snapshot took the
  // loop 20-160 ms on ext4 (the filesystem frees every extent): the thread
  // pool does it. Nothing else touches files numbered below `segment`.
  auto remove = [dir = config_.data_dir, segment] {
    WalFile::RemoveSegmentsBefore(dir, segment);
    RemoveSnapshotsBefore(dir, segment);
  };
  auto finished = [this, segment, bytes, started_ms] {
    snapshot_busy_ = false;
    uint64_t took_ms = uv_hrtime() / 1000000 - started_ms;
    KV_LOG(kInfo, "snapshot %llu durable: %zu bytes in %llu ms; older log segments removed",
           (unsigned long long)segment, bytes, (unsigned long long)took_ms);
    ReplySnapshotWaiters(fb::Status::OK, "snapshot " + std::to_string(segment) + ": " +
                                             std::to_string(bytes) + " bytes in " +
                                             std::to_string(took_ms) + " ms");
  };
  if (!RunOffLoop(loop_, remove, finished).ok()) {
    remove();
    finished();
  }
}

void Node::ReplySnapshotWaiters(fb::Status status, const std::string& message) {
  for (auto [stream_id, slot] : snapshot_waiters_) {
    auto it = streams_.find(stream_id);
    if (it == streams_.end() || it->second->closing()) continue;
    Stream& stream = *it->second;
    encoder_.Encode(stream.request_id(slot), wire::AdminReplyFields{status, message},
                    stream.ReplyBuffer(slot));
    stream.ReplyDone(slot);
    MarkDirty(stream);
  }
  snapshot_waiters_.clear();
  FlushDirty();
}

// --- Output --------------------------------------------------------------------

void Node::Execute(core::Output& out) {
  for (const core::Event& event : out.events) LogEvent(event);
  if (!out.records.empty()) {
    wal_buffer_.clear();
    for (const core::Record& record : out.records) storage::AppendRecord(record, &wal_buffer_);
    if (core::Status s = wal_.Append(wal_buffer_); !s.ok()) {
      Fatal(s.message());
      return;
    }
  }
  // Under fsync=always nothing leaves before the records it follows are
  // durable: not a reply, not an ack, not a batch to a peer. Outputs queue
  // in order behind the sync that covers them.
  bool wait = config_.fsync == FsyncPolicy::kAlways &&
              (!waiting_.empty() || wal_.durable_bytes() < wal_.appended_bytes());
  if (!wait) {
    Send(out);
    return;
  }
  // Nothing to hold back (records only, as when a peer's batch was applied:
  // what answers it comes in a later output and waits for them then). While
  // a sync runs or is held, most turns are like that.
  if (out.replies.empty() && out.messages.empty() && out.resync_peers.empty() &&
      out.restart_links.empty()) {
    return;
  }
  core::Output queued;
  if (!spare_outputs_.empty()) {
    queued = std::move(spare_outputs_.back());
    spare_outputs_.pop_back();
  }
  std::swap(queued, out);  // `out` keeps the spare's capacity for the replica.
  queued.records.clear();
  queued.events.clear();
  group_commit_.Queued(queued.replies.size());
  waiting_.push_back({wal_.appended_bytes(), std::move(queued)});
  StartSync();
}

void Node::StartSync(bool hold_expired) {
  if (wal_.syncing() || waiting_.empty()) return;
  uint64_t now = uv_hrtime();
  // Held for the clients the last sync answered (core/group_commit.h),
  // unless the timer that ends the hold cannot be set.
  if (!hold_expired && !shutting_down_ && !group_commit_.ShouldStart(now) &&
      sync_hold_.Arm(group_commit_.StartBy())) {
    return;
  }
  sync_hold_.Disarm();
  group_commit_.SyncStarted(now);
  wal_.SyncAsync(loop_, [this](core::Status status) {
    group_commit_.SyncFinished(uv_hrtime());
    OnSynced(status);
  });
}

void Node::OnSynced(core::Status status) {
  if (!status.ok()) {
    Fatal(status.message());
    return;
  }
  ReleaseDurable();
  if (!waiting_.empty()) StartSync();  // Records appended during that sync.
  FlushDirty();
}

void Node::ReleaseDurable() {
  while (!waiting_.empty() && waiting_.front().wal_bytes <= wal_.durable_bytes()) {
    Send(waiting_.front().out);
    waiting_.front().out.Clear();
    spare_outputs_.push_back(std::move(waiting_.front().out));
    waiting_.pop_front();
  }
}

void Node::OnEverySec(uv_timer_t* handle) {
  auto* node = static_cast<Node*>(handle->data);
  node->wal_.SyncAsync(node->loop_, [node](core::Status status) {
    if (!status.ok()) node->Fatal(status.message());
  });
}

// The disk refused a write or a sync: the node can no longer keep its
// promise, so it stops rather than acknowledge anything more.
void Node::Fatal(const std::string& why) {
  KV_LOG(kError, "write-ahead log: %s; stopping", why.c_str());
  exit_code_ = 1;
  waiting_.clear();
  Shutdown("write-ahead log failure");
}

void Node::Send(core::Output& out) {
  for (const core::Reply& reply : out.replies) SendReply(reply);
  for (const core::PeerMessage& message : out.messages) {
    switch (message.type) {
      case core::PeerMessageType::kHelloAck:
      case core::PeerMessageType::kAck:
        SendToInbound(message);
        break;
      case core::PeerMessageType::kWriteBatch:
      case core::PeerMessageType::kTransferChunk:
        SendWrites(message.peer, message.type, message.writes);
        break;
      case core::PeerMessageType::kTransferBegin:
      case core::PeerMessageType::kTransferEnd:
        SendToOutbound(message);
        break;
    }
  }
  for (uint32_t peer : out.restart_links) RestartLink(peer);
  for (uint32_t peer : out.resync_peers) {
    if (Stream* stream = inbound_peers_[peer]) {
      KV_LOG(kWarn, "peer %s: causal buffer full; closing its link to resynchronise",
             PeerName(peer).c_str());
      stream->Close();
    }
  }
}

void Node::SendReply(const core::Reply& reply) {
  auto it = streams_.find(reply.token >> 32);
  if (it == streams_.end() || it->second->closing()) return;  // Client left.
  Stream& stream = *it->second;
  uint32_t slot = static_cast<uint32_t>(reply.token);
  wire::ReplyFields fields;
  fields.status = static_cast<fb::Status>(reply.code);
  fields.message = reply.message;
  fields.found = reply.found;
  fields.value = reply.value;
  fields.version = reply.version.counts();
  encoder_.Encode(stream.request_id(slot), fields, stream.ReplyBuffer(slot));
  stream.ReplyDone(slot);
  // Checked per reply, so one turn's replies cannot pile up past the cap.
  if (CloseIfOverOutputCap(stream)) return;
  MarkDirty(stream);
  if (stream.input_paused() && !stream.resume_queued &&
      stream.open_slots() <= kClientRequestsInFlightMax / 2) {
    stream.resume_queued = true;
    resume_.push_back(stream.id());
  }
}

void Node::SendWrites(uint32_t peer, core::PeerMessageType type,
                      const std::vector<core::Write>& writes) {
  PeerLink* link = links_[peer].get();
  Stream* stream = link ? link->stream() : nullptr;
  if (!stream) return;  // Down since; the log resends on reconnect.
  const size_t batch_bytes_max =
      std::min(kBatchFrameBytesSoftMax, config_.peer_frame_bytes_max / 2);
  size_t begin = 0;
  while (begin < writes.size()) {
    scratch_fields_.clear();
    size_t bytes = 0;
    size_t end = begin;
    for (; end < writes.size(); ++end) {
      const core::Write& write = writes[end];
      size_t size = write.key.size() + write.value.size() + 16 * write.clock.size() + 64;
      if (end > begin && bytes + size > batch_bytes_max) break;
      bytes += size;
      scratch_fields_.push_back(
          {write.origin, write.clock.counts(), write.is_delete, write.key, write.value});
    }
    if (type == core::PeerMessageType::kTransferChunk) {
      Emit(*stream, 0, wire::TransferChunkFields{scratch_fields_});
    } else {
      Emit(*stream, 0, wire::WriteBatchFields{scratch_fields_});
    }
    begin = end;
  }
  if (stream->pending_output_bytes() > kPeerOutputBytesPause) {
    KV_LOG(kDebug, "peer %s: output backed up; pausing replication", PeerName(peer).c_str());
    replica_.SetLinkPaused(peer, true);
  }
}

void Node::SendToOutbound(const core::PeerMessage& message) {
  PeerLink* link = links_[message.peer].get();
  Stream* stream = link ? link->stream() : nullptr;
  if (!stream) return;  // Down since; a new link starts a new transfer.
  if (message.type == core::PeerMessageType::kTransferBegin) {
    Emit(*stream, 0, wire::TransferBeginFields{message.clock.counts()});
  } else {
    Emit(*stream, 0, wire::TransferEndFields{});
  }
  MarkDirty(*stream);
}

void Node::RestartLink(uint32_t peer) {
  PeerLink* link = links_[peer].get();
  Stream* stream = link ? link->stream() : nullptr;
  if (!stream) return;
  KV_LOG(kWarn, "peer %s: too far behind for the replication log; relinking for a state transfer",
         PeerName(peer).c_str());
  stream->Close();  // The link redials; its hello-ack starts the transfer.
}

void Node::SendToInbound(const core::PeerMessage& message) {
  Stream* stream = inbound_peers_[message.peer];
  if (!stream || stream->closing()) return;
  // On an authenticated link the HelloAck went out in the handshake; the
  // core's HelloAck becomes the first sealed Ack, which tells the dialer
  // its proof was accepted and where to start streaming.
  if (message.type == core::PeerMessageType::kHelloAck && !stream->sealed()) {
    wire::HelloAckFields fields;
    fields.node_index = config_.self();
    fields.clock = message.clock.counts();
    fields.cluster_id = message.cluster_id;
    Emit(*stream, 0, fields);
  } else {
    Emit(*stream, 0, wire::AckFields{message.clock.counts(), message.cluster_id});
  }
}

// Buffering is normal under concurrent load, so its info lines are rate
// limited: the default level stays quiet under load yet shows a demo.
bool Node::WriteEventLogAllowed() {
  if (LogEnabled(LogLevel::kDebug)) return true;
  uint64_t now = now_ms();
  if (now - log_window_start_ms_ >= 1000) {
    if (log_suppressed_ > 0) {
      KV_LOG(kInfo, "%llu more write events not logged in the last second",
             (unsigned long long)log_suppressed_);
    }
    log_window_start_ms_ = now;
    log_lines_in_window_ = 0;
    log_suppressed_ = 0;
  }
  if (log_lines_in_window_ < kWriteEventLinesPerSecond) {
    ++log_lines_in_window_;
    return true;
  }
  ++log_suppressed_;
  return false;
}

void Node::LogEvent(const core::Event& event) {
  using Kind = core::Event::Kind;
  unsigned origin = event.origin + 1;
  auto seq = static_cast<unsigned long long>(event.seq);
  const char* key = event.key.c_str();
  switch (event.kind) {
    case Kind::kApplied:
      if (event.from_buffer || event.released > 0) {
        if (!WriteEventLogAllowed()) break;
        if (event.from_buffer) {
          KV_LOG(kInfo, "applied %u:%llu %s from the buffer", origin, seq, key);
        } else {
          KV_LOG(kInfo, "applied %u:%llu %s from %s; it released %u buffered write(s)", origin, seq,
                 key, PeerName(event.peer).c_str(), event.released);
        }
      } else {
        KV_LOG(kDebug, "applied %u:%llu %s", origin, seq, key);
      }
      break;
    case Kind::kBuffered:
      if (WriteEventLogAllowed()) {
        KV_LOG(kInfo, "buffered write %u:%llu %s from %s waiting for %u:%llu", origin, seq, key,
               PeerName(event.peer).c_str(), event.waiting_for.origin + 1,
               (unsigned long long)event.waiting_for.seq_first);
      }
      break;
    case Kind::kDuplicate:
      KV_LOG(kDebug, "dropped duplicate %u:%llu from %s", origin, seq,
             PeerName(event.peer).c_str());
      break;
    case Kind::kBufferFull:
      KV_LOG(kWarn, "causal buffer full: refused %u:%llu from %s", origin, seq,
             PeerName(event.peer).c_str());
      break;
    case Kind::kRecovering:
      KV_LOG(kWarn, "peers know own writes up to %llu; refusing writes until recovered", seq);
      break;
    case Kind::kRecovered:
      KV_LOG(kInfo, "recovered own writes up to %llu; accepting writes", seq);
      break;
    case Kind::kTransferSending:
      KV_LOG(kInfo, "peer %s: its clock is behind our log; sending our state (%llu keys)",
             PeerName(event.peer).c_str(), seq);
      break;
    case Kind::kTransferInstalled:
      KV_LOG(kInfo, "installed a state transfer of %llu keys from %s; clock %s", seq,
             PeerName(event.peer).c_str(), replica_.clock().ToString().c_str());
      break;
    case Kind::kTransferRefused:
      KV_LOG(kInfo, "peer %s: refused its state transfer (another is under way)",
             PeerName(event.peer).c_str());
      break;
    case Kind::kIdentityRecorded:
      KV_LOG(kInfo, "member of cluster %s; accepting writes", key);
      break;
    case Kind::kLogDetached:
      KV_LOG(kWarn,
             "peer %s: the replication log reached %llu bytes; no longer kept for it (it will "
             "catch up by state transfer)",
             PeerName(event.peer).c_str(), seq);
      break;
  }
}

void Node::MarkDirty(Stream& stream) {
  if (stream.dirty) return;
  stream.dirty = true;
  (stream.peer_role() ? dirty_peers_ : dirty_).push_back(stream.id());
}

void Node::FlushDirty() {
  // Peer links first, then clients. A turn's replies are queued before its
  // replication batches, and every write(2) on this kind of VM costs
  // 10-20 us: flushed in that order, the batches left a busy node one
  // client write per connection after the acknowledgements, and every
  // acknowledged write reached its peers that much later (three nodes,
  // writes at one, 100k puts/s: lag p50 0.19-0.23 ms against Redis's 0.11
  // at the same CPU). Now a turn's batches are written (or queued behind a
  // link's write in progress) before any client hears OK, much as Redis
  // feeds its replicas while it runs the command.
  //
  // Flushing may mark streams dirty again (a drained peer link resumes its
  // batches): those wait for the next flush, not this loop.
  flushing_peers_.swap(dirty_peers_);
  flushing_.swap(dirty_);
  for (std::vector<uint64_t>* ids : {&flushing_peers_, &flushing_}) {
    for (uint64_t id : *ids) {
      auto it = streams_.find(id);
      if (it == streams_.end()) continue;
      Stream& stream = *it->second;
      stream.dirty = false;
      if (stream.closing()) continue;
      if (!stream.peer_role() && CloseIfOverOutputCap(stream)) continue;
      stream.Flush();
    }
    ids->clear();
  }
}

// --- Peer links ------------------------------------------------------------------

void Node::EncodeHello(std::string_view nonce, std::string* out) {
  wire::HelloFields fields;
  fields.cluster_fingerprint = fingerprint_;
  fields.node_index = config_.self();
  fields.nonce = nonce;
  fields.cluster_id = replica_.cluster_id();
  encoder_.Encode(0, fields, out);
}

void Node::EncodeHelloProof(std::string_view proof, std::string* out) {
  encoder_.Encode(0, wire::HelloProofFields{proof}, out);
}

void Node::OnLinkUp(uint32_t peer, std::span<const uint64_t> clock, std::string_view cluster_id) {
  Stream* stream = links_[peer]->stream();
  replica_.SetLinkPaused(peer, false);
  core::Status s = replica_.LinkToPeerUp(peer, core::VectorClock(clock), now_ms(), cluster_id);
  if (!s.ok()) {
    KV_LOG(kWarn, "peer %s: %s; closing", PeerName(peer).c_str(), s.ToString().c_str());
    stream->Close();
  }
}

void Node::OnLinkAck(uint32_t peer, std::span<const uint64_t> clock, std::string_view cluster_id) {
  core::Status s = replica_.PeerAck(peer, core::VectorClock(clock), now_ms(), cluster_id);
  if (!s.ok()) {
    KV_LOG(kWarn, "peer %s: bad ack: %s; closing", PeerName(peer).c_str(), s.ToString().c_str());
    if (Stream* stream = links_[peer]->stream()) stream->Close();
  }
}

void Node::OnLinkDrained(uint32_t peer) { replica_.SetLinkPaused(peer, false); }

void Node::OnLinkDown(uint32_t peer) { replica_.LinkToPeerDown(peer); }

// --- Shutdown ---------------------------------------------------------------------

void Node::Shutdown(const char* why) {
  if (shutting_down_ || !handles_initialised_) return;
  shutting_down_ = true;
  KV_LOG(kInfo, "shutting down (%s)", why);
  if (notifier_) {
    notifier_->Stopping();
    notifier_->Stop();
  }
  Turn();  // Answer what is ready.
  if (core::Status s = wal_.SyncNow(); s.ok()) {
    OnSynced(s);  // Releases every queued reply: all of it is durable now.
  } else {
    KV_LOG(kError, "write-ahead log: %s", s.message().c_str());
    exit_code_ = 1;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_listener_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&admin_listener_), nullptr);
  if (admin_bound_) unlink(config_.admin_socket.c_str());
  uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), nullptr);
  sync_hold_.Close();
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sighup_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&everysec_), nullptr);
  for (auto& link : links_) {
    if (link) link->Stop();
  }
  std::vector<Stream*> open;
  for (auto& [id, stream] : streams_) open.push_back(stream);
  for (Stream* stream : open) stream->CloseAfterFlush();
  // A client that never reads would hold its flush, and the process,
  // forever: past the deadline whatever is still open is closed outright.
  // SIGTERM/SIGINT stay handled meanwhile (a second one does the same now).
  uv_timer_start(&shutdown_timer_, OnShutdownTimer, kShutdownFlushMs, 0);
  MaybeFinishShutdown();
}

void Node::OnShutdownTimer(uv_timer_t* handle) {
  static_cast<Node*>(handle->data)->ForceCloseStreams();
}

void Node::ForceCloseStreams() {
  if (!streams_.empty()) {
    KV_LOG(kWarn, "shutdown: closing %zu connection(s) that did not drain", streams_.size());
  }
  std::vector<Stream*> open;
  for (auto& [id, stream] : streams_) open.push_back(stream);
  for (Stream* stream : open) stream->Close();
}

// The last handles go once every connection is closed.
void Node::MaybeFinishShutdown() {
  if (!shutting_down_ || shutdown_finished_ || !streams_.empty()) return;
  shutdown_finished_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&shutdown_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
}

}  // namespace kvd::io
