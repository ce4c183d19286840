#include "daemon/io/stream.h"

#include <utility>

#include "daemon/io/log.h"

namespace kvd::io {
namespace {

// All reads of the loop land here and are copied into a decoder at once,
// so no per-read allocation. One thread, one buffer.
char g_read_buffer[64 * 1024];

}  // namespace

Stream::Stream(uv_loop_t* loop, Transport transport, uint64_t id, size_t frame_bytes_max,
               StreamHandler* handler, int* init_status)
    : transport_(transport), id_(id), handler_(handler), decoder_(frame_bytes_max) {
  *init_status = transport == Transport::kTcp ? uv_tcp_init(loop, &handle_.tcp)
                                              : uv_pipe_init(loop, &handle_.pipe, 0);
  handle_.tcp.data = this;  // `data` sits at the same place in both.
  last_input_ms_ = uv_now(loop);
  if (transport == Transport::kTcp && *init_status == 0) uv_tcp_nodelay(&handle_.tcp, 1);
}

void Stream::SetMacs(std::unique_ptr<wire::FrameMac> seal, std::unique_ptr<wire::FrameMac> open) {
  seal_ = std::move(seal);
  open_ = std::move(open);
  decoder_.set_mac(open_.get());
}

int Stream::StartReading() {
  int rc = uv_read_start(handle(), OnAlloc, OnRead);
  reading_ = rc == 0;
  return rc;
}

int Stream::Connect(const sockaddr* address) {
  connect_request_.data = this;
  return uv_tcp_connect(&connect_request_, &handle_.tcp, address, OnConnect);
}

void Stream::OnAlloc(uv_handle_t*, size_t, uv_buf_t* buf) {
  *buf = uv_buf_init(g_read_buffer, sizeof(g_read_buffer));
}

void Stream::OnRead(uv_stream_t* handle, ssize_t nread, const uv_buf_t* buf) {
  static_cast<Stream*>(handle->data)->HandleRead(nread, buf);
}

void Stream::HandleRead(ssize_t nread, const uv_buf_t* buf) {
  if (nread == 0) return;  // EAGAIN; not end of stream.
  if (nread < 0) {         // UV_EOF or an error: the other side is gone.
    Close();
    return;
  }
  last_input_ms_ = uv_now(handle_.tcp.loop);  // `loop` sits at the same place in both.
  decoder_.Feed(buf->base, static_cast<size_t>(nread));
  DeliverFrames();
}

void Stream::DeliverFrames() {
  while (!closing_ && !close_after_flush_ && !paused_) {
    wire::DecodeResult result = decoder_.Next();
    if (result.kind == wire::DecodeResult::Kind::kNeedMore) break;
    if (result.kind == wire::DecodeResult::Kind::kError) {
      uv_read_stop(handle());
      reading_ = false;
      handler_->OnBadInput(*this, result.error);
      break;
    }
    handler_->OnFrame(*this, result.frame);
  }
  handler_->OnFramesDelivered(*this);
}

void Stream::PauseInput() {
  paused_ = true;
  if (reading_) uv_read_stop(handle());
  reading_ = false;
}

void Stream::ResumeInput() {
  if (!paused_) return;
  paused_ = false;
  DeliverFrames();
  if (!paused_ && !closing_ && !close_after_flush_ && !decoder_.has_error() && !reading_) {
    if (StartReading() < 0) Close();
  }
}

void Stream::Flush() {
  if (closing_ || writing_) return;
  if (output_.empty()) {
    if (close_after_flush_) Close();
    return;
  }
  uv_buf_t buf = uv_buf_init(output_.data(), static_cast<unsigned>(output_.size()));
  int written = uv_try_write(handle(), &buf, 1);
  if (written == static_cast<int>(output_.size())) {
    output_.clear();
    if (close_after_flush_) Close();
    handler_->OnDrained(*this);
    return;
  }
  if (written < 0 && written != UV_EAGAIN) {
    Close();
    return;
  }
  // The socket is full: hand the rest to uv_write and keep appending to a
  // fresh output_ meanwhile. Swapping keeps both buffers' capacity.
  std::swap(output_, in_flight_);
  output_.clear();
  if (written > 0) in_flight_.erase(0, static_cast<size_t>(written));
  buf = uv_buf_init(in_flight_.data(), static_cast<unsigned>(in_flight_.size()));
  write_request_.data = this;
  int rc = uv_write(&write_request_, handle(), &buf, 1, OnWrite);
  if (rc < 0) {
    Close();
    return;
  }
  writing_ = true;
}

void Stream::OnWrite(uv_write_t* request, int status) {
  static_cast<Stream*>(request->data)->HandleWrite(status);
}

void Stream::HandleWrite(int status) {
  writing_ = false;
  in_flight_.clear();
  if (status < 0) {
    Close();
    return;
  }
  Flush();
  if (!closing_ && !writing_) handler_->OnDrained(*this);
}

void Stream::OnConnect(uv_connect_t* request, int status) {
  auto* stream = static_cast<Stream*>(request->data);
  if (status == UV_ECANCELED) return;  // Closed while connecting.
  stream->handler_->OnConnected(*stream, status);
}

void Stream::CloseAfterFlush() {
  if (closing_) return;
  close_after_flush_ = true;
  if (reading_) uv_read_stop(handle());
  reading_ = false;
  if (!writing_) Flush();
}

void Stream::Close() {
  if (closing_) return;
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_), OnClose);
}

void Stream::OnClose(uv_handle_t* handle) {
  auto* stream = static_cast<Stream*>(handle->data);
  stream->handler_->OnClosed(*stream);
  delete stream;
}

uint32_t Stream::TakeSlot(uint64_t request_id) {
  pending_replies_.push_back({request_id, false, {}});
  return next_slot_++;
}

std::string* Stream::ReplyBuffer(uint32_t slot) {
  if (slot == head_slot_) return &output_;
  return &pending_replies_[slot - head_slot_].frame;
}

void Stream::ReplyDone(uint32_t slot) {
  pending_replies_[slot - head_slot_].done = true;
  while (!pending_replies_.empty() && pending_replies_.front().done) {
    output_ += pending_replies_.front().frame;
    pending_replies_.pop_front();
    ++head_slot_;
  }
}

}  // namespace kvd::io
