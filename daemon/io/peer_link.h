// PeerLink: this node's outbound connection to one peer. It dials, sends
// Hello, waits for HelloAck (the peer's clock), then carries our write
// batches out and the peer's acks back. With a cluster secret it checks the
// HelloAck's proof, answers with HelloProof, seals everything after it, and
// counts the link up only at the peer's first sealed Ack: the peer has then
// checked our proof, and that Ack's clock is where streaming starts. When the connection fails or
// the handshake does not finish in time it redials after a capped exponential backoff with jitter,
// forever, until Stop().
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
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
  // Appends our Hello, carrying `nonce` (empty without a cluster secret),
  // to `out`.
  virtual void EncodeHello(std::string_view nonce, std::string* out) = 0;
  // Appends a HelloProof carrying `proof` to `out`.
  virtual void EncodeHelloProof(std::string_view proof, std::string* out) = 0;
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
    // Empty: no peer authentication. Else the cluster secret (it must
    // outlive the link), and what the handshake covers besides the nonces.
    std::string_view cluster_secret;
    uint64_t cluster_fingerprint = 0;
    uint32_t self = 0;
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
  void OnHelloAck(Stream& stream, const fb::HelloAck& ack);
  void LinkUp(std::span<const uint64_t> clock, std::string_view cluster_id);

  uv_loop_t* loop_;
  Options options_;
  PeerLinkOwner* owner_;
  uv_timer_t timer_;  // Handshake deadline, then redial delay.
  Stream* stream_ = nullptr;
  bool up_ = false;
  bool stopped_ = false;
  // With a cluster secret: the handshake until HelloAck, then `confirming_`
  // until the peer's first sealed frame.
  std::unique_ptr<wire::DialerHandshake> handshake_;
  bool confirming_ = false;
  uint64_t backoff_ms_;
  uint64_t random_state_;
};

}  // namespace kvd::io
