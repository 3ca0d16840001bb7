// A live scale-out (issue 11): 3 → 4 nodes (R=2) while a materialization
// job runs and rows are pushed. Afterwards every user's row, read from EVERY
// owner replica directly (NodeService.Get, not through the client's
// routing), equals DuckDB's latest row of the Parquet source, or the pushed
// row where the push is newer; and the map is balanced.
#include <gtest/gtest.h>

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "harness.h"
#include "quiver.grpc.pb.h"
#include "quiver/keys/entity_key.h"

namespace quiver::testing {
namespace {

constexpr int kUsers = 20000;
constexpr int kRows = 400000;

TEST(RebalanceTest, ScaleOutDuringMaterializationAndPushesKeepsEveryRowOnEveryReplica) {
  auto cluster = LocalCluster::Up(3, 2, 256);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  LocalCluster& c = **cluster;
  auto repo = RepoWithUsersParquet(absl::StrCat(
      "SELECT 'u' || (i % ", kUsers, ") AS user_id, TIMESTAMP '2026-02-01' + to_seconds(i) AS ts, "
      "i::BIGINT AS clicks, (i * 0.5)::DOUBLE AS score FROM range(", kRows, ") t(i)"));
  ASSERT_TRUE(repo.ok()) << repo.status();
  std::ofstream((*repo)->File("repo.yaml"))
      << "project: rebalance\n"
         "entities:\n  - {name: user, join_key: user_id, value_type: STRING}\n"
         "sources:\n  - {name: users, path: data/users.parquet, timestamp_field: ts}\n"
         "feature_views:\n  - name: user_stats\n    entities: [user]\n    ttl: 0\n"
         "    source: users\n    schema:\n"
         "      - {name: clicks, type: INT64}\n      - {name: score, type: DOUBLE}\n";
  auto apply = c.Ctl({"apply", (*repo)->path()});
  ASSERT_EQ(apply.exit_code, 0) << apply.out << apply.err;

  // Materialize in the background, in many small tasks; add a node while it runs.
  CommandResult materialized;
  std::thread job([&] {
    materialized = c.Ctl({"--deadline-ms", "600000", "materialize", "2020-01-01", "2030-01-01"});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto added = c.AddNode();
  ASSERT_TRUE(added.ok()) << added.status();

  // Pushes during the move: users 0..999 get a row newer than any in Parquet.
  auto client = c.Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  const int64_t pushed_ts = 1893456000000000;  // 2030-01-01
  std::map<int, std::pair<int64_t, double>> pushed;
  for (int round = 0; round < 10; ++round) {
    std::vector<client::WriteRowInput> rows;
    for (int u = round * 100; u < round * 100 + 100; ++u) {
      rows.push_back({{{"user_id", Value::String(absl::StrCat("u", u))}},
                      pushed_ts,
                      0,
                      {Value::Int64(-u), Value::Double(u + 0.25)}});
    }
    client::WriteOptions options;
    options.deadline = std::chrono::milliseconds(5000);
    absl::Status s = (*client)->Push("user_stats", rows, options);
    ASSERT_TRUE(s.ok()) << s;
    for (int u = round * 100; u < round * 100 + 100; ++u) pushed[u] = {-u, u + 0.25};
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  job.join();
  ASSERT_EQ(materialized.exit_code, 0) << materialized.out << materialized.err;
  auto rebalanced = c.Ctl({"rebalance", "--wait"}, 300);
  ASSERT_EQ(rebalanced.exit_code, 0) << rebalanced.out << rebalanced.err;
  EXPECT_NE(rebalanced.out.find("rebalance: done"), std::string::npos) << rebalanced.out;
  std::printf("materialize: %s\nrebalance --wait:\n%s", materialized.out.c_str(),
              rebalanced.out.c_str());
  // The join moved a quarter of the slots to the new node: 128 partitions.
  auto nodes = c.Ctl({"nodes"});
  std::printf("%s", nodes.out.c_str());
  EXPECT_NE(nodes.out.find("done=128/128"), std::string::npos) << nodes.out;
  ASSERT_TRUE(c.WaitUp(4, 60).ok());

  // DuckDB's answer: the latest row per user.
  auto expected = DuckQuery(absl::StrCat(
      "SELECT substr(user_id, 2)::INT AS u, max(clicks), max(score) FROM read_parquet('",
      (*repo)->File("data/users.parquet"), "') GROUP BY user_id ORDER BY u"));
  ASSERT_TRUE(expected.ok()) << expected.status();
  ASSERT_EQ(expected->size(), static_cast<size_t>(kUsers));

  ASSERT_TRUE((*client)->Refresh().ok());
  auto map = (*client)->cluster_map();
  // Balanced: each node holds floor or ceil of Q*R/N partitions.
  std::map<uint32_t, int> held;
  for (uint32_t p = 0; p < map->num_partitions(); ++p) {
    ASSERT_EQ(map->AllReplicasOf(p).size(), 2u) << "partition " << p;
    EXPECT_TRUE(map->PendingOf(p).empty()) << "partition " << p << " still moving";
    for (uint32_t id : map->AllReplicasOf(p)) ++held[id];
  }
  ASSERT_EQ(held.size(), 4u);
  for (const auto& [id, n] : held) {
    EXPECT_GE(n, 128) << "node " << id;
    EXPECT_LE(n, 128) << "node " << id;
  }

  // Every user on every owner replica.
  std::map<uint32_t, std::vector<int>> users_of;  // node -> users
  std::vector<std::string> keys(kUsers);
  for (int u = 0; u < kUsers; ++u) {
    keys[u] = EncodeEntityKey({{"user_id", Value::String(absl::StrCat("u", u))}}).value();
    for (uint32_t id : map->AllReplicasOf(PartitionOf(keys[u], map->num_partitions()))) {
      users_of[id].push_back(u);
    }
  }
  int wrong = 0, checked = 0;
  for (const auto& [id, users] : users_of) {
    auto stub = quiver::v1::NodeService::NewStub(
        grpc::CreateChannel(map->AddressOf(id), grpc::InsecureChannelCredentials()));
    for (size_t begin = 0; begin < users.size(); begin += 5000) {
      const size_t end = std::min(users.size(), begin + 5000);
      quiver::v1::GetRequest get;
      get.set_epoch(map->epoch());
      auto* lookup = get.add_lookups();
      lookup->set_view("user_stats");
      for (size_t i = begin; i < end; ++i) lookup->add_entity_keys(keys[users[i]]);
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      quiver::v1::GetResponse resp;
      grpc::Status s = stub->Get(&ctx, get, &resp);
      ASSERT_TRUE(s.ok()) << "node " << id << ": " << s.error_message();
      ASSERT_EQ(resp.results(0).rows_size(), static_cast<int>(end - begin));
      for (size_t i = begin; i < end; ++i) {
        const int u = users[i];
        const auto& row = resp.results(0).rows(static_cast<int>(i - begin));
        int64_t want_clicks = std::stoll((*expected)[u][1].text);
        double want_score = std::stod((*expected)[u][2].text);
        if (auto it = pushed.find(u); it != pushed.end()) {
          want_clicks = it->second.first;
          want_score = it->second.second;
        }
        ++checked;
        const bool ok = row.status() == quiver::v1::PRESENT &&
                        row.values(0).int64_val() == want_clicks &&
                        row.values(1).double_val() == want_score;
        if (!ok && wrong++ < 5) {
          ADD_FAILURE() << "node " << id << " u" << u << ": status " << row.status()
                        << " clicks " << (row.values_size() ? row.values(0).int64_val() : 0)
                        << ", want " << want_clicks;
        }
      }
    }
  }
  EXPECT_EQ(checked, kUsers * 2);
  EXPECT_EQ(wrong, 0) << "of " << checked << " replica reads";
}

}  // namespace
}  // namespace quiver::testing
