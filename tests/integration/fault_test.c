/* fault_test.c: a stopped or hung peer must not slow client writes at the
 * other nodes (replication is asynchronous; a peer that does not read only
 * fills that peer's queue), and no stuck peer, request or client may keep
 * a node from shutting down cleanly on SIGTERM. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/integration/cluster.h"

TestSuite(fault, .fini = kvt_cleanup, .timeout = 50);

/* 500 puts of 16 KiB are 8 MiB for each peer: more than loopback socket
 * buffers hold, so a stopped peer's connection really backs up. */
enum { kPuts = 500, kValueBytes = 16 * 1024, kSmallValueBytes = 64 };

typedef struct Timing {
  double total_ms;
  double max_ms;
} Timing;

/* kPuts sequential puts of value_bytes values under keys "<prefix><i>". */
static Timing TimePuts(kv_client* c, const char* prefix, size_t value_bytes) {
  static char value[kValueBytes];
  cr_assert_leq(value_bytes, sizeof(value));
  memset(value, 'v', sizeof(value));
  Timing t = {0, 0};
  double start = kvt_now_ms();
  for (int i = 0; i < kPuts; ++i) {
    char key[64];
    snprintf(key, sizeof(key), "%s%d", prefix, i);
    double before = kvt_now_ms();
    int rc = kv_put(c, key, strlen(key), value, value_bytes);
    double took = kvt_now_ms() - before;
    cr_assert_eq(rc, KV_OK, "put %s: %s (%d)", key, kv_errmsg(c), rc);
    if (took > t.max_ms) t.max_ms = took;
  }
  t.total_ms = kvt_now_ms() - start;
  return t;
}

/* Waits until node `id` has key (any value). */
static int WaitForKey(int id, const char* key, int timeout_ms) {
  kv_client* c = kvt_client(id);
  double deadline = kvt_now_ms() + timeout_ms;
  int ok = 0;
  while (!ok && kvt_now_ms() < deadline) {
    int rc = kv_get(c, key, strlen(key), NULL, NULL, NULL);
    cr_assert(rc == KV_OK || rc == KV_NOT_FOUND, "get %s at n%d: %s", key, id, kv_errmsg(c));
    ok = rc == KV_OK;
    if (!ok) kvt_sleep_ms(5);
  }
  kv_close(c);
  return ok;
}

/* Timings on a shared 2-core machine are noisy. A real stall (a put that
 * waits for a peer) fails every attempt, a scheduling hiccup rarely two in
 * a row, so each timing check gets kAttempts tries. */
enum { kAttempts = 2 };

/* Whether `t` meets the bounds; otherwise says why in `why`. */
static int WithinBounds(const char* what, Timing t, double total_ms_max, char* why, size_t cap) {
  if (t.total_ms > total_ms_max) {
    snprintf(why, cap, "%d puts at %s took %.1f ms (bound %.1f)", kPuts, what, t.total_ms,
             total_ms_max);
    return 0;
  }
  if (t.max_ms > 200.0) {
    snprintf(why, cap, "one put at %s took %.1f ms (bound 200)", what, t.max_ms);
    return 0;
  }
  return 1;
}

Test(fault, stopped_peer_does_not_slow_writes) {
  kvt_start(NULL);
  kv_client* n1 = kvt_client(1);
  kv_client* n2 = kvt_client(2);
  TimePuts(n1, "warm-", kValueBytes); /* connections, allocator and caches warm */
  Timing base = TimePuts(n1, "base-", kValueBytes);
  double bound = base.total_ms * 3 > base.total_ms + 200 ? base.total_ms * 3 : base.total_ms + 200;

  kvt_pause(3);
  int attempts = 0;
  int ok = 0;
  char why[256] = "";
  char last_n1[32] = "", last_n2[32] = "";
  while (!ok && attempts < kAttempts) {
    char prefix1[16], prefix2[16];
    snprintf(prefix1, sizeof(prefix1), "stopped%d-", attempts);
    snprintf(prefix2, sizeof(prefix2), "stopped%d-n2-", attempts);
    Timing at_n1 = TimePuts(n1, prefix1, kValueBytes);
    Timing at_n2 = TimePuts(n2, prefix2, kValueBytes);
    ++attempts;
    snprintf(last_n1, sizeof(last_n1), "%s%d", prefix1, kPuts - 1);
    snprintf(last_n2, sizeof(last_n2), "%s%d", prefix2, kPuts - 1);
    cr_log_info(
        "%d puts at n1: %.1f ms (max %.2f) with n3 running; with n3 stopped %.1f ms (max %.2f), "
        "and at n2 %.1f ms (max %.2f)",
        kPuts, base.total_ms, base.max_ms, at_n1.total_ms, at_n1.max_ms, at_n2.total_ms,
        at_n2.max_ms);
    ok = WithinBounds("n1", at_n1, bound, why, sizeof(why)) &&
         WithinBounds("n2", at_n2, bound, why, sizeof(why));
    if (!ok) cr_log_warn("attempt %d: %s", attempts, why);
  }
  cr_assert(ok, "with n3 stopped, %s (%.1f ms with n3 running)", why, base.total_ms);
  /* n1 and n2 still replicate to each other. */
  cr_assert(WaitForKey(2, last_n1, KVT_WAIT_TIMEOUT_MS), "n2 never got n1's last put");
  cr_assert(WaitForKey(1, last_n2, KVT_WAIT_TIMEOUT_MS), "n1 never got n2's last put");

  kvt_resume(3);
  cr_assert(kvt_wait_converged(10000), "no convergence after SIGCONT");
  cr_assert(WaitForKey(3, last_n1, 1000));
  cr_assert(WaitForKey(3, last_n2, 1000));
  kv_node_status st;
  kvt_status(3, &st);
  /* n1 wrote warm- and base- and one batch per attempt; n2 one per attempt. */
  cr_assert_eq(st.clock[0], (uint64_t)(2 + attempts) * kPuts, "n3 clock[0] = %llu",
               (unsigned long long)st.clock[0]);
  cr_assert_eq(st.clock[1], (uint64_t)attempts * kPuts, "n3 clock[1] = %llu",
               (unsigned long long)st.clock[1]);
  kv_close(n1);
  kv_close(n2);
  kvt_stop();
}

Test(fault, socket_that_never_answers_does_not_slow_writes) {
  /* The cluster forms with all three nodes (a new cluster needs every node
   * once), then node 3 stops and its address becomes a socket this test
   * listens on and never accepts from or reads: TCP connects succeed, the
   * Hello is never answered. */
  kvt_start(NULL);
  cr_assert(kvt_wait_converged(10000), "the cluster did not form");
  kvt_stop_node(3);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert(fd >= 0);
  int one = 1;
  cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons((uint16_t)kvt_node_at(3)->port);
  cr_assert_eq(bind(fd, (struct sockaddr*)&addr, sizeof(addr)), 0, "bind n3's port: %s",
               strerror(errno));
  cr_assert_eq(listen(fd, 1), 0);

  kv_client* n1 = kvt_client(1);
  kv_client* n2 = kvt_client(2);
  /* A loopback put takes about a millisecond with fsync=always (well under
   * without); 10 ms on average leaves room for a loaded machine and a slow
   * disk. Puts that wait for n3 would take seconds (the handshake timeout)
   * or forever, and the 200 ms bound on each put catches them first. */
  const double bound = 10.0 * kPuts;
  int attempts = 0;
  int ok = 0;
  char why[256] = "";
  char last_n1[32] = "", last_n2[32] = "";
  while (!ok && attempts < kAttempts) {
    char prefix1[16], prefix2[16];
    snprintf(prefix1, sizeof(prefix1), "a%d-", attempts);
    snprintf(prefix2, sizeof(prefix2), "b%d-", attempts);
    Timing t1 = TimePuts(n1, prefix1, kSmallValueBytes);
    Timing t2 = TimePuts(n2, prefix2, kSmallValueBytes);
    ++attempts;
    snprintf(last_n1, sizeof(last_n1), "%s%d", prefix1, kPuts - 1);
    snprintf(last_n2, sizeof(last_n2), "%s%d", prefix2, kPuts - 1);
    cr_log_info("%d puts with a hung n3: n1 %.1f ms (max %.2f), n2 %.1f ms (max %.2f)", kPuts,
                t1.total_ms, t1.max_ms, t2.total_ms, t2.max_ms);
    ok = WithinBounds("n1", t1, bound, why, sizeof(why)) &&
         WithinBounds("n2", t2, bound, why, sizeof(why));
    if (!ok) cr_log_warn("attempt %d: %s", attempts, why);
  }
  cr_assert(ok, "with a hung n3, %s", why);
  cr_assert(WaitForKey(2, last_n1, KVT_WAIT_TIMEOUT_MS), "n2 never got n1's last put");
  cr_assert(WaitForKey(1, last_n2, KVT_WAIT_TIMEOUT_MS), "n1 never got n2's last put");
  cr_assert(kvt_wait_converged(KVT_WAIT_TIMEOUT_MS), "n1 and n2 did not converge");
  kv_node_status st;
  kvt_status(1, &st);
  const uint64_t puts = (uint64_t)attempts * kPuts;
  cr_assert(st.clock[0] == puts && st.clock[1] == puts && st.clock[2] == 0,
            "n1 clock [%llu,%llu,%llu]", (unsigned long long)st.clock[0],
            (unsigned long long)st.clock[1], (unsigned long long)st.clock[2]);
  kv_close(n1);
  kv_close(n2);
  kvt_stop();
  close(fd);
}

Test(fault, sigterm_with_a_waiting_request_exits_cleanly) {
  /* A get at n3 waits for a write n3 cannot have (1->3 held, no
   * forwarding); SIGTERM must still stop every node with status 0 and the
   * waiting client must get an answer or a close, never the value. */
  kvt_start("--forward-after-ms", "600000", "--context-wait-ms", "60000", NULL);
  kvt_link(1, 3, 1);
  kv_client* n1 = kvt_client(1);
  kvt_put(n1, "x", "1");
  kv_client* n3 = kvt_client(3);
  kvt_carry_context(n1, n3);
  uint64_t request_id = 0;
  cr_assert_eq(kv_send_get(n3, "x", 1, &request_id), KV_OK, "%s", kv_errmsg(n3));
  cr_assert_eq(kv_flush(n3), KV_OK, "%s", kv_errmsg(n3));
  kvt_sleep_ms(100);

  double start = kvt_now_ms();
  kvt_stop();
  double stop_ms = kvt_now_ms() - start;
  cr_log_info("nodes stopped %.0f ms after SIGTERM", stop_ms);
  cr_assert_leq(stop_ms, 2000.0, "SIGTERM took %.0f ms with a waiting request", stop_ms);

  kv_reply reply;
  memset(&reply, 0, sizeof(reply));
  int rc = kv_recv_reply(n3, &reply);
  cr_log_info("the waiting get ended with %d (status %d): %s", rc, reply.status, kv_errmsg(n3));
  cr_assert(rc != KV_OK || reply.status != KV_OK,
            "n3 answered the get with a value it cannot have had");
  cr_assert_neq(rc, KV_ERR_TIMEOUT, "the waiting client got neither an answer nor a close");
  kv_reply_clear(&reply);
  kv_close(n1);
  kv_close(n3);
}

Test(fault, sigterm_with_a_client_that_does_not_read_exits_cleanly) {
  /* A client pipelines gets of a 1 MiB value and never reads the replies,
   * so the node's socket to it stays full. SIGTERM must still stop the
   * node: a shutdown may not wait for a reader that never comes. (When
   * this was written kvd hung here: Node::Shutdown closes client streams
   * with CloseAfterFlush, which waits for a uv_write that never ends.) */
  kvt_start(NULL);
  kv_client* n1 = kvt_client(1);
  size_t value_bytes = (size_t)1 << 20;
  char* value = malloc(value_bytes);
  cr_assert(value);
  memset(value, 'v', value_bytes);
  cr_assert_eq(kv_put(n1, "big", 3, value, value_bytes), KV_OK, "%s", kv_errmsg(n1));
  free(value);

  kv_client* reader = kvt_client(1);
  unsigned char* frame = NULL;
  size_t frame_bytes = 0;
  cr_assert_eq(
      kv_encode_request(KV_MSG_GET_REQUEST, 1, "big", 3, NULL, 0, NULL, 0, &frame, &frame_bytes),
      KV_OK);
  for (int i = 0; i < 32; ++i) {
    cr_assert_eq(kv_send_raw(reader, frame, frame_bytes), KV_OK, "%s", kv_errmsg(reader));
  }
  kv_free(frame);
  kvt_sleep_ms(200); /* the node has answered into a full socket by now */

  /* The node still serves others meanwhile. */
  kvt_put(n1, "other", "1");
  double start = kvt_now_ms();
  kvt_stop();
  cr_log_info("nodes stopped %.0f ms after SIGTERM", kvt_now_ms() - start);
  kv_close(reader);
  kv_close(n1);
}

Test(fault, sigterm_while_a_peer_is_stopped_exits_cleanly) {
  /* n3 is SIGSTOPped with megabytes of replication queued for it; n1 and
   * n2 must still shut down cleanly and promptly. */
  kvt_start(NULL);
  kv_client* n1 = kvt_client(1);
  kvt_pause(3);
  TimePuts(n1, "queued-", kValueBytes);
  kv_close(n1);
  double start = kvt_now_ms();
  kvt_stop_node(1);
  kvt_stop_node(2);
  cr_log_info("n1 and n2 stopped %.0f ms after SIGTERM", kvt_now_ms() - start);
  kvt_stop(); /* n3: SIGCONT, then SIGTERM */
}

/* A connection that never sends a complete frame is closed at the
 * handshake deadline; one that sent a request is not, and other clients
 * are served meanwhile. */
Test(fault, silent_connection_is_closed_at_the_deadline) {
  kvt_start("--handshake-timeout-ms", "300", NULL);
  kv_client* silent = kvt_client(1);
  kv_client* partial = kvt_client(1);
  kv_client* active = kvt_client(1);
  const unsigned char half_prefix[2] = {0x40, 0x00}; /* Half a size prefix. */
  cr_assert_eq(kv_send_raw(partial, half_prefix, sizeof(half_prefix)), KV_OK);
  kvt_put(active, "k", "v");
  double start = kvt_now_ms();
  cr_assert(kv_is_closed(silent, 3000), "a silent connection outlived the deadline");
  cr_assert(kv_is_closed(partial, 3000), "a connection with half a frame outlived the deadline");
  cr_assert_geq(kvt_now_ms() - start, 150.0, "closed before the deadline");
  kvt_sleep_ms(200);
  cr_assert_not(kv_is_closed(active, 100), "a connection that sent a request was closed");
  kvt_put(active, "k", "v2");
  char value[16];
  cr_assert_eq(kvt_get(active, "k", value, sizeof(value)), KV_OK);
  cr_assert_str_eq(value, "v2");
  kv_close(silent);
  kv_close(partial);
  kv_close(active);
  kvt_stop();
}
