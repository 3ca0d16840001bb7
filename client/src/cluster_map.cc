#include "quiver/client/cluster_map.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "quiver/keys/entity_key.h"

namespace quiver::client {

absl::StatusOr<ClusterMapView> ClusterMapView::Build(const quiver::v1::ClusterMap& map) {
  ClusterMapView view;
  view.proto_ = map;
  view.epoch_ = map.epoch();
  view.num_partitions_ = map.num_partitions();
  // Q = 0 is tolerated only for a map with no partitions yet (a default
  // proto): it routes nothing, and a later refresh replaces it.
  const bool empty_default = map.num_partitions() == 0 && map.partitions_size() == 0;
  if (!empty_default && Log2PartitionCount(map.num_partitions()) < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cluster map: num_partitions ", map.num_partitions(), " is not a power of two"));
  }
  if (map.partitions_size() != 0 &&
      static_cast<uint32_t>(map.partitions_size()) != map.num_partitions()) {
    return absl::InvalidArgumentError(absl::StrCat("cluster map: ", map.partitions_size(),
                                                   " partitions listed, expected ",
                                                   map.num_partitions()));
  }
  view.nodes_.assign(map.nodes().begin(), map.nodes().end());
  view.all_lean_ = !view.nodes_.empty();
  for (const auto& n : view.nodes_) view.all_lean_ = view.all_lean_ && !n.lookup_address().empty();
  for (size_t i = 0; i < view.nodes_.size(); ++i) {
    if (!view.node_pos_.emplace(view.nodes_[i].id(), i).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("cluster map: node ", view.nodes_[i].id(), " listed twice"));
    }
  }
  view.replicas_.reserve(map.partitions_size());
  view.all_replicas_.reserve(map.partitions_size());
  for (int p = 0; p < map.partitions_size(); ++p) {
    const auto& ids = map.partitions(p).node_ids();
    std::vector<uint32_t> all(ids.begin(), ids.end());
    const auto& pending_ids = map.partitions(p).pending_ids();
    for (uint32_t id : all) {
      if (!view.node_pos_.contains(id)) {
        return absl::InvalidArgumentError(
            absl::StrCat("cluster map: partition ", p, " names unknown node ", id));
      }
    }
    for (uint32_t id : pending_ids) {
      if (!view.node_pos_.contains(id) || std::find(all.begin(), all.end(), id) != all.end()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "cluster map: partition ", p, " has pending node ", id, ", unknown or an owner"));
      }
    }
    if (!pending_ids.empty()) {
      if (view.pending_.empty()) view.pending_.resize(map.partitions_size());
      view.pending_[p].assign(pending_ids.begin(), pending_ids.end());
    }
    view.fences_.push_back(map.partitions(p).fence_epoch());
    std::vector<uint32_t> up_first = all;
    std::stable_partition(up_first.begin(), up_first.end(),
                          [&](uint32_t id) { return view.IsUp(id); });
    view.replicas_.push_back(std::move(up_first));
    view.all_replicas_.push_back(std::move(all));
  }
  return view;
}

std::span<const uint32_t> ClusterMapView::ReplicasOf(uint32_t partition) const {
  if (partition >= replicas_.size()) return {};
  return replicas_[partition];
}

std::span<const uint32_t> ClusterMapView::AllReplicasOf(uint32_t partition) const {
  if (partition >= all_replicas_.size()) return {};
  return all_replicas_[partition];
}

std::span<const uint32_t> ClusterMapView::PendingOf(uint32_t partition) const {
  if (partition >= pending_.size()) return {};
  return pending_[partition];
}

uint64_t ClusterMapView::FenceOf(uint32_t partition) const {
  return partition < fences_.size() ? fences_[partition] : 0;
}

bool ClusterMapView::Owns(uint32_t node, uint32_t partition) const {
  const auto owners = AllReplicasOf(partition);
  return std::find(owners.begin(), owners.end(), node) != owners.end();
}

bool ClusterMapView::OwnsOrReceives(uint32_t node, uint32_t partition) const {
  const auto pending = PendingOf(partition);
  return Owns(node, partition) || std::find(pending.begin(), pending.end(), node) != pending.end();
}

const std::string& ClusterMapView::AddressOf(uint32_t node_id) const {
  static const std::string kEmpty;
  auto it = node_pos_.find(node_id);
  return it == node_pos_.end() ? kEmpty : nodes_[it->second].address();
}

const std::string& ClusterMapView::LookupAddressOf(uint32_t node_id) const {
  static const std::string kEmpty;
  auto it = node_pos_.find(node_id);
  return it == node_pos_.end() ? kEmpty : nodes_[it->second].lookup_address();
}

quiver::v1::NodeState ClusterMapView::StateOf(uint32_t node_id) const {
  auto it = node_pos_.find(node_id);
  return it == node_pos_.end() ? quiver::v1::NODE_STATE_UNKNOWN : nodes_[it->second].state();
}

bool ClusterMapView::IsUp(uint32_t node_id) const {
  const quiver::v1::NodeState state = StateOf(node_id);
  return state == quiver::v1::UP || state == quiver::v1::JOINING || state == quiver::v1::LEAVING;
}

bool ClusterMapView::TakesWrites(uint32_t node_id) const {
  const quiver::v1::NodeState state = StateOf(node_id);
  return state != quiver::v1::NODE_STATE_UNKNOWN && state != quiver::v1::DOWN;
}

}  // namespace quiver::client
