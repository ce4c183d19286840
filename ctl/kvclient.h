/* kvclient.h: the C API of the causalkv client library (link kvclient).
 *
 * A blocking client for one kvd node over TCP ("HOST:PORT") or over a
 * node's Unix admin socket (a path). Other languages and the integration
 * tests (C, Criterion) use it; it wraps the C++ kvd::client::Client.
 *
 *   kv_client* c = NULL;
 *   if (kv_connect("127.0.0.1:7001", 2000, &c) != KV_OK) {
 *     fprintf(stderr, "%s\n", kv_errmsg(c));   (c may be NULL: see kv_errmsg)
 *     kv_close(c);
 *     return;
 *   }
 *   kv_put(c, "x", 1, "1", 1);
 *   char* value; size_t len; int found;
 *   if (kv_get(c, "x", 1, &value, &len, &found) == KV_OK) { ...; kv_free(value); }
 *   kv_close(c);
 *
 * RETURN CODES. Every function that can fail returns an int:
 *   KV_OK (0), KV_NOT_FOUND (1), or a wire status the node answered with
 *   (KV_BAD_REQUEST 2 .. KV_INTERNAL 7, the numbers of kv.fbs), or a
 *   negative KV_ERR_* for failures on the client's side. After any code
 *   other than KV_OK, kv_errmsg(c) says why (the server's message for
 *   wire statuses).
 *
 * CONNECTION STATE. Wire statuses in a reply (BAD_REQUEST, TOO_LARGE,
 * TIMEOUT, UNAVAILABLE...) leave the connection usable. KV_ERR_TIMEOUT,
 * KV_ERR_PROTOCOL, KV_ERR_CONNECTION and an Error frame from the server
 * (reported with the Error's status) make it unusable: later requests return
 * KV_ERR_CONNECTION; kv_close() it and connect again.
 *
 * SESSIONS. The handle keeps a session context (a vector clock, one entry
 * per node in cluster order). Every request carries it when non-empty, and
 * every KV_OK / KV_NOT_FOUND reply's version is merged into it (entry-wise
 * maximum). Copy it between handles with kv_context_get/kv_context_set to
 * carry a session from one node to another: the second node serves the
 * request once it has everything the context names, else answers
 * KV_TIMEOUT (the message names the missing writes, e.g. "n1:3").
 *
 * NODE NUMBERING. This API speaks 1-based node ids (n1, n2, ...), like
 * kvctl and the logs. Clock arrays are indexed from 0: clock[id - 1].
 *
 * TIMEOUTS. timeout_ms <= 0 means no limit, everywhere in this API.
 *
 * MEMORY. Buffers the library returns (values, buffer listings, raw
 * frames) are malloc'd; release them with the matching kv_*free function.
 * Keys and values are bytes: pointer + length, no terminating NUL needed.
 *
 * THREADS. A kv_client is used by one thread at a time; distinct handles
 * are independent. The library never raises SIGPIPE.
 */
#ifndef CAUSALKV_CTL_KVCLIENT_H_
#define CAUSALKV_CTL_KVCLIENT_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ codes -- */

#define KV_OK 0
#define KV_NOT_FOUND 1    /* get: no live value */
#define KV_BAD_REQUEST 2  /* malformed or meaningless request (empty key, bad context length) */
#define KV_TOO_LARGE 3    /* key, value or frame over the node's cap */
#define KV_TIMEOUT 4      /* the node did not reach the context in time */
#define KV_UNAVAILABLE 5  /* recovering, shutting down, or a queue is full */
#define KV_UNAUTHORIZED 6 /* wrong or missing password, admin request over TCP... */
#define KV_INTERNAL 7     /* server-side failure; a write's outcome is unknown */

#define KV_ERR_CONNECTION (-1) /* cannot connect, or the connection broke/closed */
#define KV_ERR_PROTOCOL (-2)   /* the server sent an unusable or unexpected frame */
#define KV_ERR_TIMEOUT (-3)    /* no connection or reply within the client's timeout */
#define KV_ERR_INVALID (-4)    /* bad argument: NULL pointer, bad address, id 0... */
#define KV_ERR_BUFFER (-5)     /* caller's array too small; *len says what is needed */
#define KV_ERR_NOMEM (-6)      /* out of memory */

/* The largest cluster: every clock has at most this many entries. */
#define KV_NODES_MAX 64

/* Message type numbers (kv.fbs, union Message) for kv_frame.type. */
#define KV_MSG_PUT_REQUEST 1
#define KV_MSG_GET_REQUEST 2
#define KV_MSG_DELETE_REQUEST 3
#define KV_MSG_REPLY 4
#define KV_MSG_STATUS_REQUEST 9
#define KV_MSG_STATUS_REPLY 10
#define KV_MSG_BUFFER_REQUEST 11
#define KV_MSG_BUFFER_REPLY 12
#define KV_MSG_LINK_REQUEST 13
#define KV_MSG_SHUTDOWN_REQUEST 14
#define KV_MSG_ADMIN_REPLY 15
#define KV_MSG_ERROR 16

/* "OK", "NOT_FOUND", ..., "CONNECTION", "PROTOCOL", "TIMED_OUT", ... */
const char* kv_code_name(int code);

typedef struct kv_client kv_client;

/* ------------------------------------------------------- connection -- */

/* Connects to `address`: "HOST:PORT" or "[IPV6]:PORT" for TCP; "unix:PATH"
 * or any path containing '/' for a Unix socket (a node's admin socket).
 * timeout_ms bounds the connect and becomes the request timeout (see
 * kv_set_timeout). On KV_OK *out is a new handle. On failure *out is NULL
 * and kv_errmsg(NULL) gives the reason (per thread). */
int kv_connect(const char* address, int timeout_ms, kv_client** out);

/* Presents the client password to a node started with --client-secret-file
 * (one that has none accepts any). Call it right after kv_connect, before
 * any request: such a node answers anything else with an Error
 * (KV_UNAUTHORIZED) and closes. A wrong password is KV_UNAUTHORIZED and the
 * handle becomes unusable. */
int kv_auth(kv_client* c, const void* password, size_t password_len);

/* Closes the connection and frees the handle. NULL is fine. */
void kv_close(kv_client* c);

/* Bounds each later request (send + reply). Default: kv_connect's timeout.
 * Keep it above the node's --context-wait-ms to see KV_TIMEOUT, not
 * KV_ERR_TIMEOUT. */
int kv_set_timeout(kv_client* c, int timeout_ms);

/* Why the last call on `c` failed ("" after success). With c == NULL: the
 * calling thread's last kv_connect failure. Valid until the next call on
 * the handle (or the next kv_connect of the thread). Never NULL. */
const char* kv_errmsg(const kv_client* c);

/* Frees anything this library malloc'd and handed out (values). NULL is fine. */
void kv_free(void* p);

/* -------------------------------------------------------- key-value -- */

/* Writes key = value. KV_OK: the write's clock is in kv_last_version(). */
int kv_put(kv_client* c, const void* key, size_t key_len, const void* value, size_t value_len);

/* Reads key. KV_OK: *found = 1, *value is a malloc'd copy of the value
 * (never NULL, even for an empty value; NUL-terminated for convenience, the
 * NUL not counted in *value_len; free it with kv_free). KV_NOT_FOUND: *found = 0, *value = NULL,
 * *value_len = 0. Either way kv_last_version() holds the version read. `value` and `value_len` may
 * be NULL to test for presence only; `found` may be NULL. */
int kv_get(kv_client* c, const void* key, size_t key_len, char** value, size_t* value_len,
           int* found);

/* Deletes key (a tombstone; deleting a missing key is KV_OK too). */
int kv_del(kv_client* c, const void* key, size_t key_len);

/* The version clock and `found` flag of the last KV_OK/KV_NOT_FOUND reply
 * to put, get or del (all zeros/empty before any). Copies up to `cap`
 * entries to out and sets *len to the clock's length; KV_ERR_BUFFER if cap
 * is too small (out may be NULL with cap 0 to ask for the length). */
int kv_last_version(const kv_client* c, uint64_t* out, size_t cap, size_t* len);
int kv_last_found(const kv_client* c);

/* ---------------------------------------------------------- session -- */

/* The session context: as kv_last_version for copying out. An empty
 * context (len 0) means none. */
int kv_context_get(const kv_client* c, uint64_t* out, size_t cap, size_t* len);

/* Replaces the session context (len 0 clears it; at most KV_NODES_MAX). */
int kv_context_set(kv_client* c, const uint64_t* context, size_t len);

/* ----------------------------------------------------------- status -- */

typedef struct kv_peer_status {
  uint32_t id;                  /* 1-based node id */
  char address[256];            /* "HOST:PORT" as configured, NUL-terminated, truncated if longer */
  int connected_out;            /* this node's link to the peer is up */
  int connected_in;             /* the peer's link to this node is up */
  int held;                     /* replication to the peer is held (kv_link) */
  size_t acked_len;             /* 0 if the peer has not acknowledged yet */
  uint64_t acked[KV_NODES_MAX]; /* the peer's clock as its last ack showed */
} kv_peer_status;

/* How the node's event loop spent its last whole second (kvctl(1) status):
 * all 0 in the node's first second; reported is 0 for nodes older than this
 * account. cpu_wait_us is the time it was ready to run but had no CPU (0
 * where the node's kernel does not say). */
typedef struct kv_loop_status {
  int reported;
  uint64_t window_us;       /* the length of that second, about 1,000,000 */
  uint64_t busy_us;         /* not waiting for events */
  uint64_t cpu_us;          /* on a CPU */
  uint64_t cpu_wait_us;     /* ready to run, waiting for a CPU */
  uint64_t turns;           /* loop iterations */
  uint64_t longest_turn_us; /* the longest iteration's handling */
} kv_loop_status;

typedef struct kv_node_status {
  uint32_t id; /* this node's 1-based id */
  size_t clock_len;
  uint64_t clock[KV_NODES_MAX]; /* the node's clock, in cluster order */
  uint64_t buffered;            /* writes waiting in the causal buffer */
  uint64_t keys;                /* live keys */
  uint64_t log_entries;         /* replication log entries not yet acked by all */
  int accepting_writes;         /* 0 while recovering its own writes */
  size_t peer_count;
  kv_peer_status peers[KV_NODES_MAX - 1]; /* every other node, in cluster order */
  kv_loop_status loop;
} kv_node_status;

/* Fills *out (a large struct: about 50 KiB; fine on the stack). Works over
 * TCP and the admin socket. */
int kv_status(kv_client* c, kv_node_status* out);

/* ----------------------------------------------------------- buffer -- */

typedef struct kv_missing_range {
  uint32_t origin_id; /* 1-based */
  uint64_t seq_first;
  uint64_t seq_last;
} kv_missing_range;

typedef struct kv_buffered_write {
  uint32_t origin_id; /* 1-based */
  uint64_t seq;       /* sequence number at the origin: the write is "n<origin_id>:<seq>" */
  char* key;          /* NUL-terminated copy; key_len excludes the NUL */
  size_t key_len;
  int is_delete;
  size_t missing_count;
  kv_missing_range* missing; /* the writes it still waits for */
} kv_buffered_write;

typedef struct kv_buffer_listing {
  uint64_t total; /* all buffered writes; count may be fewer (limit) */
  size_t count;
  kv_buffered_write* entries;
} kv_buffer_listing;

/* Lists up to `limit` buffered writes (0: the node's default, 1000).
 * Admin socket only (over TCP: KV_UNAUTHORIZED). On KV_OK, *out is
 * malloc'd: free it with kv_buffer_free. */
int kv_buffer(kv_client* c, uint32_t limit, kv_buffer_listing** out);
void kv_buffer_free(kv_buffer_listing* listing);

/* Just the number of buffered writes (from status). */
int kv_buffer_count(kv_client* c, uint64_t* count);

/* ------------------------------------------------------------ admin -- */

/* Holds (hold = 1) or releases (hold = 0) replication from this node to
 * peer `peer_id` (1-based). Admin socket only; the node must run with
 * --fault-injection (else KV_UNAUTHORIZED); a bad id is KV_BAD_REQUEST. */
int kv_link(kv_client* c, uint32_t peer_id, int hold);

/* Asks the node to shut down cleanly. Admin socket only. */
int kv_shutdown(kv_client* c);

/* Asks the node to write a snapshot and waits until it is durable (the
 * request timeout applies). Admin socket only. */
int kv_snapshot(kv_client* c);

/* ------------------------------------------------------- pipelining -- */

/* Queue requests without waiting, send them with kv_flush, then take the
 * replies in request order with kv_recv_reply. Each request carries the
 * session context as it is when queued. Blocking calls (kv_put...) return
 * KV_ERR_INVALID while replies are outstanding. */
int kv_send_put(kv_client* c, const void* key, size_t key_len, const void* value, size_t value_len,
                uint64_t* request_id);
int kv_send_get(kv_client* c, const void* key, size_t key_len, uint64_t* request_id);
int kv_send_del(kv_client* c, const void* key, size_t key_len, uint64_t* request_id);
int kv_flush(kv_client* c);
/* Replies not yet received. */
size_t kv_pending(const kv_client* c);

typedef struct kv_reply {
  uint64_t request_id;
  int status; /* KV_OK, KV_NOT_FOUND or another wire status (2..7) */
  int found;
  char* value; /* malloc'd, NUL-terminated; NULL when empty */
  size_t value_len;
  size_t version_len;
  uint64_t version[KV_NODES_MAX];
} kv_reply;

/* The next reply, whatever its status: returns KV_OK when a reply was
 * received (its own status is out->status; kv_errmsg has its message), or
 * a KV_ERR_* code (or an Error frame's status) when none could be. Free
 * out->value with kv_free, or call kv_reply_clear. */
int kv_recv_reply(kv_client* c, kv_reply* out);
void kv_reply_clear(kv_reply* reply);

/* ---------------------------------------------- raw access (for tests) -- */

/* Sends `len` bytes exactly as given (garbage, a bad prefix, a hand-made
 * frame). Replies to them are not matched to anything. */
int kv_send_raw(kv_client* c, const void* bytes, size_t len);

typedef struct kv_frame {
  uint64_t request_id;
  int type;          /* KV_MSG_* */
  int status;        /* for KV_MSG_REPLY, _ADMIN_REPLY and _ERROR; else 0 */
  char message[512]; /* NUL-terminated, truncated */
  int found;         /* KV_MSG_REPLY */
  size_t version_len;
  uint64_t version[KV_NODES_MAX];
  unsigned char* bytes; /* the whole frame, size prefix included; kv_frame_clear frees */
  size_t size;
} kv_frame;

/* The next frame from the server, of any type, within timeout_ms. The frame
 * must pass the verifier and the meaning checks (else KV_ERR_PROTOCOL).
 * KV_ERR_CONNECTION once the server closed and no frame is left;
 * KV_ERR_TIMEOUT if nothing came in time (the connection stays usable). */
int kv_recv_raw_frame(kv_client* c, int timeout_ms, kv_frame* out);
void kv_frame_clear(kv_frame* frame);

/* Waits up to timeout_ms for the server to close the connection: 1 if it
 * did, 0 if still open. Frames arriving meanwhile stay readable with
 * kv_recv_raw_frame. */
int kv_is_closed(kv_client* c, int timeout_ms);

/* Encodes a request frame without any check, for sending with kv_send_raw:
 * type is KV_MSG_PUT_REQUEST, _GET_REQUEST or _DELETE_REQUEST; `context`
 * may have any length (a wrong one is how a test provokes BAD_REQUEST); a
 * value is ignored except for puts. *out is malloc'd (kv_free). */
int kv_encode_request(int type, uint64_t request_id, const void* key, size_t key_len,
                      const void* value, size_t value_len, const uint64_t* context,
                      size_t context_len, unsigned char** out, size_t* out_len);

/* Encodes an admin request frame: KV_MSG_STATUS_REQUEST,
 * KV_MSG_BUFFER_REQUEST (arg = limit), KV_MSG_LINK_REQUEST (arg = peer id,
 * 1-based, and hold) or KV_MSG_SHUTDOWN_REQUEST. *out as above. */
int kv_encode_admin(int type, uint64_t request_id, uint32_t arg, int hold, unsigned char** out,
                    size_t* out_len);

#ifdef __cplusplus
}
#endif

#endif /* CAUSALKV_CTL_KVCLIENT_H_ */
