// Repair: a replica that missed writes (it was down, cut off, or failed a
// write that still met its quorum elsewhere) catches up by copying, for every
// online view and every partition it replicates, the stored rows of a healthy
// replica and merging them under last-writer-wins (docs/architecture.md,
// "Repair"). Rows it already holds that are newer stay; the copy is the
// peer's merged state, so after a repair the node holds at least every row
// its source held when the scan passed it.
//
// The data path is NodeService.ScanPartitions on the source (RowStore::ScanRaw)
// and RowStore::MergeRaw here, one page (about 1 MiB) at a time; consecutive
// partitions with the same source are one range.
//
// Thread-safety: RepairFromPeers is a pure function of its arguments; run one
// at a time per store (they would only duplicate work).
#ifndef QUIVER_NODE_REPAIR_H_
#define QUIVER_NODE_REPAIR_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quiver.pb.h"
#include "quiver/client/cluster_map.h"
#include "quiver/client/registry_index.h"
#include "quiver/storage/row_store.h"

namespace quiver::node {

// Reads one page from the node at `address` (gRPC in production, a fake in
// tests). Errors: whatever the transport or the peer returned.
using ScanPartitionsFn = std::function<absl::StatusOr<quiver::v1::ScanPartitionsResponse>(
    const std::string& address, const quiver::v1::ScanPartitionsRequest& request)>;

// A run of consecutive partitions [begin, end) read from one source node.
struct RepairRange {
  uint32_t begin = 0;
  uint32_t end = 0;
  uint32_t source = 0;  // node id
};

// The ranges `self` should read: each partition `self` replicates goes to its
// first replica (map order) that is UP and is not `self`; consecutive
// partitions with the same source merge into one range. Partitions with no
// such replica are listed in `*unsourced` (if given) and skipped: their only
// copies are here or on nodes that are down.
std::vector<RepairRange> PlanRepair(const client::ClusterMapView& map, uint32_t self,
                                    std::vector<uint32_t>* unsourced = nullptr);

struct RepairStats {
  uint64_t rows = 0;   // rows merged (each page's rows, over every view)
  uint64_t pages = 0;  // ScanPartitions calls
  uint32_t partitions = 0;          // partitions copied from a source
  uint32_t unsourced_partitions = 0;  // replicated here, no UP peer to copy from
};

// Copies every online view of `registry` over the ranges of PlanRepair.
// `page_bytes` is the page size asked for (ScanPartitionsRequest.max_bytes).
// Every request carries map.epoch() (a source refuses older epochs than its
// partitions' fences with kAborted: refresh the map and repair again).
// `cancelled` (may be empty) is polled between pages.
// Errors: the first failure of a page read or a merge (the repair is then
// incomplete and must be run again), kCancelled. A view unknown to the
// source (its registry lags) is an error too: retry later.
absl::StatusOr<RepairStats> RepairFromPeers(const client::ClusterMapView& map,
                                            const client::RegistryIndex& registry, uint32_t self,
                                            storage::RowStore& store,
                                            const ScanPartitionsFn& scan,
                                            uint64_t page_bytes = 1u << 20,
                                            const std::function<bool()>& cancelled = {});

}  // namespace quiver::node

#endif  // QUIVER_NODE_REPAIR_H_
