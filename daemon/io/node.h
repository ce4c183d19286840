// Node: the libuv shell around one core::Replica. It owns the listeners
// (TCP for clients and peers, a Unix socket for administration), every
// connection, the outbound peer links, the timers and the signal handlers.
//
// Each loop turn ends in Turn() (a uv_prepare handle, like Redis's
// beforeSleep): it takes the replica's Output, writes the replies, acks and
// replication batches into the connections' output buffers, and flushes
// every dirty connection once. Everything else is a callback that turns
// bytes into replica inputs.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/config.h"
#include "daemon/core/group_commit.h"
#include "daemon/core/loop_health.h"
#include "daemon/core/replica.h"
#include "daemon/core/snapshot_schedule.h"
#include "daemon/io/limits.h"
#include "daemon/io/notify.h"
#include "daemon/io/peer_link.h"
#include "daemon/io/precise_timer.h"
#include "daemon/io/snapshot_file.h"
#include "daemon/io/stream.h"
#include "daemon/io/wal_file.h"
#include "schema/encoder.h"
#include "schema/limits.h"

namespace kvd::io {

class Node : public StreamHandler, public PeerLinkOwner {
 public:
  explicit Node(const Config& config);
  ~Node() override;

  // Binds the listeners and starts dialing peers. An error (port in use,
  // bad address) means the node must exit.
  core::Status Start(uv_loop_t* loop);
  // Stops accepting, answers what it can, closes everything; uv_run then
  // returns once every handle is closed.
  void Shutdown(const char* why);
  // SIGHUP re-reads the configuration through this and applies what can
  // change at run time (the log level).
  // Non-zero if the node stopped because of a failure.
  int exit_code() const { return exit_code_; }
  void SetReloader(std::function<core::Status(Config*)> reload) { reload_ = std::move(reload); }

  // StreamHandler, for accepted connections.
  void OnConnected(Stream& stream, int status) override;
  void OnFrame(Stream& stream, const wire::Frame& frame) override;
  void OnFramesDelivered(Stream& stream) override;
  void OnBadInput(Stream& stream, const wire::WireError& error) override;
  void OnDrained(Stream& stream) override;
  void OnClosed(Stream& stream) override;

  // PeerLinkOwner.
  uint64_t NextStreamId() override { return next_stream_id_++; }
  void AddStream(Stream& stream) override { streams_[stream.id()] = &stream; }
  void RemoveStream(Stream& stream) override {
    streams_.erase(stream.id());
    MaybeFinishShutdown();
  }
  void EncodeHello(std::string_view nonce, std::string* out) override;
  void EncodeHelloProof(std::string_view proof, std::string* out) override;
  void MarkDirty(Stream& stream) override;
  void OnLinkUp(uint32_t peer, std::span<const uint64_t> clock,
                std::string_view cluster_id) override;
  void OnLinkAck(uint32_t peer, std::span<const uint64_t> clock,
                 std::string_view cluster_id) override;
  void OnLinkDrained(uint32_t peer) override;
  void OnLinkDown(uint32_t peer) override;

 private:
  // --- Loop ---------------------------------------------------------------
  static void OnPrepare(uv_prepare_t* handle);
  static void OnTick(uv_timer_t* handle);
  static void OnSignal(uv_signal_t* handle, int signum);
  static void OnTcpConnection(uv_stream_t* server, int status);
  static void OnAdminConnection(uv_stream_t* server, int status);
  void Accept(uv_stream_t* server, Stream::Transport transport);
  // Counts an accepted TCP connection against --max-clients; false if it
  // must be refused.
  bool Admit(Stream& stream);
  void Uncount(Stream& stream);
  void RefuseOverLimit(Stream& stream, uint64_t request_id);
  void Turn();
  // Resumes connections whose requests in flight fell back under the bound;
  // true if any did.
  bool ResumeInputs();
  // Closes a client past --client-output-bytes-max; true if it did.
  bool CloseIfOverOutputCap(Stream& stream);
  void CloseSilentConnections();
  void CloseIdleConnections();
  // Closes LoopHealth's window (once a second, at a turn boundary), and
  // warns of a slow turn.
  void CloseLoopWindow(uint64_t now_ns, uint64_t idle_ns);
  void RaiseFileLimit();
  void Reload();
  static void OnShutdownTimer(uv_timer_t* handle);
  void ForceCloseStreams();
  void MaybeFinishShutdown();
  std::string Summary() const;
  uint64_t now_ms() const { return uv_now(loop_); }
  core::Status Listen();

  // --- Output of the replica -----------------------------------------------
  // Logs events and persists records, then sends (or, under fsync=always,
  // queues until the fdatasync that covers them completes).
  void Execute(core::Output& out);
  void Send(core::Output& out);
  // Starts the fdatasync the queued outputs wait for, unless group commit
  // holds it for the clients the last one released (core/group_commit.h)
  // and the hold has not expired.
  void StartSync(bool hold_expired = false);
  void OnSynced(core::Status status);
  static void OnEverySec(uv_timer_t* handle);
  void Fatal(const std::string& why);
  // Sends, in order, every queued output the WAL's durable bytes cover.
  void ReleaseDurable();

  // --- Snapshots -------------------------------------------------------------
  core::Status Recover();
  void MaybeSnapshot();
  void PrepareSnapshot();
  void StartSnapshot(core::FreezeBuffer buffer);
  void OnSnapshotWritten(core::Status status, uint64_t segment, size_t bytes, uint64_t started_ms);
  void ReplySnapshotWaiters(fb::Status status, const std::string& message);
  void SendReply(const core::Reply& reply);
  // Write batches and transfer chunks, split into frames of at most about
  // kBatchFrameBytesSoftMax.
  void SendWrites(uint32_t peer, core::PeerMessageType type,
                  const std::vector<core::Write>& writes);
  void SendToOutbound(const core::PeerMessage& message);
  void RestartLink(uint32_t peer);
  void SendToInbound(const core::PeerMessage& message);
  void LogEvent(const core::Event& event);
  bool WriteEventLogAllowed();
  void FlushDirty();

  // --- Input (dispatch.cc) --------------------------------------------------
  void HandleClientRequest(Stream& stream, const fb::Envelope& envelope);
  // Runs the gathered client requests (see gathered_).
  void SubmitGathered();
  void HandleAdminRequest(Stream& stream, const fb::Envelope& envelope);
  void HandleHello(Stream& stream, const fb::Envelope& envelope);
  void HandleHelloProof(Stream& stream, const fb::Envelope& envelope);
  // Makes an accepted connection the link from `peer` (Hello accepted and,
  // with a cluster secret, its proof checked).
  void AcceptPeer(Stream& stream, uint32_t peer);
  void HandleClientAuth(Stream& stream, const fb::Envelope& envelope);
  // Whether a connection may send client and admin requests: the client
  // password is not required, or it was presented.
  bool ClientAllowed(const Stream& stream) const;
  void HandleWriteBatch(Stream& stream, const fb::WriteBatch& batch);
  void HandleTransfer(Stream& stream, const fb::Envelope& envelope);
  // Fills scratch_writes_ from a verified vector of Write tables.
  void ToScratchWrites(const flatbuffers::Vector<flatbuffers::Offset<fb::Write>>* writes);
  void ClosePeerStream(Stream& stream, const core::Status& status, const char* what);
  void ReplyStatus(Stream& stream, uint64_t request_id);
  void ReplyBuffer(Stream& stream, uint64_t request_id, uint32_t limit);
  void ReplyAdmin(Stream& stream, uint64_t request_id, fb::Status status,
                  const std::string& message);
  // Appends a frame to a connection's output (sealed on an authenticated
  // peer connection) and marks the connection for the end-of-turn flush.
  template <typename Fields>
  void Emit(Stream& stream, uint64_t request_id, const Fields& fields) {
    stream.SealLast(encoder_.Encode(request_id, fields, &stream.output()));
    MarkDirty(stream);
  }
  // Sends an Error frame; with `close`, closes the connection after it.
  void SendError(Stream& stream, uint64_t request_id, fb::Status status, const std::string& message,
                 bool close);
  std::string PeerName(uint32_t peer) const { return "n" + std::to_string(peer + 1); }
  std::string StreamName(const Stream& stream) const;

  Config config_;
  core::Replica replica_;
  wire::Limits limits_;
  wire::Encoder encoder_;
  uint64_t fingerprint_;
  uv_loop_t* loop_ = nullptr;

  uv_tcp_t tcp_listener_;
  uv_pipe_t admin_listener_;
  uv_prepare_t prepare_;
  uv_timer_t tick_;
  uv_signal_t sigterm_;
  uv_signal_t sigint_;
  uv_signal_t sighup_;
  uv_timer_t everysec_;
  uv_timer_t shutdown_timer_;
  bool shutdown_finished_ = false;
  std::unique_ptr<Notifier> notifier_;
  std::function<core::Status(Config*)> reload_;
  bool shutting_down_ = false;
  int exit_code_ = 0;
  bool handles_initialised_ = false;
  bool admin_bound_ = false;

  uint64_t next_stream_id_ = 1;
  std::unordered_map<uint64_t, Stream*> streams_;  // Accepted and outbound; not owned.
  // Stream ids to flush this turn: peer links (flushed first) and the rest.
  std::vector<uint64_t> dirty_peers_;
  std::vector<uint64_t> dirty_;
  std::vector<uint64_t> flushing_peers_;  // The two while FlushDirty runs.
  std::vector<uint64_t> flushing_;
  std::vector<uint64_t> resume_;                  // Stream ids to ResumeInput().
  std::vector<Stream*> inbound_peers_;            // By peer index; nullptr if none.
  std::vector<std::unique_ptr<PeerLink>> links_;  // By peer index; nullptr for self.
  std::vector<core::Write> scratch_writes_;       // Reused for incoming batches.
  // Accepted connections by deadline for their first frame (FIFO: the
  // timeout is the same for all, so deadlines come in order).
  std::deque<std::pair<uint64_t, uint64_t>> handshake_deadlines_;
  // --max-clients: connections counted, and those let in beyond it until
  // their first frame shows whether they are a peer's.
  size_t client_connections_ = 0;
  size_t reserve_connections_ = 0;
  uint64_t refusal_window_start_ms_ = 0;
  uint64_t refusals_in_window_ = 0;
  // Client requests of the frames one read delivered, submitted together
  // when the read's frames are done (Replica::Submit prefetches their store
  // lookups: a third of a put's time with 1M keys was those cache misses).
  // A frame's bytes last only until the next frame, so keys, values and
  // contexts are copied into reused buffers; any other frame submits the
  // gathered ones first, so a connection's requests keep their order.
  struct GatheredRequest {
    core::Replica::RequestType op;
    uint64_t token;
    uint64_t session;
    size_t key_at, key_bytes, value_at, value_bytes;
    size_t context;  // Into gathered_contexts_; kNoContext: none.
  };
  static constexpr size_t kNoContext = ~size_t{0};
  std::vector<GatheredRequest> gathered_;
  std::string gathered_bytes_;
  std::vector<core::VectorClock> gathered_contexts_;
  size_t gathered_context_count_ = 0;
  std::vector<core::Replica::ClientRequest> gathered_views_;
  uint64_t last_idle_sweep_ms_ = 0;
  core::LoopHealth loop_health_;          // Fed by every turn; `kvctl status` shows it.
  std::vector<Stream*> scratch_streams_;  // Reused by the idle sweep.

  // Durability. Outputs wait here, in order, for the fsync covering the
  // WAL offset they were produced at (fsync=always only).
  WalFile wal_;
  std::string wal_buffer_;
  SnapshotWriter snapshot_writer_;
  // Recovered plus appended WAL bytes when the last snapshot began.
  uint64_t wal_bytes_at_snapshot_ = 0;
  // How far the log grows before the next snapshot.
  core::SnapshotSchedule snapshot_schedule_;
  bool snapshot_requested_ = false;
  // While a new freeze buffer is made on the thread pool, and from the
  // freeze until the old files are removed.
  bool snapshot_busy_ = false;
  // The last snapshot's freeze buffer, kept for the next one: making a new
  // one (16-32 MB for 1M keys) on the thread pool while the loops ran
  // raised all three nodes' replication lag to 7-19 ms for that second.
  core::FreezeBuffer spare_freeze_buffer_;
  // Admin requests waiting for the snapshot under way (or the next one).
  std::vector<std::pair<uint64_t, uint32_t>> snapshot_waiters_;  // Stream id, slot.
  struct Waiting {
    uint64_t wal_bytes;
    core::Output out;
  };
  std::deque<Waiting> waiting_;
  core::GroupCommit group_commit_;
  PreciseTimer sync_hold_;                         // Ends group commit's hold; unusable: no hold.
  std::vector<core::Output> spare_outputs_;        // Recycled, capacity kept.
  std::vector<wire::WriteFields> scratch_fields_;  // Reused for outgoing batches.
  uint64_t log_window_start_ms_ = 0;
  uint64_t log_lines_in_window_ = 0;
  uint64_t log_suppressed_ = 0;
};

}  // namespace kvd::io
