#!/usr/bin/env bash
# systemd_ns_test.sh BUILD_DIR
#
# The units under a real systemd 252, booted as PID 1 of fresh namespaces
# (this machine's PID 1 is not systemd). As root only; exits 77 (skipped)
# where unshare is not permitted or systemd is not installed.
#
# Inside: / is private; tmpfs over /run, /var/lib, /var/log and /usr/local
# (the install prefix, filled from a DESTDIR install); a copy of /etc with
# /etc/kvd holding the installed examples; SYSTEMD_UNIT_PATH names only the
# installed kvd@.service and kvd.target, empty stub units, and a test
# drop-in (service output to /var/log/kvd-N.log, as there is no journald;
# WatchdogSec=2s so the watchdog fires within the test). The examples keep
# their ports 7001-7003: the namespace has its own loopback.
#
# Checks: kvd.target starts all three instances, active (running) as
# Type=notify with their STATUS= text, each as its own dynamic user; a write
# at each node converges; `systemctl reload kvd@1` re-reads its config;
# kill -SEGV of kvd@2 -> systemd restarts it and it catches up with a write
# made meanwhile; kill -STOP of kvd@3 -> the watchdog aborts it and systemd
# restarts it; `systemctl stop kvd.target` stops all three cleanly.
# Teardown kills that systemd and removes the cgroups it created.
set -euo pipefail

build=$(cd "$1" && pwd)

skip() {
  echo "SKIP: $*"
  exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (unshare of pid/mount/net namespaces)"
[ -x /lib/systemd/systemd ] || skip "systemd is not installed (/lib/systemd/systemd)"
command -v unshare > /dev/null && command -v nsenter > /dev/null || skip "no unshare/nsenter (util-linux)"
command -v ip > /dev/null || skip "no ip (iproute2), needed to bring up the namespace's loopback"
unshare --pid --fork --mount --net --uts --ipc --mount-proc true 2> /dev/null ||
  skip "unshare --pid --fork --mount --net --uts --ipc --mount-proc is not permitted here"

tmp=$(mktemp -d /tmp/kvd-systemd-XXXXXX)
manifest=$build/install_manifest.txt
unshare_pid=
sd_pid=
cgroups_before=$(find /sys/fs/cgroup -maxdepth 4 -type d \( -name system.slice -o -name init.scope \) 2> /dev/null | sort)

log() { echo "[$(date +%T.%3N)] $*"; }

in_ns() { nsenter -t "$sd_pid" -a "$@"; }
sctl() { in_ns systemctl --no-pager "$@"; }
prop() { sctl show -P "$2" "$1"; }  # unit, property

fail() {
  echo "FAIL: $*"
  if [ -n "$sd_pid" ]; then
    sctl status 'kvd@*' 2>&1 | head -60 || true
    for i in 1 2 3; do
      echo "--- kvd@$i output (last 15 lines)"
      in_ns tail -n 15 "/var/log/kvd-$i.log" 2>&1 || true
    done
  fi
  echo "--- systemd and unshare (last 30 lines each)"
  tail -n 30 "$tmp/systemd.log" "$tmp/unshare.log" 2> /dev/null || true
  exit 1
}

cleanup() {
  if [ -n "$sd_pid" ]; then kill -KILL "$sd_pid" 2> /dev/null || true; fi
  if [ -n "$unshare_pid" ]; then wait "$unshare_pid" 2> /dev/null || true; fi
  # The cgroups that systemd made for itself and its units (deepest first;
  # rmdir refuses any that still holds a process).
  for dir in $(find /sys/fs/cgroup -maxdepth 4 -type d \( -name system.slice -o -name init.scope \) 2> /dev/null); do
    grep -qxF "$dir" <<<"$cgroups_before" && continue
    find "$dir" -depth -type d -exec rmdir {} \; 2> /dev/null || true
  done
  if [ -e "$tmp/manifest.saved" ]; then cp -p "$tmp/manifest.saved" "$manifest"; else rm -f "$manifest"; fi
  if [ "${KVT_KEEP:-}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
if [ -e "$manifest" ]; then cp -p "$manifest" "$tmp/manifest.saved"; fi

# --- the installed tree, units and configuration --------------------------------------

DESTDIR=$tmp/dest cmake --install "$build" --prefix /usr/local > "$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "cmake --install failed"; }
if [ -e "$tmp/manifest.saved" ]; then cp -p "$tmp/manifest.saved" "$manifest"; else rm -f "$manifest"; fi
prefix=$tmp/dest/usr/local
kvctl=$prefix/bin/kvctl

units=$tmp/units
mkdir -p "$units/kvd@.service.d"
cp "$prefix/lib/systemd/system/kvd@.service" "$prefix/lib/systemd/system/kvd.target" "$units/"
for stub in sysinit.target basic.target shutdown.target network-online.target \
            multi-user.target; do
  printf '[Unit]\nDescription=stub %s\n' "$stub" > "$units/$stub"
done
printf '[Unit]\nDescription=stub default.target\nWants=multi-user.target\n' > "$units/default.target"
printf '[Unit]\nDescription=stub system.slice\n' > "$units/system.slice"
cat > "$units/kvd@.service.d/test.conf" <<'EOF'
[Service]
StandardOutput=append:/var/log/kvd-%i.log
StandardError=append:/var/log/kvd-%i.log
WatchdogSec=2s
EOF

cp -a /etc "$tmp/etc"
mkdir -p "$tmp/etc/kvd"
cp "$prefix/share/doc/causalkv/examples/"{cluster.env,1.conf,2.conf,3.conf} "$tmp/etc/kvd/"

cat > "$tmp/boot.sh" <<EOF
set -e
mount --make-rprivate /
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/lib
mount -t tmpfs tmpfs /var/log
mount -t tmpfs tmpfs /usr/local
cp -a "$prefix/." /usr/local/
mount --bind "$tmp/etc" /etc
ip link set lo up
export SYSTEMD_UNIT_PATH="$units"
exec /lib/systemd/systemd --system --log-target=console --log-level=info --show-status=no \
  < /dev/null > "$tmp/systemd.log" 2>&1
EOF

# --- boot -------------------------------------------------------------------------------

log "booting systemd in new namespaces"
unshare --pid --fork --mount --net --uts --ipc --mount-proc bash "$tmp/boot.sh" 2> "$tmp/unshare.log" &
unshare_pid=$!
for _ in $(seq 100); do
  sd_pid=$(cat "/proc/$unshare_pid/task/$unshare_pid/children" 2> /dev/null | awk '{print $1}')
  [ -n "$sd_pid" ] && [ "$(cat "/proc/$sd_pid/comm" 2> /dev/null)" = systemd ] && break
  sd_pid=
  sleep 0.05
done
[ -n "$sd_pid" ] || fail "systemd did not start"
for _ in $(seq 100); do
  state=$(sctl is-system-running 2> /dev/null || true)
  case $state in running | degraded) break ;; esac
  sleep 0.1
done
case $state in running | degraded) ;; *) fail "systemd is '$state', not running" ;; esac
log "systemd is $state (host pid $sd_pid)"

# --- start the target ---------------------------------------------------------------------

sctl start kvd.target || fail "systemctl start kvd.target"
for i in 1 2 3; do
  [ "$(prop "kvd@$i" Type)" = notify ] || fail "kvd@$i is not Type=notify"
  [ "$(prop "kvd@$i" ActiveState)/$(prop "kvd@$i" SubState)" = active/running ] ||
    fail "kvd@$i is $(prop "kvd@$i" ActiveState)/$(prop "kvd@$i" SubState)"
done
# STATUS= arrives within 250 ms of start and changes as the peers connect.
for _ in $(seq 50); do
  all=1
  for i in 1 2 3; do
    case $(prop "kvd@$i" StatusText) in *"peers 2/2 connected"*) ;; *) all=0 ;; esac
  done
  [ $all = 1 ] && break
  sleep 0.1
done
for i in 1 2 3; do
  status=$(prop "kvd@$i" StatusText)
  log "kvd@$i: $(prop "kvd@$i" ActiveState), user $(prop "kvd@$i" User), STATUS=$status"
  case $status in "clock [0,0,0], peers 2/2 connected"*) ;; *) fail "kvd@$i STATUS: '$status'" ;; esac
  uid=$(in_ns awk '/^Uid:/ { print $2 }' "/proc/$(prop "kvd@$i" MainPID)/status")
  [ -n "$uid" ] && [ "$uid" -ge 61184 ] && [ "$uid" -le 65519 ] ||
    fail "kvd@$i runs as uid '$uid', not a dynamic user"
  [ -n "$(in_ns ls -A "/var/lib/kvd/$i/")" ] ||
    fail "kvd@$i keeps nothing in its StateDirectory /var/lib/kvd/$i"
done

nodes=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
kv() { nsenter -t "$sd_pid" -n "$kvctl" "$@"; }
kv -n "$nodes" wait-converged > /dev/null || fail "the new cluster did not form"
for i in 1 2 3; do kv -n "127.0.0.1:700$i" put "key$i" "value$i" > /dev/null || fail "put at kvd@$i"; done
kv -n "$nodes" wait-converged || fail "no convergence after a write at each node"
in_ns kvctl --admin /run/kvd/1/kvd.sock status > /dev/null || fail "admin socket /run/kvd/1/kvd.sock"

# A snapshot's encoder lowers its own priority (nice +10) so as not to take
# the loop's CPU: the unit's seccomp filter, which denies @resources, must
# still let setpriority through.
in_ns kvctl --admin /run/kvd/1/kvd.sock snapshot > /dev/null || fail "kvctl snapshot at kvd@1"
in_ns grep -q "snapshot .* durable" /var/log/kvd-1.log || fail "kvd@1 logged no durable snapshot"
if in_ns grep -q "nice +10 was refused" /var/log/kvd-1.log; then
  fail "kvd@1: $(in_ns grep -h 'was refused' /var/log/kvd-1.log)"
fi

# Reload: ExecReload= sends SIGHUP; kvd says RELOADING=1, re-reads 1.conf,
# says READY=1 and keeps running (ExecReload= needs /bin/kill, from procps).
if [ -x /bin/kill ]; then
  pid1=$(prop kvd@1 MainPID)
  sctl reload kvd@1 || fail "systemctl reload kvd@1"
  for _ in $(seq 50); do
    in_ns grep -q "reloaded configuration" /var/log/kvd-1.log && break
    sleep 0.1
  done
  in_ns grep -q "reloaded configuration" /var/log/kvd-1.log || fail "kvd@1 did not reload"
  [ "$(prop kvd@1 MainPID)" = "$pid1" ] && [ "$(prop kvd@1 ActiveState)" = active ] ||
    fail "kvd@1 is not the same running process after a reload"
  log "kvd@1 reloaded"
else
  log "no /bin/kill (procps): reload not checked"
fi

# --- SIGSEGV: restarted, catches up --------------------------------------------------------

# Waits until systemd has restarted UNIT (its main pid differs from OLD and
# it is active again) and asserts that, in between, the unit's Result= was
# WANT (an extended regex): what systemd saw end the old process.
wait_restart() {  # unit, old pid, expected results
  local unit=$1 old=$2 want=$3 results="" line
  for _ in $(seq 200); do
    line=$(sctl show -p Result -p ActiveState -p SubState -p MainPID -p NRestarts "$unit" | tr '\n' ' ')
    case $line in *"Result=success"*) ;; *) results="$results $(sed 's/.*Result=\([^ ]*\).*/\1/' <<<"$line")" ;; esac
    case $line in
      *"ActiveState=active "*"SubState=running"*)
        case $line in *"MainPID=$old "* | *"MainPID=0 "* | *"NRestarts=0 "*) ;; *) break ;; esac ;;
    esac
    sleep 0.05
  done
  log "$unit: $line"
  case $line in
    *"ActiveState=active "*"SubState=running"*) ;;
    *) fail "$unit was not restarted: $line" ;;
  esac
  case $line in *"MainPID=$old "* | *"NRestarts=0 "*) fail "$unit was not restarted: $line" ;; esac
  grep -qwE -- "$want" <<<"$results" || fail "$unit: expected Result=$want before the restart, saw:$results"
}

pid2=$(prop kvd@2 MainPID)
in_ns kill -SEGV "$pid2"
log "kill -SEGV kvd@2 (pid $pid2 in the namespace)"
kv -n 127.0.0.1:7001 put while-2-was-down yes > /dev/null || fail "put at kvd@1"
wait_restart kvd@2 "$pid2" "signal|core-dump"
kv -n "$nodes" --timeout 15000 wait-converged || fail "no convergence after kvd@2's restart"
[ "$(kv -n 127.0.0.1:7002 get while-2-was-down)" = yes ] || fail "kvd@2 did not catch up"

# --- SIGSTOP: the watchdog restarts it -------------------------------------------------------

pid3=$(prop kvd@3 MainPID)
in_ns kill -STOP "$pid3"
log "kill -STOP kvd@3 (pid $pid3); WatchdogSec=2s"
wait_restart kvd@3 "$pid3" watchdog
kv -n "$nodes" --timeout 15000 wait-converged || fail "no convergence after kvd@3's restart"

# --- stop the target ----------------------------------------------------------------------------

sctl stop kvd.target || fail "systemctl stop kvd.target"
for i in 1 2 3; do
  state=$(prop "kvd@$i" ActiveState)
  result=$(prop "kvd@$i" Result)
  code=$(prop "kvd@$i" ExecMainStatus)
  log "kvd@$i: $state, result $result, exit status $code"
  [ "$state" = inactive ] && [ "$result" = success ] && [ "$code" = 0 ] ||
    fail "kvd@$i did not stop cleanly ($state, $result, status $code)"
done
echo "PASS"
