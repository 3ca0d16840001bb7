// quiverctl push against a real 3-node cluster (replication factor 2): pushed
// rows read back, last-writer-wins across pushes, every row on both replicas
// (each node killed in turn), and bad files rejected with nothing changed.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "harness.h"
#include "quiver.grpc.pb.h"
#include "quiver/keys/entity_key.h"

namespace quiver::testing {
namespace {
namespace fs = std::filesystem;

constexpr int kUsers = 200;

class PushTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto c = LocalCluster::Up(3, 2);
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = c->release();
    // The source only has to exist for apply; every row below is pushed.
    auto repo = RepoWithUsersParquet(
        "SELECT 'u0' AS user_id, TIMESTAMP '2026-01-01' AS ts, TIMESTAMP '2026-01-01' AS created, "
        "1::BIGINT AS clicks, 0.5::DOUBLE AS score, 'x' AS label, true AS active");
    ASSERT_TRUE(repo.ok()) << repo.status();
    repo_ = repo->release();
    std::ofstream(repo_->File("repo.yaml"))
        << "project: push\n"
           "entities:\n  - {name: user, join_key: user_id, value_type: STRING}\n"
           "sources:\n  - {name: users, path: data/users.parquet, timestamp_field: ts, "
           "created_timestamp_column: created}\n"
           "feature_views:\n  - name: user_stats\n    entities: [user]\n    ttl: 0\n"
           "    source: users\n    schema:\n"
           "      - {name: clicks, type: INT64}\n      - {name: score, type: DOUBLE}\n"
           "      - {name: label, type: STRING}\n      - {name: active, type: BOOL}\n";
    auto apply = cluster_->Ctl({"apply", repo_->path()});
    ASSERT_EQ(apply.exit_code, 0) << apply.out << apply.err;
  }
  static void TearDownTestSuite() {
    delete cluster_;
    delete repo_;
  }

  // Writes `text` to a file in the repo directory; returns its path.
  static std::string File(const std::string& name, const std::string& text) {
    std::ofstream(repo_->File(name)) << text;
    return repo_->File(name);
  }

  // Every user's row as "clicks|score|label|active@event_ts" (null as
  // "null"), read through the C++ client.
  static std::map<std::string, std::string> ReadAll() {
    std::map<std::string, std::string> out;
    auto client = cluster_->Connect();
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return out;
    client::OnlineRequest req;
    req.features = {"user_stats:clicks", "user_stats:score", "user_stats:label",
                    "user_stats:active"};
    for (int u = 0; u < kUsers; ++u) {
      req.entity_rows.push_back({{"user_id", Value::String(absl::StrCat("u", u))}});
    }
    req.deadline = std::chrono::milliseconds(5000);
    auto resp = (*client)->GetOnlineFeatures(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    if (!resp.ok()) return out;
    for (int u = 0; u < kUsers; ++u) {
      std::string row;
      int64_t ts = 0;
      for (const auto& f : resp->rows[u]) {
        if (!row.empty()) row += "|";
        AppendJson(f.value, &row);
        ts = std::max(ts, f.event_ts_us);
      }
      out[absl::StrCat("u", u)] = absl::StrCat(row, "@", ts);
    }
    return out;
  }

  // With each of `nodes` killed in turn (and restarted before the next),
  // every row reads back as `expected`: the other replicas hold each row.
  static void ExpectEachNodeDown(std::initializer_list<int> nodes,
                                 const std::map<std::string, std::string>& expected) {
    for (int node : nodes) {
      SCOPED_TRACE(absl::StrCat("node ", node, " killed"));
      ASSERT_TRUE(cluster_->KillNode(node));
      EXPECT_EQ(ReadAll(), expected);
      absl::Status started = cluster_->StartNode(node);
      ASSERT_TRUE(started.ok()) << started;
    }
  }


  static LocalCluster* cluster_;
  static TempDir* repo_;
};
LocalCluster* PushTest::cluster_ = nullptr;
TempDir* PushTest::repo_ = nullptr;

// A push file for users [begin, end) at event time `ts` (µs), and the rows
// the test expects ReadAll to show for them.
std::string PushCsv(int begin, int end, int64_t ts, int version,
                    std::map<std::string, std::string>* expected) {
  std::string csv = "user_id,ts,clicks,score,label,active\n";
  for (int u = begin; u < end; ++u) {
    const bool nulls = version > 1 && u % 3 == 0;
    const int64_t clicks = u * 10 + version;
    const std::string score = nulls ? "" : absl::StrCat(u, ".25");
    const std::string label = absl::StrCat("v", version, " \"quoted\", user ", u);
    absl::StrAppend(&csv, "u", u, ",", ts, ",", clicks, ",", score, ",\"",
                    absl::StrReplaceAll(label, {{"\"", "\"\""}}), "\",",
                    u % 2 == 0 ? "true" : "false", "\n");
    if (expected != nullptr) {
      std::string json_label;
      AppendJson(Value::String(label), &json_label);
      (*expected)[absl::StrCat("u", u)] =
          absl::StrCat(clicks, "|", nulls ? "null" : score, "|", json_label, "|",
                       u % 2 == 0 ? "true" : "false", "@", ts);
    }
  }
  return csv;
}

TEST_F(PushTest, PushedRowsReadBackLastWriterWinsAndSurviveAnySingleNode) {
  const int64_t t1 = 1767225600000000;  // 2026-01-01
  std::map<std::string, std::string> expected;
  auto first = cluster_->Ctl({"push", "user_stats", File("v1.csv", PushCsv(0, kUsers, t1, 1, &expected))});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.out, absl::StrCat("pushed ", kUsers, " rows to user_stats\n"));
  EXPECT_EQ(ReadAll(), expected);

  // Older rows lose (LWW on event time), newer ones win, nulls included.
  auto older = cluster_->Ctl({"push", "user_stats", File("v0.csv", PushCsv(0, 100, t1 - 1, 9, nullptr))});
  ASSERT_EQ(older.exit_code, 0) << older.err;
  auto newer = cluster_->Ctl({"push", "user_stats", File("v2.csv", PushCsv(50, 150, t1 + 1, 2, &expected))});
  ASSERT_EQ(newer.exit_code, 0) << newer.err;
  EXPECT_EQ(ReadAll(), expected);

  // Every acknowledged row is on both of its replicas: with any one node
  // down, every row still reads as written.
  ASSERT_NO_FATAL_FAILURE(ExpectEachNodeDown({1, 2, 3}, expected));
}

TEST_F(PushTest, BadFilesAreRejectedAndChangeNothing) {
  const int64_t t = 1767225600000000;
  ASSERT_EQ(cluster_->Ctl({"push", "user_stats", File("base.csv", PushCsv(0, kUsers, t, 1, nullptr))})
                .exit_code,
            0);
  const auto before = ReadAll();
  const std::string good = PushCsv(0, 10, t + 5, 3, nullptr);
  struct Case {
    std::string name;
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"unknown view", {"push", "nope", File("a.csv", good)}, "unknown feature view 'nope'"},
      {"missing file", {"push", "user_stats", repo_->File("missing.csv")}, "missing.csv"},
      {"missing column",
       {"push", "user_stats", File("b.csv", "user_id,ts,clicks,score,label\nu1,5,1,2,x\n")},
       "missing column 'active'"},
      {"bad type", {"push", "user_stats", File("c.csv", good + "u1,7,many,1,x,true\n")}, "'clicks'"},
      {"bad quoting", {"push", "user_stats", File("d.csv", good + "u1,7,1,1,\"x,true\n")}, "line"},
      {"bad quorum", {"push", "user_stats", File("e.csv", good), "--write-quorum", "zero"},
       "--write-quorum"},
      {"garbage bytes", {"push", "user_stats", File("f.csv", std::string("\x00\xff\x01,\n\x02", 6))},
       "unknown column"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = cluster_->Ctl(c.args);
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_LT(r.exit_code, 128) << "crashed";
    EXPECT_NE(r.err.find(c.message), std::string::npos) << "stderr: " << r.err;
  }
  // A quorum of 3 cannot be met with replication factor 2: refused, and the
  // rows that did reach their replicas are harmless to retry (LWW).
  auto quorum = cluster_->Ctl({"push", "user_stats", File("g.csv", good), "--write-quorum", "3"});
  EXPECT_NE(quorum.exit_code, 0);
  EXPECT_NE(quorum.err.find("quorum"), std::string::npos) << quorum.err;
  // Nothing else changed: only the rows of the refused quorum-3 push may have
  // landed, and they are the same rows `good` holds.
  std::map<std::string, std::string> with_good = before;
  PushCsv(0, 10, t + 5, 3, &with_good);
  const auto after = ReadAll();
  for (const auto& [user, row] : after) {
    EXPECT_TRUE(row == before.at(user) || row == with_good.at(user)) << user << ": " << row;
  }
}

TEST_F(PushTest, AReturningReplicaIsRepairedBeforeItServesReads) {
  const int64_t t = 1767312000000000;  // 2026-01-02, newer than the other tests' rows
  ASSERT_EQ(cluster_->Ctl({"push", "user_stats", File("r1.csv", PushCsv(0, kUsers, t, 1, nullptr))})
                .exit_code,
            0);
  // Node 1 dies; rows pushed meanwhile reach only the other replica of its
  // partitions (write quorum 1).
  ASSERT_TRUE(cluster_->KillNode(1));
  std::map<std::string, std::string> expected;
  auto missed = cluster_->Ctl(
      {"push", "user_stats", File("r2.csv", PushCsv(0, kUsers, t + 10, 4, &expected)),
       "--write-quorum", "1"});
  ASSERT_EQ(missed.exit_code, 0) << missed.err;

  // Which users node 1 replicates, from the map. Its coordinator id is the
  // one registered at its address (ids follow registration order, not the
  // cluster script's numbering).
  auto client = cluster_->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  auto map = (*client)->cluster_map();
  uint32_t node1_id = 0;
  for (const auto& n : map->nodes()) {
    if (n.address() == cluster_->NodeAddress(1)) node1_id = n.id();
  }
  ASSERT_NE(node1_id, 0u);
  std::vector<std::string> keys;
  std::set<int> on_node1;
  for (int u = 0; u < kUsers; ++u) {
    keys.push_back(EncodeEntityKey({{"user_id", Value::String(absl::StrCat("u", u))}}).value());
    for (uint32_t id : map->AllReplicasOf(PartitionOf(keys.back(), map->num_partitions()))) {
      if (id == node1_id) on_node1.insert(u);
    }
  }
  ASSERT_GT(on_node1.size(), 20u);

  // Restarted, it answers nothing until it has copied what it missed: every
  // answer it gives, from the first, holds the newer rows.
  ASSERT_TRUE(cluster_->StartNode(1, /*wait_up=*/false).ok());
  auto stub = quiver::v1::NodeService::NewStub(
      grpc::CreateChannel(cluster_->NodeAddress(1), grpc::InsecureChannelCredentials()));
  quiver::v1::GetRequest get;
  auto* lookup = get.add_lookups();
  lookup->set_view("user_stats");
  lookup->add_features("clicks");
  // Only its own partitions: a node refuses (ABORTED) keys it does not own.
  for (int u : on_node1) lookup->add_entity_keys(keys[u]);
  int refused = 0, answered = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (answered < 3 && std::chrono::steady_clock::now() < deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    quiver::v1::GetResponse resp;
    grpc::Status s = stub->Get(&ctx, get, &resp);
    if (!s.ok()) {
      ++refused;
      EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    ++answered;
    ASSERT_EQ(resp.results(0).rows_size(), static_cast<int>(on_node1.size()));
    int r = 0;
    for (int u : on_node1) {
      const auto& row = resp.results(0).rows(r++);
      ASSERT_EQ(row.status(), quiver::v1::PRESENT) << "u" << u;
      EXPECT_EQ(row.values(0).int64_val(), u * 10 + 4) << "u" << u << " stale on node 1";
    }
  }
  EXPECT_EQ(answered, 3);
  EXPECT_GT(refused, 0);  // it did refuse while RECOVERING
  ASSERT_TRUE(cluster_->WaitUp(3).ok());
  // And with the node that took the missed rows down, they read back.
  ASSERT_NO_FATAL_FAILURE(ExpectEachNodeDown({2, 3}, expected));
}

// A replica that fails a write its peers took, while it stays UP (here: it
// is stopped for less than the heartbeat timeout), is reported by the writer
// and marked RECOVERING; it copies the rows it missed before it is UP again.
TEST_F(PushTest, AReplicaThatFailsAWriteWhileUpIsRepairedBeforeItServesAgain) {
  const int64_t t = 1767312000000000 + 100;
  std::map<std::string, std::string> expected;
  const std::string csv = File("r3.csv", PushCsv(0, kUsers, t, 7, &expected));
  const int pid = cluster_->NodePid(3);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kill(pid, SIGSTOP), 0);
  const auto stopped = std::chrono::steady_clock::now();
  auto push = cluster_->Ctl({"--deadline-ms", "400", "push", "user_stats", csv, "--write-quorum", "1"});
  auto nodes = cluster_->Ctl({"nodes"});
  const auto elapsed = std::chrono::steady_clock::now() - stopped;
  ASSERT_EQ(kill(pid, SIGCONT), 0);
  ASSERT_EQ(push.exit_code, 0) << push.err;
  // The writer reported it: the coordinator logged the missed writes.
  auto log = ReadFile(cluster_->dir() / "coordinator.log");
  EXPECT_NE(log.find("missed writes"), std::string::npos) << log;
  // Still well within the heartbeat timeout (2 s after its last heartbeat,
  // which may be 500 ms before the stop): not DOWN, but RECOVERING.
  if (elapsed < std::chrono::milliseconds(1300)) {
    std::string line;
    for (absl::string_view l : absl::StrSplit(nodes.out, '\n')) {
      if (std::string(l).find(cluster_->NodeAddress(3)) != std::string::npos) line = std::string(l);
    }
    EXPECT_NE(line.find("RECOVERING"), std::string::npos) << nodes.out;
  } else {
    std::printf("the push took %lld ms: node 3 may be DOWN, not only RECOVERING\n",
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()));
  }
  ASSERT_TRUE(cluster_->WaitUp(3).ok());
  // Every row reads back with the other two nodes down in turn, so node 3
  // holds each row it replicates.
  ASSERT_NO_FATAL_FAILURE(ExpectEachNodeDown({1, 2}, expected));
}

// The kill-during-materialization loss (shared/research/
// kill-during-materialization.md): a bulk load whose map showed a node DOWN
// stages rows on its peers only; the node comes back and repairs; the load
// commits on the peers afterwards. The node must not be UP without those
// rows: its partitions' fences rise when it returns, and its repair waits
// for the barrier, which waits for the stale session to commit. Before the
// fix the node repaired at once and served the old rows.
TEST_F(PushTest, AStagedLoadThatSkippedADownNodeReachesItBeforeItServes) {
  const int64_t t = 1767312000000000 + 200;  // newer than the tests before, older than the next
  ASSERT_TRUE(cluster_->KillNode(1));
  auto client = cluster_->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  // Wait until the writer's map shows node 1 DOWN: it will skip it.
  uint32_t node1_id = 0;
  const auto down_by = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (bool down = false; !down && std::chrono::steady_clock::now() < down_by;) {
    ASSERT_TRUE((*client)->Refresh().ok());
    for (const auto& n : (*client)->cluster_map()->nodes()) {
      if (n.address() != cluster_->NodeAddress(1)) continue;
      node1_id = n.id();
      down = n.state() == quiver::v1::DOWN;
    }
    if (!down) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto map = (*client)->cluster_map();
  ASSERT_NE(node1_id, 0u);
  ASSERT_FALSE(map->TakesWrites(node1_id)) << "node 1 is not DOWN in the writer's map";
  // Every user's row, in stored-key order (u32 big-endian partition, then
  // the entity key), as an ingest session needs them.
  std::vector<client::EncodedRow> rows;
  std::set<int> on_node1;
  std::vector<std::pair<std::pair<uint32_t, std::string>, int>> order;
  for (int u = 0; u < kUsers; ++u) {
    const std::string key =
        EncodeEntityKey({{"user_id", Value::String(absl::StrCat("u", u))}}).value();
    const uint32_t p = PartitionOf(key, map->num_partitions());
    order.push_back({{p, key}, u});
    for (uint32_t id : map->AllReplicasOf(p)) {
      if (id == node1_id) on_node1.insert(u);
    }
  }
  std::sort(order.begin(), order.end());
  for (const auto& [pk, u] : order) {
    rows.push_back({pk.second, t, 0,
                    {Value::Int64(u * 10 + 9), Value::Double(u + 0.5),
                     Value::String(absl::StrCat("staged ", u)), Value::Bool(false)},
                    {}});
  }
  ASSERT_GT(on_node1.size(), 20u);
  client::WriteOptions options;
  options.write_quorum = 1;
  options.ingest_session = "push_test/staged-while-down";
  const uint32_t schema = (*client)->registry()->FindView("user_stats")->view->schema_version();
  ASSERT_TRUE((*client)->WriteEncoded("user_stats", schema, rows, options).ok());

  // Node 1 returns; give it time to repair (it did, before the fix, in well
  // under a second), then commit the staged rows on its peers.
  ASSERT_TRUE(cluster_->StartNode(1, /*wait_up=*/false).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  absl::Status committed = (*client)->FinishIngest(options.ingest_session, /*commit=*/true);
  ASSERT_TRUE(committed.ok()) << committed;
  ASSERT_TRUE(cluster_->WaitUp(3, 60).ok());

  // Node 1 itself holds every staged row it replicates.
  auto stub = quiver::v1::NodeService::NewStub(
      grpc::CreateChannel(cluster_->NodeAddress(1), grpc::InsecureChannelCredentials()));
  quiver::v1::GetRequest get;
  get.set_epoch((*client)->cluster_map()->epoch());
  auto* lookup = get.add_lookups();
  lookup->set_view("user_stats");
  lookup->add_features("clicks");
  std::vector<int> users(on_node1.begin(), on_node1.end());
  for (int u : users) {
    lookup->add_entity_keys(EncodeEntityKey({{"user_id", Value::String(absl::StrCat("u", u))}}).value());
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  quiver::v1::GetResponse resp;
  grpc::Status s = stub->Get(&ctx, get, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.results(0).rows_size(), static_cast<int>(users.size()));
  int missed = 0;
  for (size_t i = 0; i < users.size(); ++i) {
    const auto& row = resp.results(0).rows(static_cast<int>(i));
    missed += row.status() != quiver::v1::PRESENT || row.values(0).int64_val() != users[i] * 10 + 9;
  }
  EXPECT_EQ(missed, 0) << "of " << users.size() << " staged rows node 1 replicates";
}

TEST_F(PushTest, NoAcknowledgedWriteIsLostWhenANodeDiesMidStream) {
  const int64_t t = 1767398400000000;  // 2026-01-03, newer than the other tests' rows
  auto client = cluster_->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  // 200 pushes of one user each through the C++ client (majority quorum: 2
  // of 2 replicas); node 2 dies after the 50th. What each push acknowledged
  // is recorded; only those rows are promised.
  std::map<std::string, std::string> acknowledged;
  int failed_pushes = 0;
  for (int chunk = 0; chunk < kUsers; ++chunk) {
    if (chunk == 50) {
      ASSERT_TRUE(cluster_->KillNode(2));
    }
    std::vector<client::WriteRowInput> rows;
    std::map<std::string, std::string> expected;
    for (int u = chunk; u < chunk + 1; ++u) {
      const std::string label = absl::StrCat("mid-stream ", u);
      rows.push_back({{{"user_id", Value::String(absl::StrCat("u", u))}},
                      t,
                      0,
                      {Value::Int64(u * 10 + 7), Value::Double(u + 0.75), Value::String(label),
                       Value::Bool(true)}});
      std::string json_label;
      AppendJson(Value::String(label), &json_label);
      expected[absl::StrCat("u", u)] =
          absl::StrCat(u * 10 + 7, "|", u, ".75|", json_label, "|true@", t);
    }
    client::WriteOptions options;
    options.deadline = std::chrono::milliseconds(2000);
    if ((*client)->Push("user_stats", rows, options).ok()) {
      acknowledged.insert(expected.begin(), expected.end());
    } else {
      ++failed_pushes;
    }
  }
  // While node 2 was down, rows of partitions it does not replicate met
  // their quorum, the others did not.
  EXPECT_GT(acknowledged.size(), 60u);
  EXPECT_GT(failed_pushes, 50);
  ASSERT_TRUE(cluster_->StartNode(2).ok());
  // Every acknowledged row, with any one node down, reads as pushed.
  for (int node = 1; node <= 3; ++node) {
    SCOPED_TRACE(absl::StrCat("node ", node, " killed"));
    ASSERT_TRUE(cluster_->KillNode(node));
    const auto rows = ReadAll();
    int lost = 0;
    for (const auto& [user, row] : acknowledged) lost += rows.count(user) == 0 || rows.at(user) != row;
    EXPECT_EQ(lost, 0) << "of " << acknowledged.size() << " acknowledged rows";
    absl::Status started = cluster_->StartNode(node);
    ASSERT_TRUE(started.ok()) << started;
  }
}

}  // namespace
}  // namespace quiver::testing
