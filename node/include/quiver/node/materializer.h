// Materialization on the node (docs/architecture.md, "Materialization"):
// RunMaterializationTask reads one task's slice of a Parquet source with
// DuckDB (latest row per entity key in the window), encodes entity keys and
// hands batches to a RowSink; MaterializationWorker leases tasks from the
// coordinator, runs them and reports the outcome.
//
// Thread-safety: RunMaterializationTask is reentrant; the worker owns one
// background thread; Start/Stop are called from one thread.
#ifndef QUIVER_NODE_MATERIALIZER_H_
#define QUIVER_NODE_MATERIALIZER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quiver.grpc.pb.h"
#include "quiver/client/client.h"
#include "quiver/client/registry_index.h"
#include "quiver/storage/offline_store.h"

namespace quiver::node {

struct NodeMetrics;

// Where a task's rows go. The process writes them to every replica through
// quiver::client::Client::WriteEncoded; tests collect them.
class RowSink {
 public:
  virtual ~RowSink() = default;
  // Writes one batch (every row carries all features of the view, in schema
  // order). Errors: kUnavailable (quorum missed; retryable), others as the
  // client documents.
  virtual absl::Status Write(const std::string& view, uint32_t schema_version,
                             const std::vector<client::EncodedRow>& rows) = 0;
  // Bulk load. A sink that returns a partition count n > 0 gets the task's
  // rows in stored-key order (storage::RowStore::RowKey with n partitions:
  // DuckDB sorts them), one batch at a time, and exactly one Finish after
  // the last batch: commit=true when the scan and every batch succeeded,
  // false otherwise. Default: unordered, no Finish needed.
  virtual uint32_t ordered_partitions() const { return 0; }
  // Errors: as the sink's writes; the task fails (and is retried) on any.
  virtual absl::Status Finish(bool /*commit*/) { return absl::OkStatus(); }
};

// Routes rows to their replicas with the given write quorum (0 = majority).
// With a non-empty `ingest_session` the rows are bulk-loaded: they go to that
// ingest session on every replica (sorted by the map's partition count) and
// Finish commits or aborts it (Client::FinishIngest); otherwise they are
// ordinary writes. `client` must outlive the sink.
class ClientRowSink final : public RowSink {
 public:
  ClientRowSink(client::Client* client, uint32_t write_quorum, std::string ingest_session = "");
  absl::Status Write(const std::string& view, uint32_t schema_version,
                     const std::vector<client::EncodedRow>& rows) override;
  uint32_t ordered_partitions() const override { return partitions_; }
  absl::Status Finish(bool commit) override;

 private:
  client::Client* client_;
  uint32_t write_quorum_;
  std::string session_;
  uint32_t partitions_ = 0;  // the map's partition count when bulk-loading
};

struct TaskResult {
  uint64_t rows_written = 0;
  uint64_t rows_skipped = 0;  // entity key could not be encoded (e.g. too long)
};

// The offline query of `task`: its file, row range and window; the view's join
// keys, its source's timestamp and created columns, and its schema (for a
// view storing an on-demand view, its source view's schema: the columns
// OnDemandTransform reads).
// Errors: kNotFound (view or its source not in `registry`).
absl::StatusOr<storage::LatestQuery> BuildLatestQuery(const client::RegistryIndex& registry,
                                                      const quiver::v1::MaterializationTask& task);

// Turns one row of a source view's values (schema order) into the stored
// on-demand view's values (its schema order), with the evaluator the client
// and get-historical run (quiver::expr::OnDemandView). Thread-safe.
using RowTransform = std::function<std::vector<Value>(std::span<const Value>)>;

// The transform of `view` when it stores an on-demand feature view
// (FeatureView.on_demand_source_view, Feast's write_to_online_store); an
// empty function for any other view. Errors: kNotFound if the registry lacks
// the view, its on-demand view or its source view (not retryable).
absl::StatusOr<RowTransform> OnDemandTransform(const client::RegistryIndex& registry,
                                               const std::string& view);

// Runs one task, `batch_rows` rows per sink call. `cancelled` (may be empty)
// is polled between batches. The scan builds the next batch while up to
// `writers` (at least 1; 1 for an ordered sink) threads write earlier ones,
// so `sink` must accept concurrent calls when `writers` > 1; memory is bounded by (writers + 2)
// batches plus DuckDB's working set for the task's row range. Blocks until
// every batch was written or the task failed.
// Errors: from BuildLatestQuery, ScanLatest and the sink (the scan's error
// first); kCancelled when `cancelled` returned true.
absl::StatusOr<TaskResult> RunMaterializationTask(const client::RegistryIndex& registry,
                                                  const quiver::v1::MaterializationTask& task,
                                                  storage::OfflineStore& offline, RowSink& sink,
                                                  size_t batch_rows,
                                                  const std::function<bool()>& cancelled = {},
                                                  size_t writers = 2);

// Whether another attempt of a task that failed with `status` may succeed.
bool IsRetryable(const absl::Status& status);

struct WorkerOptions {
  std::function<uint32_t()> node_id;  // 0: not registered yet, no lease
  std::chrono::milliseconds poll_interval{50};  // between LeaseTask calls when idle
  size_t batch_rows = 10000;
  size_t writers = 2;  // batches written at once per task (RunMaterializationTask)
  uint32_t write_quorum = 0;  // 0: majority
  // Bulk-load each task through ingest sessions (ClientRowSink) instead of
  // ordinary writes: SST files instead of memtable inserts on every replica.
  bool ingest = true;
};

class MaterializationWorker {
 public:
  // Every pointer must outlive the worker; `metrics` may be null.
  MaterializationWorker(WorkerOptions options, quiver::v1::CoordinatorService::StubInterface* stub,
                        client::Client* client, storage::OfflineStore* offline,
                        NodeMetrics* metrics);
  ~MaterializationWorker();

  void Start();
  // Stops the thread; a running task is abandoned between batches and
  // reported as a retryable failure. Blocks until the thread ended.
  void Stop();

  // The task attempt this worker is running, if any, for the node's
  // heartbeat: the coordinator renews its lease (HeartbeatRequest.
  // running_tasks). Thread-safe.
  std::vector<quiver::v1::RunningTask> RunningTasks() const;

 private:
  void Loop();
  void RunTask(const quiver::v1::MaterializationTask& task);
  void Complete(const quiver::v1::MaterializationTask& task, const absl::Status& status,
                const TaskResult& result);

  WorkerOptions options_;
  quiver::v1::CoordinatorService::StubInterface* stub_;
  client::Client* client_;
  storage::OfflineStore* offline_;
  NodeMetrics* metrics_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
  std::optional<quiver::v1::RunningTask> running_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace quiver::node

#endif  // QUIVER_NODE_MATERIALIZER_H_
