#!/usr/bin/env bash
# compare.sh: kvd vs Redis vs the uv_ceiling reference on this machine, with
# one load generator (kvbench) for all three. `make bench` runs it.
#
#   bench/compare.sh [--quick] [--build DIR] [--keys K] [--runs N] [--duration S]
#
# Case 1 of issue 6: one node, no fsync; PUT and GET; 50 connections;
# pipeline 1 and 16; 100-byte values. Each figure is the median of --runs
# runs (default 3 x 5 s; --quick: 1 x 2 s), min and max kept in the JSON.
# Every server runs on a free loopback port in a temporary directory and is
# stopped on exit, whatever happens. Prints one table and writes
# bench/results/latest.json.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
runs=3
duration=5
warmup=1
keys=1000000
quick=0
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1; runs=1; duration=2; warmup=0.5; keys=100000 ;;
    --build) build=$(cd "$2" && pwd); shift ;;
    --keys) keys=$2; shift ;;
    --runs) runs=$2; shift ;;
    --duration) duration=$2; shift ;;
    *) echo "usage: $0 [--quick] [--build DIR] [--keys K] [--runs N] [--duration S]" >&2; exit 2 ;;
  esac
  shift
done

kvd=$build/daemon/kvd
kvbench=$build/bench/kvbench
uv_ceiling=$build/bench/uv_ceiling
for bin in "$kvd" "$kvbench" "$uv_ceiling"; do
  [ -x "$bin" ] || { echo "compare.sh: $bin missing; build kvd kvbench uv_ceiling first" >&2; exit 1; }
done
for tool in redis-server redis-benchmark python3; do
  command -v "$tool" >/dev/null || { echo "compare.sh: $tool not found" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/kvbench.XXXXXX)
pids=()
stop_all() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {  # wait_port PORT PID NAME
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "compare.sh: $3 exited at start-up" >&2; exit 1; }
    sleep 0.05
  done
  echo "compare.sh: $3 not listening on port $1" >&2
  exit 1
}

kvd_port=$(free_port)
mkdir -p "$tmp/kvd"
"$kvd" --id 1 --cluster "1=127.0.0.1:$kvd_port" --data-dir "$tmp/kvd" \
  --admin-socket "$tmp/kvd.sock" --fsync no --log-level warn 2>"$tmp/kvd.log" &
pids+=($!)
wait_port "$kvd_port" $! kvd

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$tmp" --logfile "$tmp/redis.log" &
pids+=($!)
wait_port "$redis_port" $! redis-server

"$uv_ceiling" --port 0 --port-file "$tmp/ceiling.port" 2>"$tmp/ceiling.log" &
pids+=($!)
for _ in $(seq 200); do [ -s "$tmp/ceiling.port" ] && break; sleep 0.05; done
ceiling_port=$(cat "$tmp/ceiling.port")

declare -A target=(
  [kvd]="--protocol kv --nodes 127.0.0.1:$kvd_port"
  [redis]="--protocol resp --nodes 127.0.0.1:$redis_port"
  [ceiling]="--protocol ceiling --nodes 127.0.0.1:$ceiling_port"
)
common=(--connections 50 --value-size 100 --keys "$keys" --quiet --json)

# Load every key once so GETs find values (and memory is comparable).
for server in kvd redis; do
  echo "compare.sh: preloading $keys keys into $server" >&2
  # shellcheck disable=SC2086
  "$kvbench" ${target[$server]} "${common[@]}" --pipeline 16 --preload --warmup 0 \
    --duration 0.2 >"$tmp/preload.$server.json"
  python3 -c 'import json,sys; print("compare.sh:   %.1f s" % json.load(open(sys.argv[1]))["preload_s"])' \
    "$tmp/preload.$server.json" >&2
done

results=$tmp/runs.jsonl
: >"$results"
for op in put get; do
  ratio=0
  [ "$op" = get ] && ratio=1
  for pipeline in 1 16; do
    for run in $(seq "$runs"); do
      for server in kvd redis ceiling; do
        # shellcheck disable=SC2086
        out=$("$kvbench" ${target[$server]} "${common[@]}" --pipeline "$pipeline" \
          --read-ratio "$ratio" --duration "$duration" --warmup "$warmup" --seed "$run") || true
        [ -n "$out" ] || out='{"throughput_rps": 0, "errors": -1}'
        echo "{\"case\": \"1\", \"op\": \"$op\", \"pipeline\": $pipeline, \"server\": \"$server\", \"run\": $run, \"result\": $out}" >>"$results"
        printf 'compare.sh: %-4s P=%-2s %-7s run %s: %s req/s\n' "$op" "$pipeline" "$server" "$run" \
          "$(python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])["throughput_rps"]))' "$out")" >&2
      done
    done
  done
done

# redis-benchmark's own figures, for reference (its client, its accounting).
rb=$tmp/redis-benchmark.csv
: >"$rb"
rb_requests=$((quick ? 100000 : 500000))
for pipeline in 1 16; do
  redis-benchmark -h 127.0.0.1 -p "$redis_port" -c 50 -P "$pipeline" -d 100 -r "$keys" \
    -n "$rb_requests" -t set,get --csv 2>/dev/null | sed "s/^/$pipeline,/" >>"$rb"
done

mkdir -p "$root/bench/results"
python3 - "$results" "$rb" "$root/bench/results/latest.json" "$runs" "$duration" "$keys" <<'PY'
import csv, json, os, platform, statistics, sys, time

runs_path, rb_path, out_path, runs, duration, keys = sys.argv[1:7]
rows = [json.loads(line) for line in open(runs_path)]
groups = {}
for r in rows:
    groups.setdefault((r["op"], r["pipeline"], r["server"]), []).append(r["result"])

def summary(results):
    rps = [x.get("throughput_rps", 0) for x in results]
    p99 = [x.get("latency_us", {}).get("p99", 0) for x in results]
    return {"median_rps": statistics.median(rps), "min_rps": min(rps), "max_rps": max(rps),
            "median_p99_us": statistics.median(p99),
            "errors": sum(x.get("errors", 0) for x in results), "runs": results}

rb = {}
for line in csv.reader(open(rb_path)):
    if len(line) >= 3 and line[1] in ("SET", "GET"):
        rb[(("put" if line[1] == "SET" else "get"), int(line[0]))] = float(line[2])

cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
cases = []
for op in ("put", "get"):
    for p in (1, 16):
        c = {"case": "1", "op": op, "connections": 50, "pipeline": p, "value_size": 100}
        for s in ("kvd", "redis", "ceiling"):
            c[s] = summary(groups.get((op, p, s), [{}]))
        c["redis_benchmark_rps"] = rb.get((op, p))
        k, r, ce = c["kvd"]["median_rps"], c["redis"]["median_rps"], c["ceiling"]["median_rps"]
        c["kvd_over_redis"] = k / r if r else None
        c["kvd_over_ceiling"] = k / ce if ce else None
        cases.append(c)
doc = {"generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": {
    "nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release()},
    "settings": {"runs": int(runs), "duration_s": float(duration), "keys": int(keys)},
    "cases": cases}
with open(out_path, "w") as f:
    json.dump(doc, f, indent=1)

print(f"causalkv bench, case 1 (one node, no fsync), {keys} keys, C=50, 100-byte values, "
      f"median of {runs} x {duration} s; {os.cpu_count()} cores, {cpu}")
hdr = ("op", "P", "kvd req/s", "redis req/s", "ceiling req/s", "kvd/redis", "kvd/ceil",
       "p99 kvd us", "p99 redis us", "redis-benchmark")
print("| " + " | ".join(hdr) + " |")
print("|" + "---|" * len(hdr))
fmt = lambda s: f"{s['median_rps']:,.0f} ({s['min_rps']:,.0f}-{s['max_rps']:,.0f})"
for c in cases:
    ratio = lambda v: f"{v:.2f}x" if v is not None else "-"
    rbv = c["redis_benchmark_rps"]
    errs = sum(c[s]["errors"] for s in ("kvd", "redis", "ceiling"))
    print("| " + " | ".join([c["op"].upper(), str(c["pipeline"]), fmt(c["kvd"]), fmt(c["redis"]),
          fmt(c["ceiling"]), ratio(c["kvd_over_redis"]), ratio(c["kvd_over_ceiling"]),
          f"{c['kvd']['median_p99_us']:.0f}", f"{c['redis']['median_p99_us']:.0f}",
          f"{rbv:,.0f}" if rbv else "-"]) + " |" + (f"  ERRORS: {errs}" if errs else ""))
print(f"wrote {out_path}")
PY
