#include "daemon/io/peer_link.h"

#include <algorithm>

#include "daemon/io/log.h"
#include "schema/check.h"
#include "schema/view.h"

namespace kvd::io {

PeerLink::PeerLink(uv_loop_t* loop, const Options& options, PeerLinkOwner* owner)
    : loop_(loop),
      options_(options),
      owner_(owner),
      backoff_ms_(options.backoff_min_ms),
      random_state_(uv_hrtime() ^ (uint64_t{options.peer} << 32) ^ 0x9E3779B97F4A7C15ULL) {}

int PeerLink::Start() {
  int rc = uv_timer_init(loop_, &timer_);
  if (rc < 0) return rc;
  timer_.data = this;
  Dial();
  return 0;
}

void PeerLink::Stop() {
  stopped_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
  if (stream_) stream_->Close();
}

// xorshift64: jitter only needs to spread redials, not be unpredictable.
uint64_t PeerLink::Jitter(uint64_t ms) {
  random_state_ ^= random_state_ << 13;
  random_state_ ^= random_state_ >> 7;
  random_state_ ^= random_state_ << 17;
  return ms / 2 + random_state_ % (ms + 1);  // 50%..150% of ms.
}

void PeerLink::Dial() {
  if (stopped_ || stream_) return;
  int rc = 0;
  stream_ = new Stream(loop_, Stream::Transport::kTcp, owner_->NextStreamId(),
                       options_.frame_bytes_max, this, &rc);
  owner_->AddStream(*stream_);
  stream_->role = Stream::Role::kOutboundPeer;
  stream_->peer = options_.peer;
  if (rc == 0) rc = stream_->Connect(reinterpret_cast<const sockaddr*>(&options_.address));
  if (rc < 0) {
    KV_LOG(kWarn, "peer %s: dial failed: %s", options_.name.c_str(), uv_err_name(rc));
    stream_->Close();  // OnClosed schedules the redial.
    return;
  }
  uv_timer_start(&timer_, OnTimer, options_.handshake_timeout_ms, 0);
}

void PeerLink::OnConnected(Stream& stream, int status) {
  if (status < 0) {
    KV_LOG(kDebug, "peer %s: connect failed: %s", options_.name.c_str(), uv_err_name(status));
    stream.Close();
    return;
  }
  int rc = stream.StartReading();
  if (rc < 0) {
    stream.Close();
    return;
  }
  std::string_view nonce;
  if (!options_.cluster_secret.empty()) {
    wire::Nonce fresh;
    if (!wire::RandomNonce(&fresh)) {
      KV_LOG(kError, "peer %s: no random nonce from the system; closing", options_.name.c_str());
      stream.Close();
      return;
    }
    handshake_ = std::make_unique<wire::DialerHandshake>(
        options_.cluster_secret, options_.cluster_fingerprint, options_.self, options_.peer, fresh);
    nonce = handshake_->nonce();
  }
  owner_->EncodeHello(nonce, &stream.output());
  owner_->MarkDirty(stream);
}

void PeerLink::OnHelloAck(Stream& stream, const fb::HelloAck& ack) {
  if (up_ || confirming_ || ack.node_index() != options_.peer) {
    KV_LOG(kWarn, "peer %s: unexpected hello-ack (node index %u); closing", options_.name.c_str(),
           ack.node_index());
    stream.Close();
    return;
  }
  if (!handshake_) {  // No cluster secret: the HelloAck's clock starts the link.
    LinkUp(wire::AsClock(ack.clock()), wire::AsText(ack.cluster_id()));
    return;
  }
  wire::SessionKeys keys;
  if (auto error = handshake_->OnHelloAck(ack, &keys)) {
    KV_LOG(kWarn, "peer %s: %s; closing", options_.name.c_str(), error->message.c_str());
    stream.Close();
    return;
  }
  owner_->EncodeHelloProof(handshake_->proof(), &stream.output());
  owner_->MarkDirty(stream);
  handshake_.reset();
  // Everything after the HelloProof is sealed, both ways.
  stream.SetMacs(std::make_unique<wire::FrameMac>(keys.dialer_to_acceptor),
                 std::make_unique<wire::FrameMac>(keys.acceptor_to_dialer));
  confirming_ = true;
}

void PeerLink::LinkUp(std::span<const uint64_t> clock, std::string_view cluster_id) {
  uv_timer_stop(&timer_);
  up_ = true;
  confirming_ = false;
  backoff_ms_ = options_.backoff_min_ms;
  KV_LOG(kInfo, "peer %s: connected%s", options_.name.c_str(),
         options_.cluster_secret.empty() ? "" : " (authenticated)");
  owner_->OnLinkUp(options_.peer, clock, cluster_id);
}

void PeerLink::OnFrame(Stream& stream, const wire::Frame& frame) {
  const fb::Envelope& envelope = *frame.envelope;
  wire::Limits limits;
  limits.cluster_size = options_.cluster_size;
  if (auto error = wire::CheckEnvelope(envelope, limits)) {
    KV_LOG(kWarn, "peer %s: bad message: %s; closing", options_.name.c_str(),
           error->message.c_str());
    stream.Close();
    return;
  }
  switch (envelope.message_type()) {
    case fb::Message::HelloAck:
      OnHelloAck(stream, *envelope.message_as_HelloAck());
      return;
    case fb::Message::Ack:
      if (confirming_) {  // The peer took our proof; this Ack is its clock.
        const fb::Ack* ack = envelope.message_as_Ack();
        LinkUp(wire::AsClock(ack->clock()), wire::AsText(ack->cluster_id()));
        return;
      }
      if (up_) {
        const fb::Ack* ack = envelope.message_as_Ack();
        owner_->OnLinkAck(options_.peer, wire::AsClock(ack->clock()),
                          wire::AsText(ack->cluster_id()));
        return;
      }
      break;
    case fb::Message::Error: {
      const fb::Error* error = envelope.message_as_Error();
      KV_LOG(kWarn, "peer %s: refused us: %s", options_.name.c_str(),
             std::string(wire::AsText(error->message())).c_str());
      stream.Close();
      return;
    }
    default:
      break;
  }
  KV_LOG(kWarn, "peer %s: unexpected %s message; closing", options_.name.c_str(),
         fb::EnumNameMessage(envelope.message_type()));
  stream.Close();
}

void PeerLink::OnBadInput(Stream& stream, const wire::WireError& error) {
  KV_LOG(kWarn, "peer %s: bad frame: %s; closing", options_.name.c_str(), error.message.c_str());
  stream.Close();
}

void PeerLink::OnDrained(Stream&) {
  if (up_) owner_->OnLinkDrained(options_.peer);
}

void PeerLink::OnClosed(Stream& stream) {
  owner_->RemoveStream(stream);
  bool was_up = up_;
  stream_ = nullptr;
  up_ = false;
  confirming_ = false;
  handshake_.reset();
  if (was_up) {
    KV_LOG(kInfo, "peer %s: disconnected", options_.name.c_str());
    owner_->OnLinkDown(options_.peer);
  }
  ScheduleRedial();
}

void PeerLink::ScheduleRedial() {
  if (stopped_) return;
  uint64_t delay = Jitter(backoff_ms_);
  backoff_ms_ = std::min(backoff_ms_ * 2, options_.backoff_max_ms);
  uv_timer_start(&timer_, OnTimer, delay, 0);
}

void PeerLink::OnTimer(uv_timer_t* timer) { static_cast<PeerLink*>(timer->data)->HandleTimer(); }

void PeerLink::HandleTimer() {
  if (stream_) {  // The handshake deadline passed: the peer is hung.
    KV_LOG(kWarn, "peer %s: no hello-ack within %llu ms; closing", options_.name.c_str(),
           (unsigned long long)options_.handshake_timeout_ms);
    stream_->Close();
    return;
  }
  Dial();
}

}  // namespace kvd::io
