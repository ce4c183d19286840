#!/bin/sh
# make fuzz: builds the libFuzzer targets with clang (ASan + UBSan) in a
# build directory of their own and runs each for FUZZ_SECONDS (default 60)
# on a scratch copy of its checked-in corpus. New crashing inputs land in
# fuzz/crashes/<target>/; the script exits non-zero if any target crashed.
#
#   FUZZ_SECONDS=600 fuzz/run.sh                 all targets, 10 minutes each
#   fuzz/run.sh fuzz_wal_reader                  one target
#   FUZZ_BUILD_DIR=... FUZZ_JOBS=2 fuzz/run.sh   (defaults: build-fuzz, 1)
#   fuzz/run.sh --regen-corpus                   rewrite fuzz/corpus/ from make_corpus.cc
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-1}
TARGETS="fuzz_frame_decoder fuzz_client_dispatch fuzz_peer_dispatch fuzz_wal_reader fuzz_peer_auth"

CLANG=${CLANG:-clang}
CLANGXX=${CLANGXX:-clang++}
command -v "$CLANGXX" >/dev/null || { echo "fuzz: $CLANGXX not found (apt-get install clang)" >&2; exit 2; }

SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER="$CLANG" -DCMAKE_CXX_COMPILER="$CLANGXX" -DKV_FUZZ=ON \
    -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link $SAN" \
    -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link $SAN" \
    -DCMAKE_EXE_LINKER_FLAGS="$SAN"
fi
cmake --build "$BUILD_DIR" -j "$(nproc 2>/dev/null || echo 2)" --target fuzz-targets

if [ "${1:-}" = "--regen-corpus" ]; then
  rm -rf "$ROOT/fuzz/corpus"
  "$BUILD_DIR/fuzz/fuzz_make_corpus" "$ROOT/fuzz/corpus"
  echo "fuzz: wrote fuzz/corpus/"
  exit 0
fi
[ $# -gt 0 ] && TARGETS="$*"

failed=""
for target in $TARGETS; do
  work="$BUILD_DIR/fuzz/run/$target"
  rm -rf "$work" && mkdir -p "$work/corpus" "$ROOT/fuzz/crashes/$target"
  cp "$ROOT/fuzz/corpus/$target/"* "$work/corpus/"
  echo "fuzz: $target for ${SECONDS_PER_TARGET}s"
  # With -jobs, libFuzzer writes each job's output to fuzz-N.log in the
  # current directory: run inside the scratch directory.
  parallel=""
  [ "$JOBS" -gt 1 ] && parallel="-jobs=$JOBS -workers=$JOBS"
  # shellcheck disable=SC2086
  if (cd "$work" && "$BUILD_DIR/fuzz/$target" corpus \
      -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      $parallel -print_final_stats=1 \
      -artifact_prefix="$ROOT/fuzz/crashes/$target/" >log 2>&1); then
    grep -E '^#[0-9]+[[:space:]]' "$work/log" | tail -n 1 || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$work/log" || true
  else
    echo "fuzz: $target FAILED; log: $work/log; reproducers in fuzz/crashes/$target/" >&2
    grep -E 'ERROR|runtime error|fuzz invariant|KV_ASSERT|Assertion' "$work/log" | head -n 5 >&2 || true
    failed="$failed $target"
  fi
  rmdir "$ROOT/fuzz/crashes/$target" 2>/dev/null || true
done
rmdir "$ROOT/fuzz/crashes" 2>/dev/null || true

if [ -n "$failed" ]; then
  echo "fuzz: crashes in:$failed" >&2
  exit 1
fi
echo "fuzz: no crashes"
