// quiver::client::Client against in-process fake coordinator and nodes.
#include "quiver/client/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include "fake_cluster.h"
#include "quiver/keys/entity_key.h"

namespace quiver::client {
namespace {

using quiver::testing::FakeCoordinator;
using quiver::testing::FakeNode;
using ::testing::HasSubstr;
using Keys = std::set<std::pair<std::string, std::string>>;

constexpr uint32_t kPartitions = 16;
constexpr int kRows = 40;

// Keys built straight from the key library, not through RegistryIndex.
std::string RouteKey(int i) {
  return EncodeEntityKey({{"origin", Value::String("O" + std::to_string(i))},
                          {"destination", Value::String("D" + std::to_string(i % 7))}})
      .value();
}
std::string UserKey(int i) { return EncodeEntityKey({{"user_id", Value::Int64(1000 + i)}}).value(); }

std::map<std::string, Value> EntityRow(int i) {
  return {{"origin", Value::String("O" + std::to_string(i))},
          {"destination", Value::String("D" + std::to_string(i % 7))},
          {"user_id", Value::Int64(1000 + i)}};
}

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class ClientTest : public ::testing::Test {
 protected:
  void StartCluster(int num_nodes, uint32_t r) {
    for (int i = 1; i <= num_nodes; ++i) {
      nodes_.push_back(std::make_unique<FakeNode>(i, quiver::testing::SampleRegistry()));
    }
    coordinator_.SetRegistry(quiver::testing::SampleRegistry());
    coordinator_.SetMap(MakeMap(1, r));
  }

  quiver::v1::ClusterMap MakeMap(uint64_t epoch, uint32_t r) {
    std::vector<const FakeNode*> ptrs;
    for (auto& n : nodes_) ptrs.push_back(n.get());
    return quiver::testing::MakeClusterMap(epoch, kPartitions, r, ptrs);
  }

  std::unique_ptr<Client> NewClient(std::chrono::milliseconds refresh = std::chrono::hours(1)) {
    ClientOptions opts;
    opts.coordinator_address = coordinator_.address();
    opts.refresh_interval = refresh;
    auto client = Client::Create(opts);
    EXPECT_TRUE(client.ok()) << client.status();
    return *std::move(client);
  }

  // Replica node ids of `key` as the coordinator's map lists them.
  std::vector<uint32_t> ReplicasOf(const std::string& key) {
    const auto map = coordinator_.map();
    const auto& ids = map.partitions(PartitionOf(key, map.num_partitions())).node_ids();
    return {ids.begin(), ids.end()};
  }
  FakeNode& Node(uint32_t id) { return *nodes_[id - 1]; }

  // Stores a row on every replica, as a successful write would.
  void Seed(const std::string& view, const quiver::v1::WriteRow& row) {
    for (uint32_t id : ReplicasOf(row.entity_key())) Node(id).Put(view, row);
  }

  // Even routes and every user get a row; odd routes stay unknown.
  void SeedSample() {
    for (int i = 0; i < kRows; ++i) {
      if (i % 2 == 0) {
        quiver::v1::WriteRow route;
        route.set_entity_key(RouteKey(i));
        route.set_event_ts_us(100 + i);
        route.add_values()->set_double_val(i * 1.5);
        route.add_values()->set_int64_val(i);
        route.add_values()->mutable_string_list_val()->add_val("AA");
        Seed("route_stats", route);
      }
      quiver::v1::WriteRow user;
      user.set_entity_key(UserKey(i));
      user.set_event_ts_us(NowUs());
      user.add_values()->set_float_val(i / 4.0f);
      user.add_values()->set_bool_val(i % 3 == 0);
      user.add_values()->set_unix_timestamp_val(i);
      Seed("user_stats", user);
    }
  }

  static OnlineRequest SampleRequest(std::chrono::milliseconds deadline = std::chrono::seconds(5)) {
    OnlineRequest req;
    req.features = {"route_stats:avg_delay", "route_stats:flights", "user_stats:score"};
    for (int i = 0; i < kRows; ++i) req.entity_rows.push_back(EntityRow(i));
    req.deadline = deadline;
    return req;
  }

  static void ExpectSampleValues(const OnlineResponse& resp) {
    ASSERT_EQ(resp.rows.size(), static_cast<size_t>(kRows));
    EXPECT_THAT(resp.feature_refs, ::testing::ElementsAre("route_stats:avg_delay",
                                                          "route_stats:flights",
                                                          "user_stats:score"));
    for (int i = 0; i < kRows; ++i) {
      const auto& row = resp.rows[i];
      ASSERT_EQ(row.size(), 3u);
      if (i % 2 == 0) {
        EXPECT_EQ(row[0].status, FeatureStatus::kPresent) << i;
        EXPECT_EQ(row[0].value, Value::Double(i * 1.5));
        EXPECT_EQ(row[1].value, Value::Int64(i));
        EXPECT_EQ(row[0].event_ts_us, 100 + i);
      } else {
        EXPECT_EQ(row[0].status, FeatureStatus::kNotFound) << i;
        EXPECT_EQ(row[1].status, FeatureStatus::kNotFound);
        EXPECT_TRUE(row[0].value.is_null());
        EXPECT_EQ(row[0].event_ts_us, 0);
      }
      EXPECT_EQ(row[2].status, FeatureStatus::kPresent);
      EXPECT_EQ(row[2].value, Value::Float(i / 4.0f));
    }
  }

  FakeCoordinator coordinator_;
  std::vector<std::unique_ptr<FakeNode>> nodes_;
};

TEST_F(ClientTest, RoutesEachKeyToItsPreferredReplicaInOneCallPerNode) {
  StartCluster(3, 2);
  SeedSample();
  auto client = NewClient();
  auto resp = client->GetOnlineFeatures(SampleRequest());
  ASSERT_TRUE(resp.ok()) << resp.status();
  ExpectSampleValues(*resp);

  std::map<uint32_t, Keys> expected;
  for (int i = 0; i < kRows; ++i) {
    expected[ReplicasOf(RouteKey(i))[0]].emplace("route_stats", RouteKey(i));
    expected[ReplicasOf(UserKey(i))[0]].emplace("user_stats", UserKey(i));
  }
  for (auto& node : nodes_) {
    const auto got = node->GetKeys();
    EXPECT_EQ(Keys(got.begin(), got.end()), expected[node->id()]) << "node " << node->id();
    EXPECT_EQ(got.size(), expected[node->id()].size());
    EXPECT_EQ(node->get_calls(), expected[node->id()].empty() ? 0 : 1);
  }
}

TEST_F(ClientTest, FeatureServiceAndStatuses) {
  StartCluster(1, 1);
  const int64_t now = NowUs();
  quiver::v1::WriteRow fresh;  // PRESENT with a null feature
  fresh.set_entity_key(UserKey(1));
  fresh.set_event_ts_us(now);
  fresh.add_values()->set_float_val(0.5f);
  fresh.add_values();
  fresh.add_values()->set_unix_timestamp_val(42);
  Seed("user_stats", fresh);
  quiver::v1::WriteRow stale = fresh;  // older than the one-hour TTL
  stale.set_entity_key(UserKey(2));
  stale.set_event_ts_us(now - int64_t{7200} * 1000000);
  Seed("user_stats", stale);

  auto client = NewClient();
  OnlineRequest req;
  req.feature_service = "delay_model_v1";
  req.entity_rows = {EntityRow(1), EntityRow(2)};
  auto resp = client->GetOnlineFeatures(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  ASSERT_EQ(resp->feature_refs.size(), 4u);
  const auto& r1 = resp->rows[0];
  EXPECT_EQ(r1[0].status, FeatureStatus::kNotFound);
  EXPECT_EQ(r1[1].status, FeatureStatus::kPresent);
  EXPECT_EQ(r1[1].value, Value::Float(0.5f));
  EXPECT_EQ(r1[2].status, FeatureStatus::kNullValue);
  EXPECT_EQ(r1[2].value, Value::Null(ValueType::kBool));
  EXPECT_EQ(r1[2].event_ts_us, now);
  EXPECT_EQ(r1[3].value, Value::UnixTimestamp(42));
  const auto& r2 = resp->rows[1];
  for (int c = 1; c < 4; ++c) {
    EXPECT_EQ(r2[c].status, FeatureStatus::kOutsideMaxAge);
    EXPECT_TRUE(r2[c].value.is_null());
    EXPECT_EQ(r2[c].event_ts_us, stale.event_ts_us());
  }
  EXPECT_STREQ(FeatureStatusName(r2[1].status), "OUTSIDE_MAX_AGE");
}

TEST_F(ClientTest, FailsOverWhenAReplicaIsGone) {
  StartCluster(3, 2);
  SeedSample();
  auto client = NewClient();
  Node(1).Shutdown();  // the map still says UP
  for (int round = 0; round < 2; ++round) {
    auto resp = client->GetOnlineFeatures(SampleRequest());
    ASSERT_TRUE(resp.ok()) << resp.status();
    ExpectSampleValues(*resp);
  }
}

TEST_F(ClientTest, FailsOverFromAHungReplicaWithinTheDeadline) {
  StartCluster(3, 2);
  SeedSample();
  auto client = NewClient();
  Node(2).SetHang(true);
  auto resp = client->GetOnlineFeatures(SampleRequest(std::chrono::milliseconds(2000)));
  ASSERT_TRUE(resp.ok()) << resp.status();
  ExpectSampleValues(*resp);
}

TEST_F(ClientTest, HedgesACallRunningPastTheReplicasRecentP95) {
  StartCluster(3, 2);
  SeedSample();
  auto client = NewClient();
  // Warm the per-node latency windows and earn hedging budget.
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(client->GetOnlineFeatures(SampleRequest()).ok());
  Node(2).SetHang(true);
  // Without a hedge the hung replica holds its rows for its whole attempt
  // timeout (half of the 4 s deadline); the hedge answers them within ~p95.
  const auto start = std::chrono::steady_clock::now();
  auto resp = client->GetOnlineFeatures(SampleRequest(std::chrono::milliseconds(4000)));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(resp.ok()) << resp.status();
  ExpectSampleValues(*resp);
  EXPECT_LT(elapsed, std::chrono::milliseconds(1000));
}

TEST_F(ClientTest, ReplicaThatOverranItsHedgeDelayIsTriedAfterItsPeersForAWhile) {
  StartCluster(3, 2);
  SeedSample();
  auto client = NewClient();
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(client->GetOnlineFeatures(SampleRequest()).ok());
  Node(2).SetHang(true);  // a stall: it answers nothing until told
  ASSERT_TRUE(client->GetOnlineFeatures(SampleRequest(std::chrono::milliseconds(4000))).ok());
  // Marked slow by that overrun: the next lookups go to its peers at once,
  // without waiting for a hedge and without spending hedge budget.
  Node(2).ClearRecords();
  for (int i = 0; i < 5; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto resp = client->GetOnlineFeatures(SampleRequest(std::chrono::milliseconds(4000)));
    ASSERT_TRUE(resp.ok()) << resp.status();
    ExpectSampleValues(*resp);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(100));
  }
  // Unmarked, node 2 would get one call per lookup (it is first in the
  // preference order of some partitions), hedged after its p95. Usually it
  // now gets none; a peer marked by this machine's own jitter (a 1 ms blip)
  // after node 2 is tried after it, so allow a few.
  EXPECT_LT(Node(2).get_calls(), 5);
  // Once the mark (250 ms) ends, it gets its share again.
  Node(2).SetHang(false);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(client->GetOnlineFeatures(SampleRequest()).ok());
  EXPECT_GT(Node(2).get_calls(), 0);
}

TEST_F(ClientTest, RetriesNotFoundButNotInvalidArgument) {
  StartCluster(3, 2);
  SeedSample();
  auto client = NewClient();
  Node(3).FailWith(grpc::StatusCode::NOT_FOUND);  // e.g. an older registry
  auto resp = client->GetOnlineFeatures(SampleRequest());
  ASSERT_TRUE(resp.ok()) << resp.status();
  ExpectSampleValues(*resp);
  EXPECT_EQ(Node(3).get_calls(), 1);
  // The failed node is now tried last, so the next call does not touch it.
  Node(3).ClearRecords();
  ASSERT_TRUE(client->GetOnlineFeatures(SampleRequest()).ok());
  EXPECT_EQ(Node(3).get_calls(), 0);

  Node(3).FailWith(grpc::StatusCode::INVALID_ARGUMENT);
  auto fresh = NewClient();
  EXPECT_EQ(fresh->GetOnlineFeatures(SampleRequest()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ClientTest, CircuitBreakerSkipsAFailingReplicaThenProbesItAgain) {
  StartCluster(3, 2);
  SeedSample();
  auto client = NewClient();
  Node(3).FailWith(grpc::StatusCode::UNAVAILABLE);
  ASSERT_TRUE(client->GetOnlineFeatures(SampleRequest()).ok());
  EXPECT_EQ(Node(3).get_calls(), 1);
  // Open for 1 s: ten calls never touch it, and all answer from the others.
  Node(3).ClearRecords();
  for (int i = 0; i < 10; ++i) {
    auto resp = client->GetOnlineFeatures(SampleRequest());
    ASSERT_TRUE(resp.ok()) << resp.status();
    ExpectSampleValues(*resp);
  }
  EXPECT_EQ(Node(3).get_calls(), 0);
  // After the cool-down it is tried again (half-open); still failing, it is
  // skipped for twice as long.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ASSERT_TRUE(client->GetOnlineFeatures(SampleRequest()).ok());
  EXPECT_EQ(Node(3).get_calls(), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ASSERT_TRUE(client->GetOnlineFeatures(SampleRequest()).ok());
  EXPECT_EQ(Node(3).get_calls(), 1);  // 2 s this time
  // Healed: the next probe succeeds and closes the circuit for good.
  Node(3).FailWith(grpc::StatusCode::OK);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  ASSERT_TRUE(client->GetOnlineFeatures(SampleRequest()).ok());
  Node(3).ClearRecords();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(client->GetOnlineFeatures(SampleRequest()).ok());
  EXPECT_GT(Node(3).get_calls(), 0);
}

TEST_F(ClientTest, HonoursTheDeadlineWhenEveryReplicaHangs) {
  StartCluster(3, 2);
  SeedSample();
  auto client = NewClient();
  for (auto& n : nodes_) n->SetHang(true);
  const auto start = std::chrono::steady_clock::now();
  auto resp = client->GetOnlineFeatures(SampleRequest(std::chrono::milliseconds(300)));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kDeadlineExceeded) << resp.status();
  EXPECT_THAT(resp.status().message(), HasSubstr("40 of 40 entity rows"));
  EXPECT_LT(elapsed, std::chrono::milliseconds(300 + 250));
  EXPECT_GE(elapsed, std::chrono::milliseconds(290));
}

TEST_F(ClientTest, RetryableErrorWithinDeadlineWhenEveryReplicaIsGone) {
  StartCluster(2, 2);
  SeedSample();
  auto client = NewClient();
  for (auto& n : nodes_) n->Shutdown();
  // Every replica refuses at once; the client waits (wait_for_ready) for a
  // replica to come back until the deadline, then gives up with a retryable code.
  const auto start = std::chrono::steady_clock::now();
  auto resp = client->GetOnlineFeatures(SampleRequest(std::chrono::milliseconds(300)));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_THAT(resp.status().code(), ::testing::AnyOf(absl::StatusCode::kUnavailable,
                                                     absl::StatusCode::kDeadlineExceeded))
      << resp.status();
  EXPECT_THAT(resp.status().message(), HasSubstr("40 of 40 entity rows"));
  EXPECT_LT(elapsed, std::chrono::milliseconds(300 + 250));
}

TEST_F(ClientTest, ReplicaThatComesBackWithinTheDeadlineAnswers) {
  StartCluster(2, 2);
  SeedSample();
  auto client = NewClient();
  ASSERT_TRUE(client->GetOnlineFeatures(SampleRequest()).ok());
  const std::string address = nodes_[0]->address();
  for (auto& n : nodes_) n->Shutdown();
  // Both replicas refuse; node 1 comes back on its address 150 ms later.
  std::thread restart([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    nodes_[0]->Restart();
  });
  auto resp = client->GetOnlineFeatures(SampleRequest(std::chrono::milliseconds(3000)));
  restart.join();
  EXPECT_TRUE(resp.ok()) << resp.status();
}

TEST_F(ClientTest, LargeBatchesAreSplitUnderTheNodeKeyLimit) {
  StartCluster(1, 1);
  ClientOptions opts;
  opts.coordinator_address = coordinator_.address();
  opts.max_entity_rows = 20000;
  auto client = Client::Create(opts);
  ASSERT_TRUE(client.ok()) << client.status();
  OnlineRequest req;
  req.features = {"user_stats:score"};
  for (int i = 0; i < 12000; ++i) req.entity_rows.push_back(EntityRow(i));
  auto resp = (*client)->GetOnlineFeatures(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->rows.size(), 12000u);
  // One node holds everything: 12,000 keys travel as 3 calls of <= 5,000.
  EXPECT_EQ(nodes_[0]->get_calls(), 3);
  EXPECT_EQ(nodes_[0]->GetKeys().size(), 12000u);
}

TEST_F(ClientTest, RejectsBadRequestsBeforeAnyRpc) {
  StartCluster(2, 2);
  auto client = NewClient();
  OnlineRequest req = SampleRequest();
  req.feature_service = "delay_model_v1";
  EXPECT_EQ(client->GetOnlineFeatures(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.features.clear();
  req.feature_service.clear();
  EXPECT_EQ(client->GetOnlineFeatures(req).status().code(), absl::StatusCode::kInvalidArgument);
  req = SampleRequest();
  req.entity_rows.resize(10001, EntityRow(0));
  EXPECT_EQ(client->GetOnlineFeatures(req).status().code(), absl::StatusCode::kInvalidArgument);
  req = SampleRequest();
  req.features.push_back("ghost:x");
  EXPECT_EQ(client->GetOnlineFeatures(req).status().code(), absl::StatusCode::kNotFound);
  req = SampleRequest();
  req.entity_rows[3]["user_id"] = Value::String("1003");
  auto s = client->GetOnlineFeatures(req).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("entity row 3"));
  req.entity_rows[3].erase("user_id");
  EXPECT_EQ(client->GetOnlineFeatures(req).status().code(), absl::StatusCode::kInvalidArgument);

  WriteRowInput bad{EntityRow(1), 1, 0, {Value::Float(1.0f), Value::Bool(true)}};
  EXPECT_EQ(client->Push("user_stats", {bad}).code(), absl::StatusCode::kInvalidArgument);
  bad.values.push_back(Value::Int64(3));  // INT64 where UNIX_TIMESTAMP is declared
  EXPECT_EQ(client->Push("user_stats", {bad}).code(), absl::StatusCode::kInvalidArgument);
  bad.values[2] = Value::UnixTimestamp(3);
  bad.values[0] = Value::Float(1.0f);
  bad.values[0].data = 1e300;  // not representable as FLOAT
  EXPECT_EQ(client->Push("user_stats", {bad}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client->Push("ghost", {bad}).code(), absl::StatusCode::kNotFound);
  for (auto& n : nodes_) {
    EXPECT_EQ(n->get_calls(), 0);
    EXPECT_EQ(n->write_calls(), 0);
  }
}

std::vector<WriteRowInput> UserRows(int n) {
  std::vector<WriteRowInput> rows;
  for (int i = 0; i < n; ++i) {
    rows.push_back({{{"user_id", Value::Int64(1000 + i)}},
                    NowUs(),
                    7,
                    {Value::Float(i * 0.5f), Value::Bool(true), Value::UnixTimestamp(i)}});
  }
  return rows;
}

TEST_F(ClientTest, PushReachesEveryReplicaAndReadsBack) {
  StartCluster(3, 2);
  auto client = NewClient();
  ASSERT_TRUE(client->Push("user_stats", UserRows(30)).ok());
  for (int i = 0; i < 30; ++i) {
    for (uint32_t id : ReplicasOf(UserKey(i))) {
      auto row = Node(id).Row("user_stats", UserKey(i));
      ASSERT_TRUE(row.has_value()) << "node " << id << " row " << i;
      EXPECT_FLOAT_EQ(row->values(0).float_val(), i * 0.5f);
      EXPECT_EQ(row->created_ts_us(), 7);
    }
  }
  size_t stored = 0;
  for (auto& n : nodes_) stored += n->RowCount("user_stats");
  EXPECT_EQ(stored, 60u);  // R = 2 copies, nothing elsewhere
  OnlineRequest req;
  req.features = {"user_stats:score"};
  for (int i = 0; i < 30; ++i) req.entity_rows.push_back(EntityRow(i));
  auto resp = client->GetOnlineFeatures(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  for (int i = 0; i < 30; ++i) EXPECT_EQ(resp->rows[i][0].value, Value::Float(i * 0.5f));
}

TEST_F(ClientTest, WriteEncodedBatchesRows) {
  StartCluster(1, 1);
  ClientOptions opts;
  opts.coordinator_address = coordinator_.address();
  opts.write_batch_rows = 4;
  auto client = Client::Create(opts).value();
  std::vector<EncodedRow> rows;
  for (int i = 0; i < 10; ++i) {
    rows.push_back({RouteKey(i), 50, 0, {Value::Double(i), Value::Null(ValueType::kInt64), Value{}}});
  }
  ASSERT_TRUE(client->WriteEncoded("route_stats", 1, rows).ok());
  EXPECT_EQ(Node(1).write_calls(), 3);  // 4 + 4 + 2
  auto row = Node(1).Row("route_stats", RouteKey(9));
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->values(0).double_val(), 9.0);
  EXPECT_EQ(row->values(1).val_case(), quiver::v1::Value::VAL_NOT_SET);
}

TEST_F(ClientTest, MajorityQuorumSurvivesOneDownNodeOfThree) {
  StartCluster(3, 3);
  auto client = NewClient();
  Node(3).Shutdown();
  EXPECT_TRUE(client->Push("user_stats", UserRows(30)).ok());
  EXPECT_EQ(Node(1).RowCount("user_stats"), 30u);
  EXPECT_EQ(Node(2).RowCount("user_stats"), 30u);
}

TEST_F(ClientTest, NodesMarkedDownAreSkipped) {
  StartCluster(3, 3);
  auto map = MakeMap(1, 3);
  map.mutable_nodes(2)->set_state(quiver::v1::DOWN);
  coordinator_.SetMap(map);
  auto client = NewClient();
  EXPECT_TRUE(client->Push("user_stats", UserRows(30)).ok());
  EXPECT_EQ(Node(3).write_calls(), 0);
  WriteOptions all;
  all.write_quorum = 3;
  auto s = client->Push("user_stats", UserRows(30), all);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("30 of 30 rows"));
}

TEST_F(ClientTest, QuorumOfTwoFailsForRowsOnADownReplica) {
  StartCluster(3, 2);
  auto client = NewClient();
  Node(2).Shutdown();
  int below = 0;
  for (int i = 0; i < 30; ++i) {
    const auto ids = ReplicasOf(UserKey(i));
    below += std::count(ids.begin(), ids.end(), 2u) > 0;
  }
  ASSERT_GT(below, 0);
  WriteOptions opts;
  opts.write_quorum = 2;
  opts.deadline = std::chrono::seconds(3);
  auto s = client->Push("user_stats", UserRows(30), opts);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr(std::to_string(below) + " of 30 rows"));
}

TEST_F(ClientTest, RefreshesWhenANodeReportsANewerEpoch) {
  StartCluster(3, 2);
  SeedSample();
  auto client = NewClient();  // periodic refresh: once an hour
  EXPECT_EQ(client->cluster_map()->epoch(), 1u);
  coordinator_.SetMap(MakeMap(2, 3));
  for (auto& n : nodes_) n->SetEpoch(2);
  ASSERT_TRUE(client->GetOnlineFeatures(SampleRequest()).ok());
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (client->cluster_map()->epoch() != 2 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(client->cluster_map()->epoch(), 2u);
  EXPECT_EQ(client->cluster_map()->AllReplicasOf(0).size(), 3u);
}

TEST_F(ClientTest, StaleRefusalFetchesTheMapInsteadOfWaitingForADeadReplica) {
  // The client's map (epoch 1) puts every partition on nodes 1 and 2; a move
  // then handed them all to node 3 (epoch 2), node 1 refuses the old routing
  // (ABORTED, as a node past a move's flip does) and node 2 is dead. The
  // kill-node-during-rebalance drill's failed lookups: waiting for node 2 to
  // come back spent the whole deadline before the map was fetched again.
  StartCluster(3, 2);
  coordinator_.SetMap(quiver::testing::MakeClusterMap(1, kPartitions, 2, {&Node(1), &Node(2)}));
  auto client = NewClient();  // periodic refresh: once an hour
  coordinator_.SetMap(quiver::testing::MakeClusterMap(2, kPartitions, 1, {&Node(3)}));
  SeedSample();  // on node 3, the only replica of epoch 2
  Node(1).FailWith(grpc::StatusCode::ABORTED);
  Node(2).Shutdown();
  const auto start = std::chrono::steady_clock::now();
  auto resp = client->GetOnlineFeatures(SampleRequest(std::chrono::milliseconds(2000)));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(resp.ok()) << resp.status();
  ExpectSampleValues(*resp);
  EXPECT_EQ(client->cluster_map()->epoch(), 2u);
  // Far from the deadline: no patient round on the outdated map (node 2's
  // turn alone would take half of it).
  EXPECT_LT(elapsed, std::chrono::milliseconds(700));
}

TEST_F(ClientTest, KeepsServingWhenTheCoordinatorIsDown) {
  StartCluster(3, 2);
  SeedSample();
  auto client = NewClient(std::chrono::milliseconds(20));
  coordinator_.Shutdown();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let refreshes fail
  for (int round = 0; round < 3; ++round) {
    auto resp = client->GetOnlineFeatures(SampleRequest());
    ASSERT_TRUE(resp.ok()) << resp.status();
    ExpectSampleValues(*resp);
  }
  EXPECT_EQ(client->Refresh().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(client->cluster_map()->epoch(), 1u);
  EXPECT_EQ(client->registry()->version(), 7u);
}

TEST_F(ClientTest, ReachesARestartedCoordinatorWithoutOtherCalls) {
  // The refresh thread alone (no lookups) reaches a coordinator restarted on
  // the same address. This does not reproduce the bug of 2026-12-08 (a
  // client whose process has no waiting gRPC call reached a restarted
  // coordinator 5-12 s late): the in-process fake servers keep gRPC polling
  // for the client, so it passes without that fix too. failover_test's
  // ClientReachesARestartedCoordinatorWithinASecondOrSo, with real processes,
  // is the regression test.
  StartCluster(3, 2);
  auto client = NewClient(std::chrono::milliseconds(100));
  coordinator_.Shutdown();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // refreshes fail meanwhile
  coordinator_.SetMap(MakeMap(2, 2));
  const auto restarted = std::chrono::steady_clock::now();
  coordinator_.Restart();
  while (client->cluster_map()->epoch() != 2u &&
         std::chrono::steady_clock::now() - restarted < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto took = std::chrono::steady_clock::now() - restarted;
  EXPECT_EQ(client->cluster_map()->epoch(), 2u);
  // Reconnect backoff at most 0.5 s, one refresh interval, and slack for a
  // loaded machine; without the waiting refresh it took 5-10 s.
  EXPECT_LT(took, std::chrono::milliseconds(2500))
      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
}

TEST(ClientCreateTest, Errors) {
  ClientOptions opts;
  EXPECT_EQ(Client::Create(opts).status().code(), absl::StatusCode::kInvalidArgument);
  std::string address;
  {
    FakeCoordinator gone;
    address = gone.address();
  }
  opts.coordinator_address = address;
  opts.default_deadline = std::chrono::milliseconds(200);
  EXPECT_EQ(Client::Create(opts).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace quiver::client
