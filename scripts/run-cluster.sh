#!/usr/bin/env bash
# `make run`: a local three-node cluster in the foreground. Ports 7001-7003
# on 127.0.0.1, data and admin sockets under ./var/nN, fault injection on,
# and a long forwarding delay so a held link stays held while you watch
# (`make demo`). Ctrl-C stops all three.
set -uo pipefail

build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
kvd=$root/$build/daemon/kvd
var=$root/var
cluster=1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
forward_after_ms=${KVD_FORWARD_AFTER_MS:-60000}

pids=()
stop() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    kill -TERM "${pids[@]}" 2>/dev/null
    wait "${pids[@]}" 2>/dev/null
  fi
  echo "make run: cluster stopped"
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

for i in 1 2 3; do
  mkdir -p "$var/n$i"
  # Each line is also kept in var/nN/kvd.log (make demo reads it).
  "$kvd" --id "$i" --cluster "$cluster" --data-dir "$var/n$i" \
    --admin-socket "$var/n$i/kvd.sock" --fault-injection \
    --forward-after-ms "$forward_after_ms" 2> >(tee "$var/n$i/kvd.log" >&2) &
  pids+=($!)
done

sleep 0.5
for pid in "${pids[@]}"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "make run: a node failed to start (is a port of 7001-7003 in use?)" >&2
    exit 1
  fi
done

kvctl=$build/ctl/kvctl
cat <<USAGE

causalkv: 3 nodes running on 127.0.0.1:7001, :7002, :7003 (Ctrl-C stops them)

  $kvctl -n 127.0.0.1:7001 put x 1
  $kvctl -n 127.0.0.1:7002 get x
  $kvctl -n 127.0.0.1:7003 status
  $kvctl --admin var/n1/kvd.sock link hold 3      # fault injection
  $kvctl --admin var/n3/kvd.sock buffer
  $kvctl -n 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 wait-converged
  make demo                                          # the seed scenario, step by step

USAGE

# Stop everything as soon as any node exits.
wait -n "${pids[@]}"
echo "make run: a node exited; stopping the others" >&2
exit 1
