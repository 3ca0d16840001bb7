// Streamer: a partition copied from a source into a target that is taking
// double writes. Two in-process stores; the source is read through its
// RequestHandler's ScanPartitions (a fake transport), the target merges
// through RequestHandler::MergeStreamed, as in the node.
#include "quiver/node/streamer.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "node_test_util.h"
#include "quiver/client/convert.h"
#include "quiver/keys/entity_key.h"
#include "quiver/node/request_handler.h"

namespace quiver::node {
namespace {

using testing::AddFeature;
using testing::AddSingleEntityView;
using testing::BuildIndex;
using testing::FakeCluster;
using testing::OpenTestStore;
using testing::TempDir;

constexpr uint32_t kQ = 16;
constexpr uint32_t kTarget = 1;
constexpr uint32_t kSource = 2;
constexpr uint32_t kP = 5;  // the partition that moves
constexpr int64_t kT0 = 1'700'000'000'000'000;

std::string Key(int64_t user) { return EncodeEntityKey({{"user_id", Value::Int64(user)}}).value(); }

std::vector<int64_t> UsersIn(uint32_t p, int n) {
  std::vector<int64_t> out;
  for (int64_t u = 0; static_cast<int>(out.size()) < n; ++u) {
    if (PartitionOf(Key(u), kQ) == p) out.push_back(u);
  }
  return out;
}

// Epoch 4: node 2 owns everything; node 1 receives kP (double write), fence 4.
std::shared_ptr<const client::ClusterMapView> MoveMap() {
  quiver::v1::ClusterMap m;
  m.set_epoch(4);
  m.set_num_partitions(kQ);
  for (uint32_t id : {kTarget, kSource}) {
    auto* n = m.add_nodes();
    n->set_id(id);
    n->set_address(absl::StrCat("n", id, ":1"));
    n->set_state(id == kTarget ? quiver::v1::JOINING : quiver::v1::UP);
  }
  for (uint32_t p = 0; p < kQ; ++p) {
    auto* part = m.add_partitions();
    part->add_node_ids(kSource);
    if (p == kP) {
      part->add_pending_ids(kTarget);
      part->set_fence_epoch(4);
    }
  }
  auto view = client::ClusterMapView::Build(m);
  EXPECT_TRUE(view.ok()) << view.status();
  return std::make_shared<const client::ClusterMapView>(*std::move(view));
}

class StreamerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    quiver::v1::Registry r;
    r.set_project("t");
    r.set_version(1);
    for (const char* name : {"clicks", "views"}) {
      auto* view = AddSingleEntityView(
          &r, {.entity = absl::StrCat("user_", name), .join_key = "user_id",
               .source = absl::StrCat("s_", name), .path = "x.parquet", .view = name});
      AddFeature(view, "n", quiver::v1::INT64);
    }
    index_ = BuildIndex(r);
    for (int i = 0; i < 2; ++i) {
      auto store = OpenTestStore(dirs_[i].path());
      ASSERT_TRUE(store.ok()) << store.status();
      stores_[i] = *std::move(store);
      clusters_[i].current = index_;
      handlers_[i] = std::make_unique<RequestHandler>(stores_[i].get(), &clusters_[i]);
      handlers_[i]->set_node_id(i == 0 ? kTarget : kSource);
      ASSERT_TRUE(handlers_[i]->AdoptMap(MoveMap()));
      ASSERT_TRUE(handlers_[i]->SyncViews(*index_).ok());
    }
  }

  // Writes user -> value at `ts` through handler `i` (the client's path).
  void Write(int i, const std::string& view, const std::vector<int64_t>& users, int64_t ts,
             int64_t value_offset) {
    quiver::v1::WriteRequest request;
    request.set_view(view);
    request.set_schema_version(1);
    request.set_epoch(4);
    for (int64_t u : users) {
      auto* row = request.add_rows();
      row->set_entity_key(Key(u));
      row->set_event_ts_us(ts);
      client::ToProto(Value::Int64(u + value_offset), row->add_values());
    }
    quiver::v1::WriteResponse response;
    ASSERT_TRUE(handlers_[i]->Write(request, &response).ok());
  }

  // What store `i` holds for `user` in `view`: -1 when absent.
  int64_t Stored(int i, const std::string& view, int64_t user) {
    auto rows = stores_[i]->MultiGet(view, std::vector<std::string>{Key(user)}, std::vector<int>{0});
    EXPECT_TRUE(rows.ok()) << rows.status();
    if (!rows.ok() || (*rows)[0].status != storage::RowStatus::kPresent) return -1;
    return std::get<int64_t>((*rows)[0].values[0].data);
  }

  StreamerOptions Options() {
    StreamerOptions o;
    o.mb_per_s = 0;
    o.page_bytes = 200;  // a few rows per page
    o.scan = [this](const std::string& address, const quiver::v1::ScanPartitionsRequest& request)
        -> absl::StatusOr<quiver::v1::ScanPartitionsResponse> {
      requests_.push_back(request);
      EXPECT_EQ(address, "n2:1");
      if (fail_call_ == static_cast<int>(requests_.size())) return fail_with_;
      quiver::v1::ScanPartitionsResponse response;
      if (absl::Status s = handlers_[1]->ScanPartitions(request, &response); !s.ok()) return s;
      return response;
    };
    o.merge = [this](std::string_view view, uint32_t partition,
                     std::span<const storage::RawRow> rows) {
      return handlers_[0]->MergeStreamed(view, partition, rows);
    };
    o.registry = [this] { return index_; };
    o.epoch = [this] { return handlers_[0]->adopted_epoch(); };
    o.refresh_map = [this] { ++refreshes_; };
    return o;
  }

  static quiver::v1::StreamTask Task(uint64_t move, uint64_t attempt, uint32_t partition = kP) {
    quiver::v1::StreamTask t;
    t.set_move_id(move);
    t.set_partition(partition);
    t.set_source(kSource);
    t.set_source_address("n2:1");
    t.set_attempt(attempt);
    return t;
  }

  TempDir dirs_[2];
  std::unique_ptr<storage::RowStore> stores_[2];  // 0: target (node 1), 1: source (node 2)
  FakeCluster clusters_[2];
  std::unique_ptr<RequestHandler> handlers_[2];
  std::shared_ptr<const client::RegistryIndex> index_;
  std::vector<quiver::v1::ScanPartitionsRequest> requests_;
  int fail_call_ = 0;  // 1-based scan call that fails; 0: none
  absl::Status fail_with_;
  int refreshes_ = 0;
};

TEST_F(StreamerTest, StreamedRowsNeverOverwriteNewerDoubleWrittenOnes) {
  const std::vector<int64_t> users = UsersIn(kP, 30);
  const std::vector<int64_t> elsewhere = UsersIn(kP + 1, 5);
  // The source holds every user in both views at kT0, and rows of another
  // partition; the double write gave the target a newer row of users[0]
  // and an older one of users[1].
  Write(1, "clicks", users, kT0, 0);
  Write(1, "views", users, kT0, 500);
  Write(1, "clicks", elsewhere, kT0, 0);
  Write(0, "clicks", {users[0]}, kT0 + 10, 1000);
  Write(0, "clicks", {users[1]}, kT0 - 10, 1000);

  Streamer streamer(Options());
  const std::vector<quiver::v1::StreamTask> tasks = {Task(11, 1)};
  streamer.SetTasks(tasks);
  streamer.RunPending();

  const auto reports = streamer.Reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_TRUE(reports[0].done()) << reports[0].error();
  EXPECT_EQ(reports[0].move_id(), 11u);
  EXPECT_EQ(reports[0].attempt(), 1u);
  EXPECT_EQ(reports[0].rows(), 60u);
  EXPECT_GT(reports[0].bytes(), 0u);
  EXPECT_GT(requests_.size(), 4u);  // paged
  for (const auto& r : requests_) {
    EXPECT_EQ(r.partition_begin(), kP);
    EXPECT_EQ(r.partition_end(), kP + 1);
    EXPECT_EQ(r.epoch(), 4u);
  }
  EXPECT_EQ(Stored(0, "clicks", users[0]), users[0] + 1000);  // the newer row stays
  EXPECT_EQ(Stored(0, "clicks", users[1]), users[1]);         // the older one lost
  for (size_t i = 2; i < users.size(); ++i) {
    EXPECT_EQ(Stored(0, "clicks", users[i]), users[i]);
    EXPECT_EQ(Stored(0, "views", users[i]), users[i] + 500);
  }
  for (int64_t u : elsewhere) EXPECT_EQ(Stored(0, "clicks", u), -1);
  EXPECT_EQ(stores_[0]->CountRows("clicks").value(), users.size());
  // Done streams are not run again.
  const size_t calls = requests_.size();
  streamer.RunPending();
  EXPECT_EQ(requests_.size(), calls);
}

TEST_F(StreamerTest, AFailedPageIsRetriedFromTheLastKey) {
  const std::vector<int64_t> users = UsersIn(kP, 20);
  Write(1, "clicks", users, kT0, 0);
  fail_call_ = 3;
  fail_with_ = absl::AbortedError("stale map: node 2 refuses a scan");
  Streamer streamer(Options());
  const std::vector<quiver::v1::StreamTask> tasks = {Task(3, 1)};
  streamer.SetTasks(tasks);
  streamer.RunPending();
  auto reports = streamer.Reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_FALSE(reports[0].done());
  EXPECT_NE(reports[0].error().find("stale map"), std::string::npos) << reports[0].error();
  EXPECT_EQ(refreshes_, 1);  // an ABORTED source makes the node refresh its map
  const uint64_t rows_before = reports[0].rows();
  EXPECT_GT(rows_before, 0u);
  // The retry resumes after the last merged key, not from the start.
  ASSERT_EQ(requests_.size(), 3u);
  streamer.RunPending();
  ASSERT_GE(requests_.size(), 4u);
  EXPECT_EQ(requests_[3].after(), requests_[2].after());
  EXPECT_FALSE(requests_[3].after().empty());
  reports = streamer.Reports();
  EXPECT_TRUE(reports[0].done()) << reports[0].error();
  EXPECT_TRUE(reports[0].error().empty());
  EXPECT_EQ(reports[0].rows(), 20u);  // no row copied twice
  for (int64_t u : users) EXPECT_EQ(Stored(0, "clicks", u), u);
}

TEST_F(StreamerTest, NewAttemptsRestartAndUnlistedStreamsAreDropped) {
  Write(1, "clicks", UsersIn(kP, 4), kT0, 0);
  Streamer streamer(Options());
  std::vector<quiver::v1::StreamTask> tasks = {Task(1, 1), Task(2, 1)};
  streamer.SetTasks(tasks);
  streamer.RunPending();
  auto reports = streamer.Reports();
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_TRUE(reports[0].done());
  EXPECT_TRUE(reports[1].done());
  // Move 1 restarts (attempt 2), move 2 is gone, move 3 is new; an older
  // attempt of a known move changes nothing.
  tasks = {Task(1, 2), Task(3, 1)};
  streamer.SetTasks(tasks);
  reports = streamer.Reports();
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].move_id(), 1u);
  EXPECT_EQ(reports[0].attempt(), 2u);
  EXPECT_FALSE(reports[0].done());
  EXPECT_EQ(reports[0].rows(), 0u);
  EXPECT_EQ(reports[1].move_id(), 3u);
  streamer.RunPending();
  tasks = {Task(1, 1), Task(3, 1)};
  streamer.SetTasks(tasks);
  reports = streamer.Reports();
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].attempt(), 2u);
  EXPECT_TRUE(reports[0].done());
  EXPECT_EQ(reports[0].rows(), 4u);
  streamer.SetTasks({});
  EXPECT_TRUE(streamer.Reports().empty());
}

TEST_F(StreamerTest, APartitionNoLongerReceivedIsRefused) {
  Write(1, "clicks", UsersIn(kP + 2, 3), kT0, 0);
  Streamer streamer(Options());
  // kP + 2 is owned by node 2 only: the target's merge refuses its rows.
  const std::vector<quiver::v1::StreamTask> tasks = {Task(1, 1, kP + 2)};
  streamer.SetTasks(tasks);
  streamer.RunPending();
  const auto reports = streamer.Reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_FALSE(reports[0].done());
  EXPECT_NE(reports[0].error().find("stale map"), std::string::npos) << reports[0].error();
  EXPECT_EQ(stores_[0]->CountRows("clicks").value(), 0u);
}

TEST_F(StreamerTest, RunsInTheBackgroundUntilDone) {
  Write(1, "clicks", UsersIn(kP, 10), kT0, 0);
  Streamer streamer(Options());
  streamer.Start();
  const std::vector<quiver::v1::StreamTask> tasks = {Task(1, 1)};
  streamer.SetTasks(tasks);
  for (int i = 0; i < 2000 && !streamer.Reports()[0].done(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(streamer.Reports()[0].done());
  streamer.Stop();
  EXPECT_EQ(stores_[0]->CountRows("clicks").value(), 10u);
}

TEST(TokenBucketTest, ThrottlesToTheRateAfterTheBurst) {
  auto now = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  TokenBucket bucket(1 << 20, 1 << 20, [&] { return now; });  // 1 MiB/s, 1 MiB banked
  EXPECT_EQ(bucket.Delay().count(), 0);
  bucket.Consume(3 << 20);  // 2 MiB in debt
  EXPECT_NEAR(std::chrono::duration<double>(bucket.Delay()).count(), 2.0, 1e-3);
  now += std::chrono::milliseconds(1500);
  EXPECT_NEAR(std::chrono::duration<double>(bucket.Delay()).count(), 0.5, 1e-3);
  now += std::chrono::seconds(10);  // refills up to the burst only
  EXPECT_EQ(bucket.Delay().count(), 0);
  bucket.Consume(1 << 20);
  EXPECT_EQ(bucket.Delay().count(), 0);
  bucket.Consume(1);
  EXPECT_GT(bucket.Delay().count(), 0);
  TokenBucket unlimited(0, 0, [&] { return now; });
  unlimited.Consume(1ull << 40);
  EXPECT_EQ(unlimited.Delay().count(), 0);
}

}  // namespace
}  // namespace quiver::node
