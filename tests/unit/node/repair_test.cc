// Repair: PlanRepair's choice of sources, and RepairFromPeers copying a
// replica's rows into a store that missed them, against the source handler's
// ScanPartitions (in process, no gRPC).
#include "quiver/node/repair.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "node_test_util.h"
#include "quiver/keys/entity_key.h"
#include "quiver/node/request_handler.h"

namespace quiver::node {
namespace {

using testing::AddFeature;
using testing::AddSingleEntityView;
using testing::BuildIndex;
using testing::FakeCluster;
using testing::OwnEverything;
using testing::OpenTestStore;
using testing::TempDir;

constexpr int64_t kT0 = 1'700'000'000'000'000;

// Nodes 1..n at "n<i>:1"; partition p of `q` replicated on `replicas(p)`.
client::ClusterMapView Map(uint32_t q, int nodes, const std::vector<uint32_t>& down,
                           const std::function<std::vector<uint32_t>(uint32_t)>& replicas) {
  quiver::v1::ClusterMap m;
  m.set_epoch(3);
  m.set_num_partitions(q);
  for (int i = 1; i <= nodes; ++i) {
    auto* n = m.add_nodes();
    n->set_id(i);
    n->set_address(absl::StrCat("n", i, ":1"));
    const bool is_down = std::find(down.begin(), down.end(), static_cast<uint32_t>(i)) != down.end();
    n->set_state(is_down ? quiver::v1::DOWN : quiver::v1::UP);
  }
  for (uint32_t p = 0; p < q; ++p) {
    auto* part = m.add_partitions();
    for (uint32_t id : replicas(p)) part->add_node_ids(id);
  }
  auto view = client::ClusterMapView::Build(m);
  EXPECT_TRUE(view.ok()) << view.status();
  return *view;
}

TEST(PlanRepairTest, FirstUpPeerPerPartitionMergedIntoRanges) {
  // 8 partitions over nodes 1..3: p -> {p % 3 + 1, (p + 1) % 3 + 1}.
  auto replicas = [](uint32_t p) {
    return std::vector<uint32_t>{p % 3 + 1, (p + 1) % 3 + 1};
  };
  const client::ClusterMapView all_up = Map(8, 3, {}, replicas);
  // Node 1 holds p % 3 == 0 (first, peer 2) and p % 3 == 2 (second, peer 3).
  std::vector<uint32_t> unsourced;
  std::vector<RepairRange> ranges = PlanRepair(all_up, 1, &unsourced);
  std::map<uint32_t, uint32_t> source;  // partition -> source
  for (const RepairRange& r : ranges) {
    for (uint32_t p = r.begin; p < r.end; ++p) source[p] = r.source;
  }
  EXPECT_EQ(source, (std::map<uint32_t, uint32_t>{{0, 2}, {2, 3}, {3, 2}, {5, 3}, {6, 2}}));
  EXPECT_TRUE(unsourced.empty());
  // Node 2 down: node 1's partitions whose other replica is 2 have no source.
  const client::ClusterMapView two_down = Map(8, 3, {2}, replicas);
  unsourced.clear();
  ranges = PlanRepair(two_down, 1, &unsourced);
  source.clear();
  for (const RepairRange& r : ranges) {
    for (uint32_t p = r.begin; p < r.end; ++p) source[p] = r.source;
  }
  EXPECT_EQ(source, (std::map<uint32_t, uint32_t>{{2, 3}, {5, 3}}));
  EXPECT_EQ(unsourced, (std::vector<uint32_t>{0, 3, 6}));
  // Consecutive partitions from one source are one range.
  const client::ClusterMapView pairs = Map(8, 2, {}, [](uint32_t) {
    return std::vector<uint32_t>{1, 2};
  });
  ranges = PlanRepair(pairs, 2);
  ASSERT_EQ(ranges.size(), 1u);
  EXPECT_EQ(ranges[0].begin, 0u);
  EXPECT_EQ(ranges[0].end, 8u);
  EXPECT_EQ(ranges[0].source, 1u);
}

class RepairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    quiver::v1::Registry r;
    r.set_project("t");
    r.set_version(1);
    auto* view = AddSingleEntityView(&r, {.entity = "user", .join_key = "user_id",
                                          .source = "s", .path = "x.parquet", .view = "stats"});
    AddFeature(view, "clicks", quiver::v1::INT64);
    AddFeature(view, "name", quiver::v1::STRING);
    auto* other = AddSingleEntityView(&r, {.entity = "item", .join_key = "item_id",
                                           .source = "s2", .path = "y.parquet", .view = "items"});
    AddFeature(other, "price", quiver::v1::DOUBLE);
    index_ = BuildIndex(r);
    for (int i = 0; i < 2; ++i) {
      auto store = OpenTestStore(dirs_[i].path());
      ASSERT_TRUE(store.ok()) << store.status();
      stores_[i] = *std::move(store);
      clusters_[i].current = index_;
      handlers_[i] = std::make_unique<RequestHandler>(stores_[i].get(), &clusters_[i]);
      OwnEverything(*handlers_[i], static_cast<uint32_t>(i + 1));
      ASSERT_TRUE(handlers_[i]->SyncViews(*index_).ok());
    }
  }

  static std::string UserKey(int64_t id) {
    return EncodeEntityKey({{"user_id", Value::Int64(id)}}).value();
  }

  // What one store holds for users 0..n-1 of view "stats".
  std::vector<storage::RowRead> Users(int store, int n) {
    std::vector<std::string> keys;
    for (int i = 0; i < n; ++i) keys.push_back(UserKey(i));
    auto rows = stores_[store]->MultiGet("stats", keys, std::vector<int>{0, 1});
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.value_or(std::vector<storage::RowRead>{});
  }

  TempDir dirs_[2];
  std::unique_ptr<storage::RowStore> stores_[2];
  FakeCluster clusters_[2];
  std::unique_ptr<RequestHandler> handlers_[2];
  std::shared_ptr<const client::RegistryIndex> index_;
};

TEST_F(RepairTest, CopiesEveryRowOfEveryViewAndKeepsNewerLocalRows) {
  // Node 1 (store 0) took 300 users and 50 items; node 2 (store 1) missed
  // them but has one newer and one older row of its own.
  std::vector<storage::RowWrite> users, items;
  for (int i = 0; i < 300; ++i) {
    users.push_back({UserKey(i), kT0 + i, 0, {Value::Int64(i), Value::String(absl::StrCat("u", i))}});
  }
  for (int i = 0; i < 50; ++i) {
    items.push_back({EncodeEntityKey({{"item_id", Value::Int64(i)}}).value(), kT0, 0,
                     {Value::Double(i * 1.5)}});
  }
  ASSERT_TRUE(stores_[0]->Write("stats", users).ok());
  ASSERT_TRUE(stores_[0]->Write("items", items).ok());
  const std::vector<storage::RowWrite> own = {
      {UserKey(7), kT0 + 1000, 0, {Value::Int64(-7), Value::String("newer")}},
      {UserKey(8), kT0 - 1000, 0, {Value::Int64(-8), Value::String("older")}}};
  ASSERT_TRUE(stores_[1]->Write("stats", own).ok());

  const client::ClusterMapView map = Map(16, 2, {}, [](uint32_t) {
    return std::vector<uint32_t>{1, 2};
  });
  int calls = 0;
  ScanPartitionsFn scan = [&](const std::string& address, const quiver::v1::ScanPartitionsRequest& req)
      -> absl::StatusOr<quiver::v1::ScanPartitionsResponse> {
    ++calls;
    EXPECT_EQ(address, "n1:1");
    quiver::v1::ScanPartitionsResponse resp;
    if (absl::Status s = handlers_[0]->ScanPartitions(req, &resp); !s.ok()) return s;
    return resp;
  };
  auto stats = RepairFromPeers(map, *index_, 2, *stores_[1], scan, /*page_bytes=*/2000);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->partitions, 16u);
  EXPECT_EQ(stats->rows, 350u);
  EXPECT_GT(calls, 10);  // small pages
  EXPECT_EQ(stores_[1]->CountRows("stats").value(), 300u);
  EXPECT_EQ(stores_[1]->CountRows("items").value(), 50u);
  const auto want = Users(0, 300);
  const auto got = Users(1, 300);
  for (int i = 0; i < 300; ++i) {
    SCOPED_TRACE(i);
    if (i == 7) {
      EXPECT_EQ(got[i].values[1], Value::String("newer"));
      continue;
    }
    EXPECT_EQ(got[i].values, want[i].values);
    EXPECT_EQ(got[i].event_ts_us, want[i].event_ts_us);
  }
  // Running it again changes nothing.
  ASSERT_TRUE(RepairFromPeers(map, *index_, 2, *stores_[1], scan).ok());
  EXPECT_EQ(stores_[1]->CountRows("stats").value(), 300u);
}

TEST_F(RepairTest, SourceFailureStopsTheRepairNamingTheRange) {
  const client::ClusterMapView map = Map(16, 2, {}, [](uint32_t) {
    return std::vector<uint32_t>{1, 2};
  });
  ScanPartitionsFn failing = [](const std::string&, const quiver::v1::ScanPartitionsRequest&)
      -> absl::StatusOr<quiver::v1::ScanPartitionsResponse> {
    return absl::UnavailableError("connection refused");
  };
  auto stats = RepairFromPeers(map, *index_, 2, *stores_[1], failing);
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(stats.status().message().find("from node 1"), std::string::npos) << stats.status();
  // A page with a malformed row is refused by MergeRaw and nothing of it lands.
  ScanPartitionsFn corrupt = [](const std::string&, const quiver::v1::ScanPartitionsRequest&)
      -> absl::StatusOr<quiver::v1::ScanPartitionsResponse> {
    quiver::v1::ScanPartitionsResponse resp;
    auto* row = resp.add_rows();
    row->set_key(storage::RowStore::RowKey(UserKey(1), 16));
    row->set_value("garbage");
    resp.set_done(true);
    return resp;
  };
  EXPECT_EQ(RepairFromPeers(map, *index_, 2, *stores_[1], corrupt).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(stores_[1]->CountRows("stats").value(), 0u);
  // Cancelled between pages.
  EXPECT_EQ(RepairFromPeers(map, *index_, 2, *stores_[1], corrupt, 1 << 20, [] { return true; })
                .status()
                .code(),
            absl::StatusCode::kCancelled);
}

TEST_F(RepairTest, ScanPartitionsValidatesItsRequest) {
  quiver::v1::ScanPartitionsRequest req;
  quiver::v1::ScanPartitionsResponse resp;
  req.set_view("nope");
  req.set_partition_end(1);
  EXPECT_EQ(handlers_[0]->ScanPartitions(req, &resp).code(), absl::StatusCode::kNotFound);
  req.set_view("stats");
  req.set_partition_begin(3);
  req.set_partition_end(2);
  EXPECT_EQ(handlers_[0]->ScanPartitions(req, &resp).code(), absl::StatusCode::kInvalidArgument);
  req.set_partition_begin(0);
  req.set_partition_end(17);  // the store has 16
  EXPECT_EQ(handlers_[0]->ScanPartitions(req, &resp).code(), absl::StatusCode::kInvalidArgument);
  req.set_partition_end(16);
  ASSERT_TRUE(handlers_[0]->ScanPartitions(req, &resp).ok());
  EXPECT_TRUE(resp.done());
  EXPECT_EQ(resp.rows_size(), 0);
  EXPECT_EQ(resp.epoch(), 7u);
}

}  // namespace
}  // namespace quiver::node
