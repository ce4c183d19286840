/* causal_test.c: causal order and convergence across three real kvd
 * processes, with `link hold` (fault injection) to delay replication.
 *
 * Every cluster here runs with --forward-after-ms 600000 so that a held
 * link stays held: otherwise the third node would forward the held writes
 * after two seconds and heal the cut (DESIGN §2), which is a different test.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "tests/integration/cluster.h"

#define NO_FORWARDING "--forward-after-ms", "600000"

TestSuite(causal, .fini = kvt_cleanup, .timeout = 40);

static void ExpectValue(int node, const char* key, const char* want) {
  kv_client* c = kvt_client(node);
  char value[256];
  int rc = kvt_get(c, key, value, sizeof(value));
  cr_assert(rc == KV_OK, "get %s at n%d: %s (%d), want %s", key, node, kv_errmsg(c), rc, want);
  cr_assert(strcmp(value, want) == 0, "get %s at n%d = '%s', want '%s'", key, node, value, want);
  kv_close(c);
}

static void ExpectMissing(int node, const char* key) {
  kv_client* c = kvt_client(node);
  char value[256];
  int rc = kvt_get(c, key, value, sizeof(value));
  cr_assert(rc == KV_NOT_FOUND, "get %s at n%d: want NOT_FOUND, got %d ('%s', %s)", key, node, rc,
            value, kv_errmsg(c));
  kv_close(c);
}

static void ExpectConverged(void) {
  cr_assert(kvt_wait_converged(KVT_WAIT_TIMEOUT_MS), "cluster did not converge within %d ms",
            KVT_WAIT_TIMEOUT_MS);
}

/* Asserts that node `id`'s log has `first` before `second` (both present). */
static void ExpectLogOrder(int id, const char* first, const char* second) {
  int a = kvt_log_line(id, first);
  int b = kvt_log_line(id, second);
  cr_assert(a >= 0, "n%d's log has no line with '%s'", id, first);
  cr_assert(b >= 0, "n%d's log has no line with '%s'", id, second);
  cr_assert(a < b, "n%d's log has '%s' (line %d) after '%s' (line %d)", id, first, a + 1, second,
            b + 1);
}

/* --------------------------------------------------------- 1: seed -- */

Test(causal, seed_scenario_buffers_then_applies_in_order) {
  kvt_start(NO_FORWARDING, NULL);
  kvt_link(1, 3, 1);

  kv_client* n1 = kvt_client(1);
  kvt_put(n1, "x", "1");
  kv_client* n2 = kvt_client(2);
  kvt_carry_context(n1, n2);
  char value[64];
  cr_assert_eq(kvt_get(n2, "x", value, sizeof(value)), KV_OK, "%s", kv_errmsg(n2));
  cr_assert_str_eq(value, "1");
  kvt_put(n2, "y", "2");

  /* n3 has y=2 from n2 but not x=1 from n1: y waits in the buffer. */
  cr_assert(kvt_wait_buffered(3, 1, KVT_WAIT_TIMEOUT_MS), "n3 never buffered y");
  kv_client* admin3 = kvt_admin(3);
  kv_buffer_listing* listing = NULL;
  cr_assert_eq(kv_buffer(admin3, 0, &listing), KV_OK, "%s", kv_errmsg(admin3));
  cr_assert_eq(listing->total, 1);
  cr_assert_eq(listing->count, 1);
  const kv_buffered_write* w = &listing->entries[0];
  cr_assert_eq(w->origin_id, 2);
  cr_assert_eq(w->seq, 1);
  cr_assert_str_eq(w->key, "y");
  cr_assert_not(w->is_delete);
  cr_assert_eq(w->missing_count, 1, "y should wait for exactly n1:1");
  cr_assert_eq(w->missing[0].origin_id, 1);
  cr_assert_eq(w->missing[0].seq_first, 1);
  cr_assert_eq(w->missing[0].seq_last, 1);
  kv_buffer_free(listing);
  kv_close(admin3);

  kv_node_status st;
  kvt_status(3, &st);
  cr_assert_eq(st.buffered, 1);
  cr_assert_eq(st.clock[0], 0);
  cr_assert_eq(st.clock[1], 0, "n3 applied y before x");
  ExpectMissing(3, "y");
  ExpectMissing(3, "x");

  kvt_link(1, 3, 0);
  ExpectConverged();
  for (int node = 1; node <= 3; ++node) {
    ExpectValue(node, "x", "1");
    ExpectValue(node, "y", "2");
  }
  ExpectLogOrder(3, "buffered write 2:1 y", "applied 1:1 x");
  ExpectLogOrder(3, "applied 1:1 x", "applied 2:1 y");
  kv_close(n1);
  kv_close(n2);
  kvt_stop();
}

/* ------------------------------------------------- poller (threads) -- */

/* What a poller thread saw of one key at one node. Filled by the thread,
 * read by the test after pthread_join. */
enum { kSeenMissing = 0, kSeenOld = 1, kSeenNew = 2, kSeenOther = 3 };
#define POLL_MAX 20000

typedef struct Poller {
  kv_client* client; /* owned by the thread while it runs */
  const char* key;
  const char* old_value;
  const char* new_value;
  int delete_origin_id; /* when nonzero: watch the clock entry of a delete */
  uint64_t delete_seq;
  atomic_int stop;
  /* Results. */
  int error;
  char error_text[256];
  int count;
  unsigned char seen[POLL_MAX];
  int found_after_delete; /* index of a get that found the key after the delete applied, or -1 */
  int delete_seen;        /* polls that saw the delete applied */
} Poller;

static void* PollLoop(void* arg) {
  Poller* p = arg;
  while (!atomic_load(&p->stop) && p->count < POLL_MAX && p->error == 0) {
    int delete_applied = 0;
    if (p->delete_origin_id != 0) {
      kv_node_status st;
      int rc = kv_status(p->client, &st);
      if (rc != KV_OK) {
        p->error = rc;
        snprintf(p->error_text, sizeof(p->error_text), "status: %s", kv_errmsg(p->client));
        break;
      }
      delete_applied = st.clock[p->delete_origin_id - 1] >= p->delete_seq;
    }
    char* value = NULL;
    size_t len = 0;
    int found = 0;
    int rc = kv_get(p->client, p->key, strlen(p->key), &value, &len, &found);
    if (rc != KV_OK && rc != KV_NOT_FOUND) {
      p->error = rc;
      snprintf(p->error_text, sizeof(p->error_text), "get: %s", kv_errmsg(p->client));
      kv_free(value);
      break;
    }
    unsigned char seen = kSeenOther;
    if (rc == KV_NOT_FOUND) {
      seen = kSeenMissing;
    } else if (p->old_value && len == strlen(p->old_value) &&
               memcmp(value, p->old_value, len) == 0) {
      seen = kSeenOld;
    } else if (p->new_value && len == strlen(p->new_value) &&
               memcmp(value, p->new_value, len) == 0) {
      seen = kSeenNew;
    }
    kv_free(value);
    if (delete_applied) {
      ++p->delete_seen;
      if (rc == KV_OK && p->found_after_delete < 0) p->found_after_delete = p->count;
    }
    p->seen[p->count++] = seen;
  }
  return NULL;
}

static void StartPoller(Poller* p, pthread_t* thread) {
  atomic_store(&p->stop, 0);
  p->found_after_delete = -1;
  cr_assert_eq(pthread_create(thread, NULL, PollLoop, p), 0);
}

static void StopPoller(Poller* p, pthread_t thread) {
  atomic_store(&p->stop, 1);
  cr_assert_eq(pthread_join(thread, NULL), 0);
  cr_assert_eq(p->error, 0, "poller: %s (%d)", p->error_text, p->error);
}

/* --------------------------------------------- 2: dependent overwrite -- */

Test(causal, dependent_overwrite_under_held_link_ends_at_newer_value) {
  kvt_start(NO_FORWARDING, NULL);
  kvt_link(1, 3, 1);

  kv_client* n1 = kvt_client(1);
  kvt_put(n1, "k", "old");
  kv_client* n2 = kvt_client(2);
  kvt_carry_context(n1, n2);
  char value[64];
  cr_assert_eq(kvt_get(n2, "k", value, sizeof(value)), KV_OK);
  cr_assert_str_eq(value, "old");
  kvt_put(n2, "k", "new"); /* depends on "old": it overwrites what it read */
  cr_assert(kvt_wait_buffered(3, 1, KVT_WAIT_TIMEOUT_MS), "n3 never buffered the overwrite");

  static Poller poller; /* large: keep it off the stack */
  poller.client = kvt_client(3);
  poller.key = "k";
  poller.old_value = "old";
  poller.new_value = "new";
  pthread_t thread;
  StartPoller(&poller, &thread);
  kvt_sleep_ms(50);
  kvt_link(1, 3, 0);
  ExpectConverged();
  kvt_sleep_ms(50);
  StopPoller(&poller, thread);
  kv_close(poller.client);

  cr_assert_gt(poller.count, 0);
  int first_new = -1;
  for (int i = 0; i < poller.count; ++i) {
    cr_assert_neq(poller.seen[i], kSeenOther, "n3 returned an unexpected value at poll %d", i);
    if (poller.seen[i] == kSeenNew && first_new < 0) first_new = i;
    if (first_new >= 0) {
      cr_assert_neq(poller.seen[i], kSeenOld,
                    "n3 went back to the old value at poll %d after "
                    "returning the new one at poll %d",
                    i, first_new);
      cr_assert_neq(poller.seen[i], kSeenMissing,
                    "n3 lost the key at poll %d after returning the new value at poll %d", i,
                    first_new);
    }
  }
  cr_assert_eq(poller.seen[poller.count - 1], kSeenNew, "n3's last poll did not see the new value");
  for (int node = 1; node <= 3; ++node) ExpectValue(node, "k", "new");
  kv_close(n1);
  kv_close(n2);
  kvt_stop();
}

/* ------------------------------------------------ 3: three-write chain -- */

Test(causal, chain_across_three_nodes_with_two_held_links_applies_in_order) {
  kvt_start(NO_FORWARDING, NULL);
  kvt_link(1, 3, 1);
  kvt_link(2, 3, 1);

  char value[64];
  kv_client* s1 = kvt_client(1);
  kvt_put(s1, "w1", "a"); /* n1:1 */
  kv_client* s2 = kvt_client(2);
  kvt_carry_context(s1, s2);
  cr_assert_eq(kvt_get(s2, "w1", value, sizeof(value)), KV_OK);
  kvt_put(s2, "w2", "b"); /* n2:1, after w1 */
  kvt_carry_context(s2, s1);
  cr_assert_eq(kvt_get(s1, "w2", value, sizeof(value)), KV_OK);
  cr_assert_str_eq(value, "b");
  kvt_put(s1, "w3", "c"); /* n1:2, after w2 */

  kv_node_status st;
  kvt_status(3, &st);
  cr_assert(st.clock[0] == 0 && st.clock[1] == 0 && st.buffered == 0,
            "n3 got writes through held links");

  /* w2 arrives first and must wait for w1. */
  kvt_link(2, 3, 0);
  cr_assert(kvt_wait_buffered(3, 1, KVT_WAIT_TIMEOUT_MS), "n3 never buffered w2");
  ExpectMissing(3, "w2");
  kvt_link(1, 3, 0);
  ExpectConverged();

  for (int node = 1; node <= 3; ++node) {
    ExpectValue(node, "w1", "a");
    ExpectValue(node, "w2", "b");
    ExpectValue(node, "w3", "c");
  }
  ExpectLogOrder(3, "applied 1:1 w1", "applied 2:1 w2");
  ExpectLogOrder(3, "applied 2:1 w2", "applied 1:2 w3");
  kv_close(s1);
  kv_close(s2);
  kvt_stop();
}

/* ---------------------------------------------- 4: concurrent writes -- */

Test(causal, concurrent_writes_to_one_key_converge_to_higher_origin) {
  kvt_start(NO_FORWARDING, NULL);
  kvt_link(1, 2, 1);
  kvt_link(2, 1, 1);

  kv_client* n1 = kvt_client(1);
  kv_client* n2 = kvt_client(2);
  kvt_put(n1, "k", "from-n1"); /* clock [1,0,0] */
  kvt_put(n2, "k", "from-n2"); /* clock [0,1,0]: concurrent, equal sums */
  /* Each side still sees its own write. */
  ExpectValue(1, "k", "from-n1");
  ExpectValue(2, "k", "from-n2");

  kvt_link(1, 2, 0);
  kvt_link(2, 1, 0);
  ExpectConverged();
  for (int node = 1; node <= 3; ++node) {
    ExpectValue(node, "k", "from-n2");
    kv_client* c = kvt_client(node);
    char value[64];
    cr_assert_eq(kvt_get(c, "k", value, sizeof(value)), KV_OK);
    uint64_t version[KV_NODES_MAX];
    size_t len = 0;
    cr_assert_eq(kv_last_version(c, version, KV_NODES_MAX, &len), KV_OK);
    cr_assert_eq(len, 3);
    cr_assert(version[0] == 0 && version[1] == 1 && version[2] == 0,
              "n%d: version of k is [%llu,%llu,%llu], want [0,1,0]", node,
              (unsigned long long)version[0], (unsigned long long)version[1],
              (unsigned long long)version[2]);
    kv_close(c);
  }
  kv_close(n1);
  kv_close(n2);
  kvt_stop();
}

/* -------------------------------------------------- 5: session waits -- */

typedef struct Releaser {
  kv_client* admin; /* n1's admin socket, used by the thread only */
  int delay_ms;
  int rc;
  double released_at_ms;
} Releaser;

static void* ReleaseLater(void* arg) {
  Releaser* r = arg;
  kvt_sleep_ms(r->delay_ms);
  r->released_at_ms = kvt_now_ms();
  r->rc = kv_link(r->admin, 3, 0);
  return NULL;
}

Test(causal, session_read_waits_for_held_write_then_succeeds_on_release) {
  kvt_start(NO_FORWARDING, "--context-wait-ms", "5000", NULL);
  kvt_link(1, 3, 1);
  kv_client* n1 = kvt_client(1);
  kvt_put(n1, "x", "1");
  kv_client* n3 = kvt_client(3);
  kv_set_timeout(n3, 10000);
  kvt_carry_context(n1, n3);

  Releaser releaser = {kvt_admin(1), 300, -100, 0};
  pthread_t thread;
  double start = kvt_now_ms();
  cr_assert_eq(pthread_create(&thread, NULL, ReleaseLater, &releaser), 0);
  char value[64];
  int rc = kvt_get(n3, "x", value, sizeof(value));
  double done = kvt_now_ms();
  cr_assert_eq(pthread_join(thread, NULL), 0);
  cr_assert_eq(releaser.rc, KV_OK, "release failed: %d", releaser.rc);
  cr_assert_eq(rc, KV_OK, "get at n3 with the session context: %s (%d)", kv_errmsg(n3), rc);
  cr_assert_str_eq(value, "1");
  cr_assert_geq(done, releaser.released_at_ms,
                "n3 answered %.0f ms before the release: it did not wait for n1:1",
                releaser.released_at_ms - done);
  cr_assert_geq(done - start, 250.0, "answered after %.0f ms, before the release", done - start);
  kv_close(releaser.admin);
  kv_close(n1);
  kv_close(n3);
  kvt_stop();
}

Test(causal, session_read_times_out_naming_missing_write) {
  kvt_start(NO_FORWARDING, "--context-wait-ms", "500", NULL);
  kvt_link(1, 3, 1);
  kv_client* n1 = kvt_client(1);
  kvt_put(n1, "x", "1");
  kv_client* n3 = kvt_client(3);
  kv_set_timeout(n3, 5000);
  kvt_carry_context(n1, n3);

  char value[64];
  double start = kvt_now_ms();
  int rc = kvt_get(n3, "x", value, sizeof(value));
  double elapsed = kvt_now_ms() - start;
  cr_assert_eq(rc, KV_TIMEOUT, "want TIMEOUT (4), got %d: %s", rc, kv_errmsg(n3));
  cr_assert(strstr(kv_errmsg(n3), "n1:1") != NULL, "message '%s' does not name n1:1",
            kv_errmsg(n3));
  cr_assert_geq(elapsed, 400.0, "timed out after %.0f ms, before --context-wait-ms 500", elapsed);
  cr_assert_leq(elapsed, 3000.0, "timed out after %.0f ms", elapsed);

  /* A TIMEOUT leaves the connection usable: after the release the same
   * session reads its write. */
  kvt_link(1, 3, 0);
  rc = kvt_get(n3, "x", value, sizeof(value));
  cr_assert_eq(rc, KV_OK, "get after release: %s (%d)", kv_errmsg(n3), rc);
  cr_assert_str_eq(value, "1");
  kv_close(n1);
  kv_close(n3);
  kvt_stop();
}

/* --------------------------------------------------- 6: causal delete -- */

Test(causal, causal_delete_is_not_undone_by_delayed_earlier_write) {
  kvt_start(NO_FORWARDING, NULL);
  kvt_link(1, 3, 1);
  kv_client* n1 = kvt_client(1);
  kvt_put(n1, "x", "1"); /* n1:1 */
  kv_client* n2 = kvt_client(2);
  kvt_carry_context(n1, n2);
  int rc = kv_del(n2, "x", 1); /* n2:1, after n1:1 */
  cr_assert_eq(rc, KV_OK, "del at n2: %s (%d)", kv_errmsg(n2), rc);
  ExpectMissing(2, "x");
  cr_assert(kvt_wait_buffered(3, 1, KVT_WAIT_TIMEOUT_MS), "n3 never buffered the delete");
  ExpectMissing(3, "x");

  static Poller poller;
  poller.client = kvt_client(3);
  poller.key = "x";
  poller.old_value = "1";
  poller.delete_origin_id = 2;
  poller.delete_seq = 1;
  pthread_t thread;
  StartPoller(&poller, &thread);
  kvt_sleep_ms(50);
  kvt_link(1, 3, 0);
  ExpectConverged();
  kvt_sleep_ms(50);
  StopPoller(&poller, thread);
  kv_close(poller.client);

  cr_assert_gt(poller.delete_seen, 0, "the poller never saw the delete applied at n3");
  cr_assert_lt(poller.found_after_delete, 0,
               "n3 returned x at poll %d after it had applied the delete",
               poller.found_after_delete);
  for (int node = 1; node <= 3; ++node) ExpectMissing(node, "x");
  /* And it stays deleted once everything has settled. */
  kvt_sleep_ms(100);
  for (int node = 1; node <= 3; ++node) ExpectMissing(node, "x");
  kv_close(n1);
  kv_close(n2);
  kvt_stop();
}

/* --------------------------------- 7: 50 buffered writes after release -- */

Test(causal, fifty_buffered_writes_apply_within_100ms_of_release) {
  enum { kWrites = 50 };
  kvt_start(NO_FORWARDING, NULL);
  kvt_link(1, 3, 1);
  kv_client* n1 = kvt_client(1);
  kvt_put(n1, "w0", "0");
  kv_client* n2 = kvt_client(2);
  kvt_carry_context(n1, n2);
  for (int i = 1; i <= kWrites; ++i) {
    char key[16], value[16];
    snprintf(key, sizeof(key), "k%d", i);
    snprintf(value, sizeof(value), "v%d", i);
    kvt_put(n2, key, value); /* each carries the session context: a chain */
  }
  cr_assert(kvt_wait_buffered(3, kWrites, KVT_WAIT_TIMEOUT_MS), "n3 never had %d buffered writes",
            kWrites);

  kv_client* admin1 = kvt_admin(1);
  kv_client* n3 = kvt_client(3);
  kv_node_status st;
  double start = kvt_now_ms();
  int rc = kv_link(admin1, 3, 0);
  cr_assert_eq(rc, KV_OK, "release: %s", kv_errmsg(admin1));
  double elapsed = 0;
  for (;;) {
    rc = kv_status(n3, &st);
    elapsed = kvt_now_ms() - start;
    cr_assert_eq(rc, KV_OK, "status of n3: %s", kv_errmsg(n3));
    if (st.buffered == 0 && st.clock[0] >= 1 && st.clock[1] >= kWrites) break;
    cr_assert_leq(elapsed, 2000.0, "n3 still has %llu buffered, clock [%llu,%llu,%llu]",
                  (unsigned long long)st.buffered, (unsigned long long)st.clock[0],
                  (unsigned long long)st.clock[1], (unsigned long long)st.clock[2]);
    kvt_sleep_ms(2);
  }
  cr_log_info("%d buffered writes applied %.1f ms after the release began", kWrites, elapsed);
  cr_assert_leq(elapsed, 100.0, "the %d buffered writes took %.1f ms after release", kWrites,
                elapsed);
  ExpectConverged();
  ExpectValue(3, "w0", "0");
  ExpectValue(3, "k1", "v1");
  ExpectValue(3, "k50", "v50");
  ExpectLogOrder(3, "applied 1:1 w0", "applied 2:1 k1");
  ExpectLogOrder(3, "applied 2:49 k49", "applied 2:50 k50");
  kv_close(admin1);
  kv_close(n3);
  kv_close(n1);
  kv_close(n2);
  kvt_stop();
}

/* ---------------------------------------- 8: forwarding heals a hold -- */

Test(causal, held_link_is_healed_by_forwarding_after_the_delay) {
  kvt_start("--forward-after-ms", "300", NULL);
  kvt_link(1, 3, 1);
  kv_client* n1 = kvt_client(1);
  double start = kvt_now_ms();
  kvt_put(n1, "x", "1");

  /* n2 has x at once; n3 gets it from n2 once n3 has lacked it 300 ms. */
  kv_client* n3 = kvt_client(3);
  char value[64];
  double arrived = 0;
  for (;;) {
    int rc = kvt_get(n3, "x", value, sizeof(value));
    cr_assert(rc == KV_OK || rc == KV_NOT_FOUND, "get at n3: %s", kv_errmsg(n3));
    if (rc == KV_OK) {
      arrived = kvt_now_ms() - start;
      break;
    }
    cr_assert_leq(kvt_now_ms() - start, 3000.0, "n3 never got x through n2");
    kvt_sleep_ms(5);
  }
  cr_log_info("x reached n3 through n2 after %.0f ms", arrived);
  cr_assert_str_eq(value, "1");
  cr_assert_geq(arrived, 150.0, "x reached n3 after %.0f ms: before the forwarding delay", arrived);
  kv_node_status st;
  kvt_status(1, &st);
  cr_assert(st.peers[1].id == 3 && st.peers[1].held, "n1's link to n3 is no longer held");
  cr_assert_geq(kvt_log_line(3, "applied 1:1 x"), 0, "n3's log does not show x applied");
  ExpectConverged();
  kv_close(n1);
  kv_close(n3);
  kvt_stop();
}
