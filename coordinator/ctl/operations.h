// quiverctl's cluster operations: backup create / list, restore and verify
// (docs/architecture.md, "Backup and restore"; README "Operations").
// Each prints its result to `out` and progress to `err`.
//
// Thread-safety: run one command per process.
#ifndef QUIVER_COORDINATOR_CTL_OPERATIONS_H_
#define QUIVER_COORDINATOR_CTL_OPERATIONS_H_

#include <cstdio>

#include "absl/status/status.h"
#include "ctl/args.h"

namespace quiver::ctl {

// backup create [--dest DIR]: every UP node backs its store up into
// DIR/nodes/node-<id> (RocksDB BackupEngine; incremental across backups),
// then DIR/backups/<id>/manifest.json records the registry, the map, the
// materialized intervals, each node's backup id and digests, and per view
// the rows and checksum a restore rebuilds (backup_plan.h). DIR must be a
// path every node can write (the nodes write their files themselves).
// Errors: kFailedPrecondition (a partition has no UP replica),
// kInvalidArgument (bad DIR), a node's or the coordinator's RPC error. A
// failed backup writes no manifest.
absl::Status RunBackupCreate(const CommandLine& cl, std::FILE* out, std::FILE* err);

// backup list [--dest DIR]: one line per backup (id, time, nodes, rows per
// view, bytes). An unreadable manifest is listed as such.
// Errors: kNotFound (no backups folder in DIR).
absl::Status RunBackupList(const CommandLine& cl, std::FILE* out, std::FILE* err);

// restore --from DIR [--scratch DIR]: onto a fresh cluster (no registry yet,
// any number of UP nodes, any partition count): the coordinator takes the
// registry and intervals; every backed-up node's backup is restored into a
// scratch folder (default: the system's temp folder) and its rows are
// re-keyed for the new partition count and merged into every replica of
// their new partition; then every replica is scanned and its digest checked
// against the manifest. Errors: kDataLoss (corrupt manifest or backup, or a
// digest that does not match), kFailedPrecondition (the cluster is not
// fresh, or a node is not UP), RPC errors.
absl::Status RunRestore(const CommandLine& cl, std::FILE* out, std::FILE* err);

// verify [--views a,b]: for every (named) online view with materialized
// intervals, the latest row per entity key in those intervals, read from the
// offline store by DuckDB (Feast's rule: greatest event timestamp, then
// created timestamp), against what the cluster serves for those keys, TTL
// applied (a row past its TTL must not be served). Prints one line per view:
//   view=V expected=N matched=N expired=N newer=N missing=N stale=N differing=N
//   online_only=N mismatches=N
// newer: the online row is newer than the offline one (a push); online_only:
// online entity keys the offline window does not hold (pushed entities);
// neither counts as a mismatch. Holds one view's expected rows in memory.
// Errors: kDataLoss when any view has mismatches (exit 1), else as the
// offline store and the client.
absl::Status RunVerify(const CommandLine& cl, std::FILE* out, std::FILE* err);

// rebalance [--wait]: asks the coordinator to plan partition moves
// (CoordinatorService.Rebalance); prints `rebalance: planned N moves`,
// `rebalance: N moves running` or `rebalance: nothing to move`. With --wait,
// prints `rebalance: moved D/T partitions, R rows, X MB/s` about once a
// second until no partition moves and every partition has R replicas serving
// reads, then `rebalance: done moved_partitions=T rows=R seconds=S
// mb_per_s=X`. A coordinator that restarts meanwhile is waited for (up to a
// minute of failed polls). Errors: RPC errors.
absl::Status RunRebalance(const CommandLine& cl, std::FILE* out, std::FILE* err);

// nodes drain ID [--wait] | nodes remove ID (DrainNode / RemoveNode):
//   drain: `node ID: LEAVING, N moves planned`; --wait then prints progress
//   as rebalance does until the node holds nothing and nothing moves:
//   `node ID drained: holds 0 partitions`.
//   remove: `node ID removed` (it held nothing: forgotten), or for a DOWN
//   node `node ID removed: N partitions get new replicas`.
// Errors: kFailedPrecondition (draining a DOWN or RECOVERING node, removing
// a node that is not DOWN and holds data), kNotFound, RPC errors.
absl::Status RunNodesChange(const CommandLine& cl, std::FILE* out, std::FILE* err);

// get-historical (--features REF,... | --feature-service NAME) --entities FILE
// [--output FILE] [--full-feature-names]: the point-in-time join of every
// entity row with the registry's views (quiver/storage/historical.h, Feast's
// rule), entity columns unchanged then one column per feature (`feature`,
// or `view__feature` with --full-feature-names). Parquet when FILE ends in
// .parquet, CSV otherwise; CSV to `out` without --output. Errors:
// kNotFound (unknown view, feature or service; missing file),
// kInvalidArgument (as HistoricalStore::Retrieve: a missing column, a bad
// value or timestamp, a name clash), RPC errors of GetRegistry.
absl::Status RunGetHistorical(const CommandLine& cl, std::FILE* out, std::FILE* err);

}  // namespace quiver::ctl

#endif  // QUIVER_COORDINATOR_CTL_OPERATIONS_H_
