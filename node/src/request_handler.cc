#include "quiver/node/request_handler.h"

#include <algorithm>
#include <shared_mutex>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "quiver/client/convert.h"
#include "quiver/client/packed_rows.h"
#include "quiver/keys/entity_key.h"
#include "quiver/node/metrics.h"
#include "request_handler_internal.h"

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
  if (!reads_enabled_.load(std::memory_order_relaxed)) {
    return absl::UnavailableError(absl::StrCat(
        "node ", node_id_.load(), " is recovering (copying missed writes from its peers)"));
  }
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
  // A node never answers NOT_FOUND for a partition it does not hold.
  auto map = MapOrUnavailable();
  if (!map.ok()) return map.status();
  const uint32_t self = node_id_.load(std::memory_order_relaxed);
  const client::ClusterMapView& owners = **map;
  for (const auto& lookup : request.lookups()) {
    for (const std::string& key : lookup.entity_keys()) {
      if (!owners.has_partitions()) return StaleMap(owners, 0, "has a map without", request.epoch());
      const uint32_t p = PartitionOf(key, owners.num_partitions());
      if (!owners.Owns(self, p)) return StaleMap(owners, p, "does not own", request.epoch());
    }
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
    quiver::v1::ViewResult* result = response->add_results();
    if (request.packed()) {
      // The stored cells go straight into the response: nothing is decoded.
      std::vector<std::string_view> keys(lookup.entity_keys().begin(), lookup.entity_keys().end());
      client::PackedRowWriter writer(result->mutable_packed_rows());
      absl::Status s = store_->MultiGetCells(
          lookup.view(), keys, indices, info->view->schema_version(),
          [&writer](size_t, storage::RowStatus status, int64_t event_ts_us,
                    std::span<const std::string_view> cells) {
            switch (status) {
              case storage::RowStatus::kNotFound:
                writer.NotFound();
                break;
              case storage::RowStatus::kOutsideMaxAge:
                writer.OutsideMaxAge(event_ts_us);
                break;
              case storage::RowStatus::kPresent:
                writer.Present(event_ts_us, cells);
                break;
            }
          });
      if (!s.ok()) return s;
      continue;
    }
    std::vector<std::string> keys(lookup.entity_keys().begin(), lookup.entity_keys().end());
    auto reads = store_->MultiGet(lookup.view(), keys, indices, info->view->schema_version());
    if (!reads.ok()) return reads.status();
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
  response->set_epoch(owners.epoch());
  return absl::OkStatus();
}

absl::Status RequestHandler::ScanPartitions(const quiver::v1::ScanPartitionsRequest& request,
                                            quiver::v1::ScanPartitionsResponse* response) {
  bool refreshed = false;
  auto registry = CurrentRegistry(false, &refreshed);
  if (!registry.ok()) return registry.status();
  if ((*registry)->FindView(request.view()) == nullptr) return UnknownView(request.view());
  if (request.partition_begin() >= request.partition_end() ||
      request.partition_end() > store_->num_partitions()) {
    return absl::InvalidArgumentError(absl::StrCat("partition range [", request.partition_begin(),
                                                   ", ", request.partition_end(), ") of ",
                                                   store_->num_partitions()));
  }
  auto map = MapOrUnavailable();
  if (!map.ok()) return map.status();
  const client::ClusterMapView& owners = **map;
  const uint32_t self = node_id_.load();
  for (uint32_t p = request.partition_begin(); p < request.partition_end(); ++p) {
    if (!owners.Owns(self, p)) return StaleMap(owners, p, "does not own", request.epoch());
    if (request.epoch() < owners.FenceOf(p)) {
      return StaleMap(owners, p,
                      absl::StrCat("refuses a scan at epoch ", request.epoch(), " (fence ",
                                   owners.FenceOf(p), ") of"),
                      request.epoch());
    }
  }
  uint64_t max_bytes = request.max_bytes() == 0 ? kDefaultScanBytes : request.max_bytes();
  max_bytes = std::min(max_bytes, kMaxScanBytes);
  absl::StatusOr<storage::RawScan> page =
      store_->ScanRaw(request.view(), request.partition_begin(), request.partition_end(),
                      request.after(), static_cast<size_t>(max_bytes));
  if (!page.ok()) return page.status();
  response->mutable_rows()->Reserve(static_cast<int>(page->rows.size()));
  for (storage::RawRow& row : page->rows) {
    quiver::v1::StoredRow* out = response->add_rows();
    out->set_key(std::move(row.key));
    out->set_value(std::move(row.value));
  }
  response->set_done(page->done);
  response->set_epoch(owners.epoch());
  return absl::OkStatus();
}

absl::Status RequestHandler::Backup(const quiver::v1::BackupRequest& request,
                                    quiver::v1::BackupResponse* response) {
  absl::StatusOr<storage::BackupResult> result = store_->CreateBackup(request.backup_dir());
  if (!result.ok()) return result.status();
  response->set_backup_id(result->backup_id);
  response->set_size_bytes(result->size_bytes);
  response->set_new_bytes(result->new_bytes);
  for (const storage::ViewDigest& v : result->views) {
    quiver::v1::ViewDigest* out = response->add_views();
    out->set_view(v.view);
    out->set_rows(v.rows);
    out->set_checksum(v.checksum);
    out->mutable_partitions()->Reserve(static_cast<int>(v.partitions.size()));
    for (const storage::PartitionDigest& p : v.partitions) {
      quiver::v1::PartitionDigest* pd = out->add_partitions();
      pd->set_partition(p.partition);
      pd->set_rows(p.rows);
      pd->set_checksum(p.checksum);
    }
  }
  response->set_num_partitions(store_->num_partitions());
  response->set_epoch(adopted_epoch());
  return absl::OkStatus();
}

absl::Status RequestHandler::MergeRows(const quiver::v1::MergeRowsRequest& request,
                                       quiver::v1::MergeRowsResponse* response) {
  if (static_cast<size_t>(request.rows_size()) > limits_.max_keys_per_request) {
    return absl::InvalidArgumentError(absl::StrCat(request.rows_size(), " rows in one MergeRows; at most ",
                                                   limits_.max_keys_per_request));
  }
  bool refreshed = false;
  auto registry = CurrentRegistry(false, &refreshed);
  if (!registry.ok()) return registry.status();
  if ((*registry)->FindView(request.view()) == nullptr) {
    registry = CurrentRegistry(true, &refreshed);
    if (!registry.ok()) return registry.status();
    if ((*registry)->FindView(request.view()) == nullptr) return UnknownView(request.view());
  }
  std::vector<storage::RawRow> rows;
  rows.reserve(static_cast<size_t>(request.rows_size()));
  for (const quiver::v1::StoredRow& r : request.rows()) rows.push_back({r.key(), r.value()});
  std::shared_lock<DrainLock> drain(drain_);
  auto map = MapOrUnavailable();
  if (!map.ok()) return map.status();
  const uint32_t self = node_id_.load();
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].key.size() <= 4) {
      return absl::InvalidArgumentError(
          absl::StrCat("row ", i, " of view ", request.view(), ": bad row key"));
    }
    const uint32_t p = PartitionOfRowKey(rows[i].key);
    if (p >= store_->num_partitions()) {
      return absl::InvalidArgumentError(
          absl::StrCat("row ", i, " of view ", request.view(), ": partition ", p, " out of range"));
    }
    if (!(*map)->OwnsOrReceives(self, p)) return StaleMap(**map, p, "neither owns nor receives", 0);
  }
  if (absl::Status s = store_->MergeRaw(request.view(), rows); !s.ok()) return s;
  response->set_rows_merged(rows.size());
  response->set_epoch((*map)->epoch());
  return absl::OkStatus();
}

void RequestHandler::Health(quiver::v1::HealthResponse* response) const {
  auto registry = cluster_->registry();
  response->set_node_id(node_id_.load());
  response->set_epoch(adopted_epoch());
  response->set_registry_version(registry ? registry->version() : 0);
  response->set_serving(registry != nullptr && node_id_.load() != 0);
}

}  // namespace quiver::node
