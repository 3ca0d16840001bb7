// Membership, partition map, registry and persistence of the Coordinator.
#include "quiver/coordinator/coordinator.h"

#include <gmock/gmock.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "unit/coordinator/coordinator_test_util.h"
#include "common/temp_dir.h"

namespace quiver::coordinator {
namespace {

using google::protobuf::util::MessageDifferencer;
using testing::ManualClock;
using testing::MustOpen;
using testing::MustRegister;
using testing::TestOptions;

constexpr char kRegistry[] = R"pb(
  project: "t"
  entities { name: "origin" join_key: "origin" value_type: STRING }
  sources { name: "s" path: "/data/f.parquet" timestamp_field: "date" }
  feature_views {
    name: "v"
    entities: "origin"
    source: "s"
    online: true
    ttl_seconds: 86400
    features { name: "delay" type: INT64 }
    features { name: "distance" type: INT64 }
  }
  feature_services { name: "svc" features: "v:delay" }
)pb";

v1::Registry ParseRegistry(const char* text) {
  v1::Registry r;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &r));
  return r;
}

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override { c_ = MustOpen(TestOptions(dir_.path(), clock_)); }
  void Reopen() {
    c_.reset();
    c_ = MustOpen(TestOptions(dir_.path(), clock_));
  }
  absl::StatusOr<v1::ApplyRegistryResponse> Apply(const v1::Registry& r, bool dry_run = false) {
    v1::ApplyRegistryRequest req;
    *req.mutable_registry() = r;
    req.set_dry_run(dry_run);
    return c_->ApplyRegistry(req);
  }
  v1::NodeState StateOf(uint32_t id) {
    const v1::ClusterMap map = c_->GetClusterMap();
    for (const auto& n : map.nodes()) {
      if (n.id() == id) return n.state();
    }
    return v1::NODE_STATE_UNKNOWN;
  }
  uint64_t RecoveryOf(uint32_t id) {
    const v1::ClusterMap map = c_->GetClusterMap();
    for (const auto& n : map.nodes()) {
      if (n.id() == id) return n.recovery();
    }
    return 0;
  }
  // A barrier every node passed (the nodes of these tests are simulated):
  // recoveries become fenced, so their repair reports count.
  void Fence() {
    ASSERT_TRUE(c_->DriveOnce([](const v1::ClusterMap&, const std::vector<v1::NodeInfo>&) {
                    return true;
                  }).ok());
  }

  quiver::testing::TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<Coordinator> c_;
};

TEST_F(CoordinatorTest, RegisterAssignsIdsAndBuildsTheMap) {
  EXPECT_EQ(c_->GetClusterMap().partitions_size(), 0);
  EXPECT_EQ(MustRegister(*c_, "127.0.0.1:7001"), 1u);
  EXPECT_EQ(MustRegister(*c_, "127.0.0.1:7002"), 2u);
  EXPECT_EQ(MustRegister(*c_, "127.0.0.1:7003"), 3u);
  const v1::ClusterMap map = c_->GetClusterMap();
  EXPECT_EQ(map.epoch(), 3u);
  EXPECT_EQ(map.num_partitions(), 64u);
  ASSERT_EQ(map.partitions_size(), 64);
  for (const auto& p : map.partitions()) {
    EXPECT_EQ(std::set<uint32_t>(p.node_ids().begin(), p.node_ids().end()),
              (std::set<uint32_t>{1, 2, 3}));
  }
  const auto nodes = c_->ListNodes();
  ASSERT_EQ(nodes.nodes_size(), 3);
  uint32_t preferred = 0;
  for (const auto& n : nodes.nodes()) {
    EXPECT_EQ(n.partitions_held(), 64u);
    EXPECT_GE(n.partitions_preferred(), 21u);
    preferred += n.partitions_preferred();
  }
  EXPECT_EQ(preferred, 64u);
}

// A writer's report of missed writes marks the node for repair: UP and
// RECOVERING nodes get a new recovery number (a repair in progress starts
// over), a DOWN node stays DOWN; the repair report of the new number makes it
// UP again; unknown nodes are refused.
TEST_F(CoordinatorTest, AReportOfMissedWritesMarksTheNodeForRepair) {
  MustRegister(*c_, "127.0.0.1:7001");
  MustRegister(*c_, "127.0.0.1:7002");
  const uint64_t epoch = c_->GetClusterMap().epoch();
  v1::ReportMissedWritesRequest report;
  report.set_node_id(2);
  report.set_reason("deadline exceeded");
  auto r = c_->ReportMissedWrites(report);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->state(), v1::RECOVERING);
  EXPECT_EQ(StateOf(2), v1::RECOVERING);
  EXPECT_GT(c_->GetClusterMap().epoch(), epoch);
  uint64_t recovery = 0;
  const v1::ClusterMap map = c_->GetClusterMap();
  for (const auto& n : map.nodes()) {
    if (n.id() == 2) recovery = n.recovery();
  }
  ASSERT_GT(recovery, 0u);
  // A second report before its repair could start (the barrier has not
  // completed): the coming repair will see the write, no new recovery.
  ASSERT_TRUE(c_->ReportMissedWrites(report).ok());
  EXPECT_EQ(RecoveryOf(2), recovery);
  // A second report while repairing: a new recovery; the old one's report
  // no longer makes it UP.
  Fence();
  ASSERT_TRUE(c_->ReportMissedWrites(report).ok());
  EXPECT_EQ(RecoveryOf(2), recovery + 1);
  v1::HeartbeatRequest hb;
  hb.set_node_id(2);
  hb.set_repaired_recovery(recovery);
  ASSERT_TRUE(c_->Heartbeat(hb).ok());
  EXPECT_EQ(StateOf(2), v1::RECOVERING);
  // Its repair report counts only once the recovery's barrier completed.
  hb.set_repaired_recovery(recovery + 1);
  ASSERT_TRUE(c_->Heartbeat(hb).ok());
  EXPECT_EQ(StateOf(2), v1::RECOVERING);
  Fence();
  ASSERT_TRUE(c_->Heartbeat(hb).ok());
  EXPECT_EQ(StateOf(2), v1::UP);
  // DOWN stays DOWN (it repairs when it comes back).
  clock_.Advance(5'000'000);
  v1::HeartbeatRequest hb1;
  hb1.set_node_id(1);
  ASSERT_TRUE(c_->Heartbeat(hb1).ok());
  ASSERT_TRUE(c_->Tick().ok());
  ASSERT_EQ(StateOf(2), v1::DOWN);
  r = c_->ReportMissedWrites(report);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state(), v1::DOWN);
  report.set_node_id(9);
  EXPECT_EQ(c_->ReportMissedWrites(report).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CoordinatorTest, ReRegisterKeepsIdAndPartitions) {
  MustRegister(*c_, "a:1");
  MustRegister(*c_, "b:1");
  const v1::ClusterMap before = c_->GetClusterMap();
  EXPECT_EQ(MustRegister(*c_, "b:2", 2), 2u);
  const v1::ClusterMap after = c_->GetClusterMap();
  EXPECT_EQ(after.epoch(), before.epoch() + 1);
  EXPECT_EQ(after.nodes(1).address(), "b:2");
  for (int p = 0; p < 64; ++p) {
    EXPECT_TRUE(std::equal(before.partitions(p).node_ids().begin(),
                           before.partitions(p).node_ids().end(),
                           after.partitions(p).node_ids().begin(),
                           after.partitions(p).node_ids().end()));
    // Its partitions are fenced at the epoch it came back with.
    EXPECT_EQ(after.partitions(p).fence_epoch(), after.epoch());
  }
  // A known node registering again restarted: it may have missed writes, so
  // it comes back RECOVERING (it shares partitions with node 1), each restart
  // a new recovery, and the epoch moves.
  EXPECT_EQ(StateOf(2), v1::RECOVERING);
  EXPECT_EQ(after.nodes(1).recovery(), 1u);
  MustRegister(*c_, "b:2", 2);
  EXPECT_EQ(c_->GetClusterMap().epoch(), after.epoch() + 1);
  EXPECT_EQ(c_->GetClusterMap().nodes(1).recovery(), 2u);
  // An unknown non-zero id is taken as given; later ids do not collide.
  EXPECT_EQ(MustRegister(*c_, "c:1", 10), 10u);
  EXPECT_EQ(MustRegister(*c_, "d:1"), 11u);
  v1::RegisterRequest bad;
  EXPECT_EQ(c_->Register(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CoordinatorTest, SilentNodesGoDownAndComeBackOnHeartbeat) {
  MustRegister(*c_, "a:1");
  MustRegister(*c_, "b:1");
  const uint64_t epoch = c_->GetClusterMap().epoch();
  clock_.Advance(1'500'000);
  v1::HeartbeatRequest hb;
  hb.set_node_id(1);
  ASSERT_TRUE(c_->Heartbeat(hb).ok());
  ASSERT_TRUE(c_->Tick().ok());
  EXPECT_EQ(c_->GetClusterMap().epoch(), epoch);  // nobody timed out yet
  clock_.Advance(1'000'000);  // node 2: 2.5 s silent; node 1: 1 s
  ASSERT_TRUE(c_->Tick().ok());
  EXPECT_EQ(StateOf(1), v1::UP);
  EXPECT_EQ(StateOf(2), v1::DOWN);
  EXPECT_EQ(c_->GetClusterMap().epoch(), epoch + 1);
  EXPECT_EQ(c_->Stats().nodes_down, 1);
  // DOWN nodes keep their partitions.
  EXPECT_EQ(c_->ListNodes().nodes(1).partitions_held(), 64u);
  // Back: RECOVERING (it missed writes) until it reports the repair of its
  // current recovery; an older or missing report changes nothing.
  hb.set_node_id(2);
  auto resp = c_->Heartbeat(hb);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->epoch(), epoch + 2);
  EXPECT_EQ(StateOf(2), v1::RECOVERING);
  EXPECT_EQ(resp->state(), v1::RECOVERING);
  EXPECT_EQ(resp->recovery(), 1u);
  EXPECT_EQ(c_->GetClusterMap().nodes(1).recovery(), 1u);
  ASSERT_TRUE(c_->Heartbeat(hb).ok());
  hb.set_repaired_recovery(7);
  ASSERT_TRUE(c_->Heartbeat(hb).ok());
  EXPECT_EQ(StateOf(2), v1::RECOVERING);
  EXPECT_EQ(c_->GetClusterMap().epoch(), epoch + 2);
  hb.set_repaired_recovery(1);
  Fence();
  resp = c_->Heartbeat(hb);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->state(), v1::UP);
  EXPECT_EQ(resp->epoch(), epoch + 3);
  EXPECT_EQ(StateOf(2), v1::UP);
  // A RECOVERING node that goes silent is DOWN like any other.
  ASSERT_TRUE(c_->Register([] {
                  v1::RegisterRequest r;
                  r.set_node_id(2);
                  r.set_address("b:1");
                  return r;
                }())
                  .ok());
  EXPECT_EQ(StateOf(2), v1::RECOVERING);
  clock_.Advance(2'500'000);
  ASSERT_TRUE(c_->Tick().ok());
  EXPECT_EQ(StateOf(2), v1::DOWN);
  hb.set_node_id(77);
  EXPECT_EQ(c_->Heartbeat(hb).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CoordinatorTest, ApplyVersionsTheRegistryAndSchemas) {
  EXPECT_EQ(c_->GetRegistry().version(), 0u);
  v1::Registry r = ParseRegistry(kRegistry);
  auto plan = Apply(r, /*dry_run=*/true);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->version(), 0u);
  EXPECT_EQ(plan->changes_size(), 4);
  EXPECT_EQ(plan->changes(0).action(), "created");
  EXPECT_EQ(c_->GetRegistry().version(), 0u);

  auto applied = Apply(r);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->version(), 1u);
  v1::Registry stored = c_->GetRegistry();
  EXPECT_EQ(stored.version(), 1u);
  EXPECT_EQ(stored.updated_at_us(), clock_.Now());
  EXPECT_EQ(stored.feature_views(0).schema_version(), 1u);

  // Re-applying the same registry changes nothing.
  auto again = Apply(r);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->version(), 1u);
  for (const auto& ch : again->changes()) EXPECT_EQ(ch.action(), "unchanged");

  // A description change is an update without a schema change.
  r.mutable_feature_views(0)->set_description("new words");
  ASSERT_EQ(Apply(r)->version(), 2u);
  EXPECT_EQ(c_->GetRegistry().feature_views(0).schema_version(), 1u);
  // Reordering the features changes the schema.
  r.mutable_feature_views(0)->mutable_features()->SwapElements(0, 1);
  ASSERT_EQ(Apply(r)->version(), 3u);
  EXPECT_EQ(c_->GetRegistry().feature_views(0).schema_version(), 2u);

  // Deleting the service removes it.
  r.clear_feature_services();
  auto deleted = Apply(r);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted->changes(3).action(), "deleted");
  EXPECT_EQ(c_->GetRegistry().feature_services_size(), 0);
  EXPECT_EQ(c_->GetRegistry().version(), 4u);
}

TEST_F(CoordinatorTest, ApplyRejectsInvalidOrForeignRegistries) {
  v1::Registry r = ParseRegistry(kRegistry);
  r.mutable_feature_views(0)->set_source("nope");
  EXPECT_EQ(Apply(r).status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(Apply(ParseRegistry(kRegistry)).ok());
  v1::Registry other = ParseRegistry(kRegistry);
  other.set_project("other");
  EXPECT_EQ(Apply(other).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(c_->GetRegistry().version(), 1u);
}

TEST_F(CoordinatorTest, StateSurvivesARestart) {
  MustRegister(*c_, "a:1");
  MustRegister(*c_, "b:1");
  MustRegister(*c_, "c:1");
  ASSERT_TRUE(Apply(ParseRegistry(kRegistry)).ok());
  clock_.Advance(5'000'000);
  ASSERT_TRUE(c_->Tick().ok());  // all DOWN
  v1::HeartbeatRequest hb;
  hb.set_node_id(1);
  ASSERT_TRUE(c_->Heartbeat(hb).ok());  // node 1 back: RECOVERING
  hb.set_repaired_recovery(1);
  Fence();
  ASSERT_TRUE(c_->Heartbeat(hb).ok());  // and repaired: UP
  const v1::CoordinatorState before = c_->State();

  Reopen();
  v1::CoordinatorState after = c_->State();
  EXPECT_TRUE(MessageDifferencer::Equals(before.registry(), after.registry()));
  EXPECT_EQ(after.map().epoch(), before.map().epoch());
  EXPECT_EQ(after.map().partitions_size(), 64);
  for (int p = 0; p < 64; ++p) {
    EXPECT_TRUE(MessageDifferencer::Equals(before.map().partitions(p), after.map().partitions(p)));
  }
  EXPECT_EQ(StateOf(1), v1::UP);
  EXPECT_EQ(StateOf(2), v1::DOWN);
  // UP nodes get a fresh grace period rather than timing out at once.
  ASSERT_TRUE(c_->Tick().ok());
  EXPECT_EQ(StateOf(1), v1::UP);
  // Ids carry on.
  EXPECT_EQ(MustRegister(*c_, "d:1"), 4u);
}

TEST_F(CoordinatorTest, CorruptStateFileIsDataLossAndLeftAlone) {
  MustRegister(*c_, "a:1");
  c_.reset();
  const std::string path = dir_.File("state.pb");
  { std::ofstream(path, std::ios::trunc) << "this is not a protobuf \xff\xff\xff"; }
  auto read = [&] {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  };
  const std::string bytes = read();
  auto c = Coordinator::Open(TestOptions(dir_.path(), clock_));
  EXPECT_EQ(c.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(c.status().message()), ::testing::HasSubstr("state.pb"));
  EXPECT_EQ(read(), bytes);
}

TEST_F(CoordinatorTest, OneCoordinatorPerDataDir) {
  // c_ holds the data dir: a second coordinator over it is refused.
  auto second = Coordinator::Open(TestOptions(dir_.path(), clock_));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
}

TEST_F(CoordinatorTest, RejectsBadOptions) {
  auto o = TestOptions(dir_.path(), clock_);
  o.num_partitions = 100;
  EXPECT_EQ(Coordinator::Open(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = TestOptions("", clock_);
  EXPECT_EQ(Coordinator::Open(o).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quiver::coordinator
