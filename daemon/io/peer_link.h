// PeerLink: this node's outbound connection to one peer. It dials, sends
// Hello, waits for HelloAck (the peer's clock), then carries our write
// batches out and the peer's acks back. When the connection fails or the
// handshake does not finish in time it redials after a capped exponential
// backoff with jitter, forever, until Stop().
#pragma once

#include <uv.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "daemon/io/stream.h"

namespace kvd::io {

// What a link reports to the node that owns it.
class PeerLinkOwner {
 public:
  virtual ~PeerLinkOwner() = default;
  virtual uint64_t NextStreamId() = 0;
  // Every stream is known to the owner (for flushing) from creation to close.
  virtual void AddStream(Stream& stream) = 0;
  virtual void RemoveStream(Stream& stream) = 0;
  // Appends our Hello to `out`.
  virtual void EncodeHello(std::string* out) = 0;
  virtual void MarkDirty(Stream& stream) = 0;
  // The peer answered our hello; `clock` is its clock (length checked).
  // `cluster_id` is the identity it reported (empty: none).
  virtual void OnLinkUp(uint32_t peer, std::span<const uint64_t> clock,
                        std::string_view cluster_id) = 0;
  virtual void OnLinkAck(uint32_t peer, std::span<const uint64_t> clock,
                         std::string_view cluster_id) = 0;
  virtual void OnLinkDrained(uint32_t peer) = 0;
  virtual void OnLinkDown(uint32_t peer) = 0;
};

class PeerLink : public StreamHandler {
 public:
  struct Options {
    uint32_t peer;
    std::string name;  // "n3", for logs.
    sockaddr_storage address;
    size_t frame_bytes_max;
    size_t cluster_size;
    uint64_t handshake_timeout_ms = 5000;
    uint64_t backoff_min_ms = 50;
    uint64_t backoff_max_ms = 2000;
  };

  PeerLink(uv_loop_t* loop, const Options& options, PeerLinkOwner* owner);
  int Start();  // Initialises the timer and dials.
  void Stop();  // Closes the connection and the timer; no more dialing.

  // The established stream, or nullptr while down or handshaking.
  Stream* stream() const { return up_ ? stream_ : nullptr; }
  bool up() const { return up_; }

  void OnConnected(Stream& stream, int status) override;
  void OnFrame(Stream& stream, const wire::Frame& frame) override;
  void OnBadInput(Stream& stream, const wire::WireError& error) override;
  void OnDrained(Stream& stream) override;
  void OnClosed(Stream& stream) override;

 private:
  static void OnTimer(uv_timer_t* timer);
  void Dial();
  void HandleTimer();
  void ScheduleRedial();
  uint64_t Jitter(uint64_t ms);

  uv_loop_t* loop_;
  Options options_;
  PeerLinkOwner* owner_;
  uv_timer_t timer_;  // Handshake deadline, then redial delay.
  Stream* stream_ = nullptr;
  bool up_ = false;
  bool stopped_ = false;
  uint64_t backoff_ms_;
  uint64_t random_state_;
};

}  // namespace kvd::io
