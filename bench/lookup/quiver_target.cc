#include <map>

#include "targets.h"

namespace quiver::bench {
namespace {

class QuiverTarget : public Target {
 public:
  QuiverTarget(client::Client* client, std::chrono::milliseconds deadline)
      : client_(client), deadline_(deadline) {}

  absl::Status Lookup(const Workload& w, std::span<const int64_t> entity_ids, Table* out) override {
    request_.feature_service = w.service;
    request_.deadline = deadline_;
    request_.entity_rows.resize(entity_ids.size());
    for (size_t i = 0; i < entity_ids.size(); ++i) {
      request_.entity_rows[i]["entity_id"] = Value::Int64(entity_ids[i]);
    }
    auto resp = client_->GetOnlineFeatures(request_);
    if (!resp.ok()) return resp.status();
    if (out == nullptr) return absl::OkStatus();
    out->assign(resp->rows.size(), {});
    for (size_t r = 0; r < resp->rows.size(); ++r) {
      for (const client::FeatureValue& fv : resp->rows[r]) (*out)[r].push_back(fv.value);
    }
    return absl::OkStatus();
  }

 private:
  client::Client* client_;
  std::chrono::milliseconds deadline_;
  client::OnlineRequest request_;  // reused: the maps keep their nodes
};

}  // namespace

std::unique_ptr<Target> NewQuiverTarget(client::Client* client,
                                        std::chrono::milliseconds deadline) {
  return std::make_unique<QuiverTarget>(client, deadline);
}

}  // namespace quiver::bench
