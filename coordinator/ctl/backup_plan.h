// The pure parts of quiverctl backup and restore: what a backup's manifest
// says of each view, and which backed-up replica a restore reads each
// partition from. Kept apart from the RPC code so they are unit-tested.
//
// Rules (docs/architecture.md, "Backup and restore"): every partition of the
// backed-up map must have at least one backed-up replica. For each view and
// partition, the replicas' digests (row count + checksum, storage/row_store.h
// ViewDigest) are compared: when they agree the partition is read from one
// replica (the first in map order); when they differ (writes ran while the
// backup was taken) every distinct version is read and the restore merges
// them under last writer wins, so no row any replica held is lost.
//
// Thread-safety: pure functions.
#ifndef QUIVER_COORDINATOR_CTL_BACKUP_PLAN_H_
#define QUIVER_COORDINATOR_CTL_BACKUP_PLAN_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "quiver.pb.h"

namespace quiver::ctl {

// view -> backed-up node id -> partitions to read from that node's backup
// (ascending).
using RestoreSources = std::map<std::string, std::map<uint32_t, std::vector<uint32_t>>>;

// Per-view summaries for the manifest, and the restore's sources, from the
// backed-up map and the nodes' backup digests. Views are every view any
// node's digest names, by name.
// Errors: kFailedPrecondition naming a partition none of whose replicas was
// backed up; kInvalidArgument for a map without partitions.
absl::StatusOr<std::pair<std::vector<quiver::v1::ViewSummary>, RestoreSources>> PlanBackup(
    const quiver::v1::ClusterMap& map, const std::vector<quiver::v1::NodeBackup>& nodes);

// Contiguous runs of ascending partitions: {1,2,3,7} -> [1,4), [7,8).
std::vector<std::pair<uint32_t, uint32_t>> PartitionRanges(const std::vector<uint32_t>& partitions);

// A backup id for a backup taken at `now_us` (µs since the epoch, UTC):
// "20261121T132500Z".
std::string BackupId(int64_t now_us);

}  // namespace quiver::ctl

#endif  // QUIVER_COORDINATOR_CTL_BACKUP_PLAN_H_
