// Partition moves: the coordinator's rebalancing state machine
// (docs/architecture.md, "Rebalancing and epoch fencing"), as pure functions
// over quiver.v1.CoordinatorState so that every step can be persisted before
// it takes effect and replayed after a crash (tests/unit/coordinator/
// moves_test.cc injects a crash after every stage).
//
// Stages of a move (proto MoveStage): PREPARE → DOUBLE_WRITE → STREAM →
// READ_NEW → USE_NEW → removed. Map-changing transitions raise the epoch once
// per batch and set the changed partitions' fence_epoch and the moves'
// barrier_epoch to it; CompleteBarrier(E) ends every barrier at or below E.
// Design after ScyllaDB's tablet transitions (scylladb docs/dev/
// topology-over-raft.md) with epoch fencing as in its fence version.
//
// Thread-safety: pure functions; the caller serializes access to the state.
#ifndef QUIVER_COORDINATOR_SRC_MOVES_H_
#define QUIVER_COORDINATOR_SRC_MOVES_H_

#include <cstdint>
#include <span>
#include <vector>

#include "quiver.pb.h"

namespace quiver::coordinator {

struct MoveLimits {
  // Moves past PREPARE that may involve one node (as a target or as a
  // replica being replaced) at once.
  uint32_t max_moves_per_node = 128;
};

// Raises the map epoch by one and returns the new epoch.
uint64_t BumpEpoch(quiver::v1::CoordinatorState* state);

// Nodes the planner spreads partitions over: every node that is not LEAVING
// and not removed (DOWN ones keep their partitions until removed).
std::vector<uint32_t> PlanningNodes(const quiver::v1::CoordinatorState& state);

// Adds a PREPARE move for every partition whose owners differ from
// AssignPartitions' balanced assignment over PlanningNodes and that is not
// moving already. Returns the number of moves added; updates the rebalance
// status (start time, total). `now_us`: unit µs since the epoch.
uint32_t PlanMoves(quiver::v1::CoordinatorState* state, int64_t now_us);

// One step of every move that can go on without a barrier:
// - a move in DOUBLE_WRITE or STREAM whose target is DOWN is aborted (its
//   pending replicas are dropped);
// - a STREAM move whose source went DOWN (or serves no reads) gets another
//   source and a new attempt;
// - PREPARE moves start (DOUBLE_WRITE), within `limits`, when their targets
//   and a source are not DOWN;
// - STREAM moves whose stream is done flip to READ_NEW;
// - READ_NEW moves whose barrier completed drop their leaving replicas
//   (USE_NEW).
// Map changes raise the epoch once. Returns whether the state changed.
bool AdvanceMoves(quiver::v1::CoordinatorState* state, const MoveLimits& limits);

// The epoch a barrier must reach for the moves and recoveries waiting on
// one (the largest pending barrier_epoch / recovery_epoch); 0 when none.
uint64_t PendingBarrier(const quiver::v1::CoordinatorState& state);

// Every node that is not DOWN adopted a map of epoch >= `epoch` and drained
// older writes: ends the barriers at or below it. DOUBLE_WRITE moves start
// streaming; USE_NEW moves are done (removed; their stream counts added to
// the rebalance status); recoveries become fenced. Then JOINING nodes that
// own a partition and are no move's target become UP, and removed nodes
// that nothing names any more are forgotten. Returns whether the state
// changed.
bool CompleteBarrier(quiver::v1::CoordinatorState* state, uint64_t epoch, int64_t now_us);

// Node states that follow from the map and the moves: a JOINING node that
// owns a partition and is no move's target becomes UP; a removed node that
// nothing names any more is forgotten. Raises the epoch when either
// happened. Returns whether the state changed.
bool SettleNodes(quiver::v1::CoordinatorState* state);

// The streams `node` must run now (moves in STREAM targeting it whose
// stream is not done), with their sources' addresses.
std::vector<quiver::v1::StreamTask> StreamTasksFor(const quiver::v1::CoordinatorState& state,
                                                   uint32_t node);

// Applies a node's stream reports: progress (rows, bytes) of the current
// attempt, and `streamed` when done. Reports of other attempts or unknown
// moves are ignored. Returns whether a stream finished (worth persisting).
bool ApplyStreamReports(quiver::v1::CoordinatorState* state, uint32_t node,
                        const google::protobuf::RepeatedPtrField<quiver::v1::StreamReport>& reports);

// A write failed on `node` while other replicas took it: every STREAM move
// targeting it starts its stream over (new attempt), so the copy is taken
// after the write. Returns whether any move restarted.
bool RestartStreamsTo(quiver::v1::CoordinatorState* state, uint32_t node);

// The rebalance status with live counts (active moves, streamed so far,
// under-replicated partitions).
quiver::v1::RebalanceStatus RebalanceStatusOf(const quiver::v1::CoordinatorState& state);

// Whether `node` owns partition `p` (node_ids), and whether it owns or
// receives it (node_ids or pending_ids).
bool Owns(const quiver::v1::PartitionReplicas& p, uint32_t node);
bool Names(const quiver::v1::PartitionReplicas& p, uint32_t node);

// Partitions and moves naming `node` (as owner, pending replica, or in a
// move's old or new replicas).
uint32_t PartitionsNaming(const quiver::v1::CoordinatorState& state, uint32_t node);
bool InAnyMove(const quiver::v1::CoordinatorState& state, uint32_t node);

}  // namespace quiver::coordinator

#endif  // QUIVER_COORDINATOR_SRC_MOVES_H_
