/* kvclient.h compiled as C11: the header is pure C, and argument checks and
 * frame encoding work without a server. */
#include "ctl/kvclient.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

Test(kvclient_c, codes_and_names) {
  cr_assert_str_eq(kv_code_name(KV_OK), "OK");
  cr_assert_str_eq(kv_code_name(KV_NOT_FOUND), "NOT_FOUND");
  cr_assert_str_eq(kv_code_name(KV_TIMEOUT), "TIMEOUT");
  cr_assert_str_eq(kv_code_name(KV_INTERNAL), "INTERNAL");
  cr_assert_str_eq(kv_code_name(KV_ERR_CONNECTION), "CONNECTION");
  cr_assert_str_eq(kv_code_name(KV_ERR_TIMEOUT), "TIMED_OUT");
  cr_assert_str_eq(kv_code_name(1234), "UNKNOWN");
}

Test(kvclient_c, bad_arguments) {
  kv_client* c = NULL;
  cr_assert_eq(kv_connect(NULL, 100, &c), KV_ERR_INVALID);
  cr_assert_eq(kv_connect("127.0.0.1:7001", 100, NULL), KV_ERR_INVALID);
  cr_assert_eq(kv_connect("no-port", 100, &c), KV_ERR_INVALID);
  cr_assert_null(c);
  cr_assert(strstr(kv_errmsg(NULL), "no-port") != NULL, "%s", kv_errmsg(NULL));
  cr_assert_eq(kv_put(NULL, "x", 1, "1", 1), KV_ERR_INVALID);
  cr_assert_eq(kv_get(NULL, "x", 1, NULL, NULL, NULL), KV_ERR_INVALID);
  cr_assert_eq(kv_link(NULL, 1, 1), KV_ERR_INVALID);
  kv_close(NULL);
  kv_free(NULL);
  kv_buffer_free(NULL);
  kv_frame_clear(NULL);
  kv_reply_clear(NULL);
}

Test(kvclient_c, encode_frames) {
  unsigned char* frame = NULL;
  size_t len = 0;
  uint64_t context[3] = {1, 0, 0};
  cr_assert_eq(kv_encode_request(KV_MSG_PUT_REQUEST, 7, "k", 1, "v", 1, context, 3, &frame, &len),
               KV_OK);
  uint32_t prefix;
  memcpy(&prefix, frame, 4);
  cr_assert_eq(prefix + 4, len);
  cr_assert_eq(memcmp(frame + 8, "CKV1", 4), 0);
  kv_free(frame);
  cr_assert_eq(kv_encode_admin(KV_MSG_LINK_REQUEST, 1, 3, 1, &frame, &len), KV_OK);
  kv_free(frame);
  cr_assert_eq(kv_encode_admin(KV_MSG_LINK_REQUEST, 1, 0, 1, &frame, &len), KV_ERR_INVALID);
  cr_assert_eq(kv_encode_request(KV_MSG_REPLY, 1, "k", 1, NULL, 0, NULL, 0, &frame, &len),
               KV_ERR_INVALID);
}
