/* cluster.h: a harness that runs real kvd processes on loopback for the
 * integration tests (Criterion, C, kvclient.h only).
 *
 * One test = one forked process = at most one cluster, so the harness keeps
 * its state in globals. A test calls kvt_start() (or kvt_start_with()), talks
 * to the nodes through kvclient.h, and ends with kvt_stop(), which sends
 * SIGTERM to every node and asserts that each exits with status 0. Every test
 * suite names kvt_cleanup as its .fini fixture: it kills whatever is still
 * running (also after a failed assertion), prints the tail of each node's log
 * when the test did not reach kvt_stop(), and removes the data directories
 * (kept with KVT_KEEP=1 in the environment). Nodes also get
 * PR_SET_PDEATHSIG, so a crashed test process takes its nodes with it.
 *
 * Ports are picked free by binding port 0 on 127.0.0.1; if a node still
 * finds its port taken (another parallel test won the race), the whole
 * cluster is restarted on new ports.
 *
 * Node ids are 1-based here, as in kvctl, admin requests and logs; clock
 * arrays are indexed from 0 (clock[id - 1]).
 */
#ifndef CAUSALKV_TESTS_INTEGRATION_CLUSTER_H_
#define CAUSALKV_TESTS_INTEGRATION_CLUSTER_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctl/kvclient.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KVT_NODES_MAX 5
#define KVT_ARGS_MAX 16

/* Whole-test bounds: long enough for a loaded 2-core machine, short enough
 * that a wedged cluster fails the test instead of hanging it. */
#define KVT_START_TIMEOUT_MS 10000
#define KVT_WAIT_TIMEOUT_MS 5000
#define KVT_CLIENT_TIMEOUT_MS 5000

typedef struct kvt_options {
  int nodes; /* cluster size; 0 means 3 */
  /* Extra kvd flags for every node, NULL-terminated ("--forward-after-ms", "600000", NULL). */
  const char* args[KVT_ARGS_MAX];
  /* Nonzero: node i+1's address uses this port, and the harness starts no
   * kvd for it (the test owns whatever listens there, or nothing does). */
  int port[KVT_NODES_MAX];
  /* Non-NULL: node i+1 gets --cluster-secret-file with this secret (the
   * harness writes the file, mode 0600, into the node's data dir). */
  const char* cluster_secret[KVT_NODES_MAX];
  /* Non-NULL: every node gets --client-secret-file with this password, and
   * the harness's own clients (kvt_client, status polls) present it. */
  const char* client_password;
  /* Nonzero: kvt_start_with waits only until every node answers status,
   * not for the peer links (for clusters whose links must fail). */
  int no_link_wait;
  /* Nonzero: each node's first start gets --bootstrap-cluster-id, so the
   * cluster takes writes without every node having met (for clusters with
   * a node the test plays or keeps out). Restarts do not get it. */
  int bootstrap;
} kvt_options;

typedef struct kvt_node {
  int id;             /* 1-based */
  int started;        /* a kvd runs (or ran) for this node */
  pid_t pid;          /* 0 once reaped */
  int stopped;        /* SIGSTOP'd by the test */
  int port;           /* TCP port on 127.0.0.1 */
  char address[32];   /* "127.0.0.1:PORT" */
  char dir[128];      /* data dir (mkdtemp) */
  char admin[160];    /* dir + "/kvd.sock" */
  char log_path[160]; /* dir + "/kvd.log" */
} kvt_node;

/* Starts a 3-node cluster with these extra flags (NULL-terminated list, may
 * be just NULL) and waits until every node answers status and all peer
 * links are up. Asserts on failure. */
void kvt_start(const char* arg, ...);
void kvt_start_with(const kvt_options* options);

/* SIGTERMs every running node and asserts each exits 0 within 5 s
 * (stopped nodes get SIGCONT first). */
void kvt_stop(void);
/* The same for one node; the others keep running. */
void kvt_stop_node(int id);
/* Waits for node `id` to exit by itself (say after an admin shutdown) and
 * asserts it exits with status 0 within timeout_ms. */
void kvt_wait_exit(int id, int timeout_ms);

/* The .fini fixture of every suite: kill leftovers, dump logs if the test
 * did not get to kvt_stop(), remove data dirs. Safe to call twice. */
void kvt_cleanup(void);

int kvt_size(void);
kvt_node* kvt_node_at(int id);
/* "1=127.0.0.1:P1,2=...", the --cluster value (also for kvctl -n lists). */
const char* kvt_cluster_arg(void);

/* New client handles (assert on failure; the caller kv_close()s them). */
kv_client* kvt_client(int id);
kv_client* kvt_admin(int id);

/* One status of node `id` over TCP (asserts the call succeeds). */
void kvt_status(int id, kv_node_status* out);
/* Holds (1) or releases (0) replication from node `from` to node `to`. */
void kvt_link(int from, int to, int hold);

/* SIGKILLs node `id` (no clean shutdown: a crash) and reaps it. */
void kvt_kill_node(int id);
/* Starts node `id` again with the same flags, port and data directory
 * (after kvt_kill_node or kvt_stop_node); its log is appended to. */
void kvt_restart_node(int id);
/* SIGSTOP / SIGCONT one node. */
void kvt_pause(int id);
void kvt_resume(int id);

/* Waits until the started nodes have equal clocks and empty buffers.
 * Returns 1 on success, 0 on timeout. */
int kvt_wait_converged(int timeout_ms);
/* Waits until node `id` reports `buffered` writes in its causal buffer. */
int kvt_wait_buffered(int id, uint64_t buffered, int timeout_ms);

/* Puts key=value (strings) and asserts KV_OK. */
void kvt_put(kv_client* c, const char* key, const char* value);
/* Gets key; returns the kv_get code. On KV_OK copies the value (NUL-
 * terminated, truncated to cap) into value, else sets value to "". */
int kvt_get(kv_client* c, const char* key, char* value, size_t cap);
/* Copies the session context of `from` into `to`. */
void kvt_carry_context(kv_client* from, kv_client* to);

/* The 0-based index of the first line of node `id`'s log that contains
 * `text` followed by a space or the end of the line; -1 if none. */
int kvt_log_line(int id, const char* text);
/* The number of lines of node `id`'s log that contain `text` anywhere. */
int kvt_log_count(int id, const char* text);
/* Prints the last `lines` lines of node `id`'s log to stderr. */
void kvt_dump_log(int id, int lines);

/* A monotonic clock in milliseconds (fractional). */
double kvt_now_ms(void);
void kvt_sleep_ms(int ms);

/* A free loopback port, found by binding port 0. */
int kvt_free_port(void);

/* Runs a program (argv[0] is its path) with no shell, collects its stdout
 * and stderr (NUL-terminated, truncated to their caps) and returns its exit
 * status (128 + signal if it was killed, -1 if it could not run or did not
 * finish within timeout_ms, in which case it is killed). */
int kvt_run(char* const argv[], char* out, size_t out_cap, char* err, size_t err_cap,
            int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* CAUSALKV_TESTS_INTEGRATION_CLUSTER_H_ */
