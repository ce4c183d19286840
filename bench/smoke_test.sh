#!/usr/bin/env bash
# CTest "bench_smoke": kvbench against uv_ceiling for one second, --json;
# fails unless throughput is non-zero, errors are zero, and both loops
# (kvbench's, and uv_ceiling's through --server-pids) are reported busy.
set -euo pipefail
kvbench=$1
uv_ceiling=$2
dir=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

"$uv_ceiling" --port 0 --port-file "$dir/port" 2>/dev/null &
pid=$!
for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.02; done
port=$(cat "$dir/port")

out=$("$kvbench" --protocol ceiling --nodes "127.0.0.1:$port" --connections 4 --pipeline 8 \
  --read-ratio 0.5 --duration 1 --warmup 0.2 --json --quiet --server-pids "$pid")
echo "$out"
rps=$(sed -n 's/.*"throughput_rps": \([0-9.]*\).*/\1/p' <<<"$out")
errors=$(sed -n 's/.*"errors": \([0-9]*\).*/\1/p' <<<"$out")
if [ -z "$rps" ] || [ "${rps%.*}" -le 0 ]; then echo "FAIL: throughput '$rps'"; exit 1; fi
[ "$errors" = 0 ] || { echo "FAIL: errors '$errors'"; exit 1; }
# Shares of one core: above 0 (each loop ran), at most 1 (+ a tick of /proc
# rounding; each is one thread).
busy=$(sed -n 's/.*"loop_busy": {"kvbench": \([0-9.-]*\), "servers": \[\([0-9.-]*\)\]}.*/\1 \2/p' <<<"$out")
read -r client server <<<"$busy"
for share in "$client" "$server"; do
  awk -v s="$share" 'BEGIN { exit !(s > 0 && s <= 1.05) }' ||
    { echo "FAIL: loop busy '$busy'"; exit 1; }
done
echo "PASS: $rps req/s, 0 errors, loops busy: kvbench $client, uv_ceiling $server"
