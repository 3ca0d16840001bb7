#!/usr/bin/env bash
# Installs everything Quiver needs on a fresh Debian bookworm machine:
#   - build tools and C++ libraries from Debian's packages (apt-get);
#   - DuckDB's C header and libduckdb.so from the npm registry (npm pack), pinned,
#     into third_party/duckdb (git-ignored), unless DUCKDB_ROOT points at an
#     official libduckdb release (a folder holding duckdb.h and libduckdb.so);
#   - the vega-datasets npm package (real flights data) into third_party/vega-datasets.
#   - the flamegraph npm package (bench/profile's SVGs) into third_party/flamegraph.
# Idempotent: a second run only checks what is already there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TP="$ROOT/third_party"
DUCKDB_VERSION="1.4.4"
DUCKDB_BINDINGS_VERSION="1.4.4-r.4"
VEGA_VERSION="3.2.1"

APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git ca-certificates
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  librocksdb-dev liburing-dev libyaml-cpp-dev prometheus-cpp-dev
  libspdlog-dev libfmt-dev libxxhash-dev libabsl-dev
  libgtest-dev libgmock-dev libbenchmark-dev libboost-system-dev libboost-dev
  libcpp-httplib-dev nlohmann-json3-dev libre2-dev openssl libjwt-dev clang libclang-rt-14-dev
  redis-server libhiredis-dev gnuplot-nox time linux-perf
  nodejs npm iproute2 procps curl
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  # npm may come from nodejs's own package; treat an npm binary on PATH as enough.
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: Debian packages present"
fi

mkdir -p "$TP"

fetch_npm() {  # fetch_npm PACKAGE@VERSION DEST_DIR: all or nothing (an interrupted run leaves no DEST_DIR)
  local spec="$1" dest="$2" tmp
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null)
  mkdir -p "$tmp/unpacked"
  tar -xzf "$tmp"/*.tgz -C "$tmp/unpacked" --strip-components=1
  rm -rf "$dest"
  mkdir -p "$(dirname "$dest")"
  mv "$tmp/unpacked" "$dest"
  rm -rf "$tmp"
}

case "$(uname -m)" in
  x86_64) DUCKDB_PLATFORM=linux-x64 ;;
  aarch64|arm64) DUCKDB_PLATFORM=linux-arm64 ;;
  *) echo "setup: no DuckDB build for $(uname -m); set DUCKDB_ROOT to a libduckdb release" >&2; exit 1 ;;
esac

if [ -n "${DUCKDB_ROOT:-}" ]; then
  echo "setup: using DuckDB from DUCKDB_ROOT=$DUCKDB_ROOT"
  test -f "$DUCKDB_ROOT/duckdb.h" && test -f "$DUCKDB_ROOT/libduckdb.so" || {
    echo "setup: DUCKDB_ROOT must hold duckdb.h and libduckdb.so" >&2; exit 1; }
elif [ ! -f "$TP/duckdb/include/duckdb.h" ] || [ ! -f "$TP/duckdb/lib/libduckdb.so" ] \
     || [ "$(cat "$TP/duckdb/VERSION" 2>/dev/null)" != "$DUCKDB_BINDINGS_VERSION" ]; then
  echo "setup: fetching DuckDB $DUCKDB_VERSION (header) and $DUCKDB_BINDINGS_VERSION (libduckdb.so)"
  rm -rf "$TP/duckdb" "$TP/.duckdb-src" "$TP/.duckdb-lib" "$TP/.duckdb-new"
  fetch_npm "duckdb@$DUCKDB_VERSION" "$TP/.duckdb-src"
  fetch_npm "@duckdb/node-bindings-$DUCKDB_PLATFORM@$DUCKDB_BINDINGS_VERSION" "$TP/.duckdb-lib"
  mkdir -p "$TP/.duckdb-new/include" "$TP/.duckdb-new/lib"
  cp "$TP/.duckdb-src/src/duckdb/src/include/duckdb.h" "$TP/.duckdb-new/include/"
  cp "$TP/.duckdb-lib/libduckdb.so" "$TP/.duckdb-new/lib/"
  echo "$DUCKDB_BINDINGS_VERSION" > "$TP/.duckdb-new/VERSION"
  mv "$TP/.duckdb-new" "$TP/duckdb"
  rm -rf "$TP/.duckdb-src" "$TP/.duckdb-lib"
else
  echo "setup: DuckDB present"
fi

if [ ! -f "$TP/vega-datasets/data/flights-3m.parquet" ]; then
  echo "setup: fetching vega-datasets@$VEGA_VERSION"
  fetch_npm "vega-datasets@$VEGA_VERSION" "$TP/vega-datasets"
else
  echo "setup: vega-datasets present"
fi
# The flamegraph npm package (perf script -> SVG) for bench/profile.
FLAMEGRAPH_VERSION=1.3.0
if [ ! -x "$TP/flamegraph/node_modules/.bin/flamegraph" ]; then
  echo "setup: installing flamegraph@$FLAMEGRAPH_VERSION (npm) into third_party/flamegraph"
  rm -rf "$TP/.flamegraph-new" && mkdir -p "$TP/.flamegraph-new"
  (cd "$TP/.flamegraph-new" && npm install --silent --no-audit --no-fund --prefix . "flamegraph@$FLAMEGRAPH_VERSION" >/dev/null)
  rm -rf "$TP/flamegraph" && mv "$TP/.flamegraph-new" "$TP/flamegraph"
else
  echo "setup: flamegraph present"
fi
echo "setup: done"
