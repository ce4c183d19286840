// uv_ceiling: the smallest libuv server that speaks kvd's framing, as a
// ceiling reference for kvbench. It splits the byte stream into 4-byte
// little-endian length-prefixed frames and answers each one with the same
// pre-encoded kvd Reply (status OK, request id 0), doing nothing else: no
// verification, no parsing, no storage. All replies owed for one read go
// out in one write (uv_try_write, then uv_write for any rest), so it costs
// what one loop turn of kvd must cost at least. kvbench drives it with `--protocol ceiling`.
//
// Frames above 16 MiB close the connection (no buffering is needed: bodies
// are skipped as they stream past, never stored).
#include <uv.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "schema/encoder.h"

namespace uv_ceiling {
namespace {

constexpr uint32_t kFrameBytesMax = 16 * 1024 * 1024;

std::string g_reply;  // One OK Reply frame, built at start-up.

class Connection {
 public:
  explicit Connection(uv_loop_t* loop) {
    uv_tcp_init(loop, &tcp_);
    tcp_.data = this;
    write_req_.data = this;
  }
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }

  void Start() {
    uv_tcp_nodelay(&tcp_, 1);
    int rc = uv_read_start(stream(), OnAlloc, OnRead);
    if (rc != 0) Close();
  }
  void Close() {
    if (closing_) return;
    closing_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), OnClose);
  }

  static void OnAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
    auto* self = static_cast<Connection*>(handle->data);
    *buf = uv_buf_init(self->read_buf_, sizeof(self->read_buf_));
  }
  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    static_cast<Connection*>(stream->data)->HandleRead(nread, buf);
  }
  static void OnWrite(uv_write_t* req, int status) {
    static_cast<Connection*>(req->data)->HandleWrite(status);
  }
  static void OnClose(uv_handle_t* handle) { delete static_cast<Connection*>(handle->data); }

 private:
  void HandleRead(ssize_t nread, const uv_buf_t* buf) {
    if (nread == 0) return;
    if (nread < 0) {
      Close();
      return;
    }
    const auto* p = reinterpret_cast<const uint8_t*>(buf->base);
    size_t n = static_cast<size_t>(nread);
    while (n > 0) {
      if (body_left_ > 0) {  // Skip body bytes.
        const size_t take = std::min<size_t>(n, body_left_);
        body_left_ -= take;
        p += take;
        n -= take;
        continue;
      }
      prefix_ |= static_cast<uint32_t>(*p) << (8 * prefix_bytes_);
      ++p;
      --n;
      if (++prefix_bytes_ < 4) continue;
      if (prefix_ == 0 || prefix_ > kFrameBytesMax) {
        Close();
        return;
      }
      body_left_ = prefix_;
      prefix_ = 0;
      prefix_bytes_ = 0;
      out_ += g_reply;  // Answered as soon as its prefix is seen.
    }
    Flush();
  }

  // As kvd's Stream::Flush and kvbench do: write(2) at once with
  // uv_try_write, and queue a uv_write only for what the socket did not
  // take. A uv_write of everything cost one more system call per flush
  // (an epoll_ctl, 1 per write in `perf trace -s`), which kvd does not pay,
  // so the "ceiling" came out below kvd at P=1 (86k against 99k PUT/s).
  void Flush() {
    if (writing_ || out_.empty() || closing_) return;
    uv_buf_t whole = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
    int written = uv_try_write(stream(), &whole, 1);
    if (written == static_cast<int>(out_.size())) {
      out_.clear();
      return;
    }
    if (written < 0 && written != UV_EAGAIN) {
      Close();
      return;
    }
    sending_.assign(out_, written > 0 ? static_cast<size_t>(written) : 0);
    out_.clear();
    uv_buf_t b = uv_buf_init(sending_.data(), static_cast<unsigned>(sending_.size()));
    if (uv_write(&write_req_, stream(), &b, 1, OnWrite) != 0) {
      Close();
      return;
    }
    writing_ = true;
  }

  void HandleWrite(int status) {
    writing_ = false;
    if (status != 0) {
      Close();
      return;
    }
    Flush();
  }

  uv_tcp_t tcp_;
  uv_write_t write_req_;
  bool writing_ = false;
  bool closing_ = false;
  uint32_t prefix_ = 0;
  unsigned prefix_bytes_ = 0;
  size_t body_left_ = 0;
  std::string out_;
  std::string sending_;
  char read_buf_[64 * 1024];
};

void OnConnection(uv_stream_t* server, int status) {
  if (status != 0) {
    std::fprintf(stderr, "uv_ceiling: accept: %s\n", uv_err_name(status));
    return;
  }
  auto* conn = new Connection(server->loop);
  if (uv_accept(server, conn->stream()) != 0) {
    conn->Close();
    return;
  }
  conn->Start();
}

void OnSignal(uv_signal_t* handle, int) { uv_stop(handle->loop); }

int Main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 7100;
  std::string port_file;
  CLI::App app{"uv_ceiling: minimal libuv length-prefixed reply loop (kvbench ceiling)"};
  app.add_option("--host", host, "IPv4 address to listen on");
  app.add_option("--port", port, "TCP port (0: any free port)")->check(CLI::Range(0, 65535));
  app.add_option("--port-file", port_file, "Write the bound port here once listening");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  kvd::wire::Encoder encoder;
  encoder.Encode(0, kvd::wire::ReplyFields{}, &g_reply);

  uv_loop_t* loop = uv_default_loop();
  uv_tcp_t server;
  uv_tcp_init(loop, &server);
  sockaddr_in addr{};
  int rc = uv_ip4_addr(host.c_str(), port, &addr);
  if (rc == 0) rc = uv_tcp_bind(&server, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server), 1024, OnConnection);
  if (rc != 0) {
    std::fprintf(stderr, "uv_ceiling: listen on %s:%d: %s\n", host.c_str(), port, uv_err_name(rc));
    return 1;
  }
  sockaddr_storage bound{};
  int len = sizeof(bound);
  uv_tcp_getsockname(&server, reinterpret_cast<sockaddr*>(&bound), &len);
  const int bound_port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  if (!port_file.empty()) {
    // Written to a temporary name and renamed, so readers never see half.
    const std::string tmp = port_file + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr || std::fprintf(f, "%d\n", bound_port) < 0 || std::fclose(f) != 0 ||
        std::rename(tmp.c_str(), port_file.c_str()) != 0) {
      std::fprintf(stderr, "uv_ceiling: cannot write %s\n", port_file.c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "uv_ceiling: listening on %s:%d\n", host.c_str(), bound_port);

  uv_signal_t sigint, sigterm;
  uv_signal_init(loop, &sigint);
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigint, OnSignal, SIGINT);
  uv_signal_start(&sigterm, OnSignal, SIGTERM);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}

}  // namespace
}  // namespace uv_ceiling

int main(int argc, char** argv) { return uv_ceiling::Main(argc, argv); }
