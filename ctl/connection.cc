#include "ctl/connection.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "schema/check.h"

namespace kvd::client {
namespace {

// One read takes at most this much; the decoder copies it anyway.
constexpr size_t kReadChunkBytes = 64 * 1024;

std::string ErrnoText(int error) { return std::strerror(error); }

// poll() on one descriptor, retried on EINTR. Returns poll's result.
int PollOne(int fd, short events, Deadline deadline, short* revents) {
  for (;;) {
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, deadline.RemainingMs());
    if (rc < 0 && errno == EINTR) continue;
    *revents = p.revents;
    return rc;
  }
}

// Finishes a non-blocking connect(): waits for writability, then reads the
// outcome from SO_ERROR. Returns 0 or an errno value (ETIMEDOUT at the deadline).
int AwaitConnect(int fd, Deadline deadline) {
  short revents = 0;
  int rc = PollOne(fd, POLLOUT, deadline, &revents);
  if (rc < 0) return errno;
  if (rc == 0) return ETIMEDOUT;
  int error = 0;
  socklen_t length = sizeof(error);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return errno;
  return error;
}

// Starts and finishes a connect on a fresh non-blocking socket. Returns the
// descriptor, or -1 with *error set (errno value).
int ConnectOne(int family, const sockaddr* address, socklen_t length, Deadline deadline,
               int* error) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = errno;
    return -1;
  }
  int rc = ::connect(fd, address, length);
  *error = rc == 0 ? 0 : errno;
  if (rc != 0 && (errno == EINPROGRESS || errno == EINTR)) *error = AwaitConnect(fd, deadline);
  if (*error != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

Result<int> ConnectTcp(const Endpoint& endpoint, Deadline deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(endpoint.port);
  // getaddrinfo has no timeout of its own; numeric hosts resolve at once.
  int rc = ::getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    return Error{Code::kConnection,
                 "cannot resolve '" + endpoint.host + "': " + ::gai_strerror(rc)};
  }
  int error = 0;
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ConnectOne(a->ai_family, a->ai_addr, a->ai_addrlen, deadline, &error);
    if (error == ETIMEDOUT && deadline.passed()) break;
  }
  ::freeaddrinfo(found);
  if (fd < 0) {
    if (error == ETIMEDOUT) {
      return Error{Code::kTimedOut, "connect to " + endpoint.ToString() + ": timed out"};
    }
    return Error{Code::kConnection, "connect to " + endpoint.ToString() + ": " + ErrnoText(error)};
  }
  int one = 1;
  // Requests are small and latency-bound; batching is the pipeline's job.
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

Result<int> ConnectUnix(const Endpoint& endpoint, Deadline deadline) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (endpoint.path.size() >= sizeof(address.sun_path)) {
    return Error{Code::kInvalidArgument, "Unix socket path too long: " + endpoint.path};
  }
  std::memcpy(address.sun_path, endpoint.path.data(), endpoint.path.size());
  int error = 0;
  int fd = ConnectOne(AF_UNIX, reinterpret_cast<const sockaddr*>(&address), sizeof(address),
                      deadline, &error);
  if (fd >= 0) return fd;
  if (error == ETIMEDOUT) {
    return Error{Code::kTimedOut, "connect to " + endpoint.path + ": timed out"};
  }
  return Error{Code::kConnection, "connect to " + endpoint.path + ": " + ErrnoText(error)};
}

}  // namespace

Deadline Deadline::After(int timeout_ms) {
  if (timeout_ms <= 0) return Never();
  return Deadline(std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms));
}

int Deadline::RemainingMs() const {
  if (!at_) return -1;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(*at_ - std::chrono::steady_clock::now());
  if (left.count() <= 0) return 0;
  if (left.count() > 1000 * 1000 * 1000) return 1000 * 1000 * 1000;
  return static_cast<int>(left.count());
}

Result<std::unique_ptr<Connection>> Connection::Open(const Endpoint& endpoint, Deadline deadline,
                                                     size_t frame_bytes_max) {
  Result<int> fd = endpoint.kind == Endpoint::Kind::kTcp ? ConnectTcp(endpoint, deadline)
                                                         : ConnectUnix(endpoint, deadline);
  if (!fd.ok()) return fd.error();
  return std::unique_ptr<Connection>(new Connection(*fd, endpoint.ToString(), frame_bytes_max));
}

Connection::Connection(int fd, std::string description, size_t frame_bytes_max)
    : fd_(fd),
      description_(std::move(description)),
      decoder_(frame_bytes_max),
      read_buffer_(kReadChunkBytes) {}

Connection::~Connection() { ::close(fd_); }

Error Connection::ClosedError() const {
  std::string why = read_error_.empty() ? "connection closed by the server" : read_error_;
  return {Code::kConnection, description_ + ": " + why};
}

Connection::ReadOutcome Connection::ReadNow() {
  for (;;) {
    ssize_t n = ::recv(fd_, read_buffer_.data(), read_buffer_.size(), MSG_DONTWAIT);
    if (n > 0) {
      decoder_.Feed(read_buffer_.data(), static_cast<size_t>(n));
      return ReadOutcome::kData;
    }
    if (n == 0) {
      eof_ = true;
      return ReadOutcome::kClosed;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return ReadOutcome::kTimedOut;
    // ECONNRESET and the like: the server is gone either way.
    eof_ = true;
    read_error_ = "read: " + ErrnoText(errno);
    return ReadOutcome::kFailed;
  }
}

Connection::ReadOutcome Connection::ReadSome(Deadline deadline) {
  if (eof_) return ReadOutcome::kClosed;
  for (;;) {
    short revents = 0;
    int rc = PollOne(fd_, POLLIN, deadline, &revents);
    if (rc < 0) {
      read_error_ = "poll: " + ErrnoText(errno);
      return ReadOutcome::kFailed;
    }
    if (rc == 0) return ReadOutcome::kTimedOut;
    ReadOutcome outcome = ReadNow();
    // A spurious wake-up reads nothing; wait again unless time is up.
    if (outcome != ReadOutcome::kTimedOut || deadline.passed()) return outcome;
  }
}

Result<void> Connection::Flush(Deadline deadline) {
  while (sent_ < output_.size()) {
    if (eof_) return ClosedError();
    short revents = 0;
    int rc = PollOne(fd_, POLLOUT | POLLIN, deadline, &revents);
    if (rc < 0) return Error{Code::kConnection, description_ + ": poll: " + ErrnoText(errno)};
    if (rc == 0) {
      return Error{Code::kTimedOut, description_ + ": timed out sending " +
                                        std::to_string(output_.size() - sent_) + " bytes"};
    }
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
      // Keep what the server says (replies, or an Error before it closes).
      ReadNow();
    }
    if (revents & POLLOUT) {
      ssize_t n =
          ::send(fd_, output_.data() + sent_, output_.size() - sent_, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent_ += static_cast<size_t>(n);
      } else if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
        int error = errno;
        // Pick up an Error frame the server may have sent before closing.
        ReadNow();
        eof_ = true;
        return Error{Code::kConnection, description_ + ": write: " + ErrnoText(error)};
      }
    }
  }
  output_.clear();
  sent_ = 0;
  return {};
}

Result<wire::Frame> Connection::NextFrame(Deadline deadline, const wire::Limits& limits) {
  for (;;) {
    wire::DecodeResult next = decoder_.Next();
    if (next.kind == wire::DecodeResult::Kind::kFrame) {
      if (auto bad = wire::CheckEnvelope(*next.frame.envelope, limits)) {
        return Error{Code::kProtocol,
                     description_ + ": unusable frame from the server: " + bad->message};
      }
      return next.frame;
    }
    if (next.kind == wire::DecodeResult::Kind::kError) {
      return Error{Code::kProtocol,
                   description_ + ": bad frame from the server: " + next.error.message};
    }
    switch (ReadSome(deadline)) {
      case ReadOutcome::kData:
        continue;
      case ReadOutcome::kTimedOut:
        return Error{Code::kTimedOut, description_ + ": no reply within the timeout"};
      case ReadOutcome::kClosed:
      case ReadOutcome::kFailed:
        return ClosedError();
    }
  }
}

bool Connection::WaitClosed(Deadline deadline) {
  for (;;) {
    switch (ReadSome(deadline)) {
      case ReadOutcome::kData:
        continue;
      case ReadOutcome::kTimedOut:
        return false;
      case ReadOutcome::kClosed:
      case ReadOutcome::kFailed:
        return eof_;
    }
  }
}

}  // namespace kvd::client
