/* cluster.c: see cluster.h. */
#define _GNU_SOURCE
#include "tests/integration/cluster.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef KVD_PATH
#error "KVD_PATH must name the kvd binary (set by tests/integration/CMakeLists.txt)"
#endif

/* ------------------------------------------------------------ state -- */

static kvt_node g_nodes[KVT_NODES_MAX];
static int g_size;
static char g_cluster_arg[KVT_NODES_MAX * 40];
static kvt_options g_options; /* as given to kvt_start_with, for restarts */
static int g_stopped_cleanly; /* kvt_stop() succeeded: no log dump needed */
static int g_atexit_registered;

/* -------------------------------------------------------------- time -- */

double kvt_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void kvt_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* ------------------------------------------------------------- ports -- */

/* Binds a fresh TCP socket to 127.0.0.1:0 and returns it (the caller reads
 * the port and closes it), or -1. */
static int BindAnyPort(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, (struct sockaddr*)&addr, sizeof(addr)) != 0 ||
      getsockname(fd, (struct sockaddr*)&addr, &len) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

int kvt_free_port(void) {
  int port = 0;
  int fd = BindAnyPort(&port);
  cr_assert(fd >= 0, "cannot bind a loopback port: %s", strerror(errno));
  close(fd);
  return port;
}

/* --------------------------------------------------------- processes -- */

/* Closes every descriptor above stderr in a forked child, so a kvd never
 * holds the test runner's pipes or sockets. */
static void CloseInheritedFds(void) {
  long max = sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 65536) max = 65536;
  for (int fd = 3; fd < max; ++fd) close(fd);
}

/* Waits for `pid` up to timeout_ms; returns its wait status or -1. */
static int WaitPid(pid_t pid, int timeout_ms, int* status) {
  double deadline = kvt_now_ms() + timeout_ms;
  for (;;) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid) return 0;
    if (r < 0 && errno != EINTR) return -1;
    if (kvt_now_ms() > deadline) return -1;
    kvt_sleep_ms(5);
  }
}

static void KillNode(kvt_node* node) {
  if (node->pid <= 0) return;
  kill(node->pid, SIGKILL);
  int status;
  WaitPid(node->pid, 5000, &status);
  node->pid = 0;
}

/* Writes `secret` to dir/name with mode 0600 and returns the path in `path`. */
static void WriteSecret(const char* dir, const char* name, const char* secret, char* path,
                        size_t cap) {
  snprintf(path, cap, "%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  cr_assert(fd >= 0, "create %s: %s", path, strerror(errno));
  size_t len = strlen(secret);
  cr_assert_eq(write(fd, secret, len), (ssize_t)len, "write %s", path);
  close(fd);
}

static void SpawnNode(kvt_node* node, const kvt_options* options) {
  char cluster_secret[200], client_secret[200];
  char id[16];
  snprintf(id, sizeof(id), "%d", node->id);
  const char* argv[64];
  int argc = 0;
  argv[argc++] = KVD_PATH;
  argv[argc++] = "--id";
  argv[argc++] = id;
  argv[argc++] = "--cluster";
  argv[argc++] = g_cluster_arg;
  argv[argc++] = "--data-dir";
  argv[argc++] = node->dir;
  argv[argc++] = "--admin-socket";
  argv[argc++] = node->admin;
  argv[argc++] = "--fault-injection";
  argv[argc++] = "--log-level";
  argv[argc++] = "debug";
  if (options->cluster_secret[node->id - 1] != NULL) {
    WriteSecret(node->dir, "cluster.secret", options->cluster_secret[node->id - 1], cluster_secret,
                sizeof(cluster_secret));
    argv[argc++] = "--cluster-secret-file";
    argv[argc++] = cluster_secret;
  }
  if (options->client_password != NULL) {
    WriteSecret(node->dir, "client.secret", options->client_password, client_secret,
                sizeof(client_secret));
    argv[argc++] = "--client-secret-file";
    argv[argc++] = client_secret;
  }
  if (options->bootstrap && !node->started) {
    argv[argc++] = "--bootstrap-cluster-id";
    argv[argc++] = "kvt-bootstrapped";
  }
  for (int i = 0; i < KVT_ARGS_MAX && options->args[i] != NULL; ++i)
    argv[argc++] = options->args[i];
  argv[argc] = NULL;

  pid_t parent = getpid();
  pid_t pid = fork();
  cr_assert(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    /* The node dies with the test process, even if the test crashes. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    /* A restarted node appends to the log of its earlier lives. */
    int log = open(node->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int null = open("/dev/null", O_RDWR);
    if (log < 0 || null < 0) _exit(127);
    dup2(null, 0);
    dup2(log, 1);
    dup2(log, 2);
    CloseInheritedFds();
    signal(SIGPIPE, SIG_DFL);
    execv(KVD_PATH, (char* const*)argv);
    dprintf(2, "exec %s: %s\n", KVD_PATH, strerror(errno));
    _exit(127);
  }
  node->pid = pid;
  node->started = 1;
  node->stopped = 0;
}

/* ------------------------------------------------------------- files -- */

static int RemoveEntry(const char* path, const struct stat* st, int flag, struct FTW* ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void RemoveTree(const char* dir) { nftw(dir, RemoveEntry, 16, FTW_DEPTH | FTW_PHYS); }

/* Reads a whole file into a malloc'd NUL-terminated buffer (NULL if none). */
static char* ReadFile(const char* path) {
  FILE* f = fopen(path, "rb");
  if (f == NULL) return NULL;
  size_t cap = 1 << 16;
  size_t len = 0;
  char* data = malloc(cap);
  size_t n;
  while (data != NULL && (n = fread(data + len, 1, cap - len - 1, f)) > 0) {
    len += n;
    if (cap - len - 1 == 0) {
      cap *= 2;
      char* bigger = realloc(data, cap);
      if (bigger == NULL) free(data);
      data = bigger;
    }
  }
  fclose(f);
  if (data != NULL) data[len] = '\0';
  return data;
}

int kvt_log_count(int id, const char* text) {
  char* data = ReadFile(kvt_node_at(id)->log_path);
  if (data == NULL) return 0;
  int count = 0;
  for (char* start = data; *start != '\0';) {
    char* end = strchr(start, '\n');
    if (end != NULL) *end = '\0';
    if (strstr(start, text) != NULL) ++count;
    if (end == NULL) break;
    start = end + 1;
  }
  free(data);
  return count;
}

int kvt_log_line(int id, const char* text) {
  char* data = ReadFile(kvt_node_at(id)->log_path);
  if (data == NULL) return -1;
  size_t text_len = strlen(text);
  int found = -1;
  int line = 0;
  for (char* start = data; *start != '\0' && found < 0; ++line) {
    char* end = strchr(start, '\n');
    if (end == NULL) end = start + strlen(start);
    for (char* p = start; p + text_len <= end; ++p) {
      if (memcmp(p, text, text_len) == 0 && (p + text_len == end || p[text_len] == ' ')) {
        found = line;
        break;
      }
    }
    start = *end == '\0' ? end : end + 1;
  }
  free(data);
  return found;
}

void kvt_dump_log(int id, int lines) {
  kvt_node* node = kvt_node_at(id);
  char* data = ReadFile(node->log_path);
  if (data == NULL) {
    fprintf(stderr, "--- n%d: no log at %s\n", id, node->log_path);
    return;
  }
  size_t len = strlen(data);
  /* Step back over `lines` line ends (ignoring a final one). */
  size_t start = len > 0 && data[len - 1] == '\n' ? len - 1 : len;
  int seen = 0;
  while (start > 0) {
    if (data[start - 1] == '\n' && ++seen == lines) break;
    --start;
  }
  fprintf(stderr, "--- n%d log (%s), last %d lines:\n%s", id, node->log_path, lines, data + start);
  if (len > 0 && data[len - 1] != '\n') fputc('\n', stderr);
  free(data);
}

/* ----------------------------------------------------------- cluster -- */

int kvt_size(void) { return g_size; }

kvt_node* kvt_node_at(int id) {
  cr_assert(id >= 1 && id <= g_size, "no node %d in a %d-node cluster", id, g_size);
  return &g_nodes[id - 1];
}

const char* kvt_cluster_arg(void) { return g_cluster_arg; }

/* Presents the harness's client password, if the cluster has one. */
static int Authenticate(kv_client* c) {
  if (g_options.client_password == NULL) return KV_OK;
  return kv_auth(c, g_options.client_password, strlen(g_options.client_password));
}

kv_client* kvt_client(int id) {
  kv_client* c = NULL;
  int rc = kv_connect(kvt_node_at(id)->address, KVT_CLIENT_TIMEOUT_MS, &c);
  cr_assert(rc == KV_OK, "connect n%d (%s): %s (%d)", id, kvt_node_at(id)->address, kv_errmsg(NULL),
            rc);
  rc = Authenticate(c);
  cr_assert(rc == KV_OK, "password at n%d: %s (%d)", id, kv_errmsg(c), rc);
  return c;
}

kv_client* kvt_admin(int id) {
  kv_client* c = NULL;
  int rc = kv_connect(kvt_node_at(id)->admin, KVT_CLIENT_TIMEOUT_MS, &c);
  cr_assert(rc == KV_OK, "connect n%d admin (%s): %s (%d)", id, kvt_node_at(id)->admin,
            kv_errmsg(NULL), rc);
  return c;
}

/* One status over TCP; returns the kv code (no assert). */
static int TryStatus(int id, kv_node_status* out) {
  kv_client* c = NULL;
  int rc = kv_connect(kvt_node_at(id)->address, 1000, &c);
  if (rc == KV_OK) rc = Authenticate(c);
  if (rc == KV_OK) rc = kv_status(c, out);
  kv_close(c);
  return rc;
}

void kvt_status(int id, kv_node_status* out) {
  kv_client* c = kvt_client(id);
  int rc = kv_status(c, out);
  cr_assert(rc == KV_OK, "status of n%d: %s (%d)", id, kv_errmsg(c), rc);
  cr_assert(out->id == (uint32_t)id, "n%d says it is n%u", id, out->id);
  kv_close(c);
}

void kvt_link(int from, int to, int hold) {
  kv_client* c = kvt_admin(from);
  int rc = kv_link(c, (uint32_t)to, hold);
  cr_assert(rc == KV_OK, "link %s n%d->n%d: %s (%d)", hold ? "hold" : "release", from, to,
            kv_errmsg(c), rc);
  kv_close(c);
}

void kvt_pause(int id) {
  kvt_node* node = kvt_node_at(id);
  cr_assert(node->pid > 0);
  cr_assert(kill(node->pid, SIGSTOP) == 0);
  node->stopped = 1;
}

void kvt_resume(int id) {
  kvt_node* node = kvt_node_at(id);
  cr_assert(node->pid > 0);
  cr_assert(kill(node->pid, SIGCONT) == 0);
  node->stopped = 0;
}

/* Whether every started node answers status and has its links to and from
 * every other started node up. Sets *exited to a node that died. */
static int AllReady(int* exited) {
  /* A new cluster takes writes once all its nodes have met (node 1 founds
   * it, the others adopt its identity); with a node left out it cannot. */
  int all_started = 1;
  for (int i = 0; i < g_size; ++i) all_started &= g_nodes[i].started;
  for (int i = 0; i < g_size; ++i) {
    kvt_node* node = &g_nodes[i];
    if (!node->started) continue;
    int status;
    if (node->pid > 0 && waitpid(node->pid, &status, WNOHANG) == node->pid) {
      node->pid = 0;
      *exited = node->id;
      return 0;
    }
    kv_node_status st;
    if (TryStatus(node->id, &st) != KV_OK) return 0;
    if ((all_started || g_options.bootstrap) && !st.accepting_writes) return 0;
    if (g_options.no_link_wait) continue;
    for (size_t p = 0; p < st.peer_count; ++p) {
      const kv_peer_status* peer = &st.peers[p];
      if (peer->id < 1 || peer->id > (uint32_t)g_size) return 0;
      if (!g_nodes[peer->id - 1].started) continue;
      if (!peer->connected_out || !peer->connected_in) return 0;
    }
  }
  return 1;
}

static void AtExit(void) { kvt_cleanup(); }

void kvt_kill_node(int id) {
  kvt_node* node = kvt_node_at(id);
  cr_assert(node->pid > 0, "n%d is not running", id);
  KillNode(node);
}

void kvt_restart_node(int id) {
  kvt_node* node = kvt_node_at(id);
  cr_assert(node->pid == 0, "n%d is still running", id);
  SpawnNode(node, &g_options);
}

/* One attempt; returns 1 when ready, 0 when a node lost its port race (the
 * caller retries on new ports). Asserts on any other failure. */
static int TryStart(const kvt_options* options) {
  /* Hold every probe socket until all ports are chosen, so one cluster
   * never gets the same port twice. */
  int probes[KVT_NODES_MAX];
  size_t pos = 0;
  g_cluster_arg[0] = '\0';
  for (int i = 0; i < g_size; ++i) {
    kvt_node* node = &g_nodes[i];
    probes[i] = -1;
    if (options->port[i] != 0) {
      node->port = options->port[i];
    } else {
      probes[i] = BindAnyPort(&node->port);
      cr_assert(probes[i] >= 0, "cannot bind a loopback port: %s", strerror(errno));
    }
    snprintf(node->address, sizeof(node->address), "127.0.0.1:%d", node->port);
    pos += (size_t)snprintf(g_cluster_arg + pos, sizeof(g_cluster_arg) - pos, "%s%d=%s",
                            i == 0 ? "" : ",", node->id, node->address);
  }
  for (int i = 0; i < g_size; ++i) {
    if (probes[i] >= 0) close(probes[i]);
  }
  for (int i = 0; i < g_size; ++i) {
    if (options->port[i] == 0) SpawnNode(&g_nodes[i], options);
  }

  double deadline = kvt_now_ms() + KVT_START_TIMEOUT_MS;
  for (;;) {
    int exited = 0;
    if (AllReady(&exited)) return 1;
    if (exited != 0) {
      if (kvt_log_line(exited, "EADDRINUSE") >= 0) return 0; /* lost a port race */
      kvt_dump_log(exited, 30);
      cr_assert_fail("n%d exited during start-up (see its log above)", exited);
    }
    if (kvt_now_ms() > deadline) {
      for (int i = 0; i < g_size; ++i) {
        if (g_nodes[i].started) kvt_dump_log(g_nodes[i].id, 30);
      }
      cr_assert_fail("cluster not ready within %d ms", KVT_START_TIMEOUT_MS);
    }
    kvt_sleep_ms(20);
  }
}

void kvt_start_with(const kvt_options* options) {
  cr_assert(g_size == 0, "one cluster per test");
  g_options = *options;
  if (!g_atexit_registered) {
    atexit(AtExit);
    g_atexit_registered = 1;
  }
  g_size = options->nodes == 0 ? 3 : options->nodes;
  cr_assert(g_size >= 1 && g_size <= KVT_NODES_MAX);
  g_stopped_cleanly = 0;
  for (int i = 0; i < g_size; ++i) {
    kvt_node* node = &g_nodes[i];
    memset(node, 0, sizeof(*node));
    node->id = i + 1;
    snprintf(node->dir, sizeof(node->dir), "/tmp/kvt-n%d-XXXXXX", node->id);
    cr_assert(mkdtemp(node->dir) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(node->admin, sizeof(node->admin), "%s/kvd.sock", node->dir);
    snprintf(node->log_path, sizeof(node->log_path), "%s/kvd.log", node->dir);
  }
  for (int attempt = 1;; ++attempt) {
    if (TryStart(options)) return;
    /* Another test took a port between our probe and kvd's bind. */
    for (int i = 0; i < g_size; ++i) KillNode(&g_nodes[i]);
    cr_assert(attempt < 5, "kvd could not bind free ports after %d attempts", attempt);
  }
}

void kvt_start(const char* arg, ...) {
  kvt_options options;
  memset(&options, 0, sizeof(options));
  va_list ap;
  va_start(ap, arg);
  for (int i = 0; arg != NULL; ++i) {
    cr_assert(i < KVT_ARGS_MAX - 1, "too many kvd arguments");
    options.args[i] = arg;
    arg = va_arg(ap, const char*);
  }
  va_end(ap);
  kvt_start_with(&options);
}

/* Waits for a node told to stop (`after` says how); returns 0 if it
 * exited with status 0, else describes the failure in `why`. */
static int Reap(kvt_node* node, int timeout_ms, const char* after, char* why, size_t cap) {
  int status = 0;
  if (WaitPid(node->pid, timeout_ms, &status) != 0) {
    KillNode(node);
    snprintf(why, cap, "n%d did not exit within %d ms of %s", node->id, timeout_ms, after);
    return -1;
  }
  node->pid = 0;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  if (WIFSIGNALED(status)) {
    snprintf(why, cap, "n%d died of signal %d after %s", node->id, WTERMSIG(status), after);
  } else {
    snprintf(why, cap, "n%d exited with status %d after %s", node->id, WEXITSTATUS(status), after);
  }
  return -1;
}

static int ReapStopped(kvt_node* node, char* why, size_t cap) {
  return Reap(node, 5000, "SIGTERM", why, cap);
}

void kvt_wait_exit(int id, int timeout_ms) {
  kvt_node* node = kvt_node_at(id);
  cr_assert(node->pid > 0, "n%d is not running", id);
  char why[256] = "";
  if (Reap(node, timeout_ms, "its shutdown", why, sizeof(why)) != 0) {
    kvt_dump_log(id, 30);
    cr_assert_fail("%s", why);
  }
}

void kvt_stop(void) {
  /* Signal everyone first so the nodes shut down in parallel. */
  for (int i = 0; i < g_size; ++i) {
    kvt_node* node = &g_nodes[i];
    if (node->pid <= 0) continue;
    if (node->stopped) kvt_resume(node->id);
    cr_assert(kill(node->pid, SIGTERM) == 0, "kill n%d: %s", node->id, strerror(errno));
  }
  int failed = 0;
  char why[256] = "";
  for (int i = 0; i < g_size; ++i) {
    kvt_node* node = &g_nodes[i];
    if (node->pid <= 0) continue;
    if (ReapStopped(node, why, sizeof(why)) != 0) failed = node->id;
  }
  if (failed != 0) {
    kvt_dump_log(failed, 30);
    cr_assert_fail("%s", why);
  }
  g_stopped_cleanly = 1;
}

void kvt_stop_node(int id) {
  kvt_node* node = kvt_node_at(id);
  cr_assert(node->pid > 0, "n%d is not running", id);
  if (node->stopped) kvt_resume(id);
  cr_assert(kill(node->pid, SIGTERM) == 0, "kill n%d: %s", id, strerror(errno));
  char why[256] = "";
  if (ReapStopped(node, why, sizeof(why)) != 0) {
    kvt_dump_log(id, 30);
    cr_assert_fail("%s", why);
  }
}

void kvt_cleanup(void) {
  int keep = getenv("KVT_KEEP") != NULL;
  for (int i = 0; i < g_size; ++i) {
    kvt_node* node = &g_nodes[i];
    if (!g_stopped_cleanly && node->started) kvt_dump_log(node->id, 25);
    KillNode(node);
    if (node->dir[0] != '\0') {
      if (keep) {
        fprintf(stderr, "kvt: kept n%d's data dir %s\n", node->id, node->dir);
      } else {
        RemoveTree(node->dir);
      }
    }
    node->dir[0] = '\0';
  }
  g_size = 0;
}

/* ------------------------------------------------------ convergence -- */

int kvt_wait_converged(int timeout_ms) {
  double deadline = kvt_now_ms() + timeout_ms;
  for (;;) {
    kv_node_status first, st;
    int ok = 1;
    int have_first = 0;
    for (int i = 0; i < g_size && ok; ++i) {
      if (!g_nodes[i].started || g_nodes[i].pid <= 0) continue;
      kv_node_status* out = have_first ? &st : &first;
      if (TryStatus(g_nodes[i].id, out) != KV_OK || out->buffered != 0 || !out->accepting_writes) {
        ok = 0;
      } else if (have_first) {
        ok = st.clock_len == first.clock_len &&
             memcmp(st.clock, first.clock, first.clock_len * sizeof(uint64_t)) == 0;
      }
      have_first = 1;
    }
    if (ok) return 1;
    if (kvt_now_ms() > deadline) return 0;
    kvt_sleep_ms(10);
  }
}

int kvt_wait_buffered(int id, uint64_t buffered, int timeout_ms) {
  double deadline = kvt_now_ms() + timeout_ms;
  for (;;) {
    kv_node_status st;
    if (TryStatus(id, &st) == KV_OK && st.buffered == buffered) return 1;
    if (kvt_now_ms() > deadline) return 0;
    kvt_sleep_ms(5);
  }
}

/* ----------------------------------------------------------- helpers -- */

void kvt_put(kv_client* c, const char* key, const char* value) {
  int rc = kv_put(c, key, strlen(key), value, strlen(value));
  cr_assert(rc == KV_OK, "put %s=%s: %s (%d)", key, value, kv_errmsg(c), rc);
}

int kvt_get(kv_client* c, const char* key, char* value, size_t cap) {
  char* data = NULL;
  size_t len = 0;
  int found = 0;
  int rc = kv_get(c, key, strlen(key), &data, &len, &found);
  value[0] = '\0';
  if (rc == KV_OK) {
    size_t n = len < cap - 1 ? len : cap - 1;
    if (n > 0) memcpy(value, data, n);
    value[n] = '\0';
  }
  kv_free(data);
  return rc;
}

void kvt_carry_context(kv_client* from, kv_client* to) {
  uint64_t clock[KV_NODES_MAX];
  size_t len = 0;
  cr_assert(kv_context_get(from, clock, KV_NODES_MAX, &len) == KV_OK);
  cr_assert(kv_context_set(to, clock, len) == KV_OK);
}

/* ------------------------------------------------------------ kvt_run -- */

/* Appends what is readable on fd to buf; returns 0 at EOF. */
static int Drain(int fd, char* buf, size_t cap, size_t* len) {
  char chunk[4096];
  ssize_t n = read(fd, chunk, sizeof(chunk));
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) return 0;
  size_t room = cap - 1 - *len;
  size_t take = (size_t)n < room ? (size_t)n : room;
  memcpy(buf + *len, chunk, take);
  *len += take;
  buf[*len] = '\0';
  return 1;
}

int kvt_run(char* const argv[], char* out, size_t out_cap, char* err, size_t err_cap,
            int timeout_ms) {
  int out_pipe[2], err_pipe[2];
  out[0] = '\0';
  err[0] = '\0';
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return -1;
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return -1;
  }
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    CloseInheritedFds();
    execv(argv[0], argv);
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  size_t out_len = 0, err_len = 0;
  int open_count = 2;
  double deadline = kvt_now_ms() + timeout_ms;
  int timed_out = 0;
  while (open_count > 0) {
    int wait_ms = (int)(deadline - kvt_now_ms());
    if (wait_ms <= 0) {
      timed_out = 1;
      break;
    }
    int n = poll(fds, 2, wait_ms);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < 2 && n > 0; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      int more = i == 0 ? Drain(fds[i].fd, out, out_cap, &out_len)
                        : Drain(fds[i].fd, err, err_cap, &err_len);
      if (!more) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  for (int i = 0; i < 2; ++i) {
    if (fds[i].fd >= 0) close(fds[i].fd);
  }
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  if (WaitPid(pid, timed_out ? 5000 : timeout_ms + 1000, &status) != 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
  }
  if (timed_out) return -1;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}
