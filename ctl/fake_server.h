// FakeServer: a scripted stand-in for kvd in the client library's unit
// tests. It listens on an ephemeral loopback port, serves one connection at
// a time on its own thread, and hands every verified frame to a handler
// that writes whatever answer the test wants (good replies, Error frames,
// garbage, nothing at all).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "schema/encoder.h"
#include "schema/kv_generated.h"

namespace kvd::client::test {

// What the handler asks of the server after a frame.
struct Action {
  bool close = false;  // Close the connection after writing `out`.
};

class FakeServer {
 public:
  // Appends the answer (any bytes) to *out. Runs on the server thread.
  using Handler =
      std::function<Action(const fb::Envelope& request, wire::Encoder& encoder, std::string* out)>;

  explicit FakeServer(Handler handler);
  ~FakeServer();

  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  // "127.0.0.1:PORT"
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  uint16_t port() const { return port_; }
  // Frames received so far (all connections).
  int frames() const { return frames_.load(); }

 private:
  void Serve();
  void ServeConnection(int fd);

  Handler handler_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> frames_{0};
  std::thread thread_;
};

}  // namespace kvd::client::test
