// kvd::client::Client: a blocking client for one kvd node, used by kvctl,
// by the C API (kvclient.h) and through it by the integration tests.
//
//   auto client = Client::Connect("127.0.0.1:7001", {});
//   if (!client.ok()) { report(client.error()); return; }
//   auto put = client->Put("x", "1");           // Result<Reply>
//   auto get = client->Get("x");                // status kOk or kNotFound
//
// Sessions (DESIGN §1): the client keeps a context, a vector clock. Every
// request carries it when it is non-empty, and every OK or NOT_FOUND reply's
// version is merged into it (entry-wise maximum). Moving a context to
// another Client (context() / set_context()) carries the session to another
// node: that node serves the request only once it has seen everything the
// context names, or answers TIMEOUT.
//
// Errors are values (result.h); nothing throws. After a client-side
// timeout, a protocol error or an Error frame from the server the
// connection is unusable (a late reply could not be matched reliably) and
// every later call fails with kConnection: connect again. Server statuses in
// a Reply (BAD_REQUEST, TOO_LARGE, TIMEOUT, UNAVAILABLE...) leave the
// connection usable.
//
// Pipelining: SendPut/SendGet/SendDelete queue requests, Flush() writes
// them, ReceiveReply() returns the replies in request order. The blocking
// calls (Put, Get, Status...) need an empty pipeline.
//
// Node numbering: this API uses the wire's 0-based node *indexes*
// (node_index, peer_index, origin). User-facing text (kvctl, the C API) says
// 1-based node *ids*: id = index + 1.
//
// Not thread-safe: one thread uses a Client at a time. Movable, not copyable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ctl/address.h"
#include "ctl/result.h"
#include "schema/encoder.h"
#include "schema/limits.h"

namespace kvd::client {

class Connection;

// A session context or a version: one counter per node, in cluster order.
// Empty means "none".
using Context = std::vector<uint64_t>;

// Entry-wise maximum of *into and `other`, into *into. A shorter clock
// counts as zeros beyond its end (an empty context merges to `other`).
void MergeInto(Context* into, std::span<const uint64_t> other);

// True if `clock` has every entry of `context` (missing entries are zeros).
bool Covers(std::span<const uint64_t> clock, std::span<const uint64_t> context);

struct Options {
  // Both <= 0: wait forever.
  int connect_timeout_ms = 5000;
  // Bounds each blocking call: sending the request and receiving its reply.
  // Keep it above the server's context wait (kvd --context-wait-ms, 1000 by
  // default) to see the server's TIMEOUT rather than a client kTimedOut.
  int request_timeout_ms = 5000;
  // Largest frame accepted from the server (the prefix value).
  size_t frame_bytes_max = wire::kFrameBytesMaxDefault;
  // Non-empty: Connect() presents it (ClientAuth) before returning, for a
  // node started with --client-secret-file. A node without one accepts any.
  std::string password;
};

// Which request a pipelined reply answers.
enum class RequestKind : uint8_t {
  kPut,
  kGet,
  kDelete,
  kStatus,
  kBuffer,
  kLink,
  kShutdown,
  kSnapshot,
  kAuth,
};

// The answer to a put, get or delete.
struct Reply {
  uint64_t request_id = 0;
  RequestKind kind = RequestKind::kGet;
  // kOk or kNotFound from the blocking calls; ReceiveReply() also hands out
  // the other wire statuses, with `message` saying why.
  Code status = Code::kOk;
  std::string message;
  // Get: the key has a live value. Put/delete: as the server reports it.
  bool found = false;
  std::string value;
  // Put/delete: the write's clock. Get: the clock of the value or tombstone.
  Context version;
};

struct PeerStatus {
  uint32_t node_index = 0;
  std::string address;
  bool connected_out = false;  // This node's link to the peer is up.
  bool connected_in = false;   // The peer's link to this node is up.
  bool held = false;           // Held by fault injection (link hold).
  Context acked;               // The peer's clock as its last Ack showed; may be empty.
};

// How the node's event loop spent its last whole second (all 0 in its first
// second). `reported` is false for nodes older than this account.
struct LoopStatus {
  bool reported = false;
  uint64_t window_us = 0;
  uint64_t busy_us = 0;  // Not waiting for events.
  uint64_t cpu_us = 0;   // On a CPU.
  uint64_t turns = 0;
  uint64_t longest_turn_us = 0;
  uint64_t cpu_wait_us = 0;  // Ready but not running (0: the kernel does not say).
};

struct NodeStatus {
  uint32_t node_index = 0;
  Context clock;
  uint64_t buffered = 0;
  uint64_t keys = 0;
  bool accepting_writes = false;
  uint64_t log_entries = 0;
  std::vector<PeerStatus> peers;
  std::string cluster_id;  // Empty until the node has recorded its identity.
  LoopStatus loop;
};

// Writes (origin, seq_first..seq_last) a buffered write waits for.
struct MissingRange {
  uint32_t origin = 0;
  uint64_t seq_first = 0;
  uint64_t seq_last = 0;
};

struct BufferedWrite {
  uint32_t origin = 0;
  uint64_t seq = 0;
  std::string key;
  bool is_delete = false;
  std::vector<MissingRange> missing;
};

struct BufferListing {
  std::vector<BufferedWrite> entries;
  uint64_t total = 0;  // All buffered writes; entries may hold fewer.
};

// A frame as received, for tests that talk to the server byte by byte.
struct RawFrame {
  uint64_t request_id = 0;
  uint8_t type = 0;    // fb::Message number: Reply = 4, Error = 16...
  uint8_t status = 0;  // Reply, AdminReply and Error; else 0.
  std::string message;
  bool found = false;
  std::string value;
  Context version;
  std::string bytes;  // The whole frame, size prefix included.
};

class Client {
 public:
  // `address` as ParseAddress (address.h) reads it: "HOST:PORT", or a Unix
  // socket path for a node's admin socket.
  static Result<Client> Connect(std::string_view address, const Options& options);
  static Result<Client> Connect(const Endpoint& endpoint, const Options& options);

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  // Presents the client password (Connect() does when Options::password is
  // set). A wrong one is kUnauthorized and the node closes the connection.
  Result<void> Authenticate(std::string_view password);

  // --- Key-value requests (blocking) ------------------------------------------
  Result<Reply> Put(std::string_view key, std::string_view value);
  // status kOk with found = true, or kNotFound.
  Result<Reply> Get(std::string_view key);
  Result<Reply> Delete(std::string_view key);

  // --- Session -------------------------------------------------------------------
  const Context& context() const { return context_; }
  void set_context(Context context) { context_ = std::move(context); }
  // The last put/get/delete reply with status kOk or kNotFound.
  const Reply& last_reply() const { return last_reply_; }

  // --- Administration (blocking) ---------------------------------------------------
  // Status works over TCP and the admin socket; the others on the admin
  // socket only (over TCP the node answers kUnauthorized).
  Result<NodeStatus> Status();
  // limit 0: the node's default.
  Result<BufferListing> Buffer(uint32_t limit = 0);
  // Holds (cuts) or releases replication to the peer at peer_index.
  Result<void> Link(uint32_t peer_index, bool hold);
  // Asks the node to shut down; it answers, then closes.
  Result<void> Shutdown();
  // Asks the node to write a snapshot; answers once it is durable, with
  // the node's summary ("snapshot N: BYTES bytes in MS ms").
  Result<std::string> Snapshot();

  // --- Pipelining -----------------------------------------------------------------
  // Each queues one request carrying the current context and returns its
  // request id. Nothing is sent until Flush(). Fails only on an unusable
  // connection or a key and value too large to encode (over 1 GiB).
  Result<uint64_t> SendPut(std::string_view key, std::string_view value);
  Result<uint64_t> SendGet(std::string_view key);
  Result<uint64_t> SendDelete(std::string_view key);
  Result<void> Flush();
  // The reply to the oldest request not yet answered, any wire status (see
  // Reply). Sends queued requests first. kInvalidArgument if none is pending.
  Result<Reply> ReceiveReply();
  // Requests queued or sent whose replies have not been received.
  size_t pending() const { return pending_.size(); }

  // --- Raw access, for protocol tests -----------------------------------------------
  // Sends bytes as they are. Replies to them are not tracked.
  Result<void> SendRaw(std::string_view bytes);
  // The next frame from the server, whatever it is (it still passed the
  // verifier and the meaning checks; anything else is kProtocol).
  Result<RawFrame> ReceiveRawFrame(int timeout_ms);
  // Waits up to timeout_ms for the server to close the connection; frames
  // arriving meanwhile stay readable by ReceiveRawFrame().
  bool WaitClosed(int timeout_ms);

  // The next request id this client will use.
  uint64_t next_request_id() const { return next_request_id_; }
  const Options& options() const { return options_; }
  void set_request_timeout_ms(int timeout_ms) { options_.request_timeout_ms = timeout_ms; }
  // What the client checks the server's frames against: the cluster size is
  // unknown (0) and key/value caps are the frame cap, as the server's own
  // caps are unknown too.
  const wire::Limits& limits() const { return limits_; }

 private:
  Client(std::unique_ptr<Connection> connection, const Options& options);

  struct Pending {
    uint64_t request_id;
    RequestKind kind;
  };
  template <typename Fields>
  uint64_t Queue(RequestKind kind, const Fields& fields);
  // Checks that a key and value can be encoded and sent.
  Result<void> CheckSendable(std::string_view key, std::string_view value) const;
  // Sends one request and waits for its reply frame, copied out by `take`.
  template <typename T, typename Fields, typename Take>
  Result<T> Call(RequestKind kind, const Fields& fields, Take take);
  // Fails unless the connection is usable and nothing is pipelined.
  Result<void> ReadyForCall() const;
  Result<void> ReadyToSend() const;
  // After a failed Flush(): an Error frame the server sent before closing
  // says more than the broken pipe does.
  Error FailAfterSend(Error error);
  // Records that the connection is now unusable, and why.
  Error Fail(Error error);
  // An Error frame from the server: its status and message.
  Error ServerError(uint8_t status, std::string_view message);
  // Converts a Reply frame and merges its version into the context.
  Reply TakeReply(const Pending& pending, const fb::Envelope& envelope);

  std::unique_ptr<Connection> connection_;
  Options options_;
  wire::Limits limits_;
  // unique_ptr: Encoder is neither copyable nor movable.
  std::unique_ptr<wire::Encoder> encoder_;
  uint64_t next_request_id_ = 1;
  std::deque<Pending> pending_;
  Context context_;
  Reply last_reply_;
  // Set once the connection is unusable.
  std::unique_ptr<Error> failure_;
};

}  // namespace kvd::client
