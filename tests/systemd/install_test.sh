#!/usr/bin/env bash
# install_test.sh BUILD_DIR SOURCE_DIR FREE_PORTS
#
# `make install` for real, into a DESTDIR:
#   1. `cmake --install BUILD_DIR --prefix /usr` with DESTDIR=<tmp>/dest puts
#      every file where it belongs, and kvd@.service's ExecStart= names
#      /usr/bin/kvd (the prefix given at install time, never DESTDIR);
#   2. the installed unit's ExecStart= line, with the installed example
#      configs copied into <tmp>/etc/kvd (ports rewritten to free ones), runs
#      the three instances as systemd would (%i, ${KVD_CLUSTER} from the
#      EnvironmentFile=, ${STATE_DIRECTORY}, ${RUNTIME_DIRECTORY}) and they
#      form a cluster: a write at each node with the installed kvctl, then
#      `kvctl wait-converged` over all three exits 0, and every node reads
#      every write; SIGTERM stops each with status 0;
#   3. --prefix /opt/causalkv puts /opt/causalkv/bin/kvd in ExecStart=;
#   4. the uninstall script removes every installed file again.
# The build's install_manifest.txt (which `make uninstall` reads) is put
# back as it was. KVT_KEEP=1 keeps <tmp>.
set -euo pipefail

build=$(cd "$1" && pwd)
source_dir=$(cd "$2" && pwd)
free_ports=$3

tmp=$(mktemp -d /tmp/kvd-install-XXXXXX)
manifest=$build/install_manifest.txt
pids=()

fail() {
  echo "FAIL: $*"
  for log in "$tmp"/kvd-*.log; do
    [ -e "$log" ] || continue
    echo "--- $(basename "$log") (last 20 lines)"
    tail -n 20 "$log"
  done
  exit 1
}

restore_manifest() {
  if [ -e "$tmp/manifest.saved" ]; then
    cp -p "$tmp/manifest.saved" "$manifest"
  else
    rm -f "$manifest"
  fi
}

cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  restore_manifest
  if [ "${KVT_KEEP:-}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
if [ -e "$manifest" ]; then cp -p "$manifest" "$tmp/manifest.saved"; fi

# --- 1. install ---------------------------------------------------------------------

dest=$tmp/dest
DESTDIR=$dest cmake --install "$build" --prefix /usr > "$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "cmake --install failed"; }
cp "$manifest" "$tmp/manifest.usr"
restore_manifest

examples=$dest/usr/share/doc/causalkv/examples
unit=$dest/usr/lib/systemd/system/kvd@.service
for f in usr/bin/kvd usr/bin/kvctl usr/lib/systemd/system/kvd@.service \
         usr/lib/systemd/system/kvd.target usr/share/man/man8/kvd.8 usr/share/man/man1/kvctl.1 \
         usr/share/doc/causalkv/examples/cluster.env usr/share/doc/causalkv/examples/1.conf \
         usr/share/doc/causalkv/examples/2.conf usr/share/doc/causalkv/examples/3.conf; do
  [ -f "$dest/$f" ] || fail "not installed: /$f"
done
[ -x "$dest/usr/bin/kvd" ] && [ -x "$dest/usr/bin/kvctl" ] || fail "binaries not executable"
while read -r f; do
  [ -e "$dest$f" ] || fail "the manifest lists $f, which is not in DESTDIR"
done < "$tmp/manifest.usr"
if grep -q "$tmp" "$unit"; then fail "DESTDIR leaked into the installed unit"; fi
if grep -q '@[A-Z_]*@' "$unit"; then fail "placeholders left in the installed unit"; fi

[ "$(grep -c '^ExecStart=' "$unit")" = 1 ] || fail "expected one ExecStart= line"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
echo "installed ExecStart=$exec_start"
case $exec_start in
  "/usr/bin/kvd "*) ;;
  *) fail "ExecStart= does not run /usr/bin/kvd" ;;
esac
case $exec_start in
  *\"* | *\'* | *\\*) fail "ExecStart= has quoting this test does not handle" ;;
esac
env_file=$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' "$unit")
[ "$env_file" = /etc/kvd/cluster.env ] || fail "EnvironmentFile= is '$env_file'"

# --- 2. three instances from the installed unit and examples ---------------------------

kvctl=$dest/usr/bin/kvctl

# Runs the three instances; returns 1 if one lost its port to another
# process (the caller retries on new ports), fails on anything else.
start_cluster() {
  mapfile -t ports < <("$free_ports" 3)
  rm -rf "$tmp/etc" "$tmp/state" "$tmp/run" "$tmp"/kvd-*.log
  mkdir -p "$tmp/etc/kvd"
  for f in cluster.env 1.conf 2.conf 3.conf; do
    sed -e "s/127\.0\.0\.1:7001/127.0.0.1:${ports[0]}/g" \
        -e "s/127\.0\.0\.1:7002/127.0.0.1:${ports[1]}/g" \
        -e "s/127\.0\.0\.1:7003/127.0.0.1:${ports[2]}/g" "$examples/$f" > "$tmp/etc/kvd/$f"
  done
  # EnvironmentFile= syntax as far as the example uses it: KEY=VALUE lines.
  cluster=$(sed -n 's/^KVD_CLUSTER=//p' "$tmp/etc/kvd/cluster.env")
  [ "$cluster" = "1=127.0.0.1:${ports[0]},2=127.0.0.1:${ports[1]},3=127.0.0.1:${ports[2]}" ] ||
    fail "unexpected KVD_CLUSTER in the example: '$cluster'"
  addresses=127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}

  pids=()
  for i in 1 2 3; do
    state=$tmp/state/$i
    runtime=$tmp/run/$i
    mkdir -p "$state" "$runtime"
    # What systemd does to the line: specifiers, then ${VAR} from the
    # EnvironmentFile= and the directories it created.
    cmd=${exec_start//%i/$i}
    cmd=${cmd//'${KVD_CLUSTER}'/$cluster}
    cmd=${cmd//'${STATE_DIRECTORY}'/$state}
    cmd=${cmd//'${RUNTIME_DIRECTORY}'/$runtime}
    case $cmd in
      *%* | *'$'*) fail "ExecStart= uses a specifier or variable this test does not know: $cmd" ;;
    esac
    # Then the host paths, into this test's directory.
    cmd=${cmd//\/etc\/kvd\//$tmp/etc/kvd/}
    read -ra argv <<<"$cmd"
    argv[0]=$dest${argv[0]}
    env -u NOTIFY_SOCKET -u WATCHDOG_USEC -u WATCHDOG_PID KVD_CLUSTER="$cluster" \
      STATE_DIRECTORY="$state" RUNTIME_DIRECTORY="$runtime" \
      "${argv[@]}" 2> "$tmp/kvd-$i.log" &
    pids+=($!)
  done

  # Up when every node answers status.
  for _ in $(seq 100); do
    if "$kvctl" -n "$addresses" --timeout 1000 status > /dev/null 2>&1; then return 0; fi
    for i in 0 1 2; do
      if ! kill -0 "${pids[$i]}" 2>/dev/null; then
        if grep -q EADDRINUSE "$tmp/kvd-$((i + 1)).log"; then
          for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
          wait 2>/dev/null || true
          return 1
        fi
        fail "kvd@$((i + 1)) exited at start-up"
      fi
    done
    sleep 0.1
  done
  fail "the three nodes did not all answer status within 10 s"
}

for attempt in 1 2 3 4; do
  if start_cluster; then break; fi
  [ $attempt -lt 4 ] || fail "could not get free ports after $attempt attempts"
  echo "a port was taken meanwhile; retrying on new ports"
done
echo "three instances up on $addresses"

for i in 1 2 3; do
  [ -S "$tmp/run/$i/kvd.sock" ] || fail "no admin socket in node $i's RUNTIME_DIRECTORY"
  "$kvctl" --admin "$tmp/run/$i/kvd.sock" status > /dev/null || fail "kvctl --admin status of node $i"
done
# A new cluster takes writes once its nodes have met and node 1 founded it.
"$kvctl" -n "$addresses" wait-converged > /dev/null || fail "the new cluster did not form"
for i in 1 2 3; do
  "$kvctl" -n "127.0.0.1:${ports[$((i - 1))]}" put "key$i" "value$i" || fail "put at node $i"
done
"$kvctl" -n "$addresses" wait-converged || fail "the cluster did not converge"
for i in 1 2 3; do
  for k in 1 2 3; do
    got=$("$kvctl" -n "127.0.0.1:${ports[$((i - 1))]}" get "key$k") || fail "get key$k at node $i"
    [ "$got" = "value$k" ] || fail "node $i reads key$k = '$got'"
  done
done
"$kvctl" -n "$addresses" status

for i in 0 1 2; do kill -TERM "${pids[$i]}"; done
for i in 0 1 2; do
  status=0
  wait "${pids[$i]}" || status=$?
  [ $status = 0 ] || fail "kvd@$((i + 1)) exited with status $status after SIGTERM"
done
pids=()
[ -z "$(ls -A "$tmp/run/1")" ] || fail "node 1 left files in its RUNTIME_DIRECTORY: $(ls "$tmp/run/1")"

# --- 3. the prefix given at install time reaches the unit -------------------------------

DESTDIR=$tmp/opt cmake --install "$build" --prefix /opt/causalkv > "$tmp/install-opt.log" 2>&1 ||
  { cat "$tmp/install-opt.log"; fail "cmake --install --prefix /opt/causalkv failed"; }
restore_manifest
opt_exec=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$tmp/opt/opt/causalkv/lib/systemd/system/kvd@.service")
[ "$opt_exec" = /opt/causalkv/bin/kvd ] || fail "with --prefix /opt/causalkv, ExecStart= runs '$opt_exec'"
[ -x "$tmp/opt/opt/causalkv/bin/kvd" ] || fail "no /opt/causalkv/bin/kvd"

# --- 4. uninstall -------------------------------------------------------------------------

DESTDIR=$dest cmake -DKV_MANIFEST="$tmp/manifest.usr" -P "$source_dir/cmake/install.cmake" \
  > "$tmp/uninstall.log" 2>&1 || { cat "$tmp/uninstall.log"; fail "uninstall failed"; }
left=$(find "$dest" -type f)
[ -z "$left" ] || fail "uninstall left files: $left"
[ ! -e "$dest/usr/share/doc/causalkv" ] || fail "uninstall left share/doc/causalkv"

echo "PASS"
