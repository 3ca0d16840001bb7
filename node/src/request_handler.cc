#include "quiver/node/request_handler.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "quiver/client/convert.h"
#include "quiver/keys/entity_key.h"
#include "quiver/node/metrics.h"

namespace quiver::node {
namespace {

quiver::v1::RowStatus ToProtoStatus(storage::RowStatus s) {
  switch (s) {
    case storage::RowStatus::kPresent:
      return quiver::v1::PRESENT;
    case storage::RowStatus::kNotFound:
      return quiver::v1::NOT_FOUND;
    case storage::RowStatus::kOutsideMaxAge:
      return quiver::v1::OUTSIDE_MAX_AGE;
  }
  return quiver::v1::ROW_STATUS_UNKNOWN;
}

absl::Status CheckKey(const std::string& key) {
  if (key.empty()) return absl::InvalidArgumentError("empty entity key");
  if (key.size() > kMaxEntityKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("entity key of ", key.size(),
                                                   " bytes exceeds the limit of ",
                                                   kMaxEntityKeyBytes));
  }
  return absl::OkStatus();
}

absl::Status UnknownView(const std::string& view) {
  return absl::NotFoundError(absl::StrCat("unknown feature view '", view, "'"));
}

}  // namespace

RequestHandler::RequestHandler(storage::RowStore* store, ClusterView* cluster,
                               NodeMetrics* metrics, HandlerLimits limits)
    : store_(store), cluster_(cluster), metrics_(metrics), limits_(limits) {}

absl::Status RequestHandler::SyncViews(const client::RegistryIndex& registry) {
  std::lock_guard<std::mutex> lock(sync_mu_);
  if (synced_any_.load() && synced_version_.load() == registry.version()) {
    return absl::OkStatus();
  }
  absl::Status first_error;
  for (const auto& fv : registry.registry().feature_views()) {
    if (!fv.online()) continue;
    const client::ViewInfo* info = registry.FindView(fv.name());
    if (info == nullptr) continue;
    storage::ViewSchema schema;
    schema.name = fv.name();
    schema.schema_version = fv.schema_version();
    schema.feature_types = info->feature_types;
    schema.ttl = std::chrono::seconds(fv.ttl_seconds());
    if (absl::Status s = store_->EnsureView(schema); !s.ok()) {
      spdlog::warn("cannot prepare view {}: {}", fv.name(), s.ToString());
      if (first_error.ok()) first_error = s;
    }
  }
  if (!first_error.ok()) return first_error;
  synced_version_.store(registry.version());
  synced_any_.store(true);
  spdlog::info("registry version {} synced ({} views)", registry.version(),
               registry.registry().feature_views_size());
  if (metrics_ != nullptr) metrics_->registry_version->Set(static_cast<double>(registry.version()));
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const client::RegistryIndex>> RequestHandler::CurrentRegistry(
    bool refresh, bool* refreshed) {
  if (refresh && !*refreshed) {
    *refreshed = true;
    if (absl::Status s = cluster_->Refresh(); !s.ok()) {
      spdlog::debug("registry refresh failed: {}", s.ToString());
    }
  }
  std::shared_ptr<const client::RegistryIndex> registry = cluster_->registry();
  if (registry == nullptr && !*refreshed) return CurrentRegistry(true, refreshed);
  if (registry == nullptr) return absl::UnavailableError("the node has no registry yet");
  if (!synced_any_.load() || synced_version_.load() != registry->version()) {
    // A failed sync shows up as the store's kNotFound for that view; the next
    // request retries it.
    (void)SyncViews(*registry);
  }
  return registry;
}

absl::Status RequestHandler::Get(const quiver::v1::GetRequest& request,
                                 quiver::v1::GetResponse* response) {
  if (static_cast<size_t>(request.lookups_size()) > limits_.max_lookups_per_request) {
    return absl::InvalidArgumentError(absl::StrCat("request has ", request.lookups_size(),
                                                   " lookups; the limit is ",
                                                   limits_.max_lookups_per_request));
  }
  size_t total_keys = 0;
  for (const auto& lookup : request.lookups()) {
    total_keys += lookup.entity_keys_size();
    for (const std::string& key : lookup.entity_keys()) {
      if (absl::Status s = CheckKey(key); !s.ok()) return s;
    }
  }
  if (total_keys > limits_.max_keys_per_request) {
    return absl::InvalidArgumentError(absl::StrCat("request has ", total_keys,
                                                   " entity keys; the limit is ",
                                                   limits_.max_keys_per_request));
  }

  bool refreshed = false;
  auto registry = CurrentRegistry(false, &refreshed);
  if (!registry.ok()) return registry.status();
  for (const auto& lookup : request.lookups()) {
    if ((*registry)->FindView(lookup.view()) == nullptr && !refreshed) {
      registry = CurrentRegistry(true, &refreshed);
      if (!registry.ok()) return registry.status();
    }
  }

  // The response holds keys × features values: bound it before building it.
  std::vector<const client::ViewInfo*> infos;
  infos.reserve(request.lookups_size());
  size_t total_cells = 0;
  for (const auto& lookup : request.lookups()) {
    const client::ViewInfo* info = (*registry)->FindView(lookup.view());
    if (info == nullptr) return UnknownView(lookup.view());
    infos.push_back(info);
    const size_t features = lookup.features().empty() ? info->feature_types.size()
                                                      : static_cast<size_t>(lookup.features_size());
    total_cells += static_cast<size_t>(lookup.entity_keys_size()) * features;
  }
  if (total_cells > limits_.max_values_per_request) {
    return absl::InvalidArgumentError(absl::StrCat("request asks for ", total_cells,
                                                   " values (keys x features); the limit is ",
                                                   limits_.max_values_per_request));
  }

  response->Clear();
  for (int l = 0; l < request.lookups_size(); ++l) {
    const quiver::v1::ViewLookup& lookup = request.lookups(l);
    const client::ViewInfo* info = infos[l];
    std::vector<int> indices;
    if (lookup.features().empty()) {
      indices.resize(info->feature_types.size());
      for (size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<int>(i);
    } else {
      indices.reserve(lookup.features_size());
      for (const std::string& name : lookup.features()) {
        auto it = info->feature_index.find(name);
        if (it == info->feature_index.end()) {
          return absl::InvalidArgumentError(
              absl::StrCat("feature view '", lookup.view(), "' has no feature '", name, "'"));
        }
        indices.push_back(it->second);
      }
    }
    std::vector<std::string> keys(lookup.entity_keys().begin(), lookup.entity_keys().end());
    auto reads = store_->MultiGet(lookup.view(), keys, indices, info->view->schema_version());
    if (!reads.ok()) return reads.status();
    quiver::v1::ViewResult* result = response->add_results();
    result->mutable_rows()->Reserve(static_cast<int>(reads->size()));
    for (const storage::RowRead& read : *reads) {
      quiver::v1::RowResult* row = result->add_rows();
      row->set_status(ToProtoStatus(read.status));
      row->set_event_ts_us(read.event_ts_us);
      auto* values = row->mutable_values();
      values->Reserve(static_cast<int>(indices.size()));
      const bool present = read.status == storage::RowStatus::kPresent;
      for (size_t i = 0; i < indices.size(); ++i) {
        quiver::v1::Value* value = values->Add();
        if (present && i < read.values.size()) client::ToProto(read.values[i], value);
      }
    }
  }
  response->set_epoch(cluster_->epoch());
  return absl::OkStatus();
}

absl::Status RequestHandler::Write(const quiver::v1::WriteRequest& request,
                                   quiver::v1::WriteResponse* response) {
  if (static_cast<size_t>(request.rows_size()) > limits_.max_keys_per_request) {
    return absl::InvalidArgumentError(absl::StrCat("write has ", request.rows_size(),
                                                   " rows; the limit is ",
                                                   limits_.max_keys_per_request));
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

  const size_t num_features = info->feature_types.size();
  std::vector<storage::RowWrite> rows;
  rows.reserve(request.rows_size());
  for (int r = 0; r < request.rows_size(); ++r) {
    const quiver::v1::WriteRow& in = request.rows(r);
    if (absl::Status s = CheckKey(in.entity_key()); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("row ", r, ": ", s.message()));
    }
    if (static_cast<size_t>(in.values_size()) != num_features) {
      return absl::InvalidArgumentError(absl::StrCat("row ", r, " has ", in.values_size(),
                                                     " values; view '", request.view(),
                                                     "' has ", num_features, " features"));
    }
    storage::RowWrite& out = rows.emplace_back();
    out.entity_key = in.entity_key();
    out.event_ts_us = in.event_ts_us();
    out.created_ts_us = in.created_ts_us();
    out.values.reserve(num_features);
    for (size_t i = 0; i < num_features; ++i) {
      auto value = client::FromProto(in.values(static_cast<int>(i)), info->feature_types[i]);
      if (!value.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("row ", r, ", feature '", info->view->features(static_cast<int>(i)).name(),
                         "': ", value.status().message()));
      }
      out.values.push_back(*std::move(value));
    }
  }
  if (absl::Status s = store_->Write(request.view(), rows, request.schema_version()); !s.ok()) {
    return s;
  }
  if (metrics_ != nullptr) metrics_->rows_written->Increment(static_cast<double>(rows.size()));
  response->set_rows_written(rows.size());
  response->set_epoch(cluster_->epoch());
  return absl::OkStatus();
}

void RequestHandler::Health(quiver::v1::HealthResponse* response) const {
  auto registry = cluster_->registry();
  response->set_node_id(node_id_.load());
  response->set_epoch(cluster_->epoch());
  response->set_registry_version(registry ? registry->version() : 0);
  response->set_serving(registry != nullptr && node_id_.load() != 0);
}

}  // namespace quiver::node
