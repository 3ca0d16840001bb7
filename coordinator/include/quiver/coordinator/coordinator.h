// Coordinator: the control plane's state machine behind CoordinatorService
// (proto/quiver.proto): membership and heartbeats, the partition map, the
// registry, and materialization jobs with leased tasks.
//
// State lives in one quiver.v1.CoordinatorState, persisted to
// DATA_DIR/state.pb (temp file + fsync + rename) after every change, except
// heartbeat timestamps alone, which are not worth a disk write each.
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

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

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
  int64_t lease_us = 30'000'000;  // unit: µs a leased task stays with its node
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
};

// Gauges for /metrics.
struct CoordinatorStats {
  int64_t nodes_up = 0;
  int64_t nodes_down = 0;
  uint64_t epoch = 0;
  uint64_t registry_version = 0;
  int64_t jobs_running = 0;
  int64_t tasks_pending = 0;  // not yet done: pending or leased
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
  // A new node triggers a map recomputation and is UP. A known node comes back
  // RECOVERING (it may have missed writes while it was away; its recovery
  // number grows) unless no other replica shares its partitions (then UP).
  // Errors: kInvalidArgument (no address).
  absl::StatusOr<quiver::v1::RegisterResponse> Register(const quiver::v1::RegisterRequest& req);
  // A DOWN node that heartbeats again comes back as Register's known nodes
  // do; a RECOVERING node reporting repaired_recovery equal to its recovery
  // number becomes UP. The response carries the node's state and recovery.
  // Errors: kNotFound for an unknown node (it should Register).
  absl::StatusOr<quiver::v1::HeartbeatResponse> Heartbeat(const quiver::v1::HeartbeatRequest& req);
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
  // or RECOVERING node becomes RECOVERING with a new recovery number (it
  // repairs again from its peers before serving reads; docs/architecture.md,
  // "Repair"); a DOWN node stays DOWN (it repairs when it returns).
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

 private:
  Coordinator(CoordinatorOptions options, std::unique_ptr<storage::OfflineStore> offline);
  int64_t Now() const { return options_.clock(); }
  absl::Status Persist() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecomputeMap() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  quiver::v1::NodeInfo* FindNode(uint32_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A known node is back (restart, or heartbeats after DOWN): RECOVERING
  // with a new recovery number, or UP when it shares no partition.
  void Return(quiver::v1::NodeInfo* node) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  quiver::v1::Job* FindJob(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishJob(quiver::v1::Job* job, bool ok, const std::string& error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PruneJobs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const CoordinatorOptions options_;
  const std::unique_ptr<storage::OfflineStore> offline_;
  int lock_fd_ = -1;  // flock on DATA_DIR/LOCK: one coordinator per data dir
  mutable absl::Mutex mu_;
  quiver::v1::CoordinatorState state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace quiver::coordinator

#endif  // QUIVER_COORDINATOR_COORDINATOR_H_
