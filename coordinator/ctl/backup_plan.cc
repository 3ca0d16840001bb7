#include "ctl/backup_plan.h"

#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace quiver::ctl {

absl::StatusOr<std::pair<std::vector<quiver::v1::ViewSummary>, RestoreSources>> PlanBackup(
    const quiver::v1::ClusterMap& map, const std::vector<quiver::v1::NodeBackup>& nodes) {
  if (map.partitions_size() == 0) {
    return absl::InvalidArgumentError("the cluster map assigns no partitions");
  }
  // (node, view) -> partition -> (rows, checksum)
  std::map<std::pair<uint32_t, std::string>, std::map<uint32_t, std::pair<uint64_t, uint64_t>>>
      digests;
  std::set<std::string> views;
  std::set<uint32_t> backed_up;
  for (const auto& n : nodes) {
    backed_up.insert(n.node_id());
    for (const auto& v : n.views()) {
      views.insert(v.view());
      auto& parts = digests[{n.node_id(), v.view()}];
      for (const auto& p : v.partitions()) parts[p.partition()] = {p.rows(), p.checksum()};
    }
  }
  std::vector<std::vector<uint32_t>> replicas(static_cast<size_t>(map.partitions_size()));
  for (int p = 0; p < map.partitions_size(); ++p) {
    for (uint32_t id : map.partitions(p).node_ids()) {
      if (backed_up.count(id)) replicas[static_cast<size_t>(p)].push_back(id);
    }
    if (replicas[static_cast<size_t>(p)].empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("partition ", p, " has no replica that was backed up (are its nodes UP?)"));
    }
  }
  std::vector<quiver::v1::ViewSummary> summaries;
  RestoreSources sources;
  for (const std::string& view : views) {
    quiver::v1::ViewSummary s;
    s.set_view(view);
    uint64_t rows = 0, checksum = 0;
    for (uint32_t p = 0; p < replicas.size(); ++p) {
      std::vector<std::pair<uint64_t, uint64_t>> seen;
      for (uint32_t id : replicas[p]) {
        std::pair<uint64_t, uint64_t> d{0, 0};
        if (auto it = digests.find({id, view}); it != digests.end()) {
          if (auto pit = it->second.find(p); pit != it->second.end()) d = pit->second;
        }
        if (seen.empty()) {
          rows += d.first;
          checksum += d.second;
        }
        if (std::find(seen.begin(), seen.end(), d) != seen.end()) continue;
        seen.push_back(d);
        if (d.first > 0) sources[view][id].push_back(p);
      }
      if (seen.size() > 1) s.set_divergent_partitions(s.divergent_partitions() + 1);
    }
    s.set_rows(rows);
    s.set_checksum(checksum);
    summaries.push_back(std::move(s));
  }
  return std::make_pair(std::move(summaries), std::move(sources));
}

std::vector<std::pair<uint32_t, uint32_t>> PartitionRanges(const std::vector<uint32_t>& partitions) {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  for (uint32_t p : partitions) {
    if (!out.empty() && out.back().second == p) {
      out.back().second = p + 1;
    } else {
      out.emplace_back(p, p + 1);
    }
  }
  return out;
}

std::string BackupId(int64_t now_us) {
  return absl::FormatTime("%Y%m%dT%H%M%SZ", absl::FromUnixMicros(now_us), absl::UTCTimeZone());
}

}  // namespace quiver::ctl
