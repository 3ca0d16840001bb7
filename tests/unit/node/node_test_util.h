// Shared fixtures of the node's unit tests: a temp dir and an in-process
// registry / cluster view.
#ifndef QUIVER_TESTS_UNIT_NODE_NODE_TEST_UTIL_H_
#define QUIVER_TESTS_UNIT_NODE_NODE_TEST_UTIL_H_

#include <memory>
#include <string>
#include <utility>

#include "common/temp_dir.h"
#include "quiver.pb.h"
#include "quiver/client/cluster_map.h"
#include "quiver/client/registry_index.h"
#include "quiver/node/request_handler.h"
#include "quiver/storage/row_store.h"

namespace quiver::node::testing {

using TempDir = quiver::testing::TempDir;

inline std::shared_ptr<const client::RegistryIndex> BuildIndex(const quiver::v1::Registry& r) {
  auto index = client::RegistryIndex::Build(r);
  if (!index.ok()) std::abort();
  return *index;
}

// A ClusterView over registries held in memory; Refresh() moves to `next` if set.
class FakeCluster final : public ClusterView {
 public:
  std::shared_ptr<const client::RegistryIndex> registry() const override { return current; }
  absl::Status Refresh() override {
    ++refreshes;
    if (next != nullptr) current = std::exchange(next, nullptr);
    return absl::OkStatus();
  }

  std::shared_ptr<const client::RegistryIndex> current;
  std::shared_ptr<const client::RegistryIndex> next;
  int refreshes = 0;
};

// The epoch of the map OwnAllMap gives the tests' handlers.
inline constexpr uint64_t kTestEpoch = 7;

// A cluster map of `q` partitions in which node `self` (UP, at `address`)
// owns every partition, with no fences: what a single-node cluster sees.
inline std::shared_ptr<const client::ClusterMapView> OwnAllMap(uint32_t self, uint32_t q = 16,
                                                               uint64_t epoch = kTestEpoch,
                                                               const std::string& address = "n1:1") {
  quiver::v1::ClusterMap m;
  m.set_epoch(epoch);
  m.set_num_partitions(q);
  auto* n = m.add_nodes();
  n->set_id(self);
  n->set_address(address);
  n->set_state(quiver::v1::UP);
  for (uint32_t p = 0; p < q; ++p) m.add_partitions()->add_node_ids(self);
  auto view = client::ClusterMapView::Build(m);
  if (!view.ok()) std::abort();
  return std::make_shared<const client::ClusterMapView>(*std::move(view));
}

// Gives `handler` node id `self` and a map in which it owns every partition.
inline void OwnEverything(RequestHandler& handler, uint32_t self = 1, uint32_t q = 16) {
  handler.set_node_id(self);
  if (!handler.AdoptMap(OwnAllMap(self, q))) std::abort();
}

inline quiver::v1::FeatureSpec* AddFeature(quiver::v1::FeatureView* view, const std::string& name,
                                           quiver::v1::ValueType type) {
  auto* f = view->add_features();
  f->set_name(name);
  f->set_type(type);
  return f;
}

// Adds an entity (one join key), a source and an online feature view keyed by
// that entity (schema version 1, no features yet) to `r`; returns the view.
struct SingleEntityView {
  std::string entity{};
  std::string join_key{};
  quiver::v1::ValueType key_type = quiver::v1::INT64;
  std::string source{};
  std::string path{};
  std::string timestamp_field = "ts";
  std::string created_column{};
  std::string view{};
};
inline quiver::v1::FeatureView* AddSingleEntityView(quiver::v1::Registry* r,
                                                    const SingleEntityView& spec) {
  auto* entity = r->add_entities();
  entity->set_name(spec.entity);
  entity->set_join_key(spec.join_key);
  entity->set_value_type(spec.key_type);
  auto* src = r->add_sources();
  src->set_name(spec.source);
  src->set_path(spec.path);
  src->set_timestamp_field(spec.timestamp_field);
  src->set_created_timestamp_column(spec.created_column);
  auto* view = r->add_feature_views();
  view->set_name(spec.view);
  view->add_entities(spec.entity);
  view->set_source(spec.source);
  view->set_online(true);
  view->set_schema_version(1);
  return view;
}

// A RowStore of 16 partitions and an 8 MiB block cache under `dir`/rocksdb.
inline absl::StatusOr<std::unique_ptr<storage::RowStore>> OpenTestStore(
    const std::string& dir, storage::Clock clock = storage::SystemNowMicros) {
  storage::RowStoreOptions options;
  options.path = dir + "/rocksdb";
  options.num_partitions = 16;
  options.block_cache_bytes = 8 << 20;
  options.clock = std::move(clock);
  return storage::RowStore::Open(options);
}

}  // namespace quiver::node::testing

#endif  // QUIVER_TESTS_UNIT_NODE_NODE_TEST_UTIL_H_
