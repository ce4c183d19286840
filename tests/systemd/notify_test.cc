// The sd_notify protocol as kvd speaks it (issue 5), with this test standing
// in for systemd: the test binds an AF_UNIX datagram socket, names it in
// NOTIFY_SOCKET, sets WATCHDOG_USEC=200000 and WATCHDOG_PID=<kvd's pid> as
// systemd does, runs a one-node kvd on a free loopback port and reads what
// arrives.
//
// READY=1 must be the first message and come only once the TCP port and
// the admin socket accept connections; STATUS= lines follow and change
// when the node does; WATCHDOG=1 arrives every 100 ms; SIGHUP gives
// RELOADING=1 then READY=1; SIGTERM gives STOPPING=1 and exit status 0.
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "ctl/kvclient.h"

namespace {

constexpr uint64_t kWatchdogUsec = 200000;  // kvd pings every 100 ms.
constexpr int kStartTimeoutMs = 10000;

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

// A loopback port nobody listens on right now.
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0, "bind: %s",
            strerror(errno));
  socklen_t len = sizeof(addr);
  cr_assert(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  close(fd);
  return ntohs(addr.sin_port);
}

bool TcpAccepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

bool UnixAccepts(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// One kvd under a fake service manager. Global: Criterion runs each test in
// its own process, and the .fini fixture must find it after a failed assert.
struct Harness {
  std::string dir;
  std::string notify_path;
  std::string admin_path;
  std::string log_path;
  int notify_fd = -1;
  int port = 0;
  pid_t pid = 0;
  std::vector<std::string> seen;  // Every message, for failure reports.
} g;

std::string Seen() {
  std::string all;
  for (const std::string& m : g.seen) all += "\n  " + m;
  return all.empty() ? " (none)" : all;
}

std::string LogTail() {
  std::ifstream in(g.log_path);
  std::stringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
}

// Next datagram, or "" when nothing arrives within timeout_ms.
std::string Receive(int timeout_ms) {
  pollfd p{g.notify_fd, POLLIN, 0};
  int rc = poll(&p, 1, timeout_ms);
  if (rc <= 0) return "";
  char buf[4096];
  ssize_t n = recv(g.notify_fd, buf, sizeof(buf), 0);
  cr_assert(n > 0, "recv: %s", strerror(errno));
  std::string message(buf, static_cast<size_t>(n));
  while (!message.empty() && message.back() == '\n') message.pop_back();
  g.seen.push_back(message);
  return message;
}

// Reads until a message satisfies `want`; "" on timeout. Messages that do
// not match are kept in g.seen only.
std::string WaitFor(const std::function<bool(const std::string&)>& want, int timeout_ms) {
  const int64_t deadline = NowMs() + timeout_ms;
  for (;;) {
    int64_t left = deadline - NowMs();
    if (left <= 0) return "";
    std::string message = Receive(static_cast<int>(left));
    if (message.empty()) return "";
    if (want(message)) return message;
  }
}

std::string WaitFor(const char* exact, int timeout_ms) {
  return WaitFor([exact](const std::string& m) { return m == exact; }, timeout_ms);
}

// Waits up to timeout_ms (0: just checks) for kvd to exit; returns its wait
// status, or -1 if it is still running.
int Reap(int timeout_ms) {
  const int64_t deadline = NowMs() + timeout_ms;
  for (;;) {
    int status = 0;
    if (waitpid(g.pid, &status, WNOHANG) == g.pid) {
      g.pid = 0;
      return status;
    }
    if (NowMs() >= deadline) return -1;
    usleep(10000);
  }
}

void Spawn() {
  g.port = FreePort();
  pid_t pid = fork();
  cr_assert(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int log = open(g.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (log >= 0) dup2(log, STDERR_FILENO);
    setenv("NOTIFY_SOCKET", g.notify_path.c_str(), 1);
    setenv("WATCHDOG_USEC", std::to_string(kWatchdogUsec).c_str(), 1);
    setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
    unsetenv("RUNTIME_DIRECTORY");
    std::string cluster = "1=127.0.0.1:" + std::to_string(g.port);
    execl(KVD_PATH, KVD_PATH, "--id", "1", "--cluster", cluster.c_str(), "--data-dir",
          g.dir.c_str(), "--admin-socket", g.admin_path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  g.pid = pid;
}

// Starts kvd and returns once READY=1 arrived (asserting it came first and
// only after the node accepts connections).
void StartKvd() {
  char tmpl[] = "/tmp/kvd-notify-XXXXXX";
  cr_assert(mkdtemp(tmpl) != nullptr, "mkdtemp: %s", strerror(errno));
  g.dir = tmpl;
  g.notify_path = g.dir + "/notify.sock";
  g.admin_path = g.dir + "/kvd.sock";
  g.log_path = g.dir + "/kvd.log";

  // The socket exists before kvd starts, as systemd's does.
  g.notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  cr_assert(g.notify_fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, g.notify_path.c_str(), sizeof(addr.sun_path) - 1);
  cr_assert(bind(g.notify_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0, "bind: %s",
            strerror(errno));

  for (int attempt = 1;; ++attempt) {
    Spawn();
    std::string first;
    int status = -1;
    const int64_t deadline = NowMs() + kStartTimeoutMs;
    while (first.empty() && status == -1 && NowMs() < deadline) {
      first = Receive(50);
      if (first.empty()) status = Reap(0);
    }
    if (first.empty()) {
      // Another test took the port between FreePort() and kvd's bind.
      if (status != -1 && attempt < 5 && LogTail().find("EADDRINUSE") != std::string::npos) {
        continue;
      }
      cr_assert_fail(
          "no notification from kvd within %d ms (wait status %d, -1: running); log:\n%s",
          kStartTimeoutMs, status, LogTail().c_str());
    }
    cr_assert(first == "READY=1", "the first notification is '%s', not READY=1", first.c_str());
    break;
  }
  // READY=1 means listening: both sockets accept at once, no retry.
  cr_assert(TcpAccepts(g.port), "READY=1 arrived but 127.0.0.1:%d refuses connections", g.port);
  cr_assert(UnixAccepts(g.admin_path), "READY=1 arrived but the admin socket refuses connections");
}

void Cleanup() {
  if (g.pid > 0) {
    kill(g.pid, SIGKILL);
    waitpid(g.pid, nullptr, 0);
    g.pid = 0;
  }
  if (g.notify_fd >= 0) close(g.notify_fd);
  g.notify_fd = -1;
  if (!g.dir.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(g.dir, ignored);
  }
}

bool IsStatus(const std::string& m) { return StartsWith(m, "STATUS="); }

// SIGTERM: STOPPING=1, then exit status 0.
void StopKvd() {
  cr_assert(kill(g.pid, SIGTERM) == 0);
  std::string stopping = WaitFor("STOPPING=1", 5000);
  cr_assert(!stopping.empty(), "no STOPPING=1 after SIGTERM; got:%s", Seen().c_str());
  int status = Reap(5000);
  cr_assert(status != -1, "kvd did not exit within 5 s of SIGTERM");
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "kvd ended with wait status 0x%x after SIGTERM; log:\n%s", status, LogTail().c_str());
}

}  // namespace

TestSuite(notify, .fini = Cleanup, .timeout = 30);

Test(notify, ready_only_once_listening) {
  StartKvd();  // Asserts READY=1 first, and listening when it arrives.
  StopKvd();
}

Test(notify, status_lines_follow_changes) {
  StartKvd();
  std::string first = WaitFor(IsStatus, 2000);
  cr_assert(!first.empty(), "no STATUS= within 2 s of READY=1; got:%s", Seen().c_str());
  cr_assert(first.find("clock [0]") != std::string::npos &&
                first.find("0 buffered") != std::string::npos &&
                first.find("0 keys") != std::string::npos,
            "unexpected first status '%s'", first.c_str());

  // A write changes the clock and the key count: a new STATUS= says so.
  kv_client* client = nullptr;
  std::string address = "127.0.0.1:" + std::to_string(g.port);
  cr_assert(kv_connect(address.c_str(), 5000, &client) == KV_OK, "connect: %s", kv_errmsg(nullptr));
  int rc = kv_put(client, "k", 1, "v", 1);
  cr_assert(rc == KV_OK, "put: %s", kv_errmsg(client));
  kv_close(client);
  std::string after = WaitFor(IsStatus, 2000);
  cr_assert(!after.empty(), "no new STATUS= within 2 s of a write; got:%s", Seen().c_str());
  cr_assert(
      after.find("clock [1]") != std::string::npos && after.find("1 keys") != std::string::npos,
      "status after one write: '%s'", after.c_str());

  // Unchanged state, no repeats: at most the odd line over half a second.
  int64_t until = NowMs() + 600;
  int statuses = 0;
  while (NowMs() < until) {
    std::string m = Receive(static_cast<int>(std::max<int64_t>(until - NowMs(), 1)));
    if (IsStatus(m)) ++statuses;
  }
  cr_assert(statuses == 0, "%d STATUS= lines while nothing changed:%s", statuses, Seen().c_str());
  StopKvd();
}

Test(notify, watchdog_at_half_the_interval) {
  StartKvd();
  // WATCHDOG_USEC=200000: a ping every 100 ms, so about 10 in one second.
  int64_t start = NowMs();
  int pings = 0;
  while (NowMs() - start < 1000) {
    std::string m = Receive(static_cast<int>(std::max<int64_t>(1000 - (NowMs() - start), 1)));
    if (m == "WATCHDOG=1") ++pings;
  }
  cr_assert(pings >= 5 && pings <= 15, "%d WATCHDOG=1 in 1 s, expected about 10", pings);
  StopKvd();
}

Test(notify, sighup_reloads) {
  StartKvd();
  cr_assert(kill(g.pid, SIGHUP) == 0);
  auto lifecycle = [](const std::string& m) { return !IsStatus(m) && m != "WATCHDOG=1"; };
  std::string first = WaitFor(lifecycle, 5000);
  cr_assert(first == "RELOADING=1", "after SIGHUP: '%s', expected RELOADING=1; got:%s",
            first.c_str(), Seen().c_str());
  std::string second = WaitFor(lifecycle, 5000);
  cr_assert(second == "READY=1", "after RELOADING=1: '%s', expected READY=1; got:%s",
            second.c_str(), Seen().c_str());
  cr_assert(TcpAccepts(g.port), "kvd stopped listening after a reload");
  StopKvd();
}

Test(notify, sigterm_stopping_and_exit_0) {
  StartKvd();
  WaitFor("WATCHDOG=1", 2000);  // Running for a while first.
  StopKvd();
  // After STOPPING=1 the timers are closed: no more pings, and no READY=1.
  while (!Receive(100).empty()) {
  }
  size_t stopping = 0;
  while (g.seen[stopping] != "STOPPING=1") ++stopping;
  for (size_t i = stopping + 1; i < g.seen.size(); ++i) {
    cr_assert(g.seen[i] != "WATCHDOG=1" && g.seen[i] != "READY=1", "'%s' after STOPPING=1:%s",
              g.seen[i].c_str(), Seen().c_str());
  }
}
