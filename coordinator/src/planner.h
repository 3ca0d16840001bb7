// Materialization planning: validates a view's source against its schema and
// splits it into tasks of row-group ranges, pruned by event-time statistics.
#ifndef QUIVER_COORDINATOR_SRC_PLANNER_H_
#define QUIVER_COORDINATOR_SRC_PLANNER_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "quiver.pb.h"
#include "quiver/coordinator/coordinator.h"
#include "quiver/storage/offline_store.h"

namespace quiver::coordinator {

// Tasks for every window (view, [start_us, end_us)) with view, file, rows and
// window set; job_id, task_id and the lease fields are left to the caller.
// Row groups without statistics are never pruned; adjacent kept row groups of
// one file form a range, which `split` cuts into tasks of about
// `max_task_rows` rows:
//   kEntityHash: ceil(rows / max_task_rows) tasks (at most kMaxBuckets) over
//     the whole range, task b taking the entity keys with hash % n == b, so
//     each entity is reduced to its latest row by exactly one task (fewest
//     rows written when an entity's rows are spread over the file);
//   kRowRanges: adjacent row groups up to max_task_rows rows per task (a
//     larger row group stays one task).
// Errors: kInvalidArgument (unknown view/source/entity, column type
// mismatch), kNotFound (no such file).
inline constexpr uint64_t kMaxBuckets = 1024;
absl::StatusOr<std::vector<quiver::v1::MaterializationTask>> PlanTasks(
    storage::OfflineStore& offline, const quiver::v1::Registry& registry,
    const std::vector<quiver::v1::ViewWindow>& windows, uint64_t max_task_rows, TaskSplit split);

}  // namespace quiver::coordinator

#endif  // QUIVER_COORDINATOR_SRC_PLANNER_H_
