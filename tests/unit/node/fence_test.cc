// Epoch fencing in RequestHandler (docs/architecture.md, "Rebalancing and
// epoch fencing"): ownership and fence checks of Get, Write, ingest appends,
// ScanPartitions and MergeRows; the AdoptMap barrier waiting for and fencing
// stale ingest sessions; the cleanup of partitions the node gave away.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "node_test_util.h"
#include "quiver/client/convert.h"
#include "quiver/keys/entity_key.h"
#include "quiver/node/request_handler.h"
#include "quiver/storage/row_store.h"

namespace quiver::node {
namespace {

using testing::AddFeature;
using testing::AddSingleEntityView;
using testing::BuildIndex;
using testing::FakeCluster;
using testing::OpenTestStore;
using testing::TempDir;

constexpr uint32_t kQ = 16;
constexpr uint32_t kSelf = 1;
constexpr uint32_t kPeer = 2;
constexpr int64_t kT0 = 1'700'000'000'000'000;

std::string Key(int64_t user) { return EncodeEntityKey({{"user_id", Value::Int64(user)}}).value(); }

// The n-th user id (n = 0, 1, ...) whose key falls into partition `p`.
int64_t UserIn(uint32_t p, int n = 0) {
  for (int64_t u = 0;; ++u) {
    if (PartitionOf(Key(u), kQ) == p && n-- == 0) return u;
  }
}

struct Part {
  std::vector<uint32_t> owners;
  std::vector<uint32_t> pending;
  uint64_t fence = 0;
};

// Nodes 1 and 2 (UP); partition p as `part(p)` says.
quiver::v1::ClusterMap MapProto(uint64_t epoch, const std::function<Part(uint32_t)>& part) {
  quiver::v1::ClusterMap m;
  m.set_epoch(epoch);
  m.set_num_partitions(kQ);
  for (uint32_t id : {kSelf, kPeer}) {
    auto* n = m.add_nodes();
    n->set_id(id);
    n->set_address(absl::StrCat("n", id, ":1"));
    n->set_state(quiver::v1::UP);
  }
  for (uint32_t p = 0; p < kQ; ++p) {
    const Part spec = part(p);
    auto* out = m.add_partitions();
    for (uint32_t id : spec.owners) out->add_node_ids(id);
    for (uint32_t id : spec.pending) out->add_pending_ids(id);
    out->set_fence_epoch(spec.fence);
  }
  return m;
}

std::shared_ptr<const client::ClusterMapView> Map(uint64_t epoch,
                                                  const std::function<Part(uint32_t)>& part) {
  auto view = client::ClusterMapView::Build(MapProto(epoch, part));
  EXPECT_TRUE(view.ok()) << view.status();
  return std::make_shared<const client::ClusterMapView>(*std::move(view));
}

void ExpectStale(const absl::Status& s) {
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_TRUE(absl::StartsWith(s.message(), "stale map:")) << s;
}

class FenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenTestStore(dir_.path());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    quiver::v1::Registry r;
    r.set_project("t");
    r.set_version(1);
    auto* view = AddSingleEntityView(&r, {.entity = "user", .join_key = "user_id",
                                          .source = "s", .path = "x.parquet", .view = "stats"});
    AddFeature(view, "clicks", quiver::v1::INT64);
    cluster_.current = BuildIndex(r);
    handler_ = std::make_unique<RequestHandler>(store_.get(), &cluster_);
    handler_->set_node_id(kSelf);
    ASSERT_TRUE(handler_->SyncViews(*cluster_.current).ok());
  }

  static quiver::v1::WriteRequest WriteRequest(const std::vector<int64_t>& users, uint64_t epoch,
                                               int64_t ts = kT0, const std::string& session = "") {
    // Sorted by stored key, as an ingest session needs.
    std::vector<std::pair<std::string, int64_t>> keyed;
    for (int64_t u : users) keyed.push_back({storage::RowStore::RowKey(Key(u), kQ), u});
    std::sort(keyed.begin(), keyed.end());
    quiver::v1::WriteRequest request;
    request.set_view("stats");
    request.set_schema_version(1);
    request.set_epoch(epoch);
    request.set_ingest_session(session);
    for (const auto& [key, u] : keyed) {
      auto* row = request.add_rows();
      row->set_entity_key(Key(u));
      row->set_event_ts_us(ts);
      client::ToProto(Value::Int64(ts == kT0 ? u : u + 1000), row->add_values());
    }
    return request;
  }

  absl::Status Write(const std::vector<int64_t>& users, uint64_t epoch, int64_t ts = kT0,
                     const std::string& session = "") {
    quiver::v1::WriteResponse response;
    return handler_->Write(WriteRequest(users, epoch, ts, session), &response);
  }

  absl::Status Commit(const std::string& session, uint64_t rows) {
    quiver::v1::CommitIngestRequest request;
    request.set_session(session);
    request.set_expected_rows(rows);
    quiver::v1::CommitIngestResponse response;
    return handler_->CommitIngest(request, &response);
  }

  absl::StatusOr<quiver::v1::GetResponse> Get(const std::vector<int64_t>& users) {
    quiver::v1::GetRequest request;
    auto* lookup = request.add_lookups();
    lookup->set_view("stats");
    for (int64_t u : users) lookup->add_entity_keys(Key(u));
    quiver::v1::GetResponse response;
    if (absl::Status s = handler_->Get(request, &response); !s.ok()) return s;
    return response;
  }

  // What the store holds for `user`, read past the handler: -1 when absent.
  int64_t Stored(int64_t user) {
    auto rows = store_->MultiGet("stats", std::vector<std::string>{Key(user)}, std::vector<int>{0});
    EXPECT_TRUE(rows.ok()) << rows.status();
    if (!rows.ok() || (*rows)[0].status != storage::RowStatus::kPresent) return -1;
    return std::get<int64_t>((*rows)[0].values[0].data);
  }

  quiver::v1::AdoptMapResponse Barrier(const quiver::v1::ClusterMap& map, uint32_t timeout_ms) {
    quiver::v1::AdoptMapRequest request;
    *request.mutable_map() = map;
    request.set_drain_timeout_ms(timeout_ms);
    quiver::v1::AdoptMapResponse response;
    EXPECT_TRUE(handler_->HandleAdoptMap(request, &response).ok());
    return response;
  }

  TempDir dir_;
  std::unique_ptr<storage::RowStore> store_;
  FakeCluster cluster_;
  std::unique_ptr<RequestHandler> handler_;
};

TEST_F(FenceTest, NoMapYetIsUnavailable) {
  EXPECT_EQ(Get({1}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Write({1}, 0).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_->CountRows("stats").value(), 0u);
}

TEST_F(FenceTest, StaleEpochWriteIsAbortedAndWritesNothing) {
  // The node owns everything; every partition was fenced at epoch 10.
  ASSERT_TRUE(handler_->AdoptMap(Map(12, [](uint32_t) { return Part{{kSelf}, {}, 10}; })));
  const std::vector<int64_t> users = {UserIn(0), UserIn(5), UserIn(9)};
  ExpectStale(Write(users, 9));
  ExpectStale(Write(users, 0));  // an unstamped writer is stale too
  ExpectStale(Write(users, 9, kT0, "session"));
  EXPECT_EQ(store_->CountRows("stats").value(), 0u);
  for (int64_t u : users) EXPECT_EQ(Stored(u), -1);
  EXPECT_EQ(Commit("session", 0).code(), absl::StatusCode::kOk);  // nothing was opened
  // At the fence the write is taken; the response carries the node's epoch.
  quiver::v1::WriteResponse response;
  ASSERT_TRUE(handler_->Write(WriteRequest(users, 10), &response).ok());
  EXPECT_EQ(response.epoch(), 12u);
  for (int64_t u : users) EXPECT_EQ(Stored(u), u);
}

TEST_F(FenceTest, ANonOwnerNeverAnswersNotFound) {
  // Node 1 owns the even partitions, node 2 the odd ones.
  ASSERT_TRUE(handler_->AdoptMap(Map(3, [](uint32_t p) {
    return p % 2 == 0 ? Part{{kSelf, kPeer}} : Part{{kPeer}};
  })));
  const int64_t mine = UserIn(2), mine_unwritten = UserIn(4), theirs = UserIn(3);
  ASSERT_TRUE(Write({mine}, 3).ok());
  auto got = Get({mine, mine_unwritten});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->results(0).rows(0).status(), quiver::v1::PRESENT);
  EXPECT_EQ(got->results(0).rows(0).values(0).int64_val(), mine);
  EXPECT_EQ(got->results(0).rows(1).status(), quiver::v1::NOT_FOUND);
  EXPECT_EQ(got->epoch(), 3u);
  // A partition it does not own: refused, alone or among owned keys.
  ExpectStale(Get({theirs}).status());
  ExpectStale(Get({mine, theirs}).status());
  EXPECT_NE(Get({theirs}).status().message().find("partition 3"), std::string::npos);
  EXPECT_NE(Get({theirs}).status().message().find("node epoch 3"), std::string::npos);
  // Nor does it take writes for it.
  ExpectStale(Write({theirs}, 3));
  EXPECT_EQ(Stored(theirs), -1);
}

TEST_F(FenceTest, AStaleWriterIsRefusedAfterTheFlip) {
  constexpr uint32_t kMoved = 6, kReceived = 7;
  // Map A (epoch 5): node 1 owns kMoved; node 2 owns kReceived.
  ASSERT_TRUE(handler_->AdoptMap(Map(5, [](uint32_t p) {
    return p == kReceived ? Part{{kPeer}, {}, 1} : Part{{kSelf}, {}, 1};
  })));
  const int64_t moved = UserIn(kMoved), received = UserIn(kReceived);
  ASSERT_TRUE(Write({moved}, 5).ok());
  ExpectStale(Write({received}, 5));
  // Map B (epoch 8): kMoved went to node 2 (node 1 no longer takes it),
  // kReceived comes to node 1 (pending), both fenced at 8.
  ASSERT_TRUE(handler_->AdoptMap(Map(8, [](uint32_t p) {
    if (p == kMoved) return Part{{kPeer}, {}, 8};
    if (p == kReceived) return Part{{kPeer}, {kSelf}, 8};
    return Part{{kSelf}, {}, 1};
  })));
  EXPECT_EQ(handler_->adopted_epoch(), 8u);
  EXPECT_FALSE(handler_->AdoptMap(Map(6, [](uint32_t) { return Part{{kSelf}}; })));  // older
  handler_->WaitForCleanup();
  EXPECT_EQ(Stored(moved), -1);                // the partition left: cleaned up
  ExpectStale(Write({moved}, 5, kT0 + 1));     // the stale writer
  ExpectStale(Write({moved}, 8, kT0 + 1));     // no longer a replica at all
  ExpectStale(Write({received}, 5, kT0 + 1));  // older than the fence
  EXPECT_EQ(Stored(moved), -1);                // nothing written
  EXPECT_EQ(Stored(received), -1);
  ASSERT_TRUE(Write({received}, 8).ok());      // the new write set includes node 1
  EXPECT_EQ(Stored(received), received);
  // Pending: takes writes, serves no reads.
  ExpectStale(Get({received}).status());
  ExpectStale(Get({moved}).status());
}

TEST_F(FenceTest, ARefusalStampedWithANewerEpochMakesTheNodeCatchUp) {
  std::vector<uint64_t> noted;
  handler_->set_on_newer_map([&](uint64_t epoch) { noted.push_back(epoch); });
  // Node 1 owns nothing yet at epoch 3; writers already route by epoch 4.
  ASSERT_TRUE(handler_->AdoptMap(Map(3, [](uint32_t) { return Part{{kPeer}}; })));
  ExpectStale(Write({UserIn(1)}, 4));
  ExpectStale(Write({UserIn(2)}, 4));  // noted once per epoch
  ExpectStale(Write({UserIn(2)}, 2));  // an older writer says nothing of us
  quiver::v1::GetRequest get;
  get.set_epoch(5);
  get.add_lookups()->set_view("stats");
  get.mutable_lookups(0)->add_entity_keys(Key(UserIn(1)));
  quiver::v1::GetResponse response;
  ExpectStale(handler_->Get(get, &response));
  EXPECT_EQ(noted, (std::vector<uint64_t>{4, 5}));
}

TEST_F(FenceTest, ScanPartitionsNeedsOwnershipAndTheFence) {
  ASSERT_TRUE(handler_->AdoptMap(Map(9, [](uint32_t p) {
    if (p == 3) return Part{{kPeer}, {kSelf}, 9};
    return Part{{kSelf}, {}, p == 5 ? 9u : 2u};
  })));
  quiver::v1::ScanPartitionsRequest request;
  request.set_view("stats");
  request.set_partition_begin(0);
  request.set_partition_end(3);
  request.set_epoch(2);
  quiver::v1::ScanPartitionsResponse response;
  ASSERT_TRUE(handler_->ScanPartitions(request, &response).ok());
  EXPECT_EQ(response.epoch(), 9u);
  request.set_partition_end(4);  // 3 is only pending here
  ExpectStale(handler_->ScanPartitions(request, &response));
  request.set_partition_begin(5);
  request.set_partition_end(6);
  ExpectStale(handler_->ScanPartitions(request, &response));  // fence 9 > epoch 2
  request.set_epoch(9);
  EXPECT_TRUE(handler_->ScanPartitions(request, &response).ok());
}

TEST_F(FenceTest, MergeRowsTakesOwnedAndPendingPartitionsOnly) {
  ASSERT_TRUE(handler_->AdoptMap(Map(4, [](uint32_t p) {
    if (p == 1) return Part{{kPeer}, {kSelf}, 4};
    if (p == 2) return Part{{kPeer}, {}, 4};
    return Part{{kSelf}};
  })));
  const auto row_of = [](int64_t user) {
    storage::RowWrite w{Key(user), kT0, 0, {Value::Int64(user)}};
    return w;
  };
  // Rows in stored form come from another store's scan.
  TempDir other_dir;
  auto other = OpenTestStore(other_dir.path());
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->EnsureView({"stats", 1, {ValueType::kInt64}, std::chrono::seconds(0)}).ok());
  const int64_t pending = UserIn(1), foreign = UserIn(2), owned = UserIn(0);
  ASSERT_TRUE((*other)->Write("stats", std::vector<storage::RowWrite>{row_of(pending), row_of(foreign),
                                                                      row_of(owned)})
                  .ok());
  auto scan = (*other)->ScanRaw("stats", 0, kQ, "", 1 << 20);
  ASSERT_TRUE(scan.ok());
  const auto merge = [&](std::function<bool(uint32_t)> keep) {
    quiver::v1::MergeRowsRequest request;
    request.set_view("stats");
    for (const auto& row : scan->rows) {
      if (!keep(PartitionOf(storage::RowStore::EntityKeyOfRowKey(row.key), kQ))) continue;
      auto* out = request.add_rows();
      out->set_key(row.key);
      out->set_value(row.value);
    }
    quiver::v1::MergeRowsResponse response;
    return handler_->MergeRows(request, &response);
  };
  ExpectStale(merge([](uint32_t) { return true; }));  // partition 2 is not held: nothing merged
  EXPECT_EQ(store_->CountRows("stats").value(), 0u);
  ASSERT_TRUE(merge([](uint32_t p) { return p != 2; }).ok());
  EXPECT_EQ(Stored(pending), pending);
  EXPECT_EQ(Stored(owned), owned);
  EXPECT_EQ(Stored(foreign), -1);
}

// An ingest session that staged rows under epoch 5 for a partition whose
// fence the barrier raises to 6.
class BarrierTest : public FenceTest {
 protected:
  void SetUp() override {
    FenceTest::SetUp();
    ASSERT_TRUE(handler_->AdoptMap(Map(5, [](uint32_t) { return Part{{kSelf}, {}, 1}; })));
    users_ = {UserIn(kP), UserIn(kP, 1), UserIn(kP, 2)};
    ASSERT_TRUE(Write(users_, 5, kT0, "task/1").ok());
    // A session of the current epoch, on another partition, is not stale.
    ASSERT_TRUE(Write({UserIn(kOther)}, 6, kT0, "task/2").code() == absl::StatusCode::kOk);
  }

  // Epoch 6: kP gains node 2 as a pending replica (a move's double write).
  static quiver::v1::ClusterMap Flip() {
    return MapProto(6, [](uint32_t p) {
      return p == kP ? Part{{kSelf}, {kPeer}, 6} : Part{{kSelf}, {}, 1};
    });
  }

  static constexpr uint32_t kP = 4;
  static constexpr uint32_t kOther = 9;
  std::vector<int64_t> users_;
};

TEST_F(BarrierTest, WaitsForAStaleSessionThatCommits) {
  std::atomic<uint64_t> pushed{0};
  handler_->set_on_newer_map([&](uint64_t epoch) { pushed.store(epoch); });
  quiver::v1::AdoptMapResponse response;
  std::thread barrier([&] { response = Barrier(Flip(), 60'000); });
  // The map is adopted before the barrier waits; then the writer commits.
  while (handler_->adopted_epoch() != 6) std::this_thread::yield();
  ExpectStale(Write({UserIn(kP, 3)}, 5, kT0, "task/1"));  // no more rows under epoch 5
  ASSERT_TRUE(Commit("task/1", 3).ok());
  barrier.join();
  EXPECT_EQ(response.epoch(), 6u);
  EXPECT_EQ(response.sessions_waited(), 1u);
  EXPECT_EQ(response.sessions_fenced(), 0u);
  EXPECT_EQ(pushed.load(), 6u);
  for (int64_t u : users_) EXPECT_EQ(Stored(u), u);
  // task/2 wrote under the new epoch: it commits after the barrier.
  EXPECT_TRUE(Commit("task/2", 1).ok());
}

TEST_F(BarrierTest, FencesAStaleSessionAfterTheTimeout) {
  const quiver::v1::AdoptMapResponse response = Barrier(Flip(), 50);
  EXPECT_EQ(response.epoch(), 6u);
  EXPECT_EQ(response.sessions_waited(), 0u);
  EXPECT_EQ(response.sessions_fenced(), 1u);
  // Fenced: no more appends, and its commit is refused; nothing lands.
  ExpectStale(Write({UserIn(kP, 3)}, 6, kT0, "task/1"));
  const absl::Status commit = Commit("task/1", 3);
  ExpectStale(commit);
  EXPECT_NE(commit.message().find("fenced"), std::string::npos) << commit;
  for (int64_t u : users_) EXPECT_EQ(Stored(u), -1);
  EXPECT_EQ(Commit("task/1", 3).code(), absl::StatusCode::kNotFound);  // dropped
  // The session that was not stale still commits.
  EXPECT_TRUE(Commit("task/2", 1).ok());
  EXPECT_EQ(Stored(UserIn(kOther)), UserIn(kOther));
  // A second barrier at the same epoch finds nothing to wait for.
  const quiver::v1::AdoptMapResponse again = Barrier(Flip(), 50);
  EXPECT_EQ(again.sessions_waited() + again.sessions_fenced(), 0u);
}

TEST_F(BarrierTest, BadOrForeignMapsAreInvalidArgument) {
  quiver::v1::AdoptMapRequest request;
  quiver::v1::AdoptMapResponse response;
  *request.mutable_map() = Flip();
  request.mutable_map()->set_num_partitions(3);  // not a power of two
  EXPECT_EQ(handler_->HandleAdoptMap(request, &response).code(),
            absl::StatusCode::kInvalidArgument);
  *request.mutable_map() = Flip();
  request.mutable_map()->mutable_partitions(2)->add_node_ids(77);  // unknown node
  EXPECT_EQ(handler_->HandleAdoptMap(request, &response).code(),
            absl::StatusCode::kInvalidArgument);
  request.mutable_map()->set_num_partitions(32);  // another cluster shape
  request.mutable_map()->clear_partitions();
  for (int p = 0; p < 32; ++p) request.mutable_map()->add_partitions()->add_node_ids(kSelf);
  EXPECT_EQ(handler_->HandleAdoptMap(request, &response).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(handler_->adopted_epoch(), 5u);
  EXPECT_TRUE(Commit("task/1", 3).ok());  // never fenced
}

TEST_F(FenceTest, CleanupDeletesPartitionsThatLeftAndKeepsTheRest) {
  ASSERT_TRUE(handler_->AdoptMap(Map(2, [](uint32_t) { return Part{{kSelf}, {}, 1}; })));
  const int64_t leaving = UserIn(3), staying = UserIn(4), sessioned = UserIn(5);
  const int64_t receiving = UserIn(6);
  ASSERT_TRUE(Write({leaving, staying, receiving}, 2).ok());
  ASSERT_TRUE(Write({sessioned}, 2, kT0, "open").ok());  // staged, not committed
  ASSERT_TRUE(Write({UserIn(5, 1)}, 2).ok());
  // Epoch 3: partitions 3 and 5 leave node 1; 6 becomes pending here.
  ASSERT_TRUE(handler_->AdoptMap(Map(3, [](uint32_t p) {
    if (p == 3 || p == 5) return Part{{kPeer}, {}, 3};
    if (p == 6) return Part{{kPeer}, {kSelf}, 3};
    return Part{{kSelf}, {}, 1};
  })));
  handler_->WaitForCleanup();
  EXPECT_EQ(Stored(leaving), -1);
  EXPECT_EQ(Stored(staying), staying);
  EXPECT_EQ(Stored(receiving), receiving);
  EXPECT_EQ(Stored(UserIn(5, 1)), UserIn(5, 1));  // an open session wrote partition 5
  // Once the session is gone, the next map cleans partition 5 too.
  ASSERT_TRUE(Commit("open", 0).code() == absl::StatusCode::kAborted);  // count differs: dropped
  ASSERT_TRUE(handler_->AdoptMap(Map(4, [](uint32_t p) {
    if (p == 3 || p == 5) return Part{{kPeer}, {}, 3};
    if (p == 6) return Part{{kPeer}, {kSelf}, 3};
    return Part{{kSelf}, {}, 1};
  })));
  handler_->WaitForCleanup();
  EXPECT_EQ(Stored(UserIn(5, 1)), -1);
  EXPECT_EQ(Stored(staying), staying);
  // A map that does not list the node deletes nothing (it says nothing of
  // this node); one that lists it holding nothing drains it.
  quiver::v1::ClusterMap without = MapProto(5, [](uint32_t) { return Part{{kPeer}}; });
  without.mutable_nodes()->DeleteSubrange(0, 1);
  auto view = client::ClusterMapView::Build(without);
  ASSERT_TRUE(view.ok()) << view.status();
  ASSERT_TRUE(handler_->AdoptMap(std::make_shared<const client::ClusterMapView>(*view)));
  handler_->WaitForCleanup();
  EXPECT_EQ(Stored(staying), staying);
  ASSERT_TRUE(handler_->AdoptMap(Map(6, [](uint32_t) { return Part{{kPeer}}; })));
  handler_->WaitForCleanup();
  EXPECT_EQ(Stored(staying), -1);
  EXPECT_EQ(store_->CountRows("stats").value(), 0u);
}

TEST_F(FenceTest, CleanupWaitsForTheMapToSettleAndTheNewestMapDecides) {
  HandlerLimits limits;
  limits.cleanup_settle = std::chrono::hours(1);  // only WaitForCleanup runs it
  limits.cleanup_max_defer = std::chrono::hours(1);
  handler_ = std::make_unique<RequestHandler>(store_.get(), &cluster_, nullptr, limits);
  handler_->set_node_id(kSelf);
  ASSERT_TRUE(handler_->SyncViews(*cluster_.current).ok());
  ASSERT_TRUE(handler_->AdoptMap(Map(2, [](uint32_t) { return Part{{kSelf}, {}, 1}; })));
  const int64_t first = UserIn(3), second = UserIn(4), back = UserIn(7), kept = UserIn(8);
  ASSERT_TRUE(Write({first, second, back, kept}, 2).ok());
  // Three maps in a row, as a rebalance adopts them: 3 and 7 leave, then 4
  // leaves and 7 comes back. Nothing is deleted while the map changes.
  ASSERT_TRUE(handler_->AdoptMap(Map(3, [](uint32_t p) {
    if (p == 3 || p == 7) return Part{{kPeer}, {}, 3};
    return Part{{kSelf}, {}, 1};
  })));
  ASSERT_TRUE(handler_->AdoptMap(Map(4, [](uint32_t p) {
    if (p == 3 || p == 4) return Part{{kPeer}, {}, 4};
    if (p == 7) return Part{{kSelf}, {}, 4};
    return Part{{kSelf}, {}, 1};
  })));
  for (int64_t u : {first, second, back, kept}) EXPECT_EQ(Stored(u), u);
  // One cleanup for both: what left under either map, unless the newest
  // map gives it back.
  handler_->WaitForCleanup();
  EXPECT_EQ(Stored(first), -1);
  EXPECT_EQ(Stored(second), -1);
  EXPECT_EQ(Stored(back), back);
  EXPECT_EQ(Stored(kept), kept);
  EXPECT_EQ(store_->CountRows("stats").value(), 2u);
}

}  // namespace
}  // namespace quiver::node
