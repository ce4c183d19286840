// Stream: one TCP or Unix-domain connection with framed input and
// coalesced output. It owns its libuv handle and deletes itself in the
// handle's close callback (libuv's rule: memory goes only once the close
// callback ran), after telling its handler.
//
// Input: every read is fed to a FrameDecoder; each verified frame goes to
// the handler. Output: callers append encoded frames to output() and call
// MarkDirty(); the owner flushes every dirty stream once per loop turn, so
// all replies produced by one read leave in one write.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "schema/frame.h"
#include "schema/frame_mac.h"
#include "schema/handshake.h"
#include "schema/wire_error.h"

namespace kvd::io {

class Stream;

class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  virtual void OnConnected(Stream& stream, int status) = 0;  // Outbound only.
  virtual void OnFrame(Stream& stream, const wire::Frame& frame) = 0;
  // After the frames one read (or a resume) handed out, however it ended:
  // a handler that gathers frames runs them here.
  virtual void OnFramesDelivered(Stream& /*stream*/) {}
  // The byte stream is unusable (bad prefix, failed verification). The
  // stream stops reading; the handler answers and closes it.
  virtual void OnBadInput(Stream& stream, const wire::WireError& error) = 0;
  // Everything written so far has left (backpressure relief).
  virtual void OnDrained(Stream& stream) = 0;
  // Last call; the stream is deleted right after it returns.
  virtual void OnClosed(Stream& stream) = 0;
};

class Stream {
 public:
  enum class Transport : uint8_t { kTcp, kUnix };
  // What the first frames showed the peer of this connection to be.
  // kPeerHandshake: an accepted connection whose Hello was answered and
  // whose HelloProof has not arrived yet; it is not a peer link yet.
  enum class Role : uint8_t { kUnknown, kClient, kPeer, kOutboundPeer, kPeerHandshake };

  // The handle is initialised on `loop`; on failure `init_status` is < 0
  // and the stream must still be closed with Close().
  Stream(uv_loop_t* loop, Transport transport, uint64_t id, size_t frame_bytes_max,
         StreamHandler* handler, int* init_status);
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  uv_stream_t* handle() { return reinterpret_cast<uv_stream_t*>(&handle_); }
  uint64_t id() const { return id_; }
  Transport transport() const { return transport_; }
  bool closing() const { return closing_; }

  int StartReading();
  // Backpressure: stops handing out frames (and reading the socket) until
  // ResumeInput(), which first hands out the frames already buffered.
  void PauseInput();
  void ResumeInput();
  bool input_paused() const { return paused_; }
  // Outbound TCP connect; the handler's OnConnected reports the outcome.
  int Connect(const sockaddr* address);

  // Appends here, then MarkDirty-equivalent through the owner.
  std::string& output() { return output_; }
  // Call after appending each frame to output() on a peer connection: once
  // SetMacs() ran it seals the frame (`frame_bytes` long, at the end of
  // output()) in place; before, it does nothing.
  void SealLast(size_t frame_bytes) {
    if (seal_) seal_->Seal(&output_, frame_bytes);
  }
  // From now on frames we send are sealed with `seal` and frames we read
  // must be sealed with `open` (the handshake completed; frame_mac.h).
  void SetMacs(std::unique_ptr<wire::FrameMac> seal, std::unique_ptr<wire::FrameMac> open);
  bool sealed() const { return seal_ != nullptr; }
  // The largest frame accepted from now on (a connection that turns out
  // to be a peer gets the peer cap).
  void set_frame_bytes_max(size_t bytes) { decoder_.set_frame_bytes_max(bytes); }
  size_t pending_output_bytes() const { return output_.size() + in_flight_.size(); }
  // Writes what output() holds (uv_try_write first, uv_write for the rest).
  void Flush();
  // Stops reading, sends what is queued, then closes.
  void CloseAfterFlush();
  // Closes now; queued output is dropped. Safe to call more than once.
  void Close();

  // In-order replies on a pipelined connection. Each request takes a slot
  // (remembering its request id); its reply frame is appended to
  // ReplyBuffer(slot) whenever it is ready, and ReplyDone(slot) releases
  // replies to output() in slot order.
  uint32_t TakeSlot(uint64_t request_id);
  uint64_t request_id(uint32_t slot) const {
    return pending_replies_[slot - head_slot_].request_id;
  }
  std::string* ReplyBuffer(uint32_t slot);
  void ReplyDone(uint32_t slot);
  size_t open_slots() const { return pending_replies_.size(); }

  // Free for the owner: role and peer index of accepted connections.
  Role role = Role::kUnknown;
  // A link to or from another node, or on its way to being one.
  bool peer_role() const {
    return role == Role::kPeer || role == Role::kOutboundPeer || role == Role::kPeerHandshake;
  }
  // The connection finished its handshake: a first frame arrived (and, if
  // authentication is required, it authenticated).
  bool greeted = false;
  uint32_t peer = 0;
  // Role kPeerHandshake: the cluster identity its Hello reported, handed to
  // the replica once the peer has proven the secret.
  std::string peer_cluster_id;
  bool client_authenticated = false;  // Presented the client password.
  // Which of the owner's connection counts (--max-clients) this one is in.
  enum class Counted : uint8_t { kNone, kClient, kPeerReserve };
  Counted counted = Counted::kNone;
  bool dirty = false;          // Queued for the owner's end-of-turn flush.
  bool resume_queued = false;  // Queued for ResumeInput() at the end of the turn.
  // The loop time (uv_now) of the last bytes read, or of the accept.
  uint64_t last_input_ms() const { return last_input_ms_; }
  // Role kPeerHandshake: the handshake in progress.
  std::unique_ptr<wire::AcceptorHandshake> handshake;

 private:
  static void OnAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* handle, ssize_t nread, const uv_buf_t* buf);
  static void OnWrite(uv_write_t* request, int status);
  static void OnConnect(uv_connect_t* request, int status);
  static void OnClose(uv_handle_t* handle);

  void HandleRead(ssize_t nread, const uv_buf_t* buf);
  // Hands buffered frames to the handler until none is left, the stream
  // closes, or input is paused.
  void DeliverFrames();
  void HandleWrite(int status);

  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } handle_;
  uv_write_t write_request_;
  uv_connect_t connect_request_;
  Transport transport_;
  uint64_t id_;
  StreamHandler* handler_;
  wire::FrameDecoder decoder_;
  std::unique_ptr<wire::FrameMac> seal_;  // Set once the peer handshake is done.
  std::unique_ptr<wire::FrameMac> open_;  // The decoder opens frames with it.
  std::string output_;
  std::string in_flight_;  // Being written by uv_write.
  bool writing_ = false;
  bool reading_ = false;
  bool closing_ = false;
  bool close_after_flush_ = false;
  bool paused_ = false;
  uint64_t last_input_ms_ = 0;

  struct PendingReply {
    uint64_t request_id = 0;
    bool done = false;
    std::string frame;  // Empty for the head slot, which writes to output_.
  };
  uint32_t next_slot_ = 0;
  uint32_t head_slot_ = 0;
  std::deque<PendingReply> pending_replies_;  // From head_slot_ on.
};

}  // namespace kvd::io
