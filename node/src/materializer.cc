#include "quiver/node/materializer.h"

#include <grpcpp/grpcpp.h>
#include <prometheus/counter.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "quiver/client/convert.h"
#include "quiver/keys/entity_key.h"
#include "quiver/node/metrics.h"
#include "quiver/storage/row_store.h"
#include "thread_priority.h"

namespace quiver::node {
namespace {

constexpr auto kRpcDeadline = std::chrono::seconds(5);
constexpr int kCompleteAttempts = 3;

std::unique_ptr<grpc::ClientContext> NewContext() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
  return ctx;
}

}  // namespace

ClientRowSink::ClientRowSink(client::Client* client, uint32_t write_quorum,
                             std::string ingest_session)
    : client_(client), write_quorum_(write_quorum), session_(std::move(ingest_session)) {
  if (!session_.empty()) partitions_ = client_->cluster_map()->num_partitions();
}

absl::Status ClientRowSink::Write(const std::string& view, uint32_t schema_version,
                                  const std::vector<client::EncodedRow>& rows) {
  client::WriteOptions options;
  options.write_quorum = write_quorum_;
  options.ingest_session = session_;
  return client_->WriteEncoded(view, schema_version, rows, options);
}

absl::Status ClientRowSink::Finish(bool commit) {
  if (session_.empty()) return absl::OkStatus();
  return client_->FinishIngest(session_, commit);
}

absl::StatusOr<storage::LatestQuery> BuildLatestQuery(const client::RegistryIndex& registry,
                                                      const quiver::v1::MaterializationTask& task) {
  const client::ViewInfo* info = registry.FindView(task.view());
  if (info == nullptr) {
    return absl::NotFoundError(absl::StrCat("unknown feature view '", task.view(), "'"));
  }
  const quiver::v1::DataSource* source = nullptr;
  for (const auto& s : registry.registry().sources()) {
    if (s.name() == info->view->source()) source = &s;
  }
  if (source == nullptr) {
    return absl::NotFoundError(absl::StrCat("feature view '", task.view(), "' names unknown source '",
                                            info->view->source(), "'"));
  }
  storage::LatestQuery query;
  query.file = task.file();
  query.row_begin = task.row_begin();
  query.row_end = task.row_end();
  query.start_us = task.start_us();
  query.end_us = task.end_us();
  if (task.has_created_after_us()) query.created_after_us = task.created_after_us();
  query.bucket = task.bucket();
  query.buckets = task.buckets();
  for (const client::JoinKeySpec& jk : info->join_keys) {
    query.join_keys.push_back({jk.join_key, jk.type});
  }
  query.timestamp_field = source->timestamp_field();
  query.created_timestamp_column = source->created_timestamp_column();
  const quiver::v1::FeatureView* read = info->view;
  if (!read->on_demand_source_view().empty()) {
    const client::ViewInfo* source_view = registry.FindView(read->on_demand_source_view());
    if (source_view == nullptr) {
      return absl::NotFoundError(absl::StrCat("feature view '", task.view(), "' stores from unknown view '",
                                              read->on_demand_source_view(), "'"));
    }
    read = source_view->view;
  }
  for (const auto& f : read->features()) {
    query.features.push_back({f.name(), client::FromProtoType(f.type())});
  }
  return query;
}

absl::StatusOr<RowTransform> OnDemandTransform(const client::RegistryIndex& registry,
                                               const std::string& view) {
  const client::ViewInfo* info = registry.FindView(view);
  if (info == nullptr) return absl::NotFoundError(absl::StrCat("unknown feature view '", view, "'"));
  const std::string& source_name = info->view->on_demand_source_view();
  if (source_name.empty()) return RowTransform();
  const expr::OnDemandView* odfv = registry.FindOnDemandView(view);
  const client::ViewInfo* source = registry.FindView(source_name);
  if (odfv == nullptr || source == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("feature view '", view, "': its on-demand view or source view is unknown"));
  }
  // Each input of the on-demand view is a feature of the source view.
  std::vector<size_t> column;
  for (const expr::Input& in : odfv->inputs()) {
    auto it = source->feature_index.find(in.name);
    if (!in.view.empty() && in.view != source_name) it = source->feature_index.end();
    if (it == source->feature_index.end()) {
      return absl::NotFoundError(absl::StrCat("feature view '", view, "': input '", in.name,
                                              "' is not a feature of '", source_name, "'"));
    }
    column.push_back(static_cast<size_t>(it->second));
  }
  return RowTransform([odfv = *odfv, column](std::span<const Value> row) {
    std::vector<Value> inputs;
    inputs.reserve(column.size());
    for (size_t c : column) inputs.push_back(row[c]);
    std::vector<Value> out;
    out.reserve(odfv.feature_names().size());
    for (size_t f = 0; f < odfv.feature_names().size(); ++f) out.push_back(odfv.Evaluate(f, inputs));
    return out;
  });
}

namespace {

// Hands batches to `sink` on `writers` threads, so that the scan reads and
// encodes the next batch while earlier ones travel to the replicas. At most
// `writers` batches are written at once and one more is being built: memory
// stays bounded by the batch size. Rows of one task have distinct keys, so
// the order in which batches land does not matter.
class PipelinedSink {
 public:
  PipelinedSink(RowSink& sink, const std::string& view, uint32_t schema_version, size_t writers)
      : sink_(sink), view_(view), schema_version_(schema_version) {
    for (size_t i = 0; i < std::max<size_t>(writers, 1); ++i) {
      threads_.emplace_back([this] {
        NameThisThread("quiver-mat-sink");
        Loop();
      });
    }
  }
  ~PipelinedSink() { (void)Finish(); }

  // Blocks while every writer is busy. Returns the first error of an earlier
  // batch (then `batch` is dropped).
  absl::Status Submit(std::vector<client::EncodedRow> batch) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !error_.ok() || queued_.empty(); });
    if (!error_.ok()) return error_;
    queued_.push_back(std::move(batch));
    cv_.notify_all();
    return absl::OkStatus();
  }

  // Waits for every submitted batch; the first error, if any.
  absl::Status Finish() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
    return error_;
  }

  uint64_t rows_written() const { return rows_written_.load(); }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return done_ || !queued_.empty(); });
      if (queued_.empty()) return;  // done
      std::vector<client::EncodedRow> batch = std::move(queued_.front());
      queued_.erase(queued_.begin());
      const bool skip = !error_.ok();
      cv_.notify_all();  // a slot is free
      lock.unlock();
      absl::Status s = skip ? absl::OkStatus() : sink_.Write(view_, schema_version_, batch);
      if (s.ok() && !skip) rows_written_ += batch.size();
      batch = {};
      lock.lock();
      if (!s.ok() && error_.ok()) error_ = s;
      cv_.notify_all();
    }
  }

  RowSink& sink_;
  const std::string& view_;
  const uint32_t schema_version_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::vector<client::EncodedRow>> queued_;  // at most one waits
  bool done_ = false;
  absl::Status error_;
  std::atomic<uint64_t> rows_written_{0};
  std::vector<std::thread> threads_;
};

// The serialized entity key of a row's join key values (one per
// query.join_keys). Errors: as EncodeEntityKey (e.g. a key over 4 KiB).
absl::StatusOr<std::string> EntityKeyOf(const storage::LatestQuery& query,
                                        std::span<const Value> values) {
  std::vector<KeyPart> parts;
  parts.reserve(values.size());
  for (size_t i = 0; i < query.join_keys.size() && i < values.size(); ++i) {
    parts.push_back({query.join_keys[i].name, values[i]});
  }
  return EncodeEntityKey(std::move(parts));
}

// The scan of one task into `sink` (RunMaterializationTask without Finish).
// `transform` (may be empty) turns each row's values into the view's.
absl::StatusOr<TaskResult> ScanIntoSink(const storage::LatestQuery& query, const std::string& view,
                                        uint32_t schema_version, const RowTransform& transform,
                                        storage::OfflineStore& offline, RowSink& sink,
                                        size_t batch_rows, const std::function<bool()>& cancelled,
                                        size_t writers) {
  TaskResult result;
  PipelinedSink pipeline(sink, view, schema_version, writers);
  absl::Status status = offline.ScanLatest(
      query, batch_rows == 0 ? 1 : batch_rows, [&](std::vector<storage::OfflineRow>& batch) {
        if (cancelled && cancelled()) return absl::CancelledError("materialization cancelled");
        std::vector<client::EncodedRow> encoded;
        encoded.reserve(batch.size());
        for (storage::OfflineRow& row : batch) {
          std::string key;
          if (query.order_key) {
            // The order key is the stored row key; an empty one marks a key
            // that could not be encoded.
            const size_t entity_bytes = storage::RowStore::EntityKeyOfRowKey(row.order_key).size();
            if (entity_bytes == 0) {
              ++result.rows_skipped;
              continue;
            }
            key = std::move(row.order_key);
            key.erase(0, key.size() - entity_bytes);
          } else {
            auto encoded_key = EntityKeyOf(query, row.join_key_values);
            if (!encoded_key.ok()) {
              ++result.rows_skipped;
              continue;
            }
            key = *std::move(encoded_key);
          }
          if (transform) row.values = transform(row.values);
          encoded.push_back({std::move(key), row.event_ts_us, row.created_ts_us,
                             std::move(row.values), std::move(row.packed_values)});
        }
        if (encoded.empty()) return absl::OkStatus();
        return pipeline.Submit(std::move(encoded));
      });
  // A scan error (or cancellation) wins over a sink error it may have caused.
  absl::Status written = pipeline.Finish();
  if (!status.ok()) return status;
  if (!written.ok()) return written;
  result.rows_written = pipeline.rows_written();
  return result;
}

}  // namespace

absl::StatusOr<TaskResult> RunMaterializationTask(const client::RegistryIndex& registry,
                                                  const quiver::v1::MaterializationTask& task,
                                                  storage::OfflineStore& offline, RowSink& sink,
                                                  size_t batch_rows,
                                                  const std::function<bool()>& cancelled,
                                                  size_t writers) {
  auto query = BuildLatestQuery(registry, task);
  if (!query.ok()) return query.status();
  const uint32_t schema_version = registry.FindView(task.view())->view->schema_version();
  absl::StatusOr<RowTransform> transform = OnDemandTransform(registry, task.view());
  if (!transform.ok()) return transform.status();
  // Nodes store the packed cells as they are; transformed rows are packed by
  // the client from their values.
  query->pack_values = !*transform;
  if (const uint32_t partitions = sink.ordered_partitions(); partitions > 0) {
    // DuckDB sorts the latest rows by their stored key, so every replica
    // receives its rows in the order its ingest session needs. A key that
    // cannot be encoded sorts first and is skipped by the scan as usual.
    query->order_key = [q = *query,
                        partitions](std::span<const Value> values) -> absl::StatusOr<std::string> {
      auto key = EntityKeyOf(q, values);
      if (!key.ok()) return std::string();
      return storage::RowStore::RowKey(*key, partitions);
    };
    writers = 1;  // batches must reach each replica in order
  }
  absl::StatusOr<TaskResult> ran = ScanIntoSink(*query, task.view(), schema_version, *transform,
                                                offline, sink, batch_rows, cancelled, writers);
  absl::Status finished = sink.Finish(ran.ok());
  if (!ran.ok()) return ran.status();
  if (!finished.ok()) return finished;
  return ran;
}

bool IsRetryable(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kUnimplemented:
      return false;
    default:
      return true;
  }
}

MaterializationWorker::MaterializationWorker(WorkerOptions options,
                                             quiver::v1::CoordinatorService::StubInterface* stub,
                                             client::Client* client,
                                             storage::OfflineStore* offline, NodeMetrics* metrics)
    : options_(std::move(options)),
      stub_(stub),
      client_(client),
      offline_(offline),
      metrics_(metrics) {}

MaterializationWorker::~MaterializationWorker() { Stop(); }

void MaterializationWorker::Start() {
  stop_.store(false);
  thread_ = std::thread([this] {
    NameThisThread("quiver-material");
    Loop();
  });
}

void MaterializationWorker::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void MaterializationWorker::Loop() {
  while (!stop_.load()) {
    const uint32_t node_id = options_.node_id ? options_.node_id() : 0;
    bool ran = false;
    if (node_id != 0) {
      quiver::v1::LeaseTaskRequest request;
      request.set_node_id(node_id);
      quiver::v1::LeaseTaskResponse response;
      auto ctx = NewContext();
      grpc::Status s = stub_->LeaseTask(ctx.get(), request, &response);
      if (s.ok() && response.has_task()) {
        RunTask(response.task());
        ran = true;
      } else if (!s.ok()) {
        spdlog::debug("LeaseTask failed: {}", s.error_message());
      }
    }
    if (ran) continue;  // busy: ask for the next task at once
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, options_.poll_interval, [this] { return stop_.load(); });
  }
}

std::vector<quiver::v1::RunningTask> MaterializationWorker::RunningTasks() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!running_.has_value()) return {};
  return {*running_};
}

void MaterializationWorker::RunTask(const quiver::v1::MaterializationTask& task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_.emplace();
    running_->set_job_id(task.job_id());
    running_->set_task_id(task.task_id());
    running_->set_attempt(task.attempt());
  }
  spdlog::info("task {}/{} of view {}: {} rows [{}, {})", task.job_id(), task.task_id(),
               task.view(), task.file(), task.row_begin(), task.row_end());
  TaskResult result;
  absl::Status status;
  std::shared_ptr<const client::RegistryIndex> registry = client_->registry();
  if (registry == nullptr || registry->version() < task.registry_version()) {
    (void)client_->Refresh();
    registry = client_->registry();
  }
  if (registry == nullptr || registry->version() < task.registry_version()) {
    status = absl::UnavailableError(
        absl::StrCat("registry version ", task.registry_version(), " not known yet"));
  } else {
    // One ingest session per attempt: a retried task never appends to the
    // files of an attempt that failed half-way.
    ClientRowSink sink(client_, options_.write_quorum,
                       options_.ingest ? absl::StrCat(task.job_id(), "/", task.task_id(), "/",
                                                      task.attempt(), "/", options_.node_id ? options_.node_id() : 0)
                                       : std::string());
    auto ran = RunMaterializationTask(*registry, task, *offline_, sink, options_.batch_rows,
                                      [this] { return stop_.load(); }, options_.writers);
    if (ran.ok()) {
      result = *ran;
    } else {
      status = ran.status();
    }
  }
  if (metrics_ != nullptr) {
    (status.ok() ? metrics_->tasks_done : metrics_->tasks_failed)->Increment();
    metrics_->rows_materialized->Increment(static_cast<double>(result.rows_written));
    metrics_->rows_skipped->Increment(static_cast<double>(result.rows_skipped));
  }
  if (status.ok()) {
    spdlog::info("task {}/{} done: {} rows written, {} skipped", task.job_id(), task.task_id(),
                 result.rows_written, result.rows_skipped);
  } else {
    spdlog::warn("task {}/{} failed: {}", task.job_id(), task.task_id(), status.ToString());
  }
  Complete(task, status, result);
  // Its lease was renewed until its completion was reported (or given up on).
  std::lock_guard<std::mutex> lock(mu_);
  running_.reset();
}

void MaterializationWorker::Complete(const quiver::v1::MaterializationTask& task,
                                     const absl::Status& status, const TaskResult& result) {
  quiver::v1::CompleteTaskRequest request;
  request.set_node_id(options_.node_id ? options_.node_id() : 0);
  request.set_job_id(task.job_id());
  request.set_task_id(task.task_id());
  request.set_attempt(task.attempt());
  request.set_ok(status.ok());
  request.set_rows_written(result.rows_written);
  if (!status.ok()) {
    request.set_error(status.ToString());
    request.set_retryable(IsRetryable(status));
  }
  // An unreported task is not lost: its lease expires and it is handed out
  // again, and rewriting its rows is idempotent.
  for (int attempt = 0; attempt < kCompleteAttempts; ++attempt) {
    quiver::v1::CompleteTaskResponse response;
    auto ctx = NewContext();
    grpc::Status s = stub_->CompleteTask(ctx.get(), request, &response);
    if (s.ok()) return;
    spdlog::warn("CompleteTask {}/{} failed: {}", task.job_id(), task.task_id(),
                 s.error_message());
    const auto code = s.error_code();
    if (code != grpc::StatusCode::UNAVAILABLE && code != grpc::StatusCode::DEADLINE_EXCEEDED) {
      return;
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, std::chrono::milliseconds(200 << attempt),
                     [this] { return stop_.load(); })) {
      return;
    }
  }
}

}  // namespace quiver::node
