// Materialization planning: validates a view's source against its schema and
// splits it into tasks of row-group ranges, pruned by event-time statistics.
#ifndef QUIVER_COORDINATOR_SRC_PLANNER_H_
#define QUIVER_COORDINATOR_SRC_PLANNER_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "quiver.pb.h"
#include "quiver/storage/offline_store.h"

namespace quiver::coordinator {

// Tasks for every window (view, [start_us, end_us)) with view, file, rows and
// window set; job_id, task_id and the lease fields are left to the caller.
// Row groups without statistics are never pruned; adjacent kept row groups of
// one file merge into one task of at most `max_task_rows` rows (a larger row
// group stays one task). Errors: kInvalidArgument (unknown view/source/entity,
// column type mismatch), kNotFound (no such file).
absl::StatusOr<std::vector<quiver::v1::MaterializationTask>> PlanTasks(
    storage::OfflineStore& offline, const quiver::v1::Registry& registry,
    const std::vector<quiver::v1::ViewWindow>& windows, uint64_t max_task_rows);

}  // namespace quiver::coordinator

#endif  // QUIVER_COORDINATOR_SRC_PLANNER_H_
