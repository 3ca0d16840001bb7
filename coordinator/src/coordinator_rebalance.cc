// Coordinator: rebalancing — the driver step (DriveOnce) and the operator
// RPCs Rebalance, DrainNode and RemoveNode (docs/architecture.md,
// "Rebalancing and epoch fencing"). The state machine itself is moves.h.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "moves.h"
#include "quiver/coordinator/coordinator.h"

namespace quiver::coordinator {

absl::Status Coordinator::DriveOnce(const BarrierFn& barrier) {
  MoveLimits limits;
  limits.max_moves_per_node = std::max<uint32_t>(1, options_.max_moves_per_node);
  absl::Status s = Mutate([&](quiver::v1::CoordinatorState& st) -> absl::StatusOr<bool> {
    const uint64_t epoch = st.map().epoch();
    bool changed = false;
    // Plan when asked, or (auto) when the set of nodes to spread over
    // changed since the last plan: a balanced map plans nothing, and is not
    // recomputed every step.
    const std::vector<uint32_t> planning = PlanningNodes(st);
    if (st.moves_size() == 0 && st.registry().version() > 0 &&
        (plan_requested_.load() || (options_.auto_rebalance && planning != planned_for_))) {
      plan_requested_.store(false);
      planned_for_ = planning;
      changed = PlanMoves(&st, Now()) > 0;
    }
    const int64_t now = Now();
    if (now - last_move_step_us_ >= options_.move_step_interval_us) {
      const uint64_t before = st.map().epoch();
      changed = AdvanceMoves(&st, limits) || changed;
      if (st.map().epoch() != before) last_move_step_us_ = now;
    }
    changed = SettleNodes(&st) || changed;
    return changed || st.map().epoch() != epoch;
  });
  if (!s.ok()) return s;
  const quiver::v1::CoordinatorState snapshot = Snapshot();
  const uint64_t target = PendingBarrier(snapshot);
  if (target == 0) return absl::OkStatus();
  quiver::v1::ClusterMap map = snapshot.map();
  FillHeartbeats(&map);
  std::vector<quiver::v1::NodeInfo> nodes;
  for (const auto& n : map.nodes()) {
    if (n.state() != quiver::v1::DOWN && !n.address().empty()) nodes.push_back(n);
  }
  if (!barrier(map, nodes)) return absl::OkStatus();  // retried on the next step
  return Mutate([&](quiver::v1::CoordinatorState& st) -> absl::StatusOr<bool> {
    return CompleteBarrier(&st, map.epoch(), Now());
  });
}

uint32_t Coordinator::PlanNowOrLater(quiver::v1::CoordinatorState& st) {
  if (st.moves_size() > 0) {
    plan_requested_.store(true);  // DriveOnce plans once the running moves are done
    return 0;
  }
  return PlanMoves(&st, Now());
}

absl::StatusOr<quiver::v1::RebalanceResponse> Coordinator::Rebalance() {
  quiver::v1::RebalanceResponse resp;
  absl::Status s = Mutate([&](quiver::v1::CoordinatorState& st) -> absl::StatusOr<bool> {
    const uint64_t epoch = st.map().epoch();
    uint32_t planned = 0;
    if (st.registry().version() == 0 && st.moves_size() == 0) {
      RecomputeMap(st);
    } else {
      planned = PlanNowOrLater(st);
    }
    resp.set_moves_planned(planned);
    *resp.mutable_status() = RebalanceStatusOf(st);
    return planned > 0 || st.map().epoch() != epoch;
  });
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<quiver::v1::DrainNodeResponse> Coordinator::DrainNode(
    const quiver::v1::DrainNodeRequest& req) {
  quiver::v1::DrainNodeResponse resp;
  absl::Status s = Mutate([&](quiver::v1::CoordinatorState& st) -> absl::StatusOr<bool> {
    quiver::v1::NodeInfo* node = FindNode(st, req.node_id());
    if (node == nullptr || node->removed()) {
      return absl::NotFoundError(absl::StrCat("unknown node ", req.node_id()));
    }
    if (node->state() == quiver::v1::DOWN) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node ", node->id(), " is DOWN and cannot hand its data over: remove it instead "
          "(quiverctl nodes remove ", node->id(), "; its partitions are copied from their "
          "other replicas)"));
    }
    if (node->state() == quiver::v1::RECOVERING) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node ", node->id(), " is RECOVERING (copying writes it missed); drain it once it is UP"));
    }
    uint32_t others = 0;
    for (const auto& n : st.map().nodes()) {
      others += n.id() != node->id() && n.state() != quiver::v1::LEAVING && !n.removed();
    }
    if (others == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("node ", node->id(), " is the only node: no other node can take its data"));
    }
    bool changed = false;
    if (node->state() != quiver::v1::LEAVING) {
      node->set_state(quiver::v1::LEAVING);
      BumpEpoch(&st);
      changed = true;
      spdlog::info("node {} is LEAVING (drain)", node->id());
    }
    const uint32_t planned = PlanNowOrLater(st);
    resp.set_moves_planned(planned);
    *resp.mutable_status() = RebalanceStatusOf(st);
    return changed || planned > 0;
  });
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<quiver::v1::RemoveNodeResponse> Coordinator::RemoveNode(
    const quiver::v1::RemoveNodeRequest& req) {
  quiver::v1::RemoveNodeResponse resp;
  absl::Status s = Mutate([&](quiver::v1::CoordinatorState& st) -> absl::StatusOr<bool> {
    quiver::v1::NodeInfo* node = FindNode(st, req.node_id());
    if (node == nullptr) return absl::NotFoundError(absl::StrCat("unknown node ", req.node_id()));
    const uint32_t id = node->id();
    const uint32_t holds = PartitionsNaming(st, id);
    const bool idle = holds == 0 && !InAnyMove(st, id);
    if (idle) {
      auto* nodes = st.mutable_map()->mutable_nodes();
      nodes->erase(std::remove_if(nodes->begin(), nodes->end(),
                                  [id](const quiver::v1::NodeInfo& n) { return n.id() == id; }),
                   nodes->end());
      BumpEpoch(&st);
      resp.set_forgotten(true);
      spdlog::info("node {} removed", id);
      return true;
    }
    if (node->state() != quiver::v1::DOWN) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node ", id, " is ", quiver::v1::NodeState_Name(node->state()), " and holds ", holds,
          " partitions: drain it first (quiverctl nodes drain ", id, " --wait), then remove it"));
    }
    if (!node->removed()) {
      node->set_removed(true);
      BumpEpoch(&st);
      spdlog::warn("node {} (DOWN) removed: its {} partitions get new replicas from the survivors",
                   id, holds);
    }
    const uint32_t planned = PlanNowOrLater(st);
    resp.set_moves_planned(planned);
    return true;
  });
  if (!s.ok()) return s;
  return resp;
}

}  // namespace quiver::coordinator
