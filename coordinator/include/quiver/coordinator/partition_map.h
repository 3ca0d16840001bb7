// Partition assignment: which nodes replicate each of the Q partitions
// (docs/architecture.md, "Keys, partitions, replicas").
//
// Thread-safety: pure functions.
#ifndef QUIVER_COORDINATOR_PARTITION_MAP_H_
#define QUIVER_COORDINATOR_PARTITION_MAP_H_

#include <cstdint>
#include <vector>

namespace quiver::coordinator {

// assignment[p] = the replicas of partition p, distinct node ids, the first
// being the preferred replica.
using Assignment = std::vector<std::vector<uint32_t>>;

// Computes a new assignment of `num_partitions` partitions over `node_ids`
// with R_eff = min(replication_factor, node count) replicas each, starting from
// `current` (which may be empty or name nodes no longer listed):
// - existing replicas are kept where possible (minimal movement: adding a 4th
//   node to 3 with R = 3 moves a quarter of the slots);
// - every node holds floor or ceil of Q * R_eff / N replicas, and is the
//   preferred replica of floor or ceil of Q / N partitions;
// - deterministic: the same inputs give the same output.
// Returns an empty assignment when `node_ids` is empty.
Assignment AssignPartitions(const Assignment& current, uint32_t num_partitions,
                            std::vector<uint32_t> node_ids, uint32_t replication_factor);

}  // namespace quiver::coordinator

#endif  // QUIVER_COORDINATOR_PARTITION_MAP_H_
