/* bad_input_test.c: malformed input on a node's client port. Each case
 * sends one piece of bad input on its own connection to n1 while a second
 * client keeps writing and reading at n1; the bad connection must get the
 * answer PROTOCOL.md promises (an Error frame then a close for framing and
 * verification failures, an error Reply on an open connection for a
 * well-framed request with a bad field), and the other client must see no
 * error and lose no write.
 *
 * Criterion runs each parameter in a fresh process and copies parameters
 * by value, so the parameters are plain indexes into kCases.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/integration/cluster.h"

TestSuite(bad_input, .fini = kvt_cleanup, .timeout = 40);

/* ------------------------------------------------------ frame bytes -- */

typedef struct Bytes {
  unsigned char* data; /* malloc'd */
  size_t size;
} Bytes;

static uint32_t Le32(const unsigned char* p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void PutLe32(unsigned char* p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

static uint16_t Le16(const unsigned char* p) { return (uint16_t)(p[0] | p[1] << 8); }

/* The position (in frame bytes) of field `field` of the FlatBuffers table
 * at `table`, or 0 if the field is absent. Frames are ours and valid here:
 * these readers only locate bytes to corrupt. */
static size_t FieldPos(const Bytes* frame, size_t table, int field) {
  int32_t soffset = (int32_t)Le32(frame->data + table);
  size_t vtable = (size_t)((int64_t)table - soffset);
  uint16_t vtable_bytes = Le16(frame->data + vtable);
  size_t entry = 4 + 2 * (size_t)field;
  if (entry + 2 > vtable_bytes) return 0;
  uint16_t offset = Le16(frame->data + vtable + entry);
  return offset == 0 ? 0 : table + offset;
}

/* Follows the uoffset stored at `pos`. */
static size_t Deref(const Bytes* frame, size_t pos) { return pos + Le32(frame->data + pos); }

/* The Envelope table: the buffer starts after the 4-byte size prefix. */
static size_t EnvelopePos(const Bytes* frame) { return Deref(frame, 4); }

enum { kEnvelopeMessageType = 1, kEnvelopeMessage = 2, kPutKey = 0 };

static Bytes EncodePut(uint64_t request_id, size_t key_bytes, size_t value_bytes,
                       const uint64_t* context, size_t context_len) {
  char* key = malloc(key_bytes + 1);
  char* value = malloc(value_bytes + 1);
  cr_assert(key && value);
  memset(key, 'k', key_bytes);
  memset(value, 'v', value_bytes);
  Bytes out = {NULL, 0};
  int rc = kv_encode_request(KV_MSG_PUT_REQUEST, request_id, key, key_bytes, value, value_bytes,
                             context, context_len, &out.data, &out.size);
  cr_assert_eq(rc, KV_OK, "kv_encode_request: %d", rc);
  free(key);
  free(value);
  return out;
}

static Bytes Copy(const void* data, size_t size) {
  Bytes out = {malloc(size), size};
  cr_assert(out.data);
  memcpy(out.data, data, size);
  return out;
}

/* ------------------------------------------------------------ cases -- */

typedef enum Expect {
  kErrorThenClose, /* an Error frame with `status` (or nothing), then a close */
  kReplyStaysOpen, /* a Reply with `status` echoing request id 7; the connection stays usable */
  kAdminRefused,   /* UNAUTHORIZED (AdminReply or Error); the request has no effect */
  kNoAnswer,       /* nothing comes back and the connection stays open */
} Expect;

typedef struct BadCase {
  const char* name;
  Bytes (*build)(void);
  Expect expect;
  int status;
  size_t chunk_bytes; /* nonzero: sent in pieces of this size, 1 ms apart */
} BadCase;

static Bytes HttpGarbage(void) {
  /* "GET " read as a little-endian length is 0x20544547 (~540 MB). */
  static const char kText[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  return Copy(kText, sizeof(kText) - 1);
}

static Bytes BinaryGarbage(void) {
  /* A plausible 60-byte frame full of 0xAB: the root offset points far
   * outside it. */
  unsigned char bytes[64];
  memset(bytes, 0xAB, sizeof(bytes));
  PutLe32(bytes, 60);
  return Copy(bytes, sizeof(bytes));
}

static Bytes PrefixAllOnes(void) {
  unsigned char bytes[16];
  memset(bytes, 0x11, sizeof(bytes));
  PutLe32(bytes, 0xFFFFFFFFu);
  return Copy(bytes, sizeof(bytes));
}

static Bytes PrefixZero(void) {
  unsigned char bytes[4] = {0, 0, 0, 0};
  return Copy(bytes, sizeof(bytes));
}

static Bytes RootOffsetOutside(void) {
  Bytes frame = EncodePut(7, 1, 1, NULL, 0);
  PutLe32(frame.data + 4, 0x7FFFFFF0u);
  return frame;
}

static Bytes WrongFileIdentifier(void) {
  Bytes frame = EncodePut(7, 1, 1, NULL, 0);
  cr_assert_eq(memcmp(frame.data + 8, "CKV1", 4), 0, "frame layout is not as expected");
  memcpy(frame.data + 8, "XXXX", 4);
  return frame;
}

static Bytes VectorLengthPastFrame(void) {
  Bytes frame = EncodePut(7, 3, 1, NULL, 0);
  size_t message = FieldPos(&frame, EnvelopePos(&frame), kEnvelopeMessage);
  cr_assert_neq(message, 0);
  size_t key = FieldPos(&frame, Deref(&frame, message), kPutKey);
  cr_assert_neq(key, 0);
  size_t vector = Deref(&frame, key);
  cr_assert_eq(Le32(frame.data + vector), 3, "key vector not found");
  PutLe32(frame.data + vector, 0x00FFFFFFu);
  return frame;
}

static Bytes PatchMessageType(int type) {
  Bytes frame = EncodePut(7, 1, 1, NULL, 0);
  size_t pos = FieldPos(&frame, EnvelopePos(&frame), kEnvelopeMessageType);
  cr_assert_neq(pos, 0);
  cr_assert_eq(frame.data[pos], KV_MSG_PUT_REQUEST, "message type byte not found");
  frame.data[pos] = (unsigned char)type;
  return frame;
}

static Bytes UnknownMessageType(void) { return PatchMessageType(42); }
static Bytes NoneMessageType(void) { return PatchMessageType(0); }

static Bytes ContextTooShort(void) {
  uint64_t context[2] = {0, 0};
  return EncodePut(7, 1, 1, context, 2);
}

static Bytes ContextTooLong(void) {
  uint64_t context[5] = {0, 0, 0, 0, 0};
  return EncodePut(7, 1, 1, context, 5);
}

static Bytes OversizedKey(void) { return EncodePut(7, 2000, 1, NULL, 0); }
static Bytes OversizedValue(void) { return EncodePut(7, 1, (1 << 20) + 1, NULL, 0); }
static Bytes EmptyKey(void) { return EncodePut(7, 0, 1, NULL, 0); }

static Bytes LinkHoldOverTcp(void) {
  Bytes out = {NULL, 0};
  cr_assert_eq(kv_encode_admin(KV_MSG_LINK_REQUEST, 7, 3, 1, &out.data, &out.size), KV_OK);
  return out;
}

static Bytes ShutdownOverTcp(void) {
  Bytes out = {NULL, 0};
  cr_assert_eq(kv_encode_admin(KV_MSG_SHUTDOWN_REQUEST, 7, 0, 0, &out.data, &out.size), KV_OK);
  return out;
}

static Bytes TruncatedFrame(void) {
  /* The prefix promises 100 bytes; 10 arrive, then nothing. */
  unsigned char bytes[14];
  memset(bytes, 0, sizeof(bytes));
  PutLe32(bytes, 100);
  return Copy(bytes, sizeof(bytes));
}

static Bytes GoodPut(void) { return EncodePut(7, 5, 5, NULL, 0); }

static const BadCase kCases[] = {
    {"garbage: an HTTP request", HttpGarbage, kErrorThenClose, KV_TOO_LARGE, 0},
    {"garbage: 60 bytes of 0xAB behind a valid prefix", BinaryGarbage, kErrorThenClose,
     KV_BAD_REQUEST, 0},
    {"length prefix 0xFFFFFFFF", PrefixAllOnes, kErrorThenClose, KV_TOO_LARGE, 0},
    {"length prefix 0", PrefixZero, kErrorThenClose, KV_BAD_REQUEST, 0},
    {"unverifiable: root offset outside the frame", RootOffsetOutside, kErrorThenClose,
     KV_BAD_REQUEST, 0},
    {"unverifiable: wrong file identifier", WrongFileIdentifier, kErrorThenClose, KV_BAD_REQUEST,
     0},
    {"unverifiable: key vector longer than the frame", VectorLengthPastFrame, kErrorThenClose,
     KV_BAD_REQUEST, 0},
    {"unknown message type 42", UnknownMessageType, kErrorThenClose, KV_BAD_REQUEST, 0},
    {"message type NONE", NoneMessageType, kErrorThenClose, KV_BAD_REQUEST, 0},
    {"put with a 2-entry context in a 3-node cluster", ContextTooShort, kReplyStaysOpen,
     KV_BAD_REQUEST, 0},
    {"put with a 5-entry context in a 3-node cluster", ContextTooLong, kReplyStaysOpen,
     KV_BAD_REQUEST, 0},
    {"put with a 2000-byte key (cap 1024)", OversizedKey, kReplyStaysOpen, KV_TOO_LARGE, 0},
    {"put with a 1 MiB + 1 value (cap 1 MiB)", OversizedValue, kReplyStaysOpen, KV_TOO_LARGE, 0},
    {"put with an empty key", EmptyKey, kReplyStaysOpen, KV_BAD_REQUEST, 0},
    {"link hold over TCP", LinkHoldOverTcp, kAdminRefused, KV_UNAUTHORIZED, 0},
    {"shutdown over TCP", ShutdownOverTcp, kAdminRefused, KV_UNAUTHORIZED, 0},
    {"a frame cut short, then silence", TruncatedFrame, kNoAnswer, 0, 0},
    {"a good put sent one byte at a time", GoodPut, kReplyStaysOpen, KV_OK, 1},
};
#define CASE_COUNT (sizeof(kCases) / sizeof(kCases[0]))

/* ------------------------------------------------ the other client -- */

typedef struct Writer {
  kv_client* client; /* used by the thread only while it runs */
  atomic_int stop;
  atomic_int ops;
  int error;
  char error_text[256];
} Writer;

static void* WriteLoop(void* arg) {
  Writer* w = arg;
  for (int i = 0; !atomic_load(&w->stop); ++i) {
    char key[32], value[32];
    int key_len = snprintf(key, sizeof(key), "good-%d", i);
    int value_len = snprintf(value, sizeof(value), "value-%d", i);
    int rc = kv_put(w->client, key, (size_t)key_len, value, (size_t)value_len);
    if (rc != KV_OK) {
      w->error = rc;
      snprintf(w->error_text, sizeof(w->error_text), "put %s: %s", key, kv_errmsg(w->client));
      return NULL;
    }
    char* got = NULL;
    size_t got_len = 0;
    rc = kv_get(w->client, key, (size_t)key_len, &got, &got_len, NULL);
    int same = rc == KV_OK && got_len == (size_t)value_len && memcmp(got, value, got_len) == 0;
    kv_free(got);
    if (!same) {
      w->error = rc == KV_OK ? -100 : rc;
      snprintf(w->error_text, sizeof(w->error_text), "get %s: %s", key,
               rc == KV_OK ? "wrong value" : kv_errmsg(w->client));
      return NULL;
    }
    atomic_store(&w->ops, i + 1);
    kvt_sleep_ms(1);
  }
  return NULL;
}

/* Every write of the other client is readable at `node`. */
static void ExpectGoodWrites(int node, int count) {
  kv_client* c = kvt_client(node);
  for (int i = 0; i < count; ++i) {
    char key[32], want[32], value[64];
    snprintf(key, sizeof(key), "good-%d", i);
    snprintf(want, sizeof(want), "value-%d", i);
    int rc = kvt_get(c, key, value, sizeof(value));
    cr_assert_eq(rc, KV_OK, "n%d lost %s: %s (%d)", node, key, kv_errmsg(c), rc);
    cr_assert_str_eq(value, want, "n%d: %s", node, key);
  }
  kv_close(c);
}

/* --------------------------------------------------------- checking -- */

static void ExpectErrorThenClose(kv_client* bad, const BadCase* tc) {
  kv_frame frame;
  int rc = kv_recv_raw_frame(bad, 3000, &frame);
  if (rc == KV_OK) {
    cr_assert_eq(frame.type, KV_MSG_ERROR, "%s: got a frame of type %d, want Error", tc->name,
                 frame.type);
    cr_assert_eq(frame.status, tc->status, "%s: Error status %d (%s), want %d", tc->name,
                 frame.status, frame.message, tc->status);
    cr_log_info("%s: Error %s: %s", tc->name, kv_code_name(frame.status), frame.message);
    kv_frame_clear(&frame);
  } else {
    /* No Error frame, but the connection must at least be closed. */
    cr_assert_eq(rc, KV_ERR_CONNECTION, "%s: no Error frame and no close: %s (%d)", tc->name,
                 kv_errmsg(bad), rc);
    cr_log_warn("%s: connection closed without an Error frame", tc->name);
  }
  cr_assert_eq(kv_is_closed(bad, 3000), 1, "%s: the node did not close the connection", tc->name);
}

static void ExpectReplyStaysOpen(kv_client* bad, const BadCase* tc) {
  kv_frame frame;
  int rc = kv_recv_raw_frame(bad, 3000, &frame);
  cr_assert_eq(rc, KV_OK, "%s: no reply: %s (%d)", tc->name, kv_errmsg(bad), rc);
  cr_assert_eq(frame.type, KV_MSG_REPLY, "%s: got type %d (%s), want Reply", tc->name, frame.type,
               frame.message);
  cr_assert_eq(frame.status, tc->status, "%s: status %d (%s), want %d", tc->name, frame.status,
               frame.message, tc->status);
  cr_assert_eq(frame.request_id, 7, "%s: reply does not echo the request id", tc->name);
  cr_log_info("%s: Reply %s: %s", tc->name, kv_code_name(frame.status), frame.message);
  kv_frame_clear(&frame);
  cr_assert_eq(kv_is_closed(bad, 100), 0, "%s: the node closed the connection", tc->name);

  /* The same connection still serves a good request. */
  Bytes good = EncodePut(8, 4, 2, NULL, 0);
  cr_assert_eq(kv_send_raw(bad, good.data, good.size), KV_OK);
  free(good.data);
  rc = kv_recv_raw_frame(bad, 3000, &frame);
  cr_assert_eq(rc, KV_OK, "%s: no reply to a good put afterwards: %s", tc->name, kv_errmsg(bad));
  cr_assert_eq(frame.type, KV_MSG_REPLY);
  cr_assert_eq(frame.status, KV_OK, "%s: good put afterwards: %s", tc->name, frame.message);
  cr_assert_eq(frame.request_id, 8);
  kv_frame_clear(&frame);
}

static void ExpectAdminRefused(kv_client* bad, const BadCase* tc) {
  kv_frame frame;
  int rc = kv_recv_raw_frame(bad, 3000, &frame);
  cr_assert_eq(rc, KV_OK, "%s: no answer: %s (%d)", tc->name, kv_errmsg(bad), rc);
  cr_assert(frame.type == KV_MSG_ADMIN_REPLY || frame.type == KV_MSG_ERROR,
            "%s: got type %d, want AdminReply or Error", tc->name, frame.type);
  cr_assert_eq(frame.status, KV_UNAUTHORIZED, "%s: status %d (%s)", tc->name, frame.status,
               frame.message);
  cr_log_info("%s: %s %s: %s", tc->name, frame.type == KV_MSG_ERROR ? "Error" : "AdminReply",
              kv_code_name(frame.status), frame.message);
  kv_frame_clear(&frame);

  /* It did nothing: n1 still runs, and its link to n3 is not held. */
  kvt_sleep_ms(100);
  kv_node_status st;
  kvt_status(1, &st);
  for (size_t i = 0; i < st.peer_count; ++i) {
    cr_assert_not(st.peers[i].held, "%s: n1's link to n%u is held", tc->name, st.peers[i].id);
  }
}

static void ExpectNoAnswer(kv_client* bad, const BadCase* tc) {
  kv_frame frame;
  int rc = kv_recv_raw_frame(bad, 300, &frame);
  cr_assert_eq(rc, KV_ERR_TIMEOUT, "%s: want no answer, got %d (type %d, %s)", tc->name, rc,
               frame.type, rc == KV_OK ? frame.message : kv_errmsg(bad));
  cr_assert_eq(kv_is_closed(bad, 100), 0, "%s: the node closed the connection", tc->name);
}

/* ------------------------------------------------------------- test -- */

ParameterizedTestParameters(bad_input, client_port) {
  static size_t indexes[CASE_COUNT];
  for (size_t i = 0; i < CASE_COUNT; ++i) indexes[i] = i;
  return cr_make_param_array(size_t, indexes, CASE_COUNT);
}

ParameterizedTest(size_t* index, bad_input, client_port) {
  cr_assert_lt(*index, CASE_COUNT);
  const BadCase* tc = &kCases[*index];
  cr_log_info("case %zu: %s", *index, tc->name);
  kvt_start(NULL);

  Writer writer;
  memset(&writer, 0, sizeof(writer));
  writer.client = kvt_client(1);
  pthread_t thread;
  cr_assert_eq(pthread_create(&thread, NULL, WriteLoop, &writer), 0);
  double deadline = kvt_now_ms() + KVT_WAIT_TIMEOUT_MS;
  while (atomic_load(&writer.ops) < 20 && writer.error == 0 && kvt_now_ms() < deadline) {
    kvt_sleep_ms(2);
  }

  kv_client* bad = kvt_client(1);
  Bytes bytes = tc->build();
  int rc = KV_OK;
  size_t chunk = tc->chunk_bytes == 0 ? bytes.size : tc->chunk_bytes;
  for (size_t sent = 0; sent < bytes.size && rc == KV_OK; sent += chunk) {
    size_t n = bytes.size - sent < chunk ? bytes.size - sent : chunk;
    rc = kv_send_raw(bad, bytes.data + sent, n);
    if (tc->chunk_bytes != 0) kvt_sleep_ms(1);
  }
  free(bytes.data);
  cr_assert_eq(rc, KV_OK, "%s: send: %s (%d)", tc->name, kv_errmsg(bad), rc);
  switch (tc->expect) {
    case kErrorThenClose:
      ExpectErrorThenClose(bad, tc);
      break;
    case kReplyStaysOpen:
      ExpectReplyStaysOpen(bad, tc);
      break;
    case kAdminRefused:
      ExpectAdminRefused(bad, tc);
      break;
    case kNoAnswer:
      ExpectNoAnswer(bad, tc);
      break;
  }
  kv_close(bad);

  int before = atomic_load(&writer.ops);
  deadline = kvt_now_ms() + KVT_WAIT_TIMEOUT_MS;
  while (atomic_load(&writer.ops) < before + 20 && writer.error == 0 && kvt_now_ms() < deadline) {
    kvt_sleep_ms(2);
  }
  atomic_store(&writer.stop, 1);
  cr_assert_eq(pthread_join(thread, NULL), 0);
  kv_close(writer.client);
  cr_assert_eq(writer.error, 0, "%s: the other client failed: %s (%d)", tc->name, writer.error_text,
               writer.error);
  int ops = atomic_load(&writer.ops);
  cr_assert_geq(ops, before + 20, "%s: the other client stalled after %d writes", tc->name, ops);

  ExpectGoodWrites(1, ops);
  cr_assert(kvt_wait_converged(KVT_WAIT_TIMEOUT_MS), "%s: no convergence", tc->name);
  ExpectGoodWrites(3, ops);
  kvt_stop();
}
