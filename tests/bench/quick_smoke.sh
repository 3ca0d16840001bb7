#!/usr/bin/env bash
# The bench/run --quick smoke test: it runs end to end on a real cluster and a
# real redis-server and reports sane numbers. It checks that both systems gave
# the same values, that no call failed and that every figure is present and
# positive; it never judges timings (bench/README.md has those).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
fail() { echo "bench smoke: $*" >&2; exit 1; }

"$ROOT/bench/run" --quick --skip-build --results-dir "$TMP/results" --work-dir "$TMP/work" \
  > "$TMP/out.txt" 2> "$TMP/err.txt" || { tail -30 "$TMP/out.txt" "$TMP/err.txt"; fail "bench/run failed"; }
out="$TMP/out.txt"

[ "$(grep -c '^verify .* mismatches=0$' "$out")" = 4 ] || fail "not every workload verified equal"
runs="$(grep -c '^run ' "$out")"
[ "$runs" -ge 16 ] || fail "only $runs runs"
grep '^run ' "$out" | awk '
  { for (i = 1; i <= NF; ++i) { split($i, kv, "="); v[kv[1]] = kv[2] } }
  v["errors"] != 0 || v["calls"] <= 0 || v["p50_us"] <= 0 || v["p99_us"] < v["p50_us"] ||
  v["calls_per_s"] <= 0 { print "bad run: " $0; bad = 1 }
  END { exit bad }' || fail "a run reported errors or impossible figures"
grep -Eq '^materialize source_rows=[0-9]+ written_rows=[1-9][0-9]* .*rows_per_s=[1-9]' "$out" ||
  fail "no materialization figures"
grep -Eq '^uring keys=64 .*ratio_p50=[0-9.]+' "$out" || fail "no io_uring figures"
last="$(tail -1 "$out")"
echo "$last" | grep -Eq '^ratio_p99_100x50=[0-9.]+ ratio_p99_1x50=[0-9.]+ ratio_qps_100x50=[0-9.]+ ratio_qps_1x250=[0-9.]+ ratio_qps_1x50=[0-9.]+$' ||
  fail "last line is not the ratio line: $last"
for f in "$TMP/results/"*-quick.json "$TMP/results/"*-quick.png "$TMP/results/"*-quick.txt; do
  [ -s "$f" ] || fail "missing result file $f"
done
grep -q '"workload": "100x50"' "$TMP/results/"*-quick.json || fail "JSON lacks the lookup runs"
echo "bench smoke: ok ($runs runs; $last)"
