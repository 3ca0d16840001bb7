// RequestHandler::Write: the node's write path (materialization and Push).
#include <prometheus/counter.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "quiver/client/convert.h"
#include "quiver/keys/entity_key.h"
#include "quiver/keys/packed_values.h"
#include "quiver/node/metrics.h"
#include "quiver/node/request_handler.h"
#include "request_handler_internal.h"

namespace quiver::node {
namespace {

// Checks WriteRow.packed_values cell by cell without decoding it (the row
// store stores the cells as they are). Errors: kInvalidArgument naming the
// feature.
absl::Status CheckPacked(std::string_view in, const client::ViewInfo& view) {
  size_t bad = 0;
  absl::Status s = CheckPackedValues(in, view.feature_types, &bad);
  if (s.ok() || bad >= view.feature_types.size()) return s;
  return absl::InvalidArgumentError(absl::StrCat(
      "feature '", view.view->features(static_cast<int>(bad)).name(), "': ", s.message()));
}

// Values of a row sent as Value messages (other writers, e.g. Push clients).
absl::Status ConvertValues(const quiver::v1::WriteRow& in, const client::ViewInfo& view,
                           std::vector<Value>* out) {
  const size_t num_features = view.feature_types.size();
  if (static_cast<size_t>(in.values_size()) != num_features) {
    return absl::InvalidArgumentError(absl::StrCat(in.values_size(), " values; view '",
                                                   view.view->name(), "' has ", num_features,
                                                   " features"));
  }
  for (size_t i = 0; i < num_features; ++i) {
    auto value = client::FromProto(in.values(static_cast<int>(i)), view.feature_types[i]);
    if (!value.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("feature '",
                                                     view.view->features(static_cast<int>(i)).name(),
                                                     "': ", value.status().message()));
    }
    out->push_back(*std::move(value));
  }
  return absl::OkStatus();
}

// Nearly the order of the store's row keys (big-endian partition, then the
// entity key; the partition is the top bits of the token): a batch applied in
// that order inserts into RocksDB's memtable skip list next to the previous
// insert instead of searching the list from its top, several times cheaper
// for a large memtable. Within one partition the order is only a hint.
// Moves `rows` out into a new vector in that order.
std::vector<storage::RowWrite> SortedByToken(std::span<storage::RowWrite> rows) {
  std::vector<std::pair<uint64_t, uint32_t>> order(rows.size());  // token, index
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = {EntityKeyToken(rows[i].entity_key), i};
  std::sort(order.begin(), order.end());
  std::vector<storage::RowWrite> sorted;
  sorted.reserve(rows.size());
  for (const auto& [token, i] : order) sorted.push_back(std::move(rows[i]));
  return sorted;
}

}  // namespace

absl::StatusOr<std::shared_ptr<RequestHandler::IngestState>> RequestHandler::SessionFor(
    const quiver::v1::WriteRequest& request, uint32_t schema_version) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(ingest_mu_);
  // Idle sessions belong to writers that are gone (a task that failed over
  // to another node): drop them, deleting their files.
  const size_t before = ingest_.size();
  std::erase_if(ingest_, [&](const auto& entry) {
    std::unique_lock<std::mutex> busy(entry.second->mu, std::try_to_lock);
    const bool idle = busy.owns_lock() && !entry.second->closing &&
                      now - entry.second->last_used > kIngestIdleTimeout;
    if (idle) entry.second->closed = true;
    return idle;
  });
  if (ingest_.size() != before) ingest_cv_.notify_all();  // a barrier may wait on them
  auto it = ingest_.find(request.ingest_session());
  if (it != ingest_.end()) {
    const IngestState& state = *it->second;
    if (state.closing) {
      return absl::FailedPreconditionError(
          absl::StrCat("ingest session '", request.ingest_session(), "' is being committed"));
    }
    if (state.view != request.view() || state.schema_version != schema_version) {
      return absl::FailedPreconditionError(absl::StrCat(
          "ingest session '", request.ingest_session(), "' is for view '", state.view,
          "' at schema version ", state.schema_version, ", the write names '", request.view(),
          "' at ", schema_version));
    }
    return it->second;
  }
  if (ingest_.size() >= kMaxIngestSessions) {
    return absl::ResourceExhaustedError(
        absl::StrCat(ingest_.size(), " ingest sessions are open; the limit is ", kMaxIngestSessions));
  }
  auto session = store_->BeginIngest(request.view(), schema_version);
  if (!session.ok()) return session.status();
  auto state = std::make_shared<IngestState>();
  state->session = *std::move(session);
  state->view = request.view();
  state->schema_version = schema_version;
  state->last_used = now;
  ingest_.emplace(request.ingest_session(), state);
  return state;
}

void RequestHandler::AbortIngestSessions() {
  std::map<std::string, std::shared_ptr<IngestState>, std::less<>> dropped;
  {
    std::lock_guard<std::mutex> lock(ingest_mu_);
    dropped.swap(ingest_);
  }
  for (auto& [name, state] : dropped) {
    std::lock_guard<std::mutex> busy(state->mu);
    state->session.reset();
  }
  {
    std::lock_guard<std::mutex> lock(ingest_mu_);
    for (auto& [name, state] : dropped) state->closed = true;
  }
  ingest_cv_.notify_all();
}

absl::Status RequestHandler::CommitIngest(const quiver::v1::CommitIngestRequest& request,
                                          quiver::v1::CommitIngestResponse* response) {
  // Held for the whole commit: a barrier's adoption waits for it.
  std::shared_lock<DrainLock> drain(drain_);
  std::shared_ptr<IngestState> state;
  bool fenced = false;
  {
    std::lock_guard<std::mutex> lock(ingest_mu_);
    auto it = ingest_.find(request.session());
    if (it != ingest_.end() && !it->second->closing) {
      state = it->second;
      // Ordered with a barrier's fencing by ingest_mu_: a session is either
      // fenced before its commit starts, or its commit is waited for.
      state->closing = true;
      fenced = state->fenced;
    }
  }
  response->set_epoch(adopted_epoch());
  if (state == nullptr) {
    if (request.abort() || request.expected_rows() == 0) return absl::OkStatus();
    return absl::NotFoundError(absl::StrCat("ingest session '", request.session(),
                                            "' is not open here (", request.expected_rows(),
                                            " rows expected); rewrite it"));
  }
  std::unique_lock<std::mutex> busy(state->mu);
  const auto close = [&] {
    state->session.reset();
    busy.unlock();
    CloseSession(request.session(), state);
  };
  if (request.abort()) {
    close();
    return absl::OkStatus();
  }
  if (fenced) {
    close();
    return absl::AbortedError(absl::StrCat(
        "stale map: ingest session '", request.session(), "' was fenced on node ", node_id_.load(),
        " (it wrote a partition under an epoch older than its fence; node epoch ",
        adopted_epoch(), "); rewrite it under the new map"));
  }
  const uint64_t have = state->session->rows_appended();
  if (state->failed || have != request.expected_rows()) {
    close();
    return absl::AbortedError(absl::StrCat("ingest session '", request.session(), "' holds ", have,
                                           " rows, the writer expects ", request.expected_rows(),
                                           state->failed ? " (an append failed)" : "",
                                           "; rewrite it"));
  }
  absl::Status s = state->session->Commit();
  close();
  if (!s.ok()) return s;
  if (metrics_ != nullptr) metrics_->rows_written->Increment(static_cast<double>(have));
  response->set_rows_ingested(have);
  return absl::OkStatus();
}

absl::Status RequestHandler::Write(const quiver::v1::WriteRequest& request,
                                   quiver::v1::WriteResponse* response) {
  const auto too_many = [&](size_t n) {
    return absl::InvalidArgumentError(absl::StrCat("write has ", n, " rows; the limit is ",
                                                   limits_.max_keys_per_request));
  };
  if (static_cast<size_t>(request.rows_size()) > limits_.max_keys_per_request) {
    return too_many(request.rows_size());
  }
  // Rows packed back to back (WriteRequest.packed_rows), the C++ client's form.
  std::vector<WriteRowView> packed;
  if (!request.packed_rows().empty()) {
    if (request.rows_size() > 0) {
      return absl::InvalidArgumentError("write has both rows and packed_rows");
    }
    for (std::string_view in = request.packed_rows(); !in.empty();) {
      absl::StatusOr<WriteRowView> row = NextWriteRow(&in);
      if (!row.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("row ", packed.size(), ": ", row.status().message()));
      }
      if (packed.size() == limits_.max_keys_per_request) return too_many(packed.size() + 1);
      packed.push_back(*row);
    }
  }
  bool refreshed = false;
  auto registry = CurrentRegistry(false, &refreshed);
  if (!registry.ok()) return registry.status();
  const client::ViewInfo* info = (*registry)->FindView(request.view());
  // A writer that knows a newer schema than ours means our registry is stale.
  if (info == nullptr || request.schema_version() > info->view->schema_version()) {
    registry = CurrentRegistry(true, &refreshed);
    if (!registry.ok()) return registry.status();
    info = (*registry)->FindView(request.view());
  }
  if (info == nullptr) return UnknownView(request.view());
  if (request.schema_version() != info->view->schema_version()) {
    return absl::FailedPreconditionError(
        absl::StrCat("feature view '", request.view(), "' has schema version ",
                     info->view->schema_version(), ", the write carries ",
                     request.schema_version()));
  }

  // One row vector per handler thread, reused across requests: a bulk load
  // sends 10,000-row requests, and reusing the rows' key strings saves an
  // allocation per row. Packed values stay views into `request`, which
  // outlives the write.
  thread_local std::vector<storage::RowWrite> reused;
  const size_t n = packed.empty() ? static_cast<size_t>(request.rows_size()) : packed.size();
  if (reused.size() < n) reused.resize(n);
  for (size_t r = 0; r < n; ++r) {
    // A WriteRow message is read like a packed row; only one whose features
    // came as Value messages (no packed_values) is converted.
    const quiver::v1::WriteRow* message = packed.empty() ? &request.rows(static_cast<int>(r)) : nullptr;
    const WriteRowView in = message == nullptr
                                ? packed[r]
                                : WriteRowView{message->entity_key(), message->event_ts_us(),
                                               message->created_ts_us(), message->packed_values()};
    storage::RowWrite& out = reused[r];
    out.entity_key.assign(in.entity_key);
    out.event_ts_us = in.event_ts_us;
    out.created_ts_us = in.created_ts_us;
    out.values.clear();
    out.packed_values = in.packed_values;
    absl::Status s = CheckKey(in.entity_key);
    if (s.ok()) {
      s = message != nullptr && in.packed_values.empty()
              ? ConvertValues(*message, *info, &out.values)
              : CheckPacked(in.packed_values, *info);
    }
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("row ", r, ": ", s.message()));
  }
  const std::span<const storage::RowWrite> rows(reused.data(), n);

  // Fencing: the check and the write run under one adopted map.
  std::shared_lock<DrainLock> drain(drain_);
  auto map = MapOrUnavailable();
  if (!map.ok()) return map.status();
  const client::ClusterMapView& replicas = **map;
  const uint32_t self = node_id_.load(std::memory_order_relaxed);
  thread_local std::vector<uint32_t> partitions;
  partitions.resize(n);
  for (size_t r = 0; r < n; ++r) {
    if (!replicas.has_partitions()) return StaleMap(replicas, 0, "has a map without", request.epoch());
    const uint32_t p = PartitionOf(rows[r].entity_key, replicas.num_partitions());
    partitions[r] = p;
    if (r > 0 && p == partitions[r - 1]) continue;
    if (!replicas.OwnsOrReceives(self, p)) return StaleMap(replicas, p, "neither owns nor receives",
                                                            request.epoch());
    if (request.epoch() < replicas.FenceOf(p)) {
      return StaleMap(replicas, p,
                      absl::StrCat("refuses a write at epoch ", request.epoch(), " (fence ",
                                   replicas.FenceOf(p), ") to"),
                      request.epoch());
    }
  }

  if (!request.ingest_session().empty()) {
    auto state = SessionFor(request, request.schema_version());
    if (!state.ok()) return state.status();
    IngestState& session = **state;
    std::lock_guard<std::mutex> busy(session.mu);
    if (session.failed || session.session == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("ingest session '", request.ingest_session(), "' failed before"));
    }
    {
      // Recorded before the append: a barrier counts the session stale from
      // the moment its rows may be staged.
      std::lock_guard<std::mutex> lock(ingest_mu_);
      if (session.fenced) {
        return absl::AbortedError(absl::StrCat(
            "stale map: ingest session '", request.ingest_session(), "' was fenced on node ",
            self, " (node epoch ", replicas.epoch(), "); rewrite it under the new map"));
      }
      if (session.closing) {
        return absl::FailedPreconditionError(
            absl::StrCat("ingest session '", request.ingest_session(), "' is being committed"));
      }
      for (size_t r = 0; r < n; ++r) {
        if (r > 0 && partitions[r] == partitions[r - 1]) continue;
        auto [it, inserted] = session.min_epoch.emplace(partitions[r], request.epoch());
        if (!inserted) it->second = std::min(it->second, request.epoch());
      }
    }
    session.last_used = std::chrono::steady_clock::now();
    if (absl::Status s = session.session->Append(rows); !s.ok()) {
      session.failed = true;
      return s;
    }
    response->set_rows_written(n);
    response->set_epoch(replicas.epoch());
    return absl::OkStatus();  // counted in rows_written when committed
  }
  const std::vector<storage::RowWrite> sorted = SortedByToken(std::span(reused.data(), n));
  if (absl::Status s = store_->Write(request.view(), sorted, request.schema_version()); !s.ok()) {
    return s;
  }
  if (metrics_ != nullptr) metrics_->rows_written->Increment(static_cast<double>(n));
  response->set_rows_written(n);
  response->set_epoch(replicas.epoch());
  return absl::OkStatus();
}

}  // namespace quiver::node
