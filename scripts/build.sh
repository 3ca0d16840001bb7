#!/usr/bin/env bash
# Configures and builds Quiver into build/ (Ninja, ccache, -j2 by default).
#   scripts/build.sh [extra cmake args...]     e.g. -DQUIVER_SANITIZE=address,undefined
# Env: BUILD_DIR (default build), JOBS (default 2), BUILD_TYPE (default RelWithDebInfo).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j "${JOBS:-2}"
