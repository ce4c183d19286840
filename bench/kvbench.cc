// kvbench: a closed-loop load generator for kvd, Redis and uv_ceiling.
//
// One libuv loop on one thread, like the daemon. Each of C connections keeps
// exactly P requests in flight: every reply is verified, recorded and
// replaced by a new request. Requests produced during a loop turn are sent
// with one write per connection, from one place (OnCheck), so the client
// makes as few syscalls as the server it measures.
//
// Phases: optional preload (PUT every key once), warm-up (load, nothing
// recorded), measurement (throughput and latency recorded), then the
// connections are closed and the report printed (text, or JSON with --json).
//
// Replication lag (--lag-sample N, with a node to watch besides the one
// written to, from --nodes or --lag-nodes): every N-th PUT
// of the measurement goes to a fresh key "lag:<seq>" that nothing else
// writes. When its acknowledgement arrives, one probe connection per other
// node (separate from the load connections) polls that key until the node
// returns it; a probe connection asks for every key still missing once per
// round (up to 64 GETs in flight), so a backlog does not delay the polls. The lag of the write is
// the time from the acknowledgement to the reply that showed it on the last other node: an upper
// bound, off by at most one probe round trip.
//
// Rate limit (--rate R): the load connections together issue at most R
// requests per second (paced by a 1 ms timer, bursts capped at 5 ms worth),
// so a run can hold a server at a chosen fraction of its maximum. Latency is
// still measured from when a request is sent, not from when it was due.
//
// Loop busy (--server-pids P1,P2,...): the share of the measurement each
// server's main thread (its event loop) and kvbench's own loop spent on a
// CPU, from /proc and getrusage, so a table can say which side was the
// bottleneck (bench/cpu_usage.h).
//
// Protocols:
//   kv       kvd frames (schema/PROTOCOL.md): PutRequest/GetRequest, replies
//            decoded by kvwire's FrameDecoder, checked by CheckEnvelope, and
//            matched by request id and status.
//   resp     Redis SET/GET over RESP2, replies parsed and checked.
//   ceiling  kvd frames to uv_ceiling, which answers every frame with the
//            same pre-encoded OK Reply: verified like kv, but the request id
//            is not matched (the ceiling does not read requests).
#include <uv.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bench/cpu_usage.h"
#include "bench/histogram.h"
#include "schema/check.h"
#include "schema/encoder.h"
#include "schema/frame.h"

namespace kvbench {
namespace {

enum class Protocol { kKv, kResp, kCeiling };

struct Options {
  int connections = 50;
  int pipeline = 1;
  uint64_t keys = 100000;
  double zipf = 0.0;  // 0: uniform.
  size_t value_size = 100;
  double read_ratio = 0.0;
  double duration_s = 5.0;
  double warmup_s = 1.0;
  bool preload = false;
  std::vector<std::string> nodes = {"127.0.0.1:7001"};
  std::vector<std::string> lag_nodes;  // Nodes the lag probes watch; empty: --nodes.
  Protocol protocol = Protocol::kKv;
  bool json = false;
  bool quiet = false;
  uint64_t seed = 1;
  uint64_t lag_sample = 0;       // 0: no lag probes.
  double rate = 0.0;             // Requests/s over all load connections; 0: closed loop.
  std::vector<int> server_pids;  // Whose main thread's CPU use to report.
};

enum class Phase { kConnecting, kPreload, kWarmup, kMeasure, kDone };

const char* PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kConnecting:
      return "connect";
    case Phase::kPreload:
      return "preload";
    case Phase::kWarmup:
      return "warmup";
    case Phase::kMeasure:
      return "measure";
    case Phase::kDone:
      return "done";
  }
  return "?";
}

// splitmix64: fast, good enough for picking keys and operations.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double NextUnit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// Picks key indexes 0..keys-1, uniformly or Zipf-distributed with exponent
// s (rank 0 the hottest), by binary search in a precomputed CDF.
class KeyChooser {
 public:
  KeyChooser(uint64_t keys, double zipf) : keys_(keys) {
    if (zipf <= 0.0) return;
    cdf_.resize(keys);
    double sum = 0.0;
    for (uint64_t i = 0; i < keys; ++i) {
      sum += 1.0 / std::pow(static_cast<double>(i + 1), zipf);
      cdf_[i] = sum;
    }
    for (double& c : cdf_) c /= sum;
  }
  uint64_t Next(Rng& rng) const {
    if (cdf_.empty()) return rng.Next() % keys_;
    auto it = std::lower_bound(cdf_.begin(), cdf_.end(), rng.NextUnit());
    return std::min<uint64_t>(static_cast<uint64_t>(it - cdf_.begin()), keys_ - 1);
  }

 private:
  uint64_t keys_;
  std::vector<double> cdf_;
};

// "key:000000012345", the shape redis-benchmark uses, 16 bytes.
class KeyName {
 public:
  KeyName() = default;
  explicit KeyName(const char (&prefix)[5]) { std::memcpy(buf_, prefix, 4); }
  std::string_view Format(uint64_t index) {
    for (size_t i = sizeof(buf_) - 1; i >= 4; --i) {
      buf_[i] = static_cast<char>('0' + index % 10);
      index /= 10;
    }
    return {buf_, sizeof(buf_)};
  }

 private:
  char buf_[16] = {'k', 'e', 'y', ':'};
};

struct Stats {
  LatencyHistogram latency;
  uint64_t completed = 0;
  uint64_t gets = 0;
  uint64_t puts = 0;
  uint64_t not_found = 0;
  uint64_t errors = 0;
  void Reset() { *this = Stats(); }
};

class Bench;

// Lag probe GETs in flight per probe connection, at most.
constexpr size_t kProbeInFlight = 64;

// One client connection: its socket, its in-flight requests (in order) and
// the bytes waiting to be written.
class Connection {
 public:
  // probe_node >= 0: a lag probe connection to that node (not part of the load).
  Connection(Bench* bench, int index, int node, int probe_node, const sockaddr_in& addr);
  void Start(uv_loop_t* loop);
  void Close();

  // Tops the connection up to P requests in flight; bytes go to out_.
  void Refill(uint64_t now_ns);
  // Sends out_ if no write is in progress (called once per loop turn).
  void Flush();
  bool open() const { return open_; }
  size_t in_flight() const { return in_flight_.size(); }
  int node() const { return node_; }
  // Probe connections: poll this lag key (by sequence number) until found.
  void AddProbe(uint64_t seq) { probes_.push_back(seq); }

  static void OnConnect(uv_connect_t* req, int status);
  static void OnAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void OnWrite(uv_write_t* req, int status);
  static void OnClose(uv_handle_t* handle);

 private:
  struct Pending {
    uint64_t request_id;
    uint64_t sent_ns;
    bool is_get;
    uint64_t lag_seq;  // Non-zero: a lag-sampled PUT, or a probe GET.
  };

  void HandleConnect(int status);
  void HandleRead(ssize_t nread, const uv_buf_t* buf);
  void HandleWrite(int status);
  void Fail(const char* what, const std::string& detail);
  // Verifies and accounts one reply; false if the stream is broken.
  bool OnKvFrame(const kvd::wire::Frame& frame, uint64_t now_ns);
  // Parses RESP replies from in_; false if the stream is broken.
  bool ParseResp(uint64_t now_ns);
  void Complete(const Pending& pending, bool ok, bool not_found, uint64_t now_ns);
  bool NextRequest(uint64_t now_ns);

  Bench* bench_;
  int index_;
  int node_;
  int probe_node_;
  std::deque<uint64_t> probes_;  // Probe connections: lag keys still to see.
  sockaddr_in addr_;
  uv_tcp_t tcp_;
  uv_connect_t connect_req_;
  uv_write_t write_req_;
  bool open_ = false;
  bool writing_ = false;
  bool closing_ = false;
  uint64_t next_id_ = 1;
  uint64_t preload_next_;  // Next key this connection preloads.
  std::deque<Pending> in_flight_;
  std::string out_;      // Encoded, not yet handed to libuv.
  std::string sending_;  // Handed to libuv, write in progress.
  char read_buf_[64 * 1024];
  kvd::wire::FrameDecoder decoder_{kvd::wire::kFrameBytesMaxDefault};
  std::string in_;  // RESP bytes not parsed yet.
  size_t in_pos_ = 0;
};

class Bench {
 public:
  explicit Bench(Options options)
      : options_(std::move(options)),
        chooser_(options_.keys, options_.zipf),
        rng_(options_.seed),
        value_(options_.value_size, 'x') {}

  int Run();

  // Called by connections.
  const Options& options() const { return options_; }
  Phase phase() const { return phase_; }
  Stats& stats() { return stats_; }
  kvd::wire::Encoder& encoder() { return encoder_; }
  Rng& rng() { return rng_; }
  const KeyChooser& chooser() const { return chooser_; }
  KeyName& key_name() { return key_name_; }
  KeyName& lag_key_name() { return lag_key_name_; }
  const std::string& value() const { return value_; }
  const kvd::wire::Limits& limits() const { return limits_; }
  void MarkDirty(Connection* conn) { dirty_.push_back(conn); }
  void ConnectionUp();
  void ConnectionDown();
  // Preload bookkeeping: a connection finished its share.
  void PreloadDone();
  // Lag probes: the sequence number of the next sampled PUT, or 0 if this
  // PUT is not sampled.
  uint64_t NextLagSeq();
  void LagAcked(uint64_t seq, int node, uint64_t now_ns);
  void LagSeen(uint64_t seq, uint64_t now_ns);
  void LagError() { ++lag_errors_; }
  // Rate limit: true if one more load request may leave now.
  bool TakeToken(uint64_t now_ns);

  static void OnCheck(uv_check_t* handle);
  static void OnTick(uv_timer_t* handle);
  static void OnPhaseEnd(uv_timer_t* handle);
  static void OnPace(uv_timer_t* handle);

 private:
  void HandleCheck();
  void HandleTick();
  void HandlePhaseEnd();
  void EnterPhase(Phase phase);
  void StartLoad();
  void Finish();
  void Report() const;

  Options options_;
  KeyChooser chooser_;
  Rng rng_;
  KeyName key_name_;
  KeyName lag_key_name_{"lag:"};
  std::string value_;
  kvd::wire::Encoder encoder_;
  kvd::wire::Limits limits_;
  uv_loop_t loop_;
  uv_check_t check_;
  uv_timer_t tick_;
  uv_timer_t phase_timer_;
  uv_timer_t pace_;
  std::vector<std::unique_ptr<Connection>> conns_;
  size_t start_load_from_ = 0;            // The connection StartLoad refills first.
  bool out_of_tokens_ = false;            // TakeToken refused since StartLoad last cleared it.
  std::vector<Connection*> probe_conns_;  // One per node when lag probes are on.
  int total_conns_ = 0;
  // Lag probes in progress: sequence -> acknowledgement time and how many
  // other nodes have yet to show the key.
  struct LagProbe {
    uint64_t ack_ns;
    int remaining;
  };
  std::unordered_map<uint64_t, LagProbe> lag_probes_;
  uint64_t lag_puts_ = 0;
  uint64_t lag_seq_ = 0;
  uint64_t lag_errors_ = 0;
  LatencyHistogram lag_;
  LatencyHistogram tick_lag_;  // Lag of the probes seen since the last progress line.
  // Rate limit state, reset when a load phase starts.
  uint64_t rate_start_ns_ = 0;
  double rate_issued_ = 0.0;
  std::vector<Connection*> dirty_;
  Phase phase_ = Phase::kConnecting;
  int up_ = 0;
  int down_ = 0;
  int preload_pending_ = 0;
  Stats stats_;
  uint64_t phase_start_ns_ = 0;
  uint64_t measure_ns_ = 0;
  uint64_t tick_completed_ = 0;
  uint64_t preload_start_ns_ = 0;
  double preload_s_ = 0.0;
  bool failed_ = false;
  // CPU seconds at the start of the measurement, then the share of it each
  // loop was busy (cpu_usage.h): kvbench's own, and each --server-pids
  // process's main thread (negative: could not be read).
  void StartCpuWindow();
  void EndCpuWindow(uint64_t window_ns);
  double client_cpu_s_ = 0.0;
  std::vector<double> server_cpu_s_;
  double client_busy_ = -1.0;
  std::vector<double> server_busy_;
  // With --rate: how late each run of the 1 ms pace timer came, over the
  // measurement (the gap since the last run, less 1 ms). It is how long
  // kvbench's own loop could not get to its timers, busy or descheduled by
  // the host, and so a floor under the lag it can measure: a probe reply
  // that arrives during such a gap is seen only after it. Resolution about
  // 1 ms: libuv re-arms the timer from its loop time, whole milliseconds
  // read once a turn, so a tick may come up to ~1 ms late with no stall.
  static constexpr uint64_t kPaceNs = 1000000;
  LatencyHistogram pace_late_;
  uint64_t last_pace_ns_ = 0;
};

// ------------------------------------------------------------ Connection --

Connection::Connection(Bench* bench, int index, int node, int probe_node, const sockaddr_in& addr)
    : bench_(bench),
      index_(index),
      node_(node),
      probe_node_(probe_node),
      addr_(addr),
      preload_next_(static_cast<uint64_t>(index)) {
  tcp_.data = this;
  connect_req_.data = this;
  write_req_.data = this;
}

void Connection::Start(uv_loop_t* loop) {
  int rc = uv_tcp_init(loop, &tcp_);
  if (rc != 0) {
    std::fprintf(stderr, "kvbench: uv_tcp_init: %s\n", uv_err_name(rc));
    std::exit(1);
  }
  uv_tcp_nodelay(&tcp_, 1);
  rc = uv_tcp_connect(&connect_req_, &tcp_, reinterpret_cast<const sockaddr*>(&addr_), OnConnect);
  if (rc != 0) {
    Fail("connect", uv_err_name(rc));
  }
}

void Connection::OnConnect(uv_connect_t* req, int status) {
  static_cast<Connection*>(req->data)->HandleConnect(status);
}

void Connection::HandleConnect(int status) {
  if (status != 0) {
    Fail("connect", uv_err_name(status));
    return;
  }
  int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), OnAlloc, OnRead);
  if (rc != 0) {
    Fail("read_start", uv_err_name(rc));
    return;
  }
  open_ = true;
  bench_->ConnectionUp();
}

void Connection::OnAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(handle->data);
  *buf = uv_buf_init(self->read_buf_, sizeof(self->read_buf_));
}

void Connection::OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  static_cast<Connection*>(stream->data)->HandleRead(nread, buf);
}

void Connection::HandleRead(ssize_t nread, const uv_buf_t* buf) {
  if (nread == 0) return;  // EAGAIN, not EOF.
  if (nread < 0) {
    Fail("read", uv_err_name(static_cast<int>(nread)));
    return;
  }
  const uint64_t now_ns = uv_hrtime();
  if (bench_->options().protocol == Protocol::kResp) {
    in_.append(buf->base, static_cast<size_t>(nread));
    if (!ParseResp(now_ns)) return;
  } else {
    decoder_.Feed(buf->base, static_cast<size_t>(nread));
    for (;;) {
      kvd::wire::DecodeResult r = decoder_.Next();
      if (r.kind == kvd::wire::DecodeResult::Kind::kNeedMore) break;
      if (r.kind == kvd::wire::DecodeResult::Kind::kError) {
        Fail("decode", r.error.message);
        return;
      }
      if (!OnKvFrame(r.frame, now_ns)) return;
    }
  }
  Refill(now_ns);
}

bool Connection::OnKvFrame(const kvd::wire::Frame& frame, uint64_t now_ns) {
  namespace fb = kvd::fb;
  if (in_flight_.empty()) {
    Fail("reply", "unexpected frame with nothing in flight");
    return false;
  }
  if (auto bad = kvd::wire::CheckEnvelope(*frame.envelope, bench_->limits())) {
    Fail("reply", bad->message);
    return false;
  }
  const Pending pending = in_flight_.front();
  in_flight_.pop_front();
  const fb::Reply* reply = frame.envelope->message_as_Reply();
  if (reply == nullptr) {
    Fail("reply",
         std::string("not a Reply: ") + fb::EnumNameMessage(frame.envelope->message_type()));
    return false;
  }
  if (bench_->options().protocol == Protocol::kKv &&
      frame.envelope->request_id() != pending.request_id) {
    Fail("reply", "request id " + std::to_string(frame.envelope->request_id()) + ", expected " +
                      std::to_string(pending.request_id));
    return false;
  }
  const fb::Status status = reply->status();
  const bool not_found = pending.is_get && status == fb::Status::NOT_FOUND;
  const bool ok = status == fb::Status::OK || not_found;
  if (!ok && bench_->stats().errors < 5) {
    std::fprintf(stderr, "kvbench: conn %d: reply %s: %s\n", index_, fb::EnumNameStatus(status),
                 reply->message() ? reply->message()->c_str() : "");
  }
  Complete(pending, ok, not_found, now_ns);
  return true;
}

// RESP2 replies to SET and GET: "+OK\r\n", "-ERR ...\r\n", "$-1\r\n" (nil)
// or "$<len>\r\n<bytes>\r\n". Anything else breaks the stream.
bool Connection::ParseResp(uint64_t now_ns) {
  for (;;) {
    const std::string_view rest(in_.data() + in_pos_, in_.size() - in_pos_);
    const size_t eol = rest.find("\r\n");
    if (eol == std::string_view::npos) break;
    if (in_flight_.empty()) {
      Fail("reply", "unexpected RESP reply with nothing in flight");
      return false;
    }
    const char type = rest[0];
    const std::string_view line = rest.substr(1, eol - 1);
    size_t consumed = eol + 2;
    bool ok = false;
    bool not_found = false;
    const Pending& pending = in_flight_.front();
    if (type == '+') {
      ok = !pending.is_get && line == "OK";
    } else if (type == '-') {
      if (bench_->stats().errors < 5) {
        std::fprintf(stderr, "kvbench: conn %d: %.*s\n", index_, static_cast<int>(line.size()),
                     line.data());
      }
    } else if (type == '$') {
      if (line == "-1") {
        ok = not_found = pending.is_get;
      } else {
        char* end = nullptr;
        const std::string line_copy(line);
        const long len = std::strtol(line_copy.c_str(), &end, 10);
        if (end == line_copy.c_str() || *end != '\0' || len < 0 || len > (64 << 20)) {
          Fail("reply", "bad RESP bulk length");
          return false;
        }
        const size_t need = consumed + static_cast<size_t>(len) + 2;
        if (rest.size() < need) break;  // Wait for the rest of the bulk.
        if (rest.substr(need - 2, 2) != "\r\n") {
          Fail("reply", "RESP bulk not terminated");
          return false;
        }
        consumed = need;
        ok = pending.is_get;
      }
    } else {
      Fail("reply", std::string("unexpected RESP type '") + type + "'");
      return false;
    }
    const Pending done = pending;
    in_flight_.pop_front();
    in_pos_ += consumed;
    Complete(done, ok, not_found, now_ns);
  }
  // Compact once the parsed prefix is large; keeps appends amortised O(1).
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  } else if (in_pos_ > 32 * 1024) {
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
  return true;
}

void Connection::Complete(const Pending& pending, bool ok, bool not_found, uint64_t now_ns) {
  if (probe_node_ >= 0) {
    if (!ok) {
      bench_->LagError();
    } else if (not_found) {
      probes_.push_back(pending.lag_seq);  // Not there yet: poll again.
    } else {
      bench_->LagSeen(pending.lag_seq, now_ns);
    }
    return;
  }
  if (pending.lag_seq != 0 && ok) bench_->LagAcked(pending.lag_seq, node_, now_ns);
  const Phase phase = bench_->phase();
  if (phase == Phase::kPreload) {
    if (!ok) ++bench_->stats().errors;
    return;
  }
  if (phase != Phase::kMeasure) return;
  Stats& stats = bench_->stats();
  if (!ok) {
    ++stats.errors;
    return;
  }
  ++stats.completed;
  if (pending.is_get) ++stats.gets;
  if (!pending.is_get) ++stats.puts;
  if (not_found) ++stats.not_found;
  stats.latency.Record(now_ns - pending.sent_ns);
}

void Connection::Refill(uint64_t now_ns) {
  if (!open_ || closing_) return;
  const size_t before = out_.size();
  const size_t limit =
      probe_node_ >= 0 ? kProbeInFlight : static_cast<size_t>(bench_->options().pipeline);
  while (in_flight_.size() < limit) {
    if (!NextRequest(now_ns)) break;
  }
  if (out_.size() != before && !writing_) bench_->MarkDirty(this);
}

// Encodes one request into out_; false if there is nothing to send (load
// stopped, or this connection's preload share is done).
bool Connection::NextRequest(uint64_t now_ns) {
  const Options& opt = bench_->options();
  const Phase phase = bench_->phase();
  uint64_t key_index = 0;
  bool is_get = false;
  uint64_t lag_seq = 0;
  std::string_view key;
  if (probe_node_ >= 0) {
    // Every key still missing is asked for once per round (up to
    // kProbeInFlight at a time), so a backlog of samples does not make
    // each one wait for the others' polls.
    if (probes_.empty() || phase == Phase::kDone) return false;
    lag_seq = probes_.front();
    probes_.pop_front();
    is_get = true;
    key = bench_->lag_key_name().Format(lag_seq);
  } else if (phase == Phase::kPreload) {
    if (preload_next_ >= opt.keys) {
      if (in_flight_.empty() && preload_next_ != UINT64_MAX) {
        preload_next_ = UINT64_MAX;
        bench_->PreloadDone();
      }
      return false;
    }
    key_index = preload_next_;
    preload_next_ += static_cast<uint64_t>(opt.connections);
  } else if (phase == Phase::kWarmup || phase == Phase::kMeasure) {
    if (!bench_->TakeToken(now_ns)) return false;
    key_index = bench_->chooser().Next(bench_->rng());
    is_get = opt.read_ratio > 0.0 && bench_->rng().NextUnit() < opt.read_ratio;
    if (!is_get && phase == Phase::kMeasure) lag_seq = bench_->NextLagSeq();
  } else {
    return false;
  }
  if (key.empty()) {
    key = lag_seq != 0 ? bench_->lag_key_name().Format(lag_seq)
                       : bench_->key_name().Format(key_index);
  }
  const uint64_t id = next_id_++;
  if (opt.protocol == Protocol::kResp) {
    if (is_get) {
      out_ += "*2\r\n$3\r\nGET\r\n$";
    } else {
      out_ += "*3\r\n$3\r\nSET\r\n$";
    }
    out_ += std::to_string(key.size());
    out_ += "\r\n";
    out_ += key;
    out_ += "\r\n";
    if (!is_get) {
      out_ += '$';
      out_ += std::to_string(bench_->value().size());
      out_ += "\r\n";
      out_ += bench_->value();
      out_ += "\r\n";
    }
  } else if (is_get) {
    bench_->encoder().Encode(id, kvd::wire::GetRequestFields{.key = key}, &out_);
  } else {
    bench_->encoder().Encode(id, kvd::wire::PutRequestFields{.key = key, .value = bench_->value()},
                             &out_);
  }
  in_flight_.push_back({id, now_ns, is_get, lag_seq});
  return true;
}

void Connection::Flush() {
  if (!open_ || closing_ || writing_ || out_.empty()) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  // Try the socket first, as kvd's own streams do: a uv_write that
  // completes at once still costs an epoll_ctl (libuv re-arms the handle
  // for reading alone when the write queue drains), one per request batch.
  // Measured (perf trace): 6,100 epoll_ctl calls a second in a paced 130k
  // puts/s run, as many as writes; now none. The client's CPU time did not
  // move measurably (three pairs of 16 s runs: 5.2-5.4 s either way).
  uv_buf_t whole = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
  int written = uv_try_write(stream, &whole, 1);
  if (written == static_cast<int>(out_.size())) {
    out_.clear();
    return;
  }
  if (written < 0 && written != UV_EAGAIN) {
    Fail("write", uv_err_name(written));
    return;
  }
  // The socket is full: uv_write takes the rest, and requests made
  // meanwhile wait in out_ for HandleWrite.
  sending_.assign(out_, written > 0 ? static_cast<size_t>(written) : 0);
  out_.clear();
  uv_buf_t buf = uv_buf_init(sending_.data(), static_cast<unsigned>(sending_.size()));
  int rc = uv_write(&write_req_, stream, &buf, 1, OnWrite);
  if (rc != 0) {
    Fail("write", uv_err_name(rc));
    return;
  }
  writing_ = true;
}

void Connection::OnWrite(uv_write_t* req, int status) {
  static_cast<Connection*>(req->data)->HandleWrite(status);
}

void Connection::HandleWrite(int status) {
  writing_ = false;
  if (status != 0) {
    if (status != UV_ECANCELED) Fail("write", uv_err_name(status));
    return;
  }
  if (!out_.empty()) bench_->MarkDirty(this);
}

void Connection::Fail(const char* what, const std::string& detail) {
  if (closing_) return;
  std::fprintf(stderr, "kvbench: conn %d: %s: %s, closing\n", index_, what, detail.c_str());
  ++bench_->stats().errors;
  Close();
  bench_->ConnectionDown();
}

void Connection::Close() {
  if (closing_) return;
  closing_ = true;
  open_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), OnClose);
}

void Connection::OnClose(uv_handle_t*) {}

// ----------------------------------------------------------------- Bench --

void Bench::OnCheck(uv_check_t* handle) { static_cast<Bench*>(handle->data)->HandleCheck(); }
void Bench::OnTick(uv_timer_t* handle) { static_cast<Bench*>(handle->data)->HandleTick(); }
void Bench::OnPhaseEnd(uv_timer_t* handle) { static_cast<Bench*>(handle->data)->HandlePhaseEnd(); }
void Bench::OnPace(uv_timer_t* handle) {
  auto* self = static_cast<Bench*>(handle->data);
  const uint64_t now_ns = uv_hrtime();
  if (self->phase_ == Phase::kMeasure && self->last_pace_ns_ != 0) {
    const uint64_t gap_ns = now_ns - self->last_pace_ns_;
    self->pace_late_.Record(gap_ns > kPaceNs ? gap_ns - kPaceNs : 0);
  }
  self->last_pace_ns_ = now_ns;
  if (self->phase_ == Phase::kWarmup || self->phase_ == Phase::kMeasure) self->StartLoad();
}

uint64_t Bench::NextLagSeq() {
  if (probe_conns_.empty() || ++lag_puts_ % options_.lag_sample != 0) return 0;
  return ++lag_seq_;
}

void Bench::LagAcked(uint64_t seq, int node, uint64_t now_ns) {
  if (phase_ != Phase::kMeasure) return;
  // Every probe connection but the written node's watches the sample (a
  // reply arrives in a later callback, after the entry exists).
  int watching = 0;
  for (Connection* probe : probe_conns_) {
    if (probe->node() == node) continue;
    probe->AddProbe(seq);
    probe->Refill(now_ns);
    ++watching;
  }
  if (watching > 0) lag_probes_[seq] = LagProbe{now_ns, watching};
}

void Bench::LagSeen(uint64_t seq, uint64_t now_ns) {
  auto it = lag_probes_.find(seq);
  if (it == lag_probes_.end()) return;
  if (--it->second.remaining > 0) return;
  if (phase_ == Phase::kMeasure) {
    const uint64_t lag_ns = now_ns - it->second.ack_ns;
    lag_.Record(lag_ns);
    tick_lag_.Record(lag_ns);
  }
  lag_probes_.erase(it);
}

bool Bench::TakeToken(uint64_t now_ns) {
  if (options_.rate <= 0.0) return true;
  const double allowed = options_.rate * static_cast<double>(now_ns - rate_start_ns_) / 1e9;
  const double burst = std::max(1.0, options_.rate * 0.005);
  if (allowed - rate_issued_ > burst) rate_issued_ = allowed - burst;
  if (rate_issued_ + 1.0 > allowed) {
    out_of_tokens_ = true;
    return false;
  }
  rate_issued_ += 1.0;
  return true;
}

// Once per loop turn, after all reads of the turn: one write per connection.
void Bench::HandleCheck() {
  for (Connection* conn : dirty_) conn->Flush();
  dirty_.clear();
}

void Bench::ConnectionUp() {
  if (++up_ < total_conns_) return;
  if (options_.preload) {
    preload_pending_ = options_.connections;
    preload_start_ns_ = uv_hrtime();
    EnterPhase(Phase::kPreload);
  } else {
    EnterPhase(Phase::kWarmup);
  }
}

void Bench::ConnectionDown() {
  ++down_;
  failed_ = true;
  // Any failure while connecting is fatal; later, carry on while some live.
  if (phase_ == Phase::kConnecting || down_ >= up_) {
    std::fprintf(stderr, "kvbench: giving up: %d of %d connections failed\n", down_,
                 options_.connections);
    Finish();
  }
}

void Bench::PreloadDone() {
  if (--preload_pending_ > 0) return;
  preload_s_ = static_cast<double>(uv_hrtime() - preload_start_ns_) / 1e9;
  if (!options_.quiet) {
    std::fprintf(stderr, "kvbench: preloaded %" PRIu64 " keys in %.2f s\n", options_.keys,
                 preload_s_);
  }
  EnterPhase(Phase::kWarmup);
}

void Bench::EnterPhase(Phase phase) {
  phase_ = phase;
  phase_start_ns_ = uv_hrtime();
  tick_completed_ = 0;
  stats_.Reset();
  rate_start_ns_ = phase_start_ns_;
  rate_issued_ = 0.0;
  uv_timer_stop(&phase_timer_);
  if (phase == Phase::kWarmup) {
    if (options_.warmup_s <= 0.0) {
      EnterPhase(Phase::kMeasure);
      return;
    }
    uv_timer_start(&phase_timer_, OnPhaseEnd, static_cast<uint64_t>(options_.warmup_s * 1000), 0);
  } else if (phase == Phase::kMeasure) {
    StartCpuWindow();
    last_pace_ns_ = 0;
    uv_timer_start(&phase_timer_, OnPhaseEnd, static_cast<uint64_t>(options_.duration_s * 1000), 0);
  }
  StartLoad();
}

// Connections that had nothing to send (start, the preload finishing, or a
// pace tick with new tokens) start again; the others carry on from their
// replies. Round robin: with --rate the tokens often run out part way, and
// the connection that found none goes first next time. Always starting at
// connection 0 left the last ones with nothing to send, so the load ran on
// fewer connections than asked (and kvd closed the silent ones after its
// 10 s handshake timeout).
void Bench::StartLoad() {
  const uint64_t now_ns = uv_hrtime();
  const size_t n = conns_.size();
  for (size_t i = 0; i < n; ++i) {
    const size_t index = (start_load_from_ + i) % n;
    out_of_tokens_ = false;
    conns_[index]->Refill(now_ns);
    if (out_of_tokens_) {
      start_load_from_ = index;
      return;
    }
  }
}

void Bench::HandlePhaseEnd() {
  if (phase_ == Phase::kWarmup) {
    EnterPhase(Phase::kMeasure);
  } else if (phase_ == Phase::kMeasure) {
    measure_ns_ = uv_hrtime() - phase_start_ns_;
    EndCpuWindow(measure_ns_);
    phase_ = Phase::kDone;
    Finish();
  }
}

void Bench::StartCpuWindow() {
  client_cpu_s_ = OwnThreadCpuSeconds();
  server_cpu_s_.clear();
  for (int pid : options_.server_pids) {
    server_cpu_s_.push_back(MainThreadCpuSeconds(pid).value_or(-1.0));
  }
}

void Bench::EndCpuWindow(uint64_t window_ns) {
  const double window_s = static_cast<double>(window_ns) / 1e9;
  if (window_s <= 0.0) return;
  client_busy_ = (OwnThreadCpuSeconds() - client_cpu_s_) / window_s;
  server_busy_.clear();
  for (size_t i = 0; i < server_cpu_s_.size(); ++i) {
    std::optional<double> now = MainThreadCpuSeconds(options_.server_pids[i]);
    server_busy_.push_back(now && server_cpu_s_[i] >= 0.0 ? (*now - server_cpu_s_[i]) / window_s
                                                          : -1.0);
  }
}

void Bench::HandleTick() {
  if (options_.quiet || phase_ == Phase::kConnecting) return;
  const uint64_t done = phase_ == Phase::kPreload ? 0 : stats_.completed;
  // The last second's lag, so a stall shows when it happened, not only in
  // the whole run's quantiles.
  char lag[96] = "";
  if (!probe_conns_.empty() && tick_lag_.total() > 0) {
    std::snprintf(lag, sizeof lag, "  lag p99 %6.2f ms  max %6.2f ms",
                  static_cast<double>(tick_lag_.ValueAt(0.99)) / 1e6,
                  static_cast<double>(tick_lag_.max_ns()) / 1e6);
  }
  tick_lag_.Reset();
  std::fprintf(stderr,
               "kvbench: [%5.1fs] %-7s %9" PRIu64
               " req/s  p50 %7.1f us  p99 %7.1f us  errors %" PRIu64 "%s\n",
               static_cast<double>(uv_hrtime() - phase_start_ns_) / 1e9, PhaseName(phase_),
               done - tick_completed_, static_cast<double>(stats_.latency.ValueAt(0.5)) / 1e3,
               static_cast<double>(stats_.latency.ValueAt(0.99)) / 1e3, stats_.errors, lag);
  tick_completed_ = done;
}

void Bench::Finish() {
  if (phase_ != Phase::kDone) {
    measure_ns_ = uv_hrtime() - phase_start_ns_;
    if (phase_ == Phase::kMeasure) EndCpuWindow(measure_ns_);
    phase_ = Phase::kDone;
  }
  uv_timer_stop(&tick_);
  uv_timer_stop(&phase_timer_);
  uv_timer_stop(&pace_);
  uv_stop(&loop_);
}

int Bench::Run() {
  // Every address: the load's nodes, then lag-probed nodes not among them.
  std::vector<std::string> all = options_.nodes;
  const std::vector<std::string>& watched =
      options_.lag_nodes.empty() ? options_.nodes : options_.lag_nodes;
  for (const std::string& node : watched) {
    if (std::find(all.begin(), all.end(), node) == all.end()) all.push_back(node);
  }
  std::vector<sockaddr_in> addrs;
  for (const std::string& node : all) {
    const size_t colon = node.rfind(':');
    sockaddr_in addr{};
    if (colon == std::string::npos ||
        uv_ip4_addr(node.substr(0, colon).c_str(), std::atoi(node.c_str() + colon + 1), &addr) !=
            0) {
      std::fprintf(stderr, "kvbench: bad node address '%s' (want IPv4:PORT)\n", node.c_str());
      return 2;
    }
    addrs.push_back(addr);
  }
  int rc = uv_loop_init(&loop_);
  if (rc != 0) {
    std::fprintf(stderr, "kvbench: uv_loop_init: %s\n", uv_err_name(rc));
    return 1;
  }
  uv_check_init(&loop_, &check_);
  check_.data = this;
  uv_check_start(&check_, OnCheck);
  uv_timer_init(&loop_, &tick_);
  tick_.data = this;
  uv_timer_start(&tick_, OnTick, 1000, 1000);
  uv_timer_init(&loop_, &phase_timer_);
  phase_timer_.data = this;
  uv_timer_init(&loop_, &pace_);
  pace_.data = this;
  if (options_.rate > 0.0) uv_timer_start(&pace_, OnPace, 1, 1);
  const int nodes = static_cast<int>(options_.nodes.size());
  for (int i = 0; i < options_.connections; ++i) {
    conns_.push_back(std::make_unique<Connection>(this, i, i % nodes, -1, addrs[i % nodes]));
  }
  if (options_.lag_sample > 0) {
    // A probe connection to every watched node that some sample is written
    // elsewhere than: one only written to would never be asked anything,
    // and a node closes a connection that stays silent (kvd after its
    // handshake timeout, 10 s), which would count as an error.
    for (const std::string& node : watched) {
      if (options_.nodes.size() == 1 && options_.nodes[0] == node) continue;
      const int n = static_cast<int>(std::find(all.begin(), all.end(), node) - all.begin());
      conns_.push_back(std::make_unique<Connection>(this, static_cast<int>(conns_.size()), n, n,
                                                    addrs[static_cast<size_t>(n)]));
      probe_conns_.push_back(conns_.back().get());
    }
    if (probe_conns_.empty()) {
      std::fprintf(stderr,
                   "kvbench: --lag-sample needs a node to watch besides the one written to; no "
                   "lag probes\n");
    }
  }
  total_conns_ = static_cast<int>(conns_.size());
  for (auto& conn : conns_) conn->Start(&loop_);
  uv_run(&loop_, UV_RUN_DEFAULT);

  // Tear down: close every handle and let the close callbacks run.
  for (auto& conn : conns_) conn->Close();
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&phase_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&pace_), nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);

  Report();
  if (failed_ || stats_.errors > 0 || lag_errors_ > 0 || stats_.completed == 0) return 1;
  return 0;
}

void Bench::Report() const {
  const double seconds = static_cast<double>(measure_ns_) / 1e9;
  const double rps = seconds > 0 ? static_cast<double>(stats_.completed) / seconds : 0.0;
  const LatencyHistogram& h = stats_.latency;
  auto us = [&](double q) { return static_cast<double>(h.ValueAt(q)) / 1e3; };
  const char* protocol = options_.protocol == Protocol::kKv     ? "kv"
                         : options_.protocol == Protocol::kResp ? "resp"
                                                                : "ceiling";
  auto lag_ms = [&](double q) { return static_cast<double>(lag_.ValueAt(q)) / 1e6; };
  const bool lag_on = !probe_conns_.empty();
  if (options_.json) {
    // Non-empty buckets as [[value_us, count], ...], for CDF plots.
    auto buckets = [](const LatencyHistogram& hist) {
      std::string s;
      hist.ForEachBucket([&](uint64_t ns, uint64_t count) {
        char item[64];
        std::snprintf(item, sizeof(item), "%s[%.2f, %" PRIu64 "]", s.empty() ? "" : ", ",
                      static_cast<double>(ns) / 1e3, count);
        s += item;
      });
      return s;
    };
    const std::string hist = buckets(h);
    std::string lag = "null";
    if (lag_on) {
      char head[512];
      std::snprintf(head, sizeof(head),
                    "{\"sample_every\": %" PRIu64 ", \"samples\": %" PRIu64
                    ", \"unfinished\": %zu, \"errors\": %" PRIu64
                    ", \"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, ",
                    options_.lag_sample, lag_.total(), lag_probes_.size(), lag_errors_, lag_ms(0.5),
                    lag_ms(0.9), lag_ms(0.99), static_cast<double>(lag_.max_ns()) / 1e6);
      lag = std::string(head) + "\"histogram_us\": [" + buckets(lag_) + "]}";
    }
    std::string nodes;
    for (const std::string& n : options_.nodes) nodes += (nodes.empty() ? "\"" : ",\"") + n + "\"";
    std::string pace = "null";
    if (pace_late_.total() > 0) {
      char item[160];
      auto ms = [&](double q) { return static_cast<double>(pace_late_.ValueAt(q)) / 1e6; };
      std::snprintf(item, sizeof(item),
                    "{\"ticks\": %" PRIu64
                    ", \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, \"max_ms\": %.3f}",
                    pace_late_.total(), ms(0.5), ms(0.99), ms(0.999),
                    static_cast<double>(pace_late_.max_ns()) / 1e6);
      pace = item;
    }
    std::string servers_busy;
    for (double busy : server_busy_) {
      char item[32];
      std::snprintf(item, sizeof(item), "%s%.3f", servers_busy.empty() ? "" : ", ", busy);
      servers_busy += item;
    }
    std::printf(
        "{\"protocol\": \"%s\", \"nodes\": [%s], \"connections\": %d, \"pipeline\": %d, "
        "\"keys\": %" PRIu64
        ", \"zipf\": %g, \"value_size\": %zu, \"read_ratio\": %g, "
        "\"preload_s\": %.3f, \"duration_s\": %.3f, \"requests\": %" PRIu64 ", \"gets\": %" PRIu64
        ", \"puts\": %" PRIu64 ", \"not_found\": %" PRIu64 ", \"errors\": %" PRIu64
        ", \"throughput_rps\": %.1f, \"latency_us\": {\"mean\": %.1f, \"p50\": %.1f, \"p90\": "
        "%.1f, \"p99\": %.1f, \"p999\": %.1f, \"max\": %.1f}, \"rate_limit\": %g, "
        "\"replication_lag\": %s, \"pace_late\": %s, "
        "\"loop_busy\": {\"kvbench\": %.3f, \"servers\": [%s]}, "
        "\"histogram_us\": [%s]}\n",
        protocol, nodes.c_str(), options_.connections, options_.pipeline, options_.keys,
        options_.zipf, options_.value_size, options_.read_ratio, preload_s_, seconds,
        stats_.completed, stats_.gets, stats_.puts, stats_.not_found, stats_.errors, rps,
        h.mean_ns() / 1e3, us(0.5), us(0.9), us(0.99), us(0.999),
        static_cast<double>(h.max_ns()) / 1e3, options_.rate, lag.c_str(), pace.c_str(),
        client_busy_, servers_busy.c_str(), hist.c_str());
    return;
  }
  std::printf("protocol %s, %d connections x pipeline %d, %" PRIu64
              " keys, %zu-byte values, read ratio %g\n",
              protocol, options_.connections, options_.pipeline, options_.keys, options_.value_size,
              options_.read_ratio);
  std::printf("requests %" PRIu64 " in %.2f s: %.0f req/s (gets %" PRIu64 ", puts %" PRIu64
              ", not found %" PRIu64 "), errors %" PRIu64 "\n",
              stats_.completed, seconds, rps, stats_.gets, stats_.puts, stats_.not_found,
              stats_.errors);
  std::printf("latency us: mean %.1f  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
              h.mean_ns() / 1e3, us(0.5), us(0.9), us(0.99), us(0.999),
              static_cast<double>(h.max_ns()) / 1e3);
  if (pace_late_.total() > 0) {
    std::printf("pace timer late ms (%" PRIu64
                " ticks): p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
                pace_late_.total(), static_cast<double>(pace_late_.ValueAt(0.5)) / 1e6,
                static_cast<double>(pace_late_.ValueAt(0.99)) / 1e6,
                static_cast<double>(pace_late_.ValueAt(0.999)) / 1e6,
                static_cast<double>(pace_late_.max_ns()) / 1e6);
  }
  std::printf("loop busy: kvbench %.0f %%", client_busy_ * 100);
  for (size_t i = 0; i < server_busy_.size(); ++i) {
    if (server_busy_[i] < 0.0) {
      std::printf(", pid %d unreadable", options_.server_pids[i]);
    } else {
      std::printf(", pid %d %.0f %%", options_.server_pids[i], server_busy_[i] * 100);
    }
  }
  std::printf("\n");
  if (lag_on) {
    std::printf("replication lag ms (1 in %" PRIu64 " PUTs, %" PRIu64
                " samples, %zu unfinished, %" PRIu64
                " probe errors): p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n",
                options_.lag_sample, lag_.total(), lag_probes_.size(), lag_errors_, lag_ms(0.5),
                lag_ms(0.9), lag_ms(0.99), static_cast<double>(lag_.max_ns()) / 1e6);
  }
}

int Main(int argc, char** argv) {
  Options opt;
  std::string nodes = "127.0.0.1:7001";
  std::string protocol = "kv";
  std::string lag_nodes;
  std::string server_pids;
  CLI::App app{"kvbench: closed-loop load generator for kvd, Redis (RESP) and uv_ceiling"};
  app.add_option("--connections,-c", opt.connections, "Connections")->check(CLI::Range(1, 10000));
  app.add_option("--pipeline,-p", opt.pipeline, "Requests in flight per connection")
      ->check(CLI::Range(1, 100000));
  app.add_option("--keys,-k", opt.keys, "Key space size")->check(CLI::Range(1, 1000000000));
  app.add_option("--zipf", opt.zipf, "Zipf exponent (0: uniform)")->check(CLI::Range(0.0, 10.0));
  app.add_option("--value-size", opt.value_size, "Value bytes")->check(CLI::Range(1, 1 << 20));
  app.add_option("--read-ratio", opt.read_ratio, "Fraction of GETs")->check(CLI::Range(0.0, 1.0));
  app.add_option("--duration", opt.duration_s, "Measured seconds")->check(CLI::Range(0.1, 86400.0));
  app.add_option("--warmup", opt.warmup_s, "Warm-up seconds")->check(CLI::Range(0.0, 86400.0));
  app.add_flag("--preload", opt.preload, "PUT every key once before the warm-up");
  app.add_option("--nodes,-n", nodes, "Comma-separated IPv4:PORT; connections spread round-robin");
  app.add_option("--protocol", protocol, "kv, resp or ceiling")
      ->check(CLI::IsMember({"kv", "resp", "ceiling"}));
  app.add_option("--seed", opt.seed, "PRNG seed");
  app.add_option("--lag-sample", opt.lag_sample,
                 "Measure replication lag on 1 in N PUTs (needs 2+ nodes; 0: off)");
  app.add_option("--lag-nodes", lag_nodes,
                 "Nodes the lag probes watch (default: --nodes), e.g. a primary and its replicas");
  app.add_option("--rate", opt.rate, "Total requests/s over all connections (0: unlimited)")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--server-pids", server_pids,
                 "Comma-separated PIDs: report how busy each one's main thread (its event loop) "
                 "was during the measurement");
  app.add_flag("--json", opt.json, "Print the result as one JSON object");
  app.add_flag("--quiet,-q", opt.quiet, "No progress lines on stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  opt.protocol = protocol == "kv"     ? Protocol::kKv
                 : protocol == "resp" ? Protocol::kResp
                                      : Protocol::kCeiling;
  opt.nodes.clear();
  std::stringstream ss(nodes);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) opt.nodes.push_back(item);
  }
  std::stringstream ls(lag_nodes);
  for (std::string item; std::getline(ls, item, ',');) {
    if (!item.empty()) opt.lag_nodes.push_back(item);
  }
  std::stringstream ps(server_pids);
  for (std::string item; std::getline(ps, item, ',');) {
    if (item.empty()) continue;
    char* end = nullptr;
    const long pid = std::strtol(item.c_str(), &end, 10);
    if (*end != '\0' || pid <= 0 || pid > 4194304) {
      std::fprintf(stderr, "kvbench: --server-pids: '%s' is not a process id\n", item.c_str());
      return 2;
    }
    opt.server_pids.push_back(static_cast<int>(pid));
  }
  if (opt.nodes.empty()) {
    std::fprintf(stderr, "kvbench: --nodes is empty\n");
    return 2;
  }
  Bench bench(std::move(opt));
  return bench.Run();
}

}  // namespace
}  // namespace kvbench

int main(int argc, char** argv) { return kvbench::Main(argc, argv); }
