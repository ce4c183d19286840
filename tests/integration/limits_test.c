/* limits_test.c: the connection limits of kvd(8) with real processes:
 * --max-clients (refusal, the listener keeps working, peers still get in),
 * --idle-timeout-ms, separate client and peer frame caps, and start-up
 * checks of the limits. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/cluster.h"

TestSuite(limits, .fini = kvt_cleanup, .timeout = 60);

/* A connection n1 refused: an Error(UNAVAILABLE), then the close. */
static void ExpectRefused(kv_client* c) {
  kv_frame frame;
  int rc = kv_recv_raw_frame(c, 3000, &frame);
  cr_assert_eq(rc, KV_OK, "no Error on a connection over the limit: %s (%d)", kv_errmsg(c), rc);
  cr_assert_eq(frame.type, KV_MSG_ERROR);
  cr_assert_eq(frame.status, KV_UNAVAILABLE, "status %d: %s", frame.status, frame.message);
  cr_assert(strstr(frame.message, "--max-clients") != NULL, "%s", frame.message);
  kv_frame_clear(&frame);
  cr_assert_eq(kv_is_closed(c, 3000), 1, "the refused connection stayed open");
}

Test(limits, max_clients_refuses_then_recovers) {
  kvt_start("--max-clients", "4", NULL);
  kv_client* held[4];
  for (int i = 0; i < 4; ++i) {
    held[i] = kvt_client(1);
    char key[16];
    snprintf(key, sizeof(key), "held-%d", i);
    kvt_put(held[i], key, "v"); /* Each is a working client. */
  }
  /* Beyond the limit, a 3-node cluster keeps two slots for its peers: two
   * more connections get in, but are refused at their first request (not
   * a Hello); a third is refused at once. */
  kv_client* reserve[2];
  for (int i = 0; i < 2; ++i) {
    cr_assert_eq(kv_connect(kvt_node_at(1)->address, 3000, &reserve[i]), KV_OK);
  }
  kvt_sleep_ms(100); /* n1 has accepted both. */
  kv_client* over = NULL;
  for (int i = 0; i < 3; ++i) {
    cr_assert_eq(kv_connect(kvt_node_at(1)->address, 3000, &over), KV_OK);
    ExpectRefused(over);
    kv_close(over);
  }
  for (int i = 0; i < 2; ++i) {
    cr_assert_eq(kv_put(reserve[i], "over", 4, "v", 1), KV_UNAVAILABLE, "%s",
                 kv_errmsg(reserve[i]));
    kv_close(reserve[i]);
  }
  /* The held clients still work, and a freed slot is reused. */
  kvt_put(held[0], "still", "works");
  kv_close(held[3]);
  kvt_sleep_ms(200);
  kv_client* again = kvt_client(1);
  kvt_put(again, "again", "v");
  kv_close(again);
  /* Five refusals within a second: logged, but not one line each. */
  cr_assert_geq(kvt_log_count(1, "(--max-clients); refusing"), 1);
  cr_assert_leq(kvt_log_count(1, "(--max-clients); refusing"), 2);
  for (int i = 0; i < 3; ++i) kv_close(held[i]);
  kvt_sleep_ms(200); /* n1 notices the closes: a new client gets a slot. */
  char value[16];
  kv_client* check = kvt_client(1);
  int rc = kvt_get(check, "over", value, sizeof(value));
  cr_assert_eq(rc, KV_NOT_FOUND, "get over: %s (%d)", kv_errmsg(check), rc);
  kv_close(check);
  kvt_stop();
}

Test(limits, peers_get_in_while_clients_fill_the_limit) {
  kvt_start("--max-clients", "3", NULL);
  /* n2 restarts while clients hold every client slot at n1: its links
   * must come back through the slot kept for peers. */
  kvt_stop_node(2);
  kv_client* held[3];
  for (int i = 0; i < 3; ++i) held[i] = kvt_client(1);
  kvt_restart_node(2);
  double deadline = kvt_now_ms() + KVT_WAIT_TIMEOUT_MS;
  for (;;) {
    kv_node_status st;
    int rc = kv_status(held[0], &st);
    cr_assert_eq(rc, KV_OK, "%s", kv_errmsg(held[0]));
    int linked = 0;
    for (size_t p = 0; p < st.peer_count; ++p) {
      if (st.peers[p].id == 2 && st.peers[p].connected_in && st.peers[p].connected_out) linked = 1;
    }
    if (linked) break;
    cr_assert_lt(kvt_now_ms(), deadline, "n2 could not link to n1 with its client slots full");
    kvt_sleep_ms(20);
  }
  kvt_put(held[1], "after", "restart");
  for (int i = 0; i < 3; ++i) kv_close(held[i]);
  cr_assert(kvt_wait_converged(KVT_WAIT_TIMEOUT_MS));
  kvt_stop();
}

Test(limits, idle_clients_are_closed) {
  kvt_start("--idle-timeout-ms", "300", NULL);
  kv_client* idle = kvt_client(1);
  kv_client* busy = kvt_client(1);
  kvt_put(idle, "k", "v");
  double start = kvt_now_ms();
  /* `busy` sends a request every 100 ms and must outlive `idle`. */
  int closed = 0;
  while (kvt_now_ms() - start < 1500) {
    char value[16];
    cr_assert_eq(kvt_get(busy, "k", value, sizeof(value)), KV_OK, "busy client: %s",
                 kv_errmsg(busy));
    if (!closed && kv_is_closed(idle, 100)) closed = 1;
  }
  cr_assert(closed, "an idle client was not closed within 1.5 s of a 300 ms idle timeout");
  cr_assert_geq(kvt_log_count(1, "; closing"), 1);
  cr_assert_geq(kvt_log_count(1, "idle for"), 1);
  kv_close(idle);
  kv_close(busy);
  /* Peer links are not idle-closed: the cluster is still linked. */
  kv_node_status st;
  kvt_status(1, &st);
  for (size_t p = 0; p < st.peer_count; ++p) {
    cr_assert(st.peers[p].connected_in && st.peers[p].connected_out, "link n1-n%u dropped",
              st.peers[p].id);
  }
  kvt_stop();
}

Test(limits, client_and_peer_frame_caps_are_separate) {
  /* Clients may send frames up to 8 KiB; batches between peers are much
   * larger and still flow. */
  kvt_start("--max-value-bytes", "4096", "--max-client-frame-bytes", "8192", NULL);
  /* Held links make n1 send all 200 writes to each peer in one batch. */
  kvt_link(1, 2, 1);
  kvt_link(1, 3, 1);
  kv_client* c = kvt_client(1);
  char value[4097];
  memset(value, 'v', 4096);
  value[4096] = '\0';
  for (int i = 0; i < 200; ++i) {
    char key[16];
    snprintf(key, sizeof(key), "big-%d", i);
    cr_assert_eq(kv_send_put(c, key, strlen(key), value, 4096, NULL), KV_OK);
  }
  cr_assert_eq(kv_flush(c), KV_OK);
  for (int i = 0; i < 200; ++i) {
    kv_reply reply;
    cr_assert_eq(kv_recv_reply(c, &reply), KV_OK, "%s", kv_errmsg(c));
    cr_assert_eq(reply.status, KV_OK);
    kv_reply_clear(&reply);
  }
  kv_close(c);
  kvt_link(1, 2, 0);
  kvt_link(1, 3, 0);
  cr_assert(kvt_wait_converged(KVT_WAIT_TIMEOUT_MS), "200 x 4 KiB did not replicate");
  /* A client frame over 8 KiB is refused before its body is buffered. */
  unsigned char prefix[8] = {0x00, 0x40, 0x00, 0x00, 0, 0, 0, 0}; /* 16384 */
  kv_client* raw = kvt_client(2);
  cr_assert_eq(kv_send_raw(raw, prefix, sizeof(prefix)), KV_OK);
  kv_frame frame;
  cr_assert_eq(kv_recv_raw_frame(raw, 3000, &frame), KV_OK);
  cr_assert_eq(frame.type, KV_MSG_ERROR);
  cr_assert_eq(frame.status, KV_TOO_LARGE, "%s", frame.message);
  kv_frame_clear(&frame);
  cr_assert_eq(kv_is_closed(raw, 3000), 1);
  kv_close(raw);
  kvt_stop();
}

/* Runs kvd with these extra arguments and returns its exit status; its
 * stderr goes to err. */
static int RunKvd(const char* extra1, const char* extra2, char* err, size_t cap) {
  char cluster[64];
  snprintf(cluster, sizeof(cluster), "1=127.0.0.1:%d", kvt_free_port());
  char dir[] = "/tmp/kvt-limits-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char* argv[] = {KVD_PATH,     "--id", "1",           "--cluster",   cluster,
                  "--data-dir", dir,    (char*)extra1, (char*)extra2, NULL};
  char out[256];
  int status = kvt_run(argv, out, sizeof(out), err, cap, 5000);
  char sock[128];
  snprintf(sock, sizeof(sock), "%s/kvd.sock", dir);
  unlink(sock);
  rmdir(dir);
  return status;
}

Test(limits, bad_limits_stop_start_up) {
  char err[1024];
  cr_assert_eq(RunKvd("--max-client-frame-bytes", "2000", err, sizeof(err)), 2, "%s", err);
  cr_assert(strstr(err, "--max-client-frame-bytes") != NULL, "%s", err);
  cr_assert_eq(RunKvd("--max-peer-frame-bytes", "100000", err, sizeof(err)), 2, "%s", err);
  cr_assert_eq(RunKvd("--max-clients", "0", err, sizeof(err)), 2, "%s", err);
  cr_assert_eq(RunKvd("--client-output-bytes-max", "100", err, sizeof(err)), 2, "%s", err);
}

Test(limits, a_deep_pipeline_is_paused_not_dropped) {
  /* 20,000 requests in flight: n1 stops reading at 1,024 unanswered and
   * resumes as replies go out; every reply arrives, in order. (With 5,000,
   * about 5 reads of 64 KiB, a loaded machine sometimes let n1 answer
   * each read before the next arrived, and it never had to pause.) */
  kvt_start("--fsync", "no", NULL);
  kv_client* c = kvt_client(1);
  enum { kDepth = 20000 };
  static uint64_t ids[kDepth];
  for (int i = 0; i < kDepth; ++i) {
    char key[16];
    snprintf(key, sizeof(key), "deep-%d", i);
    cr_assert_eq(kv_send_put(c, key, strlen(key), "v", 1, &ids[i]), KV_OK);
  }
  cr_assert_eq(kv_flush(c), KV_OK, "%s", kv_errmsg(c));
  for (int i = 0; i < kDepth; ++i) {
    kv_reply reply;
    cr_assert_eq(kv_recv_reply(c, &reply), KV_OK, "reply %d: %s", i, kv_errmsg(c));
    cr_assert_eq(reply.request_id, ids[i]);
    cr_assert_eq(reply.status, KV_OK);
    kv_reply_clear(&reply);
  }
  kv_close(c);
  kv_node_status st;
  kvt_status(1, &st);
  cr_assert_eq(st.clock[0], (uint64_t)kDepth);
  cr_assert_geq(kvt_log_count(1, "requests in flight; pausing its input"), 1);
  kvt_stop();
}
