#!/usr/bin/env bash
# Builds the fuzz targets with clang + libFuzzer + ASan/UBSan into their own
# build directory and runs each for a while (tests/fuzz/README.md).
#   tests/fuzz/run.sh [--seconds N] [--jobs J] [--no-build] [--keep-going] [target...]
#     --seconds N   fuzzing time per target (default 60)
#     --jobs J      targets fuzzed at once (default 1)
#     --no-build    use the binaries already built
#     --keep-going  go on after a crash (libFuzzer -fork=1 -ignore_crashes=1...):
#                   counts every crash of the run instead of stopping at the first
#     target...     default: every target of tests/fuzz/CMakeLists.txt
# Env: FUZZ_BUILD_DIR (default <repo>/build-fuzz; /build*/ is git-ignored),
#      BUILD_JOBS (ninja -j, default 2), CC_FUZZ/CXX_FUZZ (default clang-14/clang++-14),
#      FUZZ_OPT (optimization of the instrumented build, default -O1; used when
#      the build directory is first configured).
# Prints one line per target:
#   fuzz <target>: <execs> execs in <s> s, <n> crashes
# and exits non-zero if any target crashed, timed out, leaked or ran out of
# memory. Everything a run leaves (log, grown corpus, crash artifacts, libFuzzer
# stats) is under $FUZZ_BUILD_DIR/fuzz/<target>/; artifact paths are printed.
# Builds and fuzzers run under `nice -n 10`: the machine is shared.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/tests/fuzz"
BUILD="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
CXX_FUZZ="${CXX_FUZZ:-clang++-14}"
CC_FUZZ="${CC_FUZZ:-clang-14}"
SECONDS_PER_TARGET=60
JOBS=1
BUILD_IT=1
KEEP_GOING=()
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_PER_TARGET="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --no-build) BUILD_IT=0; shift ;;
    --keep-going) KEEP_GOING=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1); shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
ALL_TARGETS=($(sed -n 's/^quiver_fuzz_target(\([a-z_0-9]*\).*/\1/p' "$HERE/CMakeLists.txt"))
if [ ${#TARGETS[@]} -eq 0 ]; then TARGETS=("${ALL_TARGETS[@]}"); fi
for t in "${TARGETS[@]}"; do
  if [[ " ${ALL_TARGETS[*]} " != *" $t "* ]]; then
    echo "run.sh: unknown target '$t' (targets: ${ALL_TARGETS[*]})" >&2
    exit 2
  fi
done

if [ "$BUILD_IT" = 1 ]; then
  if ! command -v "$CXX_FUZZ" >/dev/null || ! command -v "$CC_FUZZ" >/dev/null; then
    echo "run.sh: $CXX_FUZZ not found (scripts/setup.sh installs clang and libclang-rt-14-dev)" >&2
    exit 2
  fi
  start=$(date +%s)
  if [ ! -f "$BUILD/build.ninja" ]; then
    mkdir -p "$BUILD"
    # NDEBUG as in the normal build, so headers see the same configuration as
    # the Debian libraries they link.
    nice -n 10 cmake -S "$ROOT" -B "$BUILD" -G Ninja \
      -DCMAKE_C_COMPILER="$CC_FUZZ" -DCMAKE_CXX_COMPILER="$CXX_FUZZ" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_C_FLAGS_RELWITHDEBINFO="${FUZZ_OPT:--O1} -g -DNDEBUG" \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="${FUZZ_OPT:--O1} -g -DNDEBUG" \
      -DQUIVER_SANITIZE=address,undefined \
      -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined" \
      -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined" \
      -DQUIVER_FUZZ=ON >"$BUILD/configure.log" 2>&1 || {
        cat "$BUILD/configure.log" >&2
        exit 2
      }
  fi
  exes=()
  for t in "${TARGETS[@]}"; do exes+=("fuzz_$t"); done
  if ! nice -n 10 ninja -C "$BUILD" -j "${BUILD_JOBS:-2}" "${exes[@]}" >"$BUILD/fuzz-build.log" 2>&1; then
    tail -n 60 "$BUILD/fuzz-build.log" >&2
    echo "run.sh: the fuzz build failed; log: $BUILD/fuzz-build.log" >&2
    exit 2
  fi
  echo "fuzz build: $(( $(date +%s) - start )) s (${exes[*]})"
fi

# Runs one target; writes its summary line to $work/summary and returns
# non-zero on a finding.
run_one() {
  local t="$1" work="$BUILD/fuzz/$1"
  local bin="$BUILD/bin/fuzz_$t"
  local extra=()
  case "$t" in
    # gRPC's threads (the in-process fake coordinator, the client's channel)
    # hold Status and Cord objects in flight while a per-input leak check
    # stops the world, which reports them as leaks; leaks are still checked
    # at exit.
    lean_client) extra=(-detect_leaks=0) ;;
  esac
  mkdir -p "$work/corpus" "$work/artifacts" "$work/tmp"
  rm -f "$work/summary"
  # The corpus grows here; the seeds in git are only read.
  local rc=0
  local started
  started=$(date +%s.%N)
  # A target that hangs outside an input (libFuzzer's -timeout covers inputs)
  # is killed after the run time plus two minutes.
  TMPDIR="$work/tmp" ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
  LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$HERE/lsan.supp}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    timeout --signal=KILL $((SECONDS_PER_TARGET + 120)) \
    nice -n 10 "$bin" -max_total_time="$SECONDS_PER_TARGET" -timeout=5 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$work/artifacts/" "${KEEP_GOING[@]}" "${extra[@]}" \
      "$work/corpus" "$HERE/corpus/$t" >"$work/log" 2>&1 || rc=$?
  local elapsed
  elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
  rm -rf "$work/tmp"
  local execs
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
  if [ -z "$execs" ]; then
    execs=$(grep -E '^#[0-9]+' "$work/log" | tail -n 1 | sed 's/^#\([0-9]*\).*/\1/')
  fi
  local new_artifacts=()
  while IFS= read -r f; do new_artifacts+=("$f"); done < <(find "$work/artifacts" -type f -newer "$work/log.start" 2>/dev/null)
  local crashes=${#new_artifacts[@]}
  if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi
  {
    echo "fuzz $t: ${execs:-0} execs in $elapsed s, $crashes crashes"
    for f in "${new_artifacts[@]}"; do echo "  artifact: $f"; done
    if [ "$rc" -ne 0 ]; then echo "  exit $rc; log: $work/log"; fi
  } >"$work/summary"
  # libFuzzer's own last status line (cov, ft, corp) and final stats, for reports.
  { grep -E '^#[0-9]+' "$work/log" | tail -n 1; grep '^stat::' "$work/log"; } >"$work/stats" || true
  [ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ]
}

failed=0
declare -A running=()  # pid -> target
finish_one() {  # waits for any target to finish and prints its summary
  local pid rc=0
  wait -n -p pid "${!running[@]}" || rc=$?
  [ "$rc" -eq 0 ] || failed=1
  cat "$BUILD/fuzz/${running[$pid]}/summary"
  unset "running[$pid]"
}
for t in "${TARGETS[@]}"; do
  while [ ${#running[@]} -ge "$JOBS" ]; do finish_one; done
  mkdir -p "$BUILD/fuzz/$t"
  touch "$BUILD/fuzz/$t/log.start"
  run_one "$t" &
  running[$!]="$t"
done
while [ ${#running[@]} -gt 0 ]; do finish_one; done
exit $failed
