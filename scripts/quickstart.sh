#!/usr/bin/env bash
# Quickstart: installs, builds, starts a 3-node cluster (replication factor 2)
# on 127.0.0.1, applies examples/flights, materializes all of the flights data,
# prints real lookups and a latency summary of 10,000 single-entity
# GetOnlineFeatures calls through the C++ client. The cluster keeps running;
# stop it with: deploy/local/cluster down --dir .quiver/quickstart
# Env: QUIVER_BASE_PORT (default 6000), CALLS (default 10000).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$ROOT/build/bin"
DIR="$ROOT/.quiver/quickstart"
step() { printf '\n== %s\n' "$*"; }

step "1/8 installing dependencies"
./scripts/setup.sh
step "2/8 building (Ninja, -j2)"
./scripts/build.sh
step "3/8 transformation: DuckDB computes the flights feature tables"
./examples/flights/prepare.sh
step "4/8 starting a 3-node cluster, replication factor 2"
deploy/local/cluster down --dir "$DIR" >/dev/null 2>&1 || true
rm -rf "$DIR"
out="$(deploy/local/cluster up --dir "$DIR" --nodes 3 --replication-factor 2 --base-port "${QUIVER_BASE_PORT:-6000}")"
echo "$out"
COORD="$(echo "$out" | tail -n1 | sed 's/^coordinator=//')"
CTL=("$BIN/quiverctl" --coordinator "$COORD")
"${CTL[@]}" nodes
step "5/8 quiverctl apply examples/flights"
"${CTL[@]}" apply examples/flights
step "6/8 materializing all of the flights data"
END="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
"${CTL[@]}" materialize 2000-01-01T00:00:00Z "$END"
step "7/8 lookups (feature service delay_model_v1)"
"${CTL[@]}" get-online --feature-service delay_model_v1 --entities examples/flights/entities.csv
step "8/8 a training set: 20,000 flights with their features as of one minute before departure"
"${CTL[@]}" get-historical --entities examples/flights/data/training_entities.parquet \
  --features origin_delay_stats:avg_delay_1h,origin_delay_stats:flights_24h,route_stats,origin_trend:delay_trend \
  --output "$DIR/training_set.parquet"
"$BIN/quiver-sql" -c "SELECT * FROM '$DIR/training_set.parquet' LIMIT 5"
echo
echo "latency of ${CALLS:-10000} single-entity GetOnlineFeatures calls (C++ client, one thread):"
"$BIN/quiver-bench-online" --coordinator "$COORD" --feature-service delay_model_v1 \
  --entities examples/flights/data/routes.csv --calls "${CALLS:-10000}"
echo
echo "The cluster keeps running (coordinator=$COORD, logs under $DIR)."
echo "Stop it with: deploy/local/cluster down --dir $DIR"
