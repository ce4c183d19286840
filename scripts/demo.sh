#!/usr/bin/env bash
# `make demo`: the seed scenario of DESIGN §1 against the cluster that
# `make run` started, step by step:
#   write x=1 at node 1 while replication 1->3 is held; read x at node 2;
#   write y=2 at node 2; node 3 receives y=2 first and buffers it; once x=1
#   arrives node 3 applies x=1 then y=2; all nodes end equal.
set -euo pipefail

build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
kvctl=$root/$build/ctl/kvctl
n1=127.0.0.1:7001 n2=127.0.0.1:7002 n3=127.0.0.1:7003
a1=$root/var/n1/kvd.sock a3=$root/var/n3/kvd.sock
work=$(mktemp -d)
ctx=$work/session.json
trap '"$kvctl" --admin "$a1" link release 3 >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
run() {
  printf '$ kvctl %s\n' "$*"
  "$kvctl" "$@"
}

if ! "$kvctl" -n "$n1,$n2,$n3" wait-converged --timeout 3000 >/dev/null 2>&1; then
  echo "make demo: no converged cluster on 127.0.0.1:7001-7003; start one with 'make run' in another terminal" >&2
  exit 1
fi

step "1. Hold replication from node 1 to node 3 (fault injection)"
run --admin "$a1" link hold 3

step "2. Write x=1 at node 1 (the session context goes in $ctx)"
run -n "$n1" --context "$ctx" put x 1

step "3. Read x at node 2: it sees 1"
run -n "$n2" --context "$ctx" get x

step "4. Write y=2 at node 2: it causally follows x=1"
run -n "$n2" --context "$ctx" put y 2
sleep 0.5

step "5. Node 3 got y=2 but not x=1, so y=2 waits in its causal buffer"
run --admin "$a3" buffer
run -n "$n3" get y || true
run -n "$n3" status

step "6. Release the link: x=1 reaches node 3, which applies x=1 and then y=2"
log=$root/var/n3/kvd.log
lines_before=$(wc -l <"$log" 2>/dev/null || echo 0)
run --admin "$a1" link release 3
run -n "$n1,$n2,$n3" wait-converged --timeout 5000
echo "node 3's log since the release:"
tail -n +"$((lines_before + 1))" "$log" | grep -E 'applied|buffered' | sed 's/^/    /' || true

step "7. Every node now holds x=1 and y=2 at the same clock"
for n in "$n1" "$n2" "$n3"; do
  printf '%s: x=%s y=%s\n' "$n" "$("$kvctl" -n "$n" get x)" "$("$kvctl" -n "$n" get y)"
done
run -n "$n1,$n2,$n3" wait-converged --timeout 1000 && echo "converged"
