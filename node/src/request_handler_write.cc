// RequestHandler::Write: the node's write path (materialization and Push).
#include <prometheus/counter.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "quiver/client/convert.h"
#include "quiver/keys/entity_key.h"
#include "quiver/node/metrics.h"
#include "quiver/node/request_handler.h"
#include "request_handler_internal.h"

namespace quiver::node {

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

}  // namespace quiver::node
