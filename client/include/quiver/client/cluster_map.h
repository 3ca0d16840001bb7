// ClusterMapView: the partition map as routing needs it, built from the wire's
// quiver.v1.ClusterMap (docs/architecture.md, "Keys, partitions, replicas").
//
// Thread-safety: immutable after construction; share through shared_ptr<const>.
#ifndef QUIVER_CLIENT_CLUSTER_MAP_H_
#define QUIVER_CLIENT_CLUSTER_MAP_H_

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "quiver.pb.h"

namespace quiver::client {

class ClusterMapView {
 public:
  // Errors: kInvalidArgument when Q is not a power of two, the partition list
  // is neither empty nor of size Q, or a replica names an unknown node or a
  // node is listed twice. A default map (Q = 0, no partitions) is accepted and
  // routes nothing.
  static absl::StatusOr<ClusterMapView> Build(const quiver::v1::ClusterMap& map);

  uint64_t epoch() const { return epoch_; }
  uint32_t num_partitions() const { return num_partitions_; }
  bool has_partitions() const { return !replicas_.empty(); }

  // The owners of `partition` in preference order, nodes that serve reads
  // (IsUp) before others (order among them as the coordinator gave it).
  // Empty if no map yet.
  std::span<const uint32_t> ReplicasOf(uint32_t partition) const;
  // Every owner of `partition`, including DOWN ones, in the coordinator's
  // order (PartitionReplicas.node_ids).
  std::span<const uint32_t> AllReplicasOf(uint32_t partition) const;
  // The pending replicas of `partition` (PartitionReplicas.pending_ids: a
  // move's target before the flip, its leaving replica after): they take
  // writes and serve no reads of it. Empty for a partition not moving.
  std::span<const uint32_t> PendingOf(uint32_t partition) const;
  // The partition's fence epoch: requests stamped with an older map epoch
  // are refused by its replicas (docs/architecture.md, "Rebalancing and
  // epoch fencing"). 0 if unknown.
  uint64_t FenceOf(uint32_t partition) const;
  // Whether `node` owns `partition` (is in node_ids).
  bool Owns(uint32_t node, uint32_t partition) const;
  // Whether `node` owns or receives `partition` (node_ids or pending_ids).
  bool OwnsOrReceives(uint32_t node, uint32_t partition) const;

  // The node's gRPC address; "" if unknown.
  const std::string& AddressOf(uint32_t node_id) const;
  // The node's lean lookup address (docs/architecture.md); "" if unknown or
  // the node serves none (lookups then use gRPC).
  const std::string& LookupAddressOf(uint32_t node_id) const;
  // UP, JOINING or LEAVING: serves reads of the partitions it owns, and
  // takes writes.
  bool IsUp(uint32_t node_id) const;
  // Not DOWN (UP, RECOVERING, JOINING, LEAVING): takes writes (a recovering
  // replica must not miss more of them), even while it serves no reads.
  bool TakesWrites(uint32_t node_id) const;
  // The node's state; NODE_STATE_UNKNOWN for an unknown node.
  quiver::v1::NodeState StateOf(uint32_t node_id) const;
  // True when every node of the map advertises a lean lookup address.
  bool AllServeLean() const { return all_lean_; }
  const std::vector<quiver::v1::NodeInfo>& nodes() const { return nodes_; }
  const quiver::v1::ClusterMap& proto() const { return proto_; }

 private:
  quiver::v1::ClusterMap proto_;
  uint64_t epoch_ = 0;
  uint32_t num_partitions_ = 0;
  std::vector<quiver::v1::NodeInfo> nodes_;
  std::unordered_map<uint32_t, size_t> node_pos_;
  std::vector<std::vector<uint32_t>> replicas_;  // UP first
  std::vector<std::vector<uint32_t>> all_replicas_;
  std::vector<std::vector<uint32_t>> pending_;  // empty when no partition is moving
  std::vector<uint64_t> fences_;
  bool all_lean_ = false;
};

}  // namespace quiver::client

#endif  // QUIVER_CLIENT_CLUSTER_MAP_H_
