// Connection: one client socket (TCP or Unix) carrying frames, driven with
// poll() and deadlines so that no call blocks longer than its caller allows.
// It knows framing (Encoder output in, verified and checked frames out) but
// not what the messages mean; Client (client.h) does.
//
// The socket is non-blocking throughout. Writes never raise SIGPIPE
// (MSG_NOSIGNAL), so a program using the library needs no signal setup.
// While Flush() waits to write it also reads whatever the server sends, so
// a long pipeline can never deadlock with both sides' buffers full.
//
// Not thread-safe: one thread uses a connection at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ctl/address.h"
#include "ctl/result.h"
#include "schema/frame.h"
#include "schema/limits.h"

namespace kvd::client {

// A point on the monotonic clock by which a call must return, or never.
class Deadline {
 public:
  static Deadline Never() { return Deadline(); }
  // timeout_ms <= 0 means never.
  static Deadline After(int timeout_ms);
  static Deadline Now() { return Deadline(std::chrono::steady_clock::now()); }

  // For poll(): -1 for never, else the milliseconds left (0 once passed).
  int RemainingMs() const;
  bool passed() const { return at_ && std::chrono::steady_clock::now() >= *at_; }

 private:
  Deadline() = default;
  explicit Deadline(std::chrono::steady_clock::time_point at) : at_(at) {}
  std::optional<std::chrono::steady_clock::time_point> at_;
};

class Connection {
 public:
  // Connects (every address getaddrinfo gives, in order, until one
  // answers), then sets TCP_NODELAY on TCP. Frames from the server larger
  // than frame_bytes_max are refused.
  static Result<std::unique_ptr<Connection>> Open(const Endpoint& endpoint, Deadline deadline,
                                                  size_t frame_bytes_max);
  ~Connection();

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Bytes queued for the server; append encoded frames here, then Flush().
  std::string& output() { return output_; }
  size_t unsent_bytes() const { return output_.size() - sent_; }

  // Writes everything queued. Fails with kTimedOut at the deadline and
  // kConnection if the socket breaks; bytes the server sent meanwhile are
  // kept for NextFrame().
  Result<void> Flush(Deadline deadline);

  // The next frame from the server, verified by the decoder and accepted by
  // wire::CheckEnvelope with `limits`. kProtocol for a frame that fails
  // either, kConnection once the server closed and no frame is left,
  // kTimedOut at the deadline. The frame stays valid until the next call to
  // NextFrame(), Flush() or WaitClosed().
  Result<wire::Frame> NextFrame(Deadline deadline, const wire::Limits& limits);

  // Reads until the server closes the connection (true) or the deadline
  // passes (false). Frames that arrive are kept for NextFrame(); bytes that
  // do not frame are dropped.
  bool WaitClosed(Deadline deadline);

  // The server closed its end (or reset the connection).
  bool closed_by_server() const { return eof_; }
  std::string_view description() const { return description_; }

 private:
  Connection(int fd, std::string description, size_t frame_bytes_max);

  enum class ReadOutcome : uint8_t { kData, kClosed, kTimedOut, kFailed };
  // Waits for input up to the deadline, then reads once into the decoder.
  ReadOutcome ReadSome(Deadline deadline);
  // Reads once without waiting; for use when poll() said POLLIN.
  ReadOutcome ReadNow();
  Error ClosedError() const;

  int fd_;
  std::string description_;  // "127.0.0.1:7001", for messages.
  wire::FrameDecoder decoder_;
  std::string output_;
  size_t sent_ = 0;  // Bytes of output_ already written.
  std::vector<char> read_buffer_;
  bool eof_ = false;
  std::string read_error_;  // Why reading stopped, if not a clean close.
};

}  // namespace kvd::client
