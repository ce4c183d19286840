#!/usr/bin/env bash
# group_commit.sh: does --fsync always commit in groups? One kvd node with
# --fsync always; for a growing number of connections, kvbench's put
# throughput next to the fdatasync calls per second the node made, counted
# by perf on the syscalls:sys_enter_fdatasync tracepoint (every thread of
# the node: libuv runs the syncs on its thread pool). Group commit shows as
# throughput rising with the load while fdatasync/s stays flat or falls.
# Needs perf (Debian linux-perf) and tracefs access (root, or
# kernel.perf_event_paranoid <= -1).
set -euo pipefail
cd "$(dirname "$0")/.."
build=$PWD/build
duration=3
usage="usage: $0 [--build DIR] [--duration S]"
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$(cd "$2" && pwd); shift ;;
    --duration) duration=$2; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
kvd=$build/daemon/kvd
kvbench=$build/bench/kvbench
for bin in "$kvd" "$kvbench"; do
  [ -x "$bin" ] || { echo "group_commit.sh: $bin missing; build first" >&2; exit 1; }
done
command -v perf >/dev/null || { echo "group_commit.sh: needs perf (apt-get install linux-perf)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/kvgc.XXXXXX)
pids=()
log() { echo "group_commit.sh: $*" >&2; }
# shellcheck source=bench/lib.sh
source bench/lib.sh

port=$(free_port)
mkdir -p "$tmp/data"
"$kvd" --id 1 --cluster "1=127.0.0.1:$port" --data-dir "$tmp/data" \
  --admin-socket "$tmp/admin.sock" --fsync always --log-level warn 2>"$tmp/kvd.log" &
kvd_pid=$!
pids+=("$kvd_pid")
wait_port "$port" "$kvd_pid" kvd

echo "| connections | pipeline | puts/s | fdatasync/s | puts per fdatasync |"
echo "|---|---|---|---|---|"
for load in "1 1" "4 1" "16 1" "50 1" "50 16"; do
  read -r connections pipeline <<<"$load"
  perf stat -x, -e syscalls:sys_enter_fdatasync -p "$kvd_pid" -o "$tmp/perf" -- sleep "$duration" &
  perf_pid=$!
  result=$("$kvbench" --nodes "127.0.0.1:$port" --connections "$connections" \
    --pipeline "$pipeline" --keys 100000 --value-size 100 --duration "$duration" --warmup 0 \
    --quiet --json)
  wait "$perf_pid"
  syncs=$(grep fdatasync "$tmp/perf" | cut -d, -f1)
  python3 - "$result" "$syncs" "$duration" "$connections" "$pipeline" <<'PY'
import json, sys
result, syncs, duration, c, p = sys.argv[1:]
rps = json.loads(result)["throughput_rps"]
per_s = int(syncs) / float(duration)
print(f"| {c} | {p} | {rps:,.0f} | {per_s:,.0f} | {rps / per_s:.1f} |")
PY
done
