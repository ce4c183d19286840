#include "ctl/fake_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include "schema/frame.h"

namespace kvd::client::test {
namespace {

// Polls in short slices so the destructor's stop flag is seen quickly.
constexpr int kSliceMs = 20;

bool WaitReadable(int fd, const std::atomic<bool>& stop) {
  while (!stop.load()) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, kSliceMs) > 0) return true;
  }
  return false;
}

void WriteAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

}  // namespace

FakeServer::FakeServer(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      ::listen(listen_fd_, 8) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    std::abort();  // A test machine without loopback cannot run these tests.
  }
  port_ = ntohs(address.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

FakeServer::~FakeServer() {
  stop_.store(true);
  thread_.join();
  ::close(listen_fd_);
}

void FakeServer::Serve() {
  while (WaitReadable(listen_fd_, stop_)) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ServeConnection(fd);
    ::close(fd);
  }
}

void FakeServer::ServeConnection(int fd) {
  wire::FrameDecoder decoder(wire::kFrameBytesMaxDefault);
  wire::Encoder encoder;
  char chunk[64 * 1024];
  while (WaitReadable(fd, stop_)) {
    ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return;
    decoder.Feed(chunk, static_cast<size_t>(n));
    std::string out;
    bool close = false;
    for (;;) {
      wire::DecodeResult next = decoder.Next();
      if (next.kind != wire::DecodeResult::Kind::kFrame) {
        close = close || next.kind == wire::DecodeResult::Kind::kError;
        break;
      }
      ++frames_;
      close = handler_(*next.frame.envelope, encoder, &out).close;
      if (close) break;
    }
    // All answers to one read leave in one write, as kvd does.
    WriteAll(fd, out);
    if (close) return;
  }
}

}  // namespace kvd::client::test
