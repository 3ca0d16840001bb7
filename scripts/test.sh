#!/usr/bin/env bash
# The test command: installs dependencies, builds, prepares the example data and
# runs every test (unit, integration, short chaos drills) with CTest.
#   scripts/test.sh [ctest args...]     e.g. -L unit, -R flights
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh"
BUILD_DIR="$BUILD_DIR" "$ROOT/scripts/build.sh"
"$ROOT/examples/flights/prepare.sh" "$BUILD_DIR" >/dev/null
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 900 -j "${TEST_JOBS:-1}" "$@"
