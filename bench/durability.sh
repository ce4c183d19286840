#!/usr/bin/env bash
# durability.sh: the durability figures of kvd on this machine.
#   1  put throughput of a 3-node cluster, 50 connections x 16 pipelined
#      puts of 100 bytes at node 1, for --fsync always, everysec and no
#      (the same kvbench command for each);
#   2  recovery time of one node from 1,000,000 records: from the
#      write-ahead log alone, then from a snapshot of the same state;
#   3  catch-up time of a node that was down while 100,000 writes happened:
#      from its restart until `kvctl wait-converged` succeeds.
# Prints a table and writes bench/results/durability.json (or --out DIR).
# `make bench-durability` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$PWD/build
out_dir=$PWD/bench/results
records=1000000
catchup=100000
duration=5
usage="usage: $0 [--build DIR] [--records N] [--catchup N] [--duration S] [--out DIR]"
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$(cd "$2" && pwd); shift ;;
    --records) records=$2; shift ;;
    --catchup) catchup=$2; shift ;;
    --duration) duration=$2; shift ;;
    --out) mkdir -p "$2"; out_dir=$(cd "$2" && pwd); shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
kvd=$build/daemon/kvd
kvctl=$build/ctl/kvctl
kvbench=$build/bench/kvbench
for bin in "$kvd" "$kvctl" "$kvbench"; do
  [ -x "$bin" ] || { echo "durability.sh: $bin missing; build first" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/kvdur.XXXXXX)
pids=()
log() { echo "durability.sh: $*" >&2; }
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
now_ms() { date +%s%3N; }

# cluster N FSYNC [kvd flags...]: picks ports, sets cluster= and ports=().
cluster() {
  local n=$1 i
  ports=()
  cluster=""
  for i in $(seq "$n"); do
    ports+=("$(free_port)")
    cluster+="${cluster:+,}$i=127.0.0.1:${ports[i - 1]}"
  done
}
# node NAME ID FSYNC [flags...]: starts one kvd of $cluster; node_pid[ID].
declare -A node_pid
node() {
  local name=$1 id=$2 fsync=$3
  shift 3
  mkdir -p "$tmp/$name.$id"
  "$kvd" --id "$id" --cluster "$cluster" --data-dir "$tmp/$name.$id" --fsync "$fsync" \
    --admin-socket "$tmp/$name.$id.sock" "$@" 2>>"$tmp/$name.$id.log" &
  node_pid[$name.$id]=$!
  pids+=("$!")
  wait_port "${ports[id - 1]}" "$!" "kvd $name.$id"
}
stop_node() {  # stop_node NAME ID
  kill -TERM "${node_pid[$1.$2]}"
  wait "${node_pid[$1.$2]}" || true
}
addresses() { local IFS=,; local -a a=("${ports[@]/#/127.0.0.1:}"); echo "${a[*]}"; }
converge() { "$kvctl" -n "$(addresses)" --timeout 120000 wait-converged >/dev/null; }
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# --- 1. put throughput per fsync policy -------------------------------------------
declare -A put_ops put_p99
for fsync in always everysec no; do
  cluster 3
  for id in 1 2 3; do node "put-$fsync" "$id" "$fsync" --log-level warn; done
  converge
  result=$("$kvbench" -n "127.0.0.1:${ports[0]}" --connections 50 --pipeline 16 \
    --value-size 100 --keys 100000 --read-ratio 0 --warmup 1 --duration "$duration" --quiet --json)
  put_ops[$fsync]=$(echo "$result" | json_field throughput_rps)
  put_p99[$fsync]=$(echo "$result" | python3 -c "import json,sys; print(json.load(sys.stdin)['latency_us']['p99'])")
  log "fsync $fsync: ${put_ops[$fsync]} puts/s, p99 ${put_p99[$fsync]} us"
  for id in 1 2 3; do stop_node "put-$fsync" "$id"; done
done

# --- 2. recovery of N records ----------------------------------------------------
cluster 1
node recover 1 no --snapshot-wal-bytes 0
"$kvbench" -n "127.0.0.1:${ports[0]}" --connections 50 --pipeline 16 --value-size 100 \
  --keys "$records" --preload --read-ratio 1 --duration 0.1 --quiet --json >/dev/null
stop_node recover 1
wal_bytes=$(du -sb "$tmp/recover.1" | cut -f1)
recovery_line() { grep 'recovered .* records in' "$tmp/recover.1.log" | tail -1; }
node recover 1 no --snapshot-wal-bytes 0
wal_ms=$(recovery_line | sed -E 's/.* in ([0-9]+) ms.*/\1/')
log "recovery from the log ($wal_bytes bytes): $wal_ms ms ($(recovery_line))"
"$kvctl" --admin "$tmp/recover.1.sock" --timeout 120000 snapshot >/dev/null
freeze_ms=$(grep 'keys frozen in' "$tmp/recover.1.log" | tail -1 | sed -E 's/.* frozen in ([0-9]+) ms.*/\1/')
log "snapshot of $records keys: the loop's share (rotate + freeze) $freeze_ms ms"
stop_node recover 1
snapshot_bytes=$(du -sb "$tmp/recover.1" | cut -f1)
node recover 1 no --snapshot-wal-bytes 0
snapshot_ms=$(recovery_line | sed -E 's/.* in ([0-9]+) ms.*/\1/')
log "recovery from a snapshot ($snapshot_bytes bytes): $snapshot_ms ms ($(recovery_line))"
stop_node recover 1

# --- 3. catch-up after missing N writes --------------------------------------------
cluster 3
for id in 1 2 3; do node catchup "$id" always --log-level warn; done
converge
stop_node catchup 3
"$kvbench" -n "127.0.0.1:${ports[0]}" --connections 50 --pipeline 16 --value-size 100 \
  --keys "$catchup" --preload --read-ratio 1 --duration 0.1 --quiet --json >/dev/null
started=$(now_ms)
node catchup 3 always --log-level warn
converge
catchup_ms=$(($(now_ms) - started))
log "catch-up of $catchup writes: $catchup_ms ms"
for id in 1 2; do stop_node catchup "$id"; done
stop_node catchup 3

mkdir -p "$out_dir"
cat >"$out_dir/durability.json" <<JSON
{"machine": "$(nproc) cores, $(uname -sr)",
 "put_ops_per_sec": {"always": ${put_ops[always]}, "everysec": ${put_ops[everysec]}, "no": ${put_ops[no]}},
 "put_p99_us": {"always": ${put_p99[always]}, "everysec": ${put_p99[everysec]}, "no": ${put_p99[no]}},
 "recovery": {"records": $records, "from_log_ms": $wal_ms, "log_bytes": $wal_bytes,
              "snapshot_loop_stall_ms": $freeze_ms,
              "from_snapshot_ms": $snapshot_ms, "snapshot_bytes": $snapshot_bytes},
 "catchup": {"writes": $catchup, "ms": $catchup_ms}}
JSON
printf '\n%-44s %s\n' "what" "figure"
printf '%-44s %s puts/s (p99 %s us)\n' "3 nodes, C=50 P=16, --fsync always" "${put_ops[always]}" "${put_p99[always]}"
printf '%-44s %s puts/s (p99 %s us)\n' "3 nodes, C=50 P=16, --fsync everysec" "${put_ops[everysec]}" "${put_p99[everysec]}"
printf '%-44s %s puts/s (p99 %s us)\n' "3 nodes, C=50 P=16, --fsync no" "${put_ops[no]}" "${put_p99[no]}"
printf '%-44s %s ms\n' "recovery of $records records from the log" "$wal_ms"
printf '%-44s %s ms\n' "recovery of the same state from a snapshot" "$snapshot_ms"
printf '%-44s %s ms\n' "that snapshot's stall of the loop (freeze)" "$freeze_ms"
printf '%-44s %s ms\n' "catch-up after missing $catchup writes" "$catchup_ms"
echo "wrote $out_dir/durability.json"
