/* kvctl_test.c: kvctl's exit codes and --json output against a real
 * cluster, running the kvctl binary as a script would (no shell). */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/cluster.h"

#ifndef KVCTL_PATH
#error "KVCTL_PATH must name the kvctl binary (set by tests/integration/CMakeLists.txt)"
#endif

TestSuite(kvctl, .fini = kvt_cleanup, .timeout = 40);

#define OUT_CAP 16384

/* The last run's output. */
static char g_out[OUT_CAP];
static char g_err[OUT_CAP];
static char g_json[OUT_CAP]; /* g_out without whitespace outside strings */

/* Removes whitespace outside JSON strings, so checks need not know how
 * kvctl lays its JSON out. */
static void Squeeze(const char* in, char* out, size_t cap) {
  size_t n = 0;
  int in_string = 0;
  for (const char* p = in; *p != '\0' && n + 1 < cap; ++p) {
    if (in_string) {
      out[n++] = *p;
      if (*p == '\\' && p[1] != '\0' && n + 1 < cap) {
        out[n++] = *++p;
      } else if (*p == '"') {
        in_string = 0;
      }
    } else if (*p == '"') {
      in_string = 1;
      out[n++] = *p;
    } else if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r') {
      out[n++] = *p;
    }
  }
  out[n] = '\0';
}

/* Runs kvctl with these arguments (NULL-terminated); returns its exit code. */
static int Kvctl(const char* arg, ...) {
  char* argv[32];
  int argc = 0;
  argv[argc++] = (char*)KVCTL_PATH;
  va_list ap;
  va_start(ap, arg);
  for (; arg != NULL; arg = va_arg(ap, const char*)) {
    cr_assert_lt(argc, 31);
    argv[argc++] = (char*)arg;
  }
  va_end(ap);
  argv[argc] = NULL;
  int code = kvt_run(argv, g_out, sizeof(g_out), g_err, sizeof(g_err), 15000);
  cr_assert_neq(code, -1, "kvctl did not run or did not finish");
  Squeeze(g_out, g_json, sizeof(g_json));
  return code;
}

#define EXPECT_EXIT(want, ...)                                                                     \
  do {                                                                                             \
    int code_ = Kvctl(__VA_ARGS__, NULL);                                                          \
    cr_assert_eq(code_, (want), "kvctl exited %d, want %d\nstdout: %s\nstderr: %s", code_, (want), \
                 g_out, g_err);                                                                    \
  } while (0)

/* The output is exactly one JSON object, and it contains `fragment`. */
static void ExpectJson(const char* fragment) {
  size_t len = strlen(g_json);
  cr_assert(len >= 2 && g_json[0] == '{' && g_json[len - 1] == '}',
            "stdout is not one JSON object: %s", g_out);
  cr_assert(strstr(g_json, fragment) != NULL, "stdout lacks %s: %s", fragment, g_out);
}

static int Count(const char* haystack, const char* needle) {
  int n = 0;
  for (const char* p = strstr(haystack, needle); p != NULL; p = strstr(p + 1, needle)) ++n;
  return n;
}

Test(kvctl, put_get_del_json_and_exit_codes) {
  kvt_start(NULL);
  const char* n1 = kvt_node_at(1)->address;

  EXPECT_EXIT(0, "-n", n1, "--json", "put", "k", "hello");
  ExpectJson("\"key\":\"k\"");
  ExpectJson("\"version\":[1,0,0]");

  EXPECT_EXIT(0, "-n", n1, "--json", "get", "k");
  ExpectJson("\"key\":\"k\"");
  ExpectJson("\"found\":true");
  ExpectJson("\"value\":\"hello\"");
  ExpectJson("\"version\":[1,0,0]");

  EXPECT_EXIT(0, "-n", n1, "get", "k");
  cr_assert_str_eq(g_out, "hello\n");

  EXPECT_EXIT(0, "-n", n1, "--json", "del", "k");
  ExpectJson("\"key\":\"k\"");
  ExpectJson("\"version\":[2,0,0]");

  EXPECT_EXIT(1, "-n", n1, "get", "k");
  cr_assert(strstr(g_err, "not found") != NULL, "stderr: %s", g_err);
  cr_assert_str_eq(g_out, "");
  EXPECT_EXIT(1, "-n", n1, "--json", "get", "k");
  ExpectJson("\"found\":false");
  cr_assert(strstr(g_err, "not found") != NULL, "stderr: %s", g_err);
  EXPECT_EXIT(1, "-n", n1, "get", "never-written");

  /* Binary-safe: a value that is not UTF-8 comes back base64-encoded. */
  EXPECT_EXIT(0, "-n", n1, "put", "bin", "\xff\xfe");
  EXPECT_EXIT(0, "-n", n1, "--json", "get", "bin");
  ExpectJson("\"value_base64\":\"//4=\"");

  /* A request the node refuses (a 2000-byte key) is not a usage error. */
  char key[2001];
  memset(key, 'k', 2000);
  key[2000] = '\0';
  int code = Kvctl("-n", n1, "put", key, "v", NULL);
  cr_assert(code != 0 && code != 1, "an oversized key exited %d", code);

  cr_assert(kvt_wait_converged(KVT_WAIT_TIMEOUT_MS));
  EXPECT_EXIT(0, "-n", n1, "--json", "status");
  ExpectJson("\"id\":1");
  ExpectJson("\"clock\":[3,0,0]");
  ExpectJson("\"buffered\":0");
  ExpectJson("\"keys\":1"); /* bin; k is deleted */
  ExpectJson("\"peers\":[{");
  cr_assert_eq(Count(g_json, "\"connected\":true"), 2, "want both peers connected: %s", g_out);
  ExpectJson("\"id\":2");
  ExpectJson("\"id\":3");

  /* The same status over the admin socket. */
  EXPECT_EXIT(0, "--admin", kvt_node_at(2)->admin, "--json", "status");
  ExpectJson("\"id\":2");
  ExpectJson("\"clock\":[3,0,0]");
  kvt_stop();
}

/* The number after "key": in the last JSON output; -1 if absent. */
static long long JsonNumber(const char* key) {
  char pattern[64];
  snprintf(pattern, sizeof(pattern), "\"%s\":", key);
  const char* at = strstr(g_json, pattern);
  return at == NULL ? -1 : strtoll(at + strlen(pattern), NULL, 10);
}

/* The event loop's account of its last second: a whole window, turns in
 * it, and an idle node busy for a small part of it (were the poll wait not
 * measured, busy would equal the window). */
Test(kvctl, status_accounts_for_the_loop) {
  kvt_start(NULL);
  const char* n1 = kvt_node_at(1)->address;
  long long window = 0;
  for (int i = 0; i < 50 && window <= 0; ++i) {
    EXPECT_EXIT(0, "-n", n1, "--json", "status");
    window = JsonNumber("window_us");
    if (window <= 0) usleep(100 * 1000);
  }
  cr_assert_geq(window, 1000000, "no whole second accounted: %s", g_out);
  cr_assert_lt(window, 5000000, "%s", g_out);
  long long busy = JsonNumber("busy_us"), turns = JsonNumber("turns");
  cr_assert(busy >= 0 && busy < window / 2, "an idle node busy %lld us of %lld: %s", busy, window,
            g_out);
  cr_assert_geq(JsonNumber("cpu_us"), 0, "%s", g_out);
  cr_assert_gt(turns, 10, "the 10 ms tick alone turns the loop: %s", g_out);
  cr_assert_geq(JsonNumber("longest_turn_us"), 0, "%s", g_out);
  long long cpu_wait = JsonNumber("cpu_wait_us");
  cr_assert(cpu_wait >= 0 && cpu_wait <= window, "%s", g_out);
  /* Where the kernel keeps schedstat, every wake-up of the loop (100 a
   * second from the tick alone) spends some time in the run queue: 0 would
   * mean the node did not read it (an idle node here: 130-730 us). */
  if (access("/proc/thread-self/schedstat", R_OK) == 0) {
    cr_assert_gt(cpu_wait, 0, "no run-queue time read from schedstat: %s", g_out);
  }
  EXPECT_EXIT(0, "-n", n1, "status");
  cr_assert(strstr(g_out, "waiting for a CPU") != NULL, "%s", g_out);
  kvt_stop();
}

Test(kvctl, bad_address_and_usage_exit_2) {
  /* Nothing listens on a port we just freed. */
  char address[32];
  snprintf(address, sizeof(address), "127.0.0.1:%d", kvt_free_port());
  EXPECT_EXIT(2, "-n", address, "get", "k");
  cr_assert_neq(g_err[0], '\0', "no message on stderr");
  EXPECT_EXIT(2, "-n", address, "--json", "put", "k", "v");
  ExpectJson("\"error\":");
  EXPECT_EXIT(2, "-n", "not an address", "get", "k");
  EXPECT_EXIT(2, "-n", "127.0.0.1:99999", "get", "k");
  EXPECT_EXIT(2, "--admin", "/nonexistent/kvd.sock", "status");
  EXPECT_EXIT(2, "no-such-command");
  EXPECT_EXIT(2, "-n", address, "get"); /* KEY missing */
}

Test(kvctl, unreachable_context_exits_3_and_buffer_shows_the_wait) {
  kvt_start("--forward-after-ms", "600000", "--context-wait-ms", "500", NULL);
  const char* n1 = kvt_node_at(1)->address;
  const char* n2 = kvt_node_at(2)->address;
  const char* n3 = kvt_node_at(3)->address;
  char context[200];
  snprintf(context, sizeof(context), "%s/session.ctx", kvt_node_at(1)->dir);

  EXPECT_EXIT(0, "--admin", kvt_node_at(1)->admin, "link", "hold", "3");
  EXPECT_EXIT(0, "-n", n1, "--context", context, "put", "x", "1");
  cr_assert_eq(access(context, R_OK), 0, "kvctl did not write the context file");

  /* Writes-follow-reads across invocations: y at n2 depends on x. */
  EXPECT_EXIT(0, "-n", n2, "--context", context, "get", "x");
  cr_assert_str_eq(g_out, "1\n");
  EXPECT_EXIT(0, "-n", n2, "--context", context, "put", "y", "2");
  cr_assert(kvt_wait_buffered(3, 1, KVT_WAIT_TIMEOUT_MS), "n3 never buffered y");
  EXPECT_EXIT(0, "--admin", kvt_node_at(3)->admin, "--json", "buffer");
  ExpectJson("\"total\":1");
  ExpectJson("\"origin\":2");
  ExpectJson("\"seq\":1");
  ExpectJson("\"key\":\"y\"");
  ExpectJson("\"n1:1\"");

  /* n3 cannot reach the session's context while 1->3 is held. */
  EXPECT_EXIT(3, "-n", n3, "--context", context, "get", "x");
  cr_assert(strstr(g_err, "n1:1") != NULL, "stderr does not name n1:1: %s", g_err);
  EXPECT_EXIT(3, "-n", n3, "--context", context, "--json", "get", "y");
  ExpectJson("\"error\":");

  /* A wait that cannot converge exits 1. */
  char all[128];
  snprintf(all, sizeof(all), "%s,%s,%s", n1, n2, n3);
  EXPECT_EXIT(1, "-n", all, "wait-converged", "--timeout", "300");

  EXPECT_EXIT(0, "--admin", kvt_node_at(1)->admin, "link", "release", "3");
  EXPECT_EXIT(0, "-n", n3, "--context", context, "get", "y");
  cr_assert_str_eq(g_out, "2\n");
  EXPECT_EXIT(0, "-n", all, "wait-converged", "--timeout", "5000");
  kvt_stop();
}

Test(kvctl, wait_converged_exits_0_on_a_converged_cluster) {
  kvt_start(NULL);
  char all[128];
  snprintf(all, sizeof(all), "%s,%s,%s", kvt_node_at(1)->address, kvt_node_at(2)->address,
           kvt_node_at(3)->address);
  EXPECT_EXIT(0, "-n", all, "wait-converged", "--timeout", "5000");
  EXPECT_EXIT(0, "-n", kvt_node_at(2)->address, "put", "a", "1");
  EXPECT_EXIT(0, "-n", all, "--json", "wait-converged", "--timeout", "5000");
  ExpectJson("\"converged\":true");
  cr_assert_eq(Count(g_json, "\"clock\":[0,1,0]"), 3, "every node at [0,1,0]: %s", g_out);
  EXPECT_EXIT(0, "-n", kvt_node_at(3)->address, "get", "a");
  cr_assert_str_eq(g_out, "1\n");

  /* kvctl shutdown stops a node cleanly: it exits 0 by itself. */
  EXPECT_EXIT(0, "--admin", kvt_node_at(3)->admin, "shutdown");
  kvt_wait_exit(3, 5000);
  kvt_stop();
}
