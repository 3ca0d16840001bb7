#include "fake_cluster.h"

#include <chrono>
#include <string_view>
#include <thread>

#include "absl/strings/str_cat.h"
#include "quiver/client/convert.h"
#include "quiver/client/packed_rows.h"
#include "quiver/keys/packed_values.h"
#include "quiver/keys/value.h"

namespace quiver::testing {
namespace {

// Serves on *address, or on a free port of 127.0.0.1 when it is empty.
std::unique_ptr<grpc::Server> Serve(grpc::Service* service, std::string* address) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address->empty() ? "127.0.0.1:0" : *address,
                           grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(service);
  auto server = builder.BuildAndStart();
  *address = absl::StrCat("127.0.0.1:", port);
  return server;
}

void Stop(std::unique_ptr<grpc::Server>& server) {
  if (server == nullptr) return;
  // Calls still running (hung) are cancelled at the deadline.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  server->Wait();
  server.reset();
}

int64_t RealNowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// ---------------------------------------------------------------------------

class FakeCoordinator::Service final : public quiver::v1::CoordinatorService::Service {
 public:
  explicit Service(FakeCoordinator* owner) : owner_(owner) {}
  grpc::Status GetClusterMap(grpc::ServerContext*, const quiver::v1::GetClusterMapRequest*,
                             quiver::v1::ClusterMap* out) override {
    owner_->map_calls_.fetch_add(1);
    *out = owner_->map();
    return grpc::Status::OK;
  }
  grpc::Status GetRegistry(grpc::ServerContext*, const quiver::v1::GetRegistryRequest*,
                           quiver::v1::Registry* out) override {
    absl::MutexLock l(&owner_->mu_);
    *out = owner_->registry_;
    return grpc::Status::OK;
  }

 private:
  FakeCoordinator* owner_;
};

FakeCoordinator::FakeCoordinator() : service_(std::make_unique<Service>(this)) {
  server_ = Serve(service_.get(), &address_);
}

FakeCoordinator::~FakeCoordinator() { Shutdown(); }

void FakeCoordinator::SetMap(quiver::v1::ClusterMap map) {
  absl::MutexLock l(&mu_);
  map_ = std::move(map);
}

void FakeCoordinator::SetRegistry(quiver::v1::Registry registry) {
  absl::MutexLock l(&mu_);
  registry_ = std::move(registry);
}

quiver::v1::ClusterMap FakeCoordinator::map() const {
  absl::MutexLock l(&mu_);
  return map_;
}

void FakeCoordinator::Shutdown() { Stop(server_); }

void FakeCoordinator::Restart() {
  Shutdown();
  // A gRPC service registers with one server only: a fresh one for the new server.
  service_ = std::make_unique<Service>(this);
  server_ = Serve(service_.get(), &address_);
}

// ---------------------------------------------------------------------------

class FakeNode::Service final : public quiver::v1::NodeService::Service {
 public:
  explicit Service(FakeNode* owner) : owner_(owner) {}

  grpc::Status Get(grpc::ServerContext* ctx, const quiver::v1::GetRequest* req,
                   quiver::v1::GetResponse* out) override {
    owner_->get_calls_.fetch_add(1);
    {
      absl::MutexLock l(&owner_->mu_);
      for (const auto& lookup : req->lookups()) {
        for (const auto& key : lookup.entity_keys()) owner_->get_keys_.emplace_back(lookup.view(), key);
      }
    }
    if (grpc::Status s = Injected(ctx); !s.ok()) return s;
    const int64_t now_us = owner_->now_us_.load() != 0 ? owner_->now_us_.load() : RealNowUs();
    absl::MutexLock l(&owner_->mu_);
    for (const auto& lookup : req->lookups()) {
      const quiver::v1::FeatureView* view = FindView(lookup.view());
      if (view == nullptr) return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown view");
      std::vector<int> columns;
      if (lookup.features().empty()) {
        for (int i = 0; i < view->features_size(); ++i) columns.push_back(i);
      }
      for (const auto& name : lookup.features()) {
        int found = -1;
        for (int i = 0; i < view->features_size(); ++i) {
          if (view->features(i).name() == name) found = i;
        }
        if (found < 0) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unknown feature");
        columns.push_back(found);
      }
      auto* result = out->add_results();
      const auto& rows = owner_->rows_[lookup.view()];
      for (const auto& key : lookup.entity_keys()) {
        auto* row = result->add_rows();
        auto it = rows.find(key);
        if (it == rows.end()) {
          row->set_status(quiver::v1::NOT_FOUND);
          continue;
        }
        row->set_event_ts_us(it->second.event_ts_us());
        if (view->ttl_seconds() > 0 &&
            it->second.event_ts_us() + view->ttl_seconds() * 1000000 < now_us) {
          row->set_status(quiver::v1::OUTSIDE_MAX_AGE);
          continue;
        }
        row->set_status(quiver::v1::PRESENT);
        for (int c : columns) {
          *row->add_values() =
              c < it->second.values_size() ? it->second.values(c) : quiver::v1::Value();
        }
      }
    }
    out->set_epoch(owner_->epoch_.load());
    return grpc::Status::OK;
  }

  grpc::Status Write(grpc::ServerContext* ctx, const quiver::v1::WriteRequest* req,
                     quiver::v1::WriteResponse* out) override {
    owner_->write_calls_.fetch_add(1);
    if (grpc::Status s = Injected(ctx); !s.ok()) return s;
    const quiver::v1::FeatureView* view = FindView(req->view());
    if (view == nullptr) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown view");
    }
    std::vector<quiver::v1::WriteRow> rows(req->rows().begin(), req->rows().end());
    for (std::string_view in = req->packed_rows(); !in.empty();) {
      absl::StatusOr<WriteRowView> r = NextWriteRow(&in);
      if (!r.ok()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "malformed packed rows");
      quiver::v1::WriteRow& row = rows.emplace_back();
      row.set_entity_key(std::string(r->entity_key));
      row.set_event_ts_us(r->event_ts_us);
      row.set_created_ts_us(r->created_ts_us);
      row.set_packed_values(std::string(r->packed_values));
    }
    for (const auto& row : rows) {
      if (row.packed_values().empty()) {
        owner_->Put(req->view(), row);
        continue;
      }
      auto unpacked = Unpacked(*view, row);
      if (!unpacked.has_value()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "malformed packed values");
      }
      owner_->Put(req->view(), *unpacked);
    }
    out->set_rows_written(rows.size());
    out->set_epoch(owner_->epoch_.load());
    return grpc::Status::OK;
  }

  // The row with WriteRow.packed_values (format in proto/quiver.proto) turned
  // into Value messages; nullopt if malformed.
  static std::optional<quiver::v1::WriteRow> Unpacked(const quiver::v1::FeatureView& view,
                                                      const quiver::v1::WriteRow& row) {
    std::vector<ValueType> types;
    for (const auto& feature : view.features()) types.push_back(client::FromProtoType(feature.type()));
    std::vector<Value> values;
    if (!UnpackValues(row.packed_values(), types, &values).ok()) return std::nullopt;
    quiver::v1::WriteRow out = row;
    out.clear_packed_values();
    for (const Value& v : values) client::ToProto(v, out.add_values());
    return out;
  }

  grpc::Status Health(grpc::ServerContext*, const quiver::v1::HealthRequest*,
                      quiver::v1::HealthResponse* out) override {
    out->set_node_id(owner_->id_);
    out->set_epoch(owner_->epoch_.load());
    out->set_registry_version(owner_->registry_.version());
    out->set_serving(true);
    return grpc::Status::OK;
  }

 private:
  grpc::Status Injected(grpc::ServerContext* ctx) {
    while (owner_->hang_.load() && !ctx->IsCancelled()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    if (int code = owner_->fail_code_.load(); code != 0) {
      return grpc::Status(static_cast<grpc::StatusCode>(code), "injected failure");
    }
    return grpc::Status::OK;
  }

  const quiver::v1::FeatureView* FindView(const std::string& name) const {
    for (const auto& v : owner_->registry_.feature_views()) {
      if (v.name() == name) return &v;
    }
    return nullptr;
  }

  FakeNode* owner_;
};

FakeNode::FakeNode(uint32_t id, quiver::v1::Registry registry)
    : id_(id), registry_(std::move(registry)), service_(std::make_unique<Service>(this)) {
  server_ = Serve(service_.get(), &address_);
}

FakeNode::~FakeNode() { Shutdown(); }

void FakeNode::Shutdown() {
  hang_.store(false);
  Stop(server_);
}

void FakeNode::Restart() {
  Shutdown();
  // A gRPC service registers with one server only: a fresh one for the new server.
  service_ = std::make_unique<Service>(this);
  server_ = Serve(service_.get(), &address_);
}

void FakeNode::Put(const std::string& view, const quiver::v1::WriteRow& row) {
  absl::MutexLock l(&mu_);
  auto& slot = rows_[view][row.entity_key()];
  const bool newer = std::make_pair(row.event_ts_us(), row.created_ts_us()) >=
                     std::make_pair(slot.event_ts_us(), slot.created_ts_us());
  if (slot.entity_key().empty() || newer) slot = row;
}

std::optional<quiver::v1::WriteRow> FakeNode::Row(const std::string& view,
                                                  const std::string& key) const {
  absl::MutexLock l(&mu_);
  auto v = rows_.find(view);
  if (v == rows_.end()) return std::nullopt;
  auto it = v->second.find(key);
  if (it == v->second.end()) return std::nullopt;
  return it->second;
}

size_t FakeNode::RowCount(const std::string& view) const {
  absl::MutexLock l(&mu_);
  auto v = rows_.find(view);
  return v == rows_.end() ? 0 : v->second.size();
}

std::vector<std::pair<std::string, std::string>> FakeNode::GetKeys() const {
  absl::MutexLock l(&mu_);
  return get_keys_;
}

void FakeNode::ClearRecords() {
  absl::MutexLock l(&mu_);
  get_keys_.clear();
  get_calls_.store(0);
  write_calls_.store(0);
}

quiver::v1::Registry SampleRegistry() {
  quiver::v1::Registry r;
  r.set_project("test");
  r.set_version(7);
  auto entity = [&](const char* name, const char* key, quiver::v1::ValueType t) {
    auto* e = r.add_entities();
    e->set_name(name);
    e->set_join_key(key);
    e->set_value_type(t);
  };
  entity("origin", "origin", quiver::v1::STRING);
  entity("destination", "destination", quiver::v1::STRING);
  entity("user", "user_id", quiver::v1::INT64);
  auto view = [&](const char* name, std::vector<const char*> entities,
                  std::vector<std::pair<const char*, quiver::v1::ValueType>> features,
                  int64_t ttl_seconds) {
    auto* v = r.add_feature_views();
    v->set_name(name);
    for (const char* e : entities) v->add_entities(e);
    for (const auto& [f, t] : features) {
      auto* spec = v->add_features();
      spec->set_name(f);
      spec->set_type(t);
    }
    v->set_ttl_seconds(ttl_seconds);
    v->set_online(true);
    v->set_schema_version(1);
  };
  view("route_stats", {"origin", "destination"},
       {{"avg_delay", quiver::v1::DOUBLE}, {"flights", quiver::v1::INT64},
        {"carriers", quiver::v1::STRING_LIST}},
       0);
  view("user_stats", {"user"},
       {{"score", quiver::v1::FLOAT}, {"active", quiver::v1::BOOL},
        {"last_seen", quiver::v1::UNIX_TIMESTAMP}},
       3600);
  auto* svc = r.add_feature_services();
  svc->set_name("delay_model_v1");
  svc->add_features("route_stats:avg_delay");
  svc->add_features("user_stats");
  return r;
}

quiver::v1::ClusterMap MakeClusterMap(uint64_t epoch, uint32_t num_partitions, uint32_t r,
                                      const std::vector<const FakeNode*>& nodes) {
  quiver::v1::ClusterMap map;
  map.set_epoch(epoch);
  map.set_num_partitions(num_partitions);
  map.set_replication_factor(r);
  for (const FakeNode* n : nodes) {
    auto* info = map.add_nodes();
    info->set_id(n->id());
    info->set_address(n->address());
    info->set_state(quiver::v1::UP);
  }
  const size_t copies = std::min<size_t>(r, nodes.size());
  for (uint32_t p = 0; p < num_partitions; ++p) {
    auto* part = map.add_partitions();
    for (size_t i = 0; i < copies; ++i) part->add_node_ids(nodes[(p + i) % nodes.size()]->id());
  }
  return map;
}

}  // namespace quiver::testing
