// What quiverctl prints: get-online's JSON lines, apply/plan change lines, the
// nodes table and materialization progress. Kept apart from the RPC code so
// the exact text other tools parse is unit-tested.
//
// Thread-safety: pure functions.
#ifndef QUIVER_COORDINATOR_CTL_OUTPUT_H_
#define QUIVER_COORDINATOR_CTL_OUTPUT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "quiver.pb.h"
#include "quiver/client/client.h"
#include "quiver/keys/value.h"

namespace quiver::ctl {

// One get-online result row as a single JSON object (no newline):
//   {"<join key>":<value>,...,"features":{"<ref>":{"value":<v|null>,
//    "status":"PRESENT","event_timestamp":"<RFC 3339>"|null},...}}
// Join keys in `header` order, features in `feature_refs` order (`values` has
// one entry per ref). event_timestamp is null when the row was not found.
std::string OnlineRowJson(const std::vector<std::string>& header,
                          const std::map<std::string, Value>& entity_row,
                          const std::vector<std::string>& feature_refs,
                          const std::vector<client::FeatureValue>& values);

// "feature_view" -> "feature view", "data_source" -> "data source".
std::string KindName(const std::string& kind);

// apply: "Created entity origin", "Updated feature view route_stats",
// "Deleted feature service x"; empty for an unchanged object.
std::string ApplyChangeLine(const quiver::v1::ObjectChange& change);

// plan: "+ feature view x", "~ feature view y", "- entity z"; empty for an
// unchanged object.
std::string PlanChangeLine(const quiver::v1::ObjectChange& change);

// plan's last line: "Plan: 1 to create, 2 to update, 0 to delete".
std::string PlanSummaryLine(const std::vector<quiver::v1::ObjectChange>& changes);

// True if some change is not "unchanged".
bool HasChanges(const std::vector<quiver::v1::ObjectChange>& changes);

// The nodes table (ID ADDRESS STATE PARTITIONS PREFERRED LAST_HEARTBEAT, columns
// padded to their widest cell, nodes by id) followed by "epoch=N"; every line
// ends with a newline.
std::string NodesTable(const quiver::v1::ListNodesResponse& nodes);

// "tasks 3/11 done, 12345 rows".
std::string JobProgressLine(const quiver::v1::Job& job);

// "Materialized 12345 rows for a,b [2001-01-01T00:00:00Z, 2001-02-01T00:00:00Z) in 3.2 s".
// Views and START come from the job's windows (the earliest start) when it has
// any; otherwise from `views` and `start_us`.
std::string MaterializeSummaryLine(const quiver::v1::Job& job,
                                   const std::vector<std::string>& views, int64_t start_us,
                                   int64_t end_us, double seconds);

}  // namespace quiver::ctl

#endif  // QUIVER_COORDINATOR_CTL_OUTPUT_H_
