// kvd: one node of a causalkv cluster. Wiring only: config, then the node,
// then the loop.
#include <uv.h>

#include <csignal>
#include <cstdio>

#include "daemon/config.h"
#include "daemon/io/log.h"
#include "daemon/io/node.h"

int main(int argc, char** argv) {
  kvd::Config config;
  int exit_now = -1;
  kvd::core::Status status = kvd::ParseConfig(argc, argv, &config, &exit_now);
  if (exit_now >= 0) return exit_now;
  if (!status.ok()) {
    std::fprintf(stderr, "kvd: %s\n", status.message().c_str());
    return 2;
  }
  kvd::io::SetLogLevel(config.log_level);
  kvd::io::SetLogNode("n" + std::to_string(config.id));
  // A peer or client that vanishes mid-write must cost an EPIPE, not the process.
  std::signal(SIGPIPE, SIG_IGN);

  uv_loop_t loop;
  if (int rc = uv_loop_init(&loop); rc < 0) {
    std::fprintf(stderr, "kvd: uv_loop_init: %s\n", uv_strerror(rc));
    return 1;
  }
  int exit_code = 0;
  {
    kvd::io::Node node(config);
    node.SetReloader([argc, argv](kvd::Config* fresh) {
      int ignored = -1;
      return kvd::ParseConfig(argc, argv, fresh, &ignored);
    });
    status = node.Start(&loop);
    if (!status.ok()) {
      KV_LOG(kError, "%s", status.message().c_str());
      node.Shutdown("start-up failed");
      exit_code = 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (node.exit_code() != 0) exit_code = node.exit_code();
  }
  if (uv_loop_close(&loop) != 0) KV_LOG(kWarn, "loop closed with handles still open");
  if (exit_code == 0) KV_LOG(kInfo, "stopped");
  return exit_code;
}
