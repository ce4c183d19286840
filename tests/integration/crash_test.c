/* crash_test.c: real crashes. kill -9 under a continuous write load on all
 * three nodes, restart, many rounds: every write that got OK (fsync=always,
 * the default) is readable on every node afterwards. And a node that was
 * down while thousands of writes happened catches up after its restart.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/cluster.h"

TestSuite(crash, .fini = kvt_cleanup, .timeout = 120);

#define ROUNDS 20
#define ACKED_MAX 200000

/* One writer per node: unique keys, values equal to their keys, counts
 * what was acknowledged. Reconnects whenever its node goes away. */
typedef struct writer {
  int node;
  pthread_t thread;
  atomic_int stop;
  atomic_int round;
  char (*acked)[32]; /* acked[i]: key of the i-th acknowledged write */
  size_t acked_count;
  size_t failures; /* errors: connection lost, node down (not acknowledged) */
} writer;

static void* WriterMain(void* arg) {
  writer* w = arg;
  kv_client* client = NULL;
  uint64_t sequence = 0;
  while (!atomic_load(&w->stop)) {
    if (client == NULL && kv_connect(kvt_node_at(w->node)->address, 500, &client) != KV_OK) {
      client = NULL;
      ++w->failures;
      kvt_sleep_ms(10);
      continue;
    }
    kv_set_timeout(client, 2000);
    char key[32];
    snprintf(key, sizeof(key), "r%d-n%d-%llu", atomic_load(&w->round), w->node,
             (unsigned long long)sequence++);
    int rc = kv_put(client, key, strlen(key), key, strlen(key));
    if (rc == KV_OK) {
      if (w->acked_count < ACKED_MAX) memcpy(w->acked[w->acked_count++], key, sizeof(key));
    } else {
      ++w->failures;
      kv_close(client);
      client = NULL;
    }
  }
  kv_close(client);
  return NULL;
}

/* Reads every key on node `id`, pipelined; returns how many are missing or
 * wrong, and prints the first few. */
static size_t CountMissing(int id, writer* writers, int count) {
  kv_client* client = kvt_client(id);
  kv_set_timeout(client, 10000);
  size_t missing = 0;
  for (int w = 0; w < count; ++w) {
    for (size_t start = 0; start < writers[w].acked_count; start += 256) {
      size_t end = start + 256 < writers[w].acked_count ? start + 256 : writers[w].acked_count;
      for (size_t i = start; i < end; ++i) {
        const char* key = writers[w].acked[i];
        cr_assert_eq(kv_send_get(client, key, strlen(key), NULL), KV_OK, "%s", kv_errmsg(client));
      }
      cr_assert_eq(kv_flush(client), KV_OK, "%s", kv_errmsg(client));
      for (size_t i = start; i < end; ++i) {
        kv_reply reply;
        cr_assert_eq(kv_recv_reply(client, &reply), KV_OK, "%s", kv_errmsg(client));
        const char* key = writers[w].acked[i];
        int ok = reply.status == KV_OK && reply.value_len == strlen(key) &&
                 memcmp(reply.value, key, reply.value_len) == 0;
        if (!ok && ++missing <= 5) {
          fprintf(stderr, "n%d: acknowledged write %s: status %d found %d\n", id, key, reply.status,
                  reply.found);
        }
        kv_reply_clear(&reply);
      }
    }
  }
  kv_close(client);
  return missing;
}

Test(crash, kill9_under_load_loses_no_acknowledged_write) {
  kvt_start(NULL);
  writer writers[3];
  memset(writers, 0, sizeof(writers));
  for (int i = 0; i < 3; ++i) {
    writers[i].node = i + 1;
    writers[i].acked = calloc(ACKED_MAX, sizeof(*writers[i].acked));
    cr_assert(writers[i].acked != NULL);
    cr_assert_eq(pthread_create(&writers[i].thread, NULL, WriterMain, &writers[i]), 0);
  }
  srand(20261124); /* A fixed schedule: the same rounds every run. */
  for (int round = 1; round <= ROUNDS; ++round) {
    for (int i = 0; i < 3; ++i) atomic_store(&writers[i].round, round);
    kvt_sleep_ms(30 + rand() % 120);
    int victim = 1 + rand() % 3;
    kvt_kill_node(victim);
    kvt_sleep_ms(rand() % 80);
    kvt_restart_node(victim);
    /* Wait until it serves again before the next round. */
    double deadline = kvt_now_ms() + KVT_START_TIMEOUT_MS;
    for (;;) {
      kv_client* probe = NULL;
      if (kv_connect(kvt_node_at(victim)->address, 200, &probe) == KV_OK) {
        kv_node_status status;
        int rc = kv_status(probe, &status);
        kv_close(probe);
        if (rc == KV_OK) break;
      }
      cr_assert(kvt_now_ms() < deadline, "n%d did not come back after round %d", victim, round);
      kvt_sleep_ms(10);
    }
  }
  size_t acked = 0;
  for (int i = 0; i < 3; ++i) {
    atomic_store(&writers[i].stop, 1);
    pthread_join(writers[i].thread, NULL);
    acked += writers[i].acked_count;
  }
  cr_assert_gt(acked, 300, "the load barely ran: %zu acknowledged writes", acked);
  cr_assert(kvt_wait_converged(30000), "no convergence after %d crash rounds", ROUNDS);
  for (int id = 1; id <= 3; ++id) {
    size_t missing = CountMissing(id, writers, 3);
    cr_assert_eq(missing, 0, "n%d lost %zu of %zu acknowledged writes", id, missing, acked);
  }
  fprintf(stderr, "crash: %d kill -9 rounds, %zu acknowledged writes, all on every node\n", ROUNDS,
          acked);
  for (int i = 0; i < 3; ++i) free(writers[i].acked);
  kvt_stop();
}

Test(crash, node_down_during_10000_writes_catches_up) {
  kvt_start(NULL);
  kvt_stop_node(3);
  writer writers[1];
  memset(writers, 0, sizeof(writers));
  writers[0].node = 1;
  writers[0].acked = calloc(10000, sizeof(*writers[0].acked));
  cr_assert(writers[0].acked != NULL);
  kv_client* client = kvt_client(1);
  for (size_t start = 0; start < 10000; start += 500) {
    for (size_t i = start; i < start + 500; ++i) {
      snprintf(writers[0].acked[i], sizeof(writers[0].acked[i]), "down-%zu", i);
      const char* key = writers[0].acked[i];
      cr_assert_eq(kv_send_put(client, key, strlen(key), key, strlen(key), NULL), KV_OK);
    }
    cr_assert_eq(kv_flush(client), KV_OK, "%s", kv_errmsg(client));
    for (size_t i = start; i < start + 500; ++i) {
      kv_reply reply;
      cr_assert_eq(kv_recv_reply(client, &reply), KV_OK, "%s", kv_errmsg(client));
      cr_assert_eq(reply.status, KV_OK);
      kv_reply_clear(&reply);
    }
  }
  writers[0].acked_count = 10000;
  kv_close(client);
  double restarted = kvt_now_ms();
  kvt_restart_node(3);
  cr_assert(kvt_wait_converged(30000), "n3 did not catch up on 10,000 writes");
  fprintf(stderr, "crash: n3 caught up on 10,000 writes in %.0f ms (restart included)\n",
          kvt_now_ms() - restarted);
  cr_assert_eq(CountMissing(3, writers, 1), 0);
  free(writers[0].acked);
  kvt_stop();
}
