#!/usr/bin/env bash
# Builds the flights feature repository's offline store: runs transform.sql with
# DuckDB over vega-datasets' flights-3m.parquet into examples/flights/data/.
#   examples/flights/prepare.sh [BUILD_DIR]     (default: build)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD="${1:-$ROOT/build}"
SRC="$ROOT/third_party/vega-datasets/data/flights-3m.parquet"
[ -f "$SRC" ] || { echo "prepare: $SRC missing: run scripts/setup.sh" >&2; exit 1; }
[ -x "$BUILD/bin/quiver-sql" ] || { echo "prepare: $BUILD/bin/quiver-sql missing: build first" >&2; exit 1; }
mkdir -p "$HERE/data"
"$BUILD/bin/quiver-sql" -v SRC="$SRC" -v OUT="$HERE/data" -f "$HERE/transform.sql"
