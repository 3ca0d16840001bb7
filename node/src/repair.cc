#include "quiver/node/repair.h"

#include <spdlog/spdlog.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace quiver::node {

std::vector<RepairRange> PlanRepair(const client::ClusterMapView& map, uint32_t self,
                                    std::vector<uint32_t>* unsourced) {
  std::vector<RepairRange> ranges;
  for (uint32_t p = 0; p < map.num_partitions(); ++p) {
    bool replicated_here = false;
    uint32_t source = 0;
    for (uint32_t node : map.AllReplicasOf(p)) {
      if (node == self) {
        replicated_here = true;
      } else if (source == 0 && map.IsUp(node) && !map.AddressOf(node).empty()) {
        source = node;
      }
    }
    if (!replicated_here) continue;
    if (source == 0) {
      if (unsourced != nullptr) unsourced->push_back(p);
      continue;
    }
    if (!ranges.empty() && ranges.back().end == p && ranges.back().source == source) {
      ranges.back().end = p + 1;
    } else {
      ranges.push_back({p, p + 1, source});
    }
  }
  return ranges;
}

absl::StatusOr<RepairStats> RepairFromPeers(const client::ClusterMapView& map,
                                            const client::RegistryIndex& registry, uint32_t self,
                                            storage::RowStore& store,
                                            const ScanPartitionsFn& scan, uint64_t page_bytes,
                                            const std::function<bool()>& cancelled) {
  std::vector<uint32_t> unsourced;
  const std::vector<RepairRange> ranges = PlanRepair(map, self, &unsourced);
  RepairStats stats;
  stats.unsourced_partitions = static_cast<uint32_t>(unsourced.size());
  for (const RepairRange& r : ranges) stats.partitions += r.end - r.begin;
  std::vector<storage::RawRow> rows;
  for (const auto& fv : registry.registry().feature_views()) {
    if (!fv.online()) continue;
    for (const RepairRange& range : ranges) {
      const std::string& address = map.AddressOf(range.source);
      quiver::v1::ScanPartitionsRequest req;
      req.set_view(fv.name());
      req.set_partition_begin(range.begin);
      req.set_partition_end(range.end);
      req.set_max_bytes(page_bytes);
      req.set_epoch(map.epoch());
      while (true) {
        if (cancelled && cancelled()) return absl::CancelledError("repair cancelled");
        absl::StatusOr<quiver::v1::ScanPartitionsResponse> page = scan(address, req);
        ++stats.pages;
        if (!page.ok()) {
          return absl::Status(page.status().code(),
                              absl::StrCat("repair of view ", fv.name(), " partitions [",
                                           range.begin, ", ", range.end, ") from node ",
                                           range.source, ": ", page.status().message()));
        }
        rows.clear();
        rows.reserve(page->rows_size());
        for (quiver::v1::StoredRow& row : *page->mutable_rows()) {
          rows.push_back({std::move(*row.mutable_key()), std::move(*row.mutable_value())});
        }
        if (absl::Status st = store.MergeRaw(fv.name(), rows); !st.ok()) return st;
        stats.rows += rows.size();
        if (page->done() || rows.empty()) break;
        req.set_after(rows.back().key);
      }
    }
  }
  spdlog::info("repair: {} rows in {} pages over {} partitions ({} without an UP peer)",
               stats.rows, stats.pages, stats.partitions, stats.unsourced_partitions);
  return stats;
}

}  // namespace quiver::node
