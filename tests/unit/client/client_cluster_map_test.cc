#include "quiver/client/cluster_map.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace quiver::client {
namespace {

using ::testing::ElementsAre;

quiver::v1::ClusterMap Map() {
  quiver::v1::ClusterMap m;
  m.set_epoch(9);
  m.set_num_partitions(2);
  m.set_replication_factor(3);
  for (uint32_t id : {1, 2, 3}) {
    auto* n = m.add_nodes();
    n->set_id(id);
    n->set_address("10.0.0." + std::to_string(id) + ":7000");
    n->set_state(id == 2 ? quiver::v1::DOWN : quiver::v1::UP);
  }
  for (auto ids : {std::vector<uint32_t>{2, 3, 1}, std::vector<uint32_t>{3, 1, 2}}) {
    auto* p = m.add_partitions();
    for (uint32_t id : ids) p->add_node_ids(id);
  }
  return m;
}

std::vector<uint32_t> Vec(std::span<const uint32_t> s) { return {s.begin(), s.end()}; }

TEST(ClusterMapViewTest, OrdersUpReplicasFirst) {
  auto view = ClusterMapView::Build(Map());
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->epoch(), 9u);
  EXPECT_EQ(view->num_partitions(), 2u);
  EXPECT_TRUE(view->has_partitions());
  EXPECT_THAT(Vec(view->ReplicasOf(0)), ElementsAre(3, 1, 2));
  EXPECT_THAT(Vec(view->AllReplicasOf(0)), ElementsAre(2, 3, 1));
  EXPECT_THAT(Vec(view->ReplicasOf(1)), ElementsAre(3, 1, 2));
  EXPECT_TRUE(view->ReplicasOf(2).empty());
  EXPECT_EQ(view->AddressOf(3), "10.0.0.3:7000");
  EXPECT_EQ(view->AddressOf(42), "");
  EXPECT_TRUE(view->IsUp(1));
  EXPECT_FALSE(view->IsUp(2));
  EXPECT_FALSE(view->IsUp(42));
  EXPECT_EQ(view->nodes().size(), 3u);
}

TEST(ClusterMapViewTest, EmptyMapRoutesNothing) {
  quiver::v1::ClusterMap m;
  m.set_num_partitions(4096);
  auto view = ClusterMapView::Build(m);
  ASSERT_TRUE(view.ok());
  EXPECT_FALSE(view->has_partitions());
  EXPECT_TRUE(view->ReplicasOf(0).empty());
}

TEST(ClusterMapViewTest, RejectsMalformedMaps) {
  auto m = Map();
  m.set_num_partitions(3);
  EXPECT_EQ(ClusterMapView::Build(m).status().code(), absl::StatusCode::kInvalidArgument);
  m = Map();
  m.set_num_partitions(4);
  EXPECT_EQ(ClusterMapView::Build(m).status().code(), absl::StatusCode::kInvalidArgument);
  m = Map();
  m.mutable_partitions(1)->add_node_ids(77);
  EXPECT_EQ(ClusterMapView::Build(m).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quiver::client
