#!/usr/bin/env bash
# compare.sh: kvd vs Redis vs the uv_ceiling reference on this machine, with
# one load generator (kvbench) for all of them. `make bench` runs it.
#
#   bench/compare.sh [--quick] [--build DIR] [--keys K] [--runs N]
#                    [--duration S] [--cases 1,2,3,4,5] [--out DIR]
#
# The cases of issue 6 (README.md says what each means):
#   1  one node, no fsync: PUT and GET, C=50, P=1 and P=16 (kvd, Redis, ceiling)
#   2  three kvd nodes replicating vs a Redis primary with two replicas: PUT
#      at one node, and (kvd only) spread over all three
#   3  durable writes: kvd --fsync always / everysec vs Redis appendfsync
#      always / everysec
#   4  memory: resident set per key after loading K keys of 100-byte values
#   5  replication lag at 50 % of the measured maximum PUT throughput
# Each figure is the median of --runs runs (default 3 x 5 s; --quick: 1 x 2 s
# and 100k keys), min and max kept in the JSON. Every server runs on a free
# loopback port in a temporary directory and is stopped on exit, whatever
# happens; servers of a case are stopped before the next case starts.
# Prints the tables, writes OUT/latest.json and (with gnuplot) PNGs beside it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
out_dir=$root/bench/results
runs=3
duration=5
warmup=1
keys=1000000
cases=1,2,3,4,5
quick=0
usage="usage: $0 [--quick] [--build DIR] [--keys K] [--runs N] [--duration S] [--cases LIST] [--out DIR]"
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1; runs=1; duration=2; warmup=0.5; keys=100000 ;;
    --build) build=$(cd "$2" && pwd); shift ;;
    --keys) keys=$2; shift ;;
    --runs) runs=$2; shift ;;
    --duration) duration=$2; shift ;;
    --cases) cases=$2; shift ;;
    --out) mkdir -p "$2"; out_dir=$(cd "$2" && pwd); shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
want() { [[ ",$cases," == *",$1,"* ]]; }

kvd=$build/daemon/kvd
kvbench=$build/bench/kvbench
uv_ceiling=$build/bench/uv_ceiling
for bin in "$kvd" "$kvbench" "$uv_ceiling"; do
  [ -x "$bin" ] || { echo "compare.sh: $bin missing; build kvd kvbench uv_ceiling first" >&2; exit 1; }
done
for tool in redis-server redis-cli redis-benchmark python3; do
  command -v "$tool" >/dev/null || { echo "compare.sh: $tool not found" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/kvbench.XXXXXX)
pids=()

log() { echo "compare.sh: $*" >&2; }
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
# Stops the servers started since the last call (one case's servers).
group=()
# The running servers' PIDs by kind (kvd, redis, ceiling), comma-separated:
# kvbench reports how busy each one's event loop was (--server-pids).
declare -A server_pids=()
add_server_pid() { server_pids[$1]+="${server_pids[$1]:+,}$2"; }
stop_group() {
  for pid in "${group[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${group[@]}"; do wait "$pid" 2>/dev/null || true; done
  group=()
  server_pids=()
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# start_kvd NAME FSYNC N: N kvd nodes in one cluster; sets ports=(...), last_pid.
start_kvd() {
  local name=$1 fsync=$2 n=$3 cluster="" i
  ports=()
  for i in $(seq "$n"); do
    ports+=("$(free_port)")
    cluster+="${cluster:+,}$i=127.0.0.1:${ports[i - 1]}"
  done
  for i in $(seq "$n"); do
    mkdir -p "$tmp/$name.$i"
    "$kvd" --id "$i" --cluster "$cluster" --data-dir "$tmp/$name.$i" \
      --admin-socket "$tmp/$name.$i.sock" --fsync "$fsync" --log-level warn \
      2>"$tmp/$name.$i.log" &
    last_pid=$!
    pids+=("$last_pid")
    group+=("$last_pid")
    add_server_pid kvd "$last_pid"
    wait_port "${ports[i - 1]}" "$last_pid" "kvd $name.$i"
  done
}
# start_redis NAME [redis-server options...]: sets port, last_pid.
start_redis() {
  local name=$1
  shift
  port=$(free_port)
  mkdir -p "$tmp/$name"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$tmp/$name" \
    --logfile "$tmp/$name.log" "$@" &
  last_pid=$!
  pids+=("$last_pid")
  group+=("$last_pid")
  add_server_pid redis "$last_pid"
  wait_port "$port" "$last_pid" "redis-server $name"
}
# start_redis_trio NAME: a primary and two replicas, no persistence, replicas
# in sync; sets ports=(primary replica replica).
start_redis_trio() {
  local name=$1 primary
  start_redis "$name.1" --save '' --appendonly no
  primary=$port
  ports=("$primary")
  for i in 2 3; do
    start_redis "$name.$i" --save '' --appendonly no --replicaof 127.0.0.1 "$primary"
    ports+=("$port")
  done
  for _ in $(seq 200); do
    [ "$(redis-cli -p "$primary" info replication | tr -d '\r' | grep -c 'state=online')" = 2 ] && return 0
    sleep 0.05
  done
  log "redis replicas of $name did not come online"
  exit 1
}
nodes_of() { local IFS=,; local -a a=("${@/#/127.0.0.1:}"); echo "${a[*]}"; }

results=$tmp/runs.jsonl
: >"$results"
common=(--connections 50 --value-size 100 --keys "$keys" --quiet --json)

# bench CASE LABEL SERVER PROTOCOL NODES [kvbench options...]: --runs runs,
# one JSON line each in $results.
bench() {
  local case=$1 label=$2 server=$3 protocol=$4 nodes=$5 run out
  shift 5
  for run in $(seq "$runs"); do
    out=$("$kvbench" --protocol "$protocol" --nodes "$nodes" "${common[@]}" \
      --duration "$duration" --warmup "$warmup" --seed "$run" \
      --server-pids "${server_pids[$server]:-}" "$@") || true
    [ -n "$out" ] || out='{"throughput_rps": 0, "errors": -1}'
    echo "{\"case\": \"$case\", \"label\": \"$label\", \"server\": \"$server\", \"run\": $run, \"result\": $out}" >>"$results"
    log "$(printf 'case %s %-16s %-8s run %s: %s req/s' "$case" "$label" "$server" "$run" \
      "$(python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])["throughput_rps"]))' "$out")")"
  done
}
# note CASE KEY VALUE: a measured figure that is not a kvbench run.
note() { echo "{\"case\": \"$1\", \"note\": \"$2\", \"value\": $3}" >>"$results"; }

rb=$tmp/redis-benchmark.csv
: >"$rb"

# probe_host WHEN: the page cache's write speed now (lib.sh), in the JSON.
probe_host() {
  local mb_s
  mb_s=$(page_cache_mb_s "$tmp")
  note host "page_cache_mb_s_$1" "$mb_s"
  log "page cache writes at $mb_s MB/s ($1)"
}

# ------------------------------------------------------ cases 1 and 4 ----
if want 1 || want 4; then
  probe_host before_case_1
  start_kvd one no 1
  kvd_port=${ports[0]} kvd_pid=$last_pid
  start_redis one --save '' --appendonly no
  redis_port=$port redis_pid=$last_pid
  "$uv_ceiling" --port 0 --port-file "$tmp/ceiling.port" 2>"$tmp/ceiling.log" &
  pids+=($!)
  group+=($!)
  add_server_pid ceiling $!
  for _ in $(seq 200); do [ -s "$tmp/ceiling.port" ] && break; sleep 0.05; done
  ceiling_port=$(cat "$tmp/ceiling.port")

  # Load every key once so GETs find values; case 4 measures the resident
  # set before and after this load.
  sleep 0.2
  note 4 kvd_rss_before_kb "$(rss_kb "$kvd_pid")"
  note 4 redis_rss_before_kb "$(rss_kb "$redis_pid")"
  for server in kvd redis; do
    log "preloading $keys keys into $server"
    if [ $server = kvd ]; then p=(--protocol kv --nodes "127.0.0.1:$kvd_port")
    else p=(--protocol resp --nodes "127.0.0.1:$redis_port"); fi
    "$kvbench" "${p[@]}" "${common[@]}" --pipeline 16 --preload --warmup 0 \
      --duration 0.2 >"$tmp/preload.$server.json"
    note 4 "${server}_preload_s" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["preload_s"])' "$tmp/preload.$server.json")"
  done
  sleep 0.5
  note 4 kvd_rss_after_kb "$(rss_kb "$kvd_pid")"
  note 4 redis_rss_after_kb "$(rss_kb "$redis_pid")"
  note 4 keys "$keys"

  if want 1; then
    for op in put get; do
      ratio=0
      [ "$op" = get ] && ratio=1
      for pipeline in 1 16; do
        label="${op^^} P=$pipeline"
        bench 1 "$label" kvd kv "127.0.0.1:$kvd_port" --pipeline "$pipeline" --read-ratio "$ratio"
        bench 1 "$label" redis resp "127.0.0.1:$redis_port" --pipeline "$pipeline" --read-ratio "$ratio"
        bench 1 "$label" ceiling ceiling "127.0.0.1:$ceiling_port" --pipeline "$pipeline" --read-ratio "$ratio"
      done
    done
    # redis-benchmark's own figures, for reference (its client, its accounting).
    rb_requests=$((quick ? 100000 : 500000))
    for pipeline in 1 16; do
      redis-benchmark -h 127.0.0.1 -p "$redis_port" -c 50 -P "$pipeline" -d 100 -r "$keys" \
        -n "$rb_requests" -t set,get --csv 2>/dev/null | sed "s/^/$pipeline,/" >>"$rb"
    done
  fi
  stop_group
fi

# ------------------------------------------------------ cases 2 and 5 ----
if want 2 || want 5; then
  probe_host before_case_2
  start_kvd three no 3
  kvd3=("${ports[@]}")
  start_redis_trio trio
  redis3=("${ports[@]}")
  if want 2; then
    for pipeline in 1 16; do
      bench 2 "PUT@1 P=$pipeline" kvd kv "$(nodes_of "${kvd3[0]}")" --pipeline "$pipeline"
      bench 2 "PUT@1 P=$pipeline" redis resp "$(nodes_of "${redis3[0]}")" --pipeline "$pipeline"
      bench 2 "PUT@all P=$pipeline" kvd kv "$(nodes_of "${kvd3[@]}")" --pipeline "$pipeline"
    done
  fi
  if want 5; then
    # Maximum PUT throughput (closed loop, P=16), then half of it, paced,
    # with 1 in 100 PUTs probed on every other node. "@1": writes at one
    # node (kvd node 1, the Redis primary), watched on the two others: the
    # same topology for both. "@all" (kvd only): writes spread over the
    # three nodes, each sample watched on the two nodes it was not written
    # to; every node is then a writer and a replica at once.
    for variant in kvd@1 redis@1 kvd@all; do
      server=${variant%@*} at=${variant#*@}
      if [ $server = kvd ]; then
        lag_nodes=$(nodes_of "${kvd3[@]}")
        if [ "$at" = 1 ]; then args=(kv "$(nodes_of "${kvd3[0]}")"); else args=(kv "$lag_nodes"); fi
      else
        args=(resp "$(nodes_of "${redis3[0]}")")
        lag_nodes=$(nodes_of "${redis3[@]}")
      fi
      bench 5 "max PUT@$at P=16" "$server" "${args[@]}" --pipeline 16
      # Half the median of those runs, the maximum the table shows (not the
      # last run's, which once made it 157k/s against a 264k median).
      rate=$(python3 -c '
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
rps = [r["result"]["throughput_rps"] for r in runs
       if r.get("case") == "5" and r.get("label") == sys.argv[3]
       and r.get("server") == sys.argv[2] and r["result"]["throughput_rps"] > 0]
if not rps:  # A rate of 0 would mean no limit at all: stop instead.
    sys.exit("compare.sh: no " + sys.argv[3] + " run of " + sys.argv[2] + " worked")
print(int(statistics.median(rps) / 2))' "$results" "$server" "max PUT@$at P=16")
      note 5 "${server}_at_${at}_rate" "$rate"
      bench 5 "lag@$at @50%" "$server" "${args[@]}" --pipeline 16 --rate "$rate" \
        --lag-sample 100 --lag-nodes "$lag_nodes"
      bench 5 "lag@$at P=1 unpaced" "$server" "${args[@]}" --pipeline 1 \
        --lag-sample 100 --lag-nodes "$lag_nodes"
    done
  fi
  stop_group
fi

# ------------------------------------------------------------- case 3 ----
if want 3; then
  probe_host before_case_3
  for mode in always everysec; do
    start_kvd "dur-$mode" "$mode" 1
    bench 3 "PUT $mode P=1" kvd kv "127.0.0.1:${ports[0]}" --pipeline 1
    bench 3 "PUT $mode P=16" kvd kv "127.0.0.1:${ports[0]}" --pipeline 16
    stop_group
    start_redis "dur-$mode" --save '' --appendonly yes --appendfsync "$mode"
    bench 3 "PUT $mode P=1" redis resp "127.0.0.1:$port" --pipeline 1
    bench 3 "PUT $mode P=16" redis resp "127.0.0.1:$port" --pipeline 16
    stop_group
  done
fi

probe_host at_end
mkdir -p "$out_dir"
python3 "$root/bench/report.py" "$results" "$rb" "$out_dir" "$runs" "$duration" "$keys"
