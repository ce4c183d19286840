# Shell helpers shared by the benchmark scripts (sourced once $tmp and
# pids=() exist). The caller defines log() and adds every process it starts
# to pids; on exit they are stopped and $tmp is removed.

stop_all() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# A free loopback port, found by binding port 0.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT PID NAME: until PORT accepts, or exit 1 if PID died.
wait_port() {
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || { log "$3 exited at start-up"; exit 1; }
    sleep 0.05
  done
  log "$3 not listening on port $1"
  exit 1
}

# page_cache_mb_s DIR: how fast this host writes 128 MiB into a new file's
# page cache (no fsync), in MB/s. On a VM whose host backs guest memory
# only when first touched (and takes freed memory back: free page
# reporting), this swings from ~5,000 to ~600 between hours, and every
# server writing a log pays it per new page. The benchmarks record it so a
# slow run can be told from a slow server.
page_cache_mb_s() {
  python3 - "$1" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "page-cache-probe")
chunk = b"\0" * (1 << 20)
start = time.monotonic()
with open(path, "wb", buffering=0) as f:
    for _ in range(128):
        f.write(chunk)
took = time.monotonic() - start
os.unlink(path)
print(round(128 * 1.048576 / took))
PY
}
