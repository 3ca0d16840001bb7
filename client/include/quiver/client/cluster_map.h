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

  // The replicas of `partition` in preference order, UP nodes before others
  // (order among UP nodes as the coordinator gave it). Empty if no map yet.
  std::span<const uint32_t> ReplicasOf(uint32_t partition) const;
  // Every replica of `partition`, including DOWN ones, in the coordinator's order.
  std::span<const uint32_t> AllReplicasOf(uint32_t partition) const;

  // The node's gRPC address; "" if unknown.
  const std::string& AddressOf(uint32_t node_id) const;
  // The node's lean lookup address (docs/architecture.md); "" if unknown or
  // the node serves none (lookups then use gRPC).
  const std::string& LookupAddressOf(uint32_t node_id) const;
  // UP: serves reads and takes writes.
  bool IsUp(uint32_t node_id) const;
  // UP or RECOVERING: takes writes (a recovering replica must not miss more
  // of them), even while it serves no reads.
  bool TakesWrites(uint32_t node_id) const;
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
  bool all_lean_ = false;
};

}  // namespace quiver::client

#endif  // QUIVER_CLIENT_CLUSTER_MAP_H_
