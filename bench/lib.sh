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
