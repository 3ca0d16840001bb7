// Coordinator: the control plane's state machine behind CoordinatorService
// (proto/quiver.proto): membership and heartbeats, the partition map, the
// registry, and materialization jobs with leased tasks.
//
// State lives in one quiver.v1.CoordinatorState, persisted to
// DATA_DIR/state.pb (temp file + fsync + rename) after every change. A change
// is made on a copy, the copy is persisted without holding the lock readers
// take, and only then published: when persisting fails, memory keeps the old
// state (nothing runs ahead of disk) and the call returns the error.
// Heartbeat timestamps and stream progress live in memory only.
//
// Rebalancing (docs/architecture.md, "Rebalancing and epoch fencing"):
// partition moves are planned here (auto when a node joins a cluster with a
// registry, on Rebalance, DrainNode, RemoveNode) and driven by DriveOnce,
// which the server calls periodically with a barrier function that reaches
// every live node (NodeService.AdoptMap).
//
// Restart policy: after a restart every node keeps its persisted state, and
// UP nodes get a fresh grace period (their last heartbeat is taken as "now"),
// so clients keep routing to them; a node that does not heartbeat within the
// timeout is then marked DOWN as usual. Leased tasks stay leased until their
// lease expires.
//
// Time comes from an injectable clock (unit: microseconds since the epoch), so
// tests drive heartbeat timeouts and lease expiry without sleeping.
//
// Thread-safety: every method is thread-safe (one mutex); StartMaterialization
// reads Parquet metadata outside the lock.
#ifndef QUIVER_COORDINATOR_COORDINATOR_H_
#define QUIVER_COORDINATOR_COORDINATOR_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "quiver.pb.h"

namespace quiver::storage {
class OfflineStore;
}

namespace quiver::coordinator {

// How materialization cuts a large range of Parquet rows into tasks.
enum class TaskSplit {
  kEntityHash,  // by hash of the entity key: exact per-entity dedup (default)
  kRowRanges,   // by adjacent row groups
};

struct CoordinatorOptions {
  std::string data_dir;  // required; created if missing
  uint32_t num_partitions = 4096;  // Q, a power of two; fixed when the state is created
  uint32_t replication_factor = 3;  // R; capped by the node count
  int64_t heartbeat_timeout_us = 2'000'000;  // unit: µs without heartbeat before DOWN
  // unit: µs a leased task stays with its node without renewal. The node's
  // heartbeats renew the leases of the tasks it runs (RunningTask) once
  // less than half is left, so only a node that stops heartbeating (dead,
  // cut off) loses its task to another.
  int64_t lease_us = 30'000'000;
  uint32_t max_task_attempts = 5;  // leases of one task before its job fails
  // Adjacent row groups merge into tasks up to this many rows. Smaller tasks
  // spread one file over more nodes; larger ones read the file fewer times
  // (a hash-split task reads the whole range). A task's memory is bounded
  // either way: DuckDB spills its window to disk past its memory limit.
  uint64_t max_task_rows = 20'000'000;
  // How a large range of rows is cut into tasks (planner.h).
  TaskSplit task_split = TaskSplit::kEntityHash;
  size_t max_finished_jobs = 100;  // older finished jobs are forgotten
  // unit: µs since the Unix epoch. Empty: the system clock.
  std::function<int64_t()> clock;
  // Plan partition moves by itself when the map is unbalanced (a node
  // joined); off: only quiverctl rebalance / drain / remove plan.
  bool auto_rebalance = true;
  // Moves past PREPARE per node at once (as target or replaced replica).
  uint32_t max_moves_per_node = 128;
  // At most one map-changing move step per this interval: every step is an
  // epoch every client and node fetches, and a barrier; batching streamed
  // moves into fewer flips keeps that churn off the lookup path. unit: µs.
  int64_t move_step_interval_us = 500'000;
  // How long a node waits in a barrier for stale ingest sessions before it
  // fences them (AdoptMapRequest.drain_timeout_ms). unit: ms.
  uint32_t barrier_drain_ms = 20000;
};

// A barrier: pushes `map` to every node in `nodes` (NodeService.AdoptMap) and
// returns true when each answered with an epoch >= map.epoch() (it adopted
// the map and drained older writes). Blocks.
using BarrierFn = std::function<bool(const quiver::v1::ClusterMap& map,
                                     const std::vector<quiver::v1::NodeInfo>& nodes)>;

// Gauges for /metrics.
struct CoordinatorStats {
  int64_t nodes_up = 0;
  int64_t nodes_down = 0;
  uint64_t epoch = 0;
  uint64_t registry_version = 0;
  int64_t jobs_running = 0;
  int64_t tasks_pending = 0;  // not yet done: pending or leased
  int64_t moves_active = 0;   // partition moves past PREPARE
  int64_t moves_pending = 0;  // planned, not started
  int64_t under_replicated = 0;  // partitions with fewer than R owners serving reads
  uint64_t rows_streamed = 0;    // by the current or last rebalance
  uint64_t bytes_streamed = 0;
};

class Coordinator {
 public:
  // Loads DATA_DIR/state.pb if it exists, else starts empty (nothing is
  // written until the first change). Errors: kInvalidArgument (bad options),
  // kDataLoss (state file unreadable or corrupt; it is left untouched),
  // kFailedPrecondition (another coordinator holds DATA_DIR/LOCK),
  // kInternal (DuckDB cannot start, folder cannot be created).
  static absl::StatusOr<std::unique_ptr<Coordinator>> Open(CoordinatorOptions options);
  ~Coordinator();

  // Node 0 gets a new id; a known id re-registers (its address may change).
  // A new node of a cluster with no registry gets its partitions at once
  // (UP); with a registry it joins as JOINING and holds nothing until moves
  // make it a replica. Node 0 on the address of a known node replaces it
  // (takes its id; a wiped data directory): it comes back like a known node.
  // A known node comes back RECOVERING (it may have missed writes while it
  // was away; its recovery number grows, its partitions' fences rise, and
  // it repairs once the barrier completed) unless no other replica shares
  // its partitions (then UP).
  // Errors: kInvalidArgument (no address), kFailedPrecondition (the id or
  // the address belongs to a removed node — an id below next_node_id that
  // the map no longer lists was removed, ids are never reused; not
  // retryable).
  absl::StatusOr<quiver::v1::RegisterResponse> Register(const quiver::v1::RegisterRequest& req);
  // A DOWN node that heartbeats again comes back as Register's known nodes
  // do; a RECOVERING node reporting repaired_recovery equal to its recovery
  // number becomes UP. Stream reports advance its moves. The response
  // carries the node's state, recovery and the streams it must run.
  // Errors: kNotFound for an unknown node (it should Register).
  absl::StatusOr<quiver::v1::HeartbeatResponse> Heartbeat(const quiver::v1::HeartbeatRequest& req);

  // One step of the rebalancing and recovery machinery: plans moves when
  // asked (or auto_rebalance and the map is unbalanced), advances moves,
  // and runs one barrier with `barrier` when a move or a recovery waits for
  // one. Each state change is persisted before the next action. Blocks for
  // the barrier. Errors: as persistence (the step is retried next time).
  absl::Status DriveOnce(const BarrierFn& barrier);

  // quiverctl rebalance: plans moves if the map is unbalanced and none are
  // running. Errors: as persistence.
  absl::StatusOr<quiver::v1::RebalanceResponse> Rebalance();
  // quiverctl nodes drain: the node becomes LEAVING and moves take its
  // replicas elsewhere. Errors: kNotFound, kFailedPrecondition (DOWN or
  // RECOVERING node, or no other node to take its partitions).
  absl::StatusOr<quiver::v1::DrainNodeResponse> DrainNode(const quiver::v1::DrainNodeRequest& req);
  // quiverctl nodes remove: forgets a node that holds nothing; a DOWN node is
  // marked removed and its partitions get new replicas streamed from the
  // survivors, then it is forgotten. Errors: kNotFound, kFailedPrecondition
  // (a node that is not DOWN and still holds data: drain it first).
  absl::StatusOr<quiver::v1::RemoveNodeResponse> RemoveNode(const quiver::v1::RemoveNodeRequest& req);
  // Marks nodes DOWN whose last heartbeat is older than the timeout. Called
  // periodically by the server. Errors: as persistence.
  absl::Status Tick();

  quiver::v1::ClusterMap GetClusterMap() const;
  quiver::v1::ListNodesResponse ListNodes() const;

  // Validates (ValidateRegistry) and diffs against the current registry;
  // unless dry_run, stores it as a new version when anything changed.
  // Errors: kInvalidArgument (invalid registry), kFailedPrecondition (another
  // project than the stored one).
  absl::StatusOr<quiver::v1::ApplyRegistryResponse> ApplyRegistry(
      const quiver::v1::ApplyRegistryRequest& req);
  quiver::v1::Registry GetRegistry() const;

  // A writer saw node `req.node_id` fail a write other replicas took: an UP
  // or RECOVERING node that owns partitions becomes RECOVERING with a new
  // recovery number (it repairs again from its peers before serving reads;
  // docs/architecture.md, "Repair") unless its current recovery's repair has
  // not started yet (it will see the write); streams to it start over; a
  // DOWN node stays DOWN (it repairs when it returns).
  // Errors: kNotFound (unknown node).
  absl::StatusOr<quiver::v1::ReportMissedWritesResponse> ReportMissedWrites(
      const quiver::v1::ReportMissedWritesRequest& req);

  // The materialized intervals of every view (what materialize-incremental
  // continues from, and what quiverctl verify compares).
  quiver::v1::GetIntervalsResponse GetIntervals() const;

  // Restore onto a fresh cluster (quiverctl restore): takes a backed-up
  // registry as it was, keeping its version and every view's schema version
  // (restored rows carry them), and the materialized intervals of its views.
  // Errors: kFailedPrecondition (this coordinator already has a registry or
  // jobs: a restore never merges into a live cluster), kInvalidArgument
  // (invalid registry, an interval of an unknown view or with start >= end).
  absl::StatusOr<quiver::v1::RestoreResponse> Restore(const quiver::v1::RestoreRequest& req);

  // Plans a job (see proto MaterializeRequest). Nothing is stored when it
  // fails. Errors: kFailedPrecondition (empty registry), kInvalidArgument
  // (unknown or offline view, start >= end, schema/type mismatch with the
  // Parquet files), kNotFound (no file or missing file).
  absl::StatusOr<quiver::v1::Job> StartMaterialization(const quiver::v1::MaterializeRequest& req);
  // Errors: kNotFound.
  absl::StatusOr<quiver::v1::Job> GetJob(uint64_t job_id) const;
  // The next pending task, or one whose lease expired, for an UP node; an
  // unset task when there is nothing (or the node is unknown or DOWN).
  absl::StatusOr<quiver::v1::LeaseTaskResponse> LeaseTask(const quiver::v1::LeaseTaskRequest& req);
  // Records a task's outcome; stale completions (another attempt or node) are
  // ignored. Errors: kNotFound (unknown job or task).
  absl::Status CompleteTask(const quiver::v1::CompleteTaskRequest& req);

  CoordinatorStats Stats() const;
  // A copy of the whole state (tests, backups).
  quiver::v1::CoordinatorState State() const;

  // Tests: makes every later persist fail with kInternal (disk trouble).
  void FailPersistForTesting(bool fail);

 private:
  Coordinator(CoordinatorOptions options, std::unique_ptr<storage::OfflineStore> offline);
  int64_t Now() const { return options_.clock(); }

  // The one way state changes: `change` edits a copy of the state and
  // returns whether it changed anything (or an error: nothing changes).
  // A changed copy is persisted outside mu_, then published. Serialized by
  // write_mu_.
  using Change = std::function<absl::StatusOr<bool>(quiver::v1::CoordinatorState&)>;
  absl::Status Mutate(const Change& change) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Persist(quiver::v1::CoordinatorState& state);
  quiver::v1::CoordinatorState Snapshot() const ABSL_LOCKS_EXCLUDED(mu_);

  // Helpers over a state copy (inside Mutate).
  void RecomputeMap(quiver::v1::CoordinatorState& s);
  static quiver::v1::NodeInfo* FindNode(quiver::v1::CoordinatorState& s, uint32_t id);
  // A known node is back (restart, or heartbeats after DOWN): RECOVERING
  // with a new recovery number and its partitions fenced at a new epoch, or
  // UP when it shares no partition. Raises the epoch.
  void Return(quiver::v1::CoordinatorState& s, quiver::v1::NodeInfo* node);
  static quiver::v1::Job* FindJob(quiver::v1::CoordinatorState& s, uint64_t id);
  static const quiver::v1::Job* FindJob(const quiver::v1::CoordinatorState& s, uint64_t id);
  void FinishJob(quiver::v1::CoordinatorState& s, quiver::v1::Job* job, bool ok,
                 const std::string& error);
  void PruneJobs(quiver::v1::CoordinatorState& s);
  // Plans moves now when none run (returns how many), else asks DriveOnce
  // to plan once they are done (returns 0).
  uint32_t PlanNowOrLater(quiver::v1::CoordinatorState& st);
  // Attempts a task may take before its job fails, given its last error.
  uint32_t AttemptLimit(const std::string& error) const;
  // Indexes into s.pending_tasks() of the tasks in `running` (a heartbeat's
  // RunningTask list) that are still leased to `node_id` in that attempt and
  // have less than half of options_.lease_us left at `now`: the leases a
  // heartbeat renews (to now + lease_us). Does not change `s`.
  std::vector<int> LeasesToRenew(
      const quiver::v1::CoordinatorState& s, uint32_t node_id,
      const google::protobuf::RepeatedPtrField<quiver::v1::RunningTask>& running, int64_t now) const;
  // Last heartbeat of each node (µs), in memory only.
  int64_t LastHeartbeat(uint32_t id) const ABSL_LOCKS_EXCLUDED(hb_mu_);
  void Beat(uint32_t id, int64_t now) ABSL_LOCKS_EXCLUDED(hb_mu_);
  void FillHeartbeats(quiver::v1::ClusterMap* map) const;

  const CoordinatorOptions options_;
  const std::unique_ptr<storage::OfflineStore> offline_;
  int lock_fd_ = -1;  // flock on DATA_DIR/LOCK: one coordinator per data dir
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // serializes Mutate
  mutable absl::Mutex mu_;  // guards state_ against its swap; readers copy under it
  quiver::v1::CoordinatorState state_ ABSL_GUARDED_BY(mu_);
  mutable absl::Mutex hb_mu_;
  std::map<uint32_t, int64_t> heartbeats_ ABSL_GUARDED_BY(hb_mu_);
  // A rebalance was asked for while moves ran: plan again when they end.
  std::atomic<bool> plan_requested_{false};
  std::atomic<bool> fail_persist_{false};
  // The planning nodes of the last automatic plan (DriveOnce's thread only).
  std::vector<uint32_t> planned_for_;
  int64_t last_move_step_us_ = 0;  // DriveOnce's thread only
};

}  // namespace quiver::coordinator

#endif  // QUIVER_COORDINATOR_COORDINATOR_H_
