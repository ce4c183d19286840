#!/usr/bin/env bash
# CTest "bench_lag_smoke": kvbench's replication-lag probes against a real
# three-node kvd cluster, writes at one node (compare.sh's case 5 "@1"):
# samples must complete on the two other nodes, with no errors, and the
# pace timer's lateness must be reported. The nodes close a connection
# that sends nothing within --handshake-timeout-ms, so a probe connection
# that is never asked anything (as the one to the node written to once
# was) shows up as an error.
set -euo pipefail
kvbench=$1
kvd=$2
kvctl=$3
free_ports=$4
dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

mapfile -t ports < <("$free_ports" 3)
cluster="1=127.0.0.1:${ports[0]},2=127.0.0.1:${ports[1]},3=127.0.0.1:${ports[2]}"
for i in 1 2 3; do
  "$kvd" --id "$i" --cluster "$cluster" --data-dir "$dir/n$i" --admin-socket "$dir/n$i.sock" \
    --fsync no --handshake-timeout-ms 1000 --log-level warn 2>"$dir/n$i.log" &
  pids+=($!)
done
nodes="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
"$kvctl" -n "$nodes" wait-converged --timeout 10000 >/dev/null

out=$("$kvbench" --protocol kv --nodes "127.0.0.1:${ports[0]}" --lag-nodes "$nodes" \
  --connections 4 --pipeline 1 --rate 2000 --lag-sample 10 --keys 1000 \
  --duration 2 --warmup 0.1 --json --quiet) || true  # Exit 1 on errors: checked below.
errors=$(sed -n 's/.*"errors": \([0-9]*\), "throughput_rps".*/\1/p' <<<"$out")
samples=$(sed -n 's/.*"replication_lag": {[^}]*"samples": \([0-9]*\).*/\1/p' <<<"$out")
# The paced run also reports its pace timer's lateness, one tick a ms.
ticks=$(sed -n 's/.*"pace_late": {"ticks": \([0-9]*\).*/\1/p' <<<"$out")
echo "errors=$errors lag samples=$samples pace ticks=$ticks"
[ "$errors" = 0 ] || { echo "FAIL: errors '$errors'"; echo "$out" | head -c 600; exit 1; }
[ -n "$samples" ] && [ "$samples" -gt 100 ] || { echo "FAIL: lag samples '$samples'"; exit 1; }
[ -n "$ticks" ] && [ "$ticks" -gt 1000 ] || { echo "FAIL: pace ticks '$ticks'"; exit 1; }
echo "PASS"
