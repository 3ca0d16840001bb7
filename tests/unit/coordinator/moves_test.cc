// The partition-move state machine (coordinator/src/moves.h) driven through
// the Coordinator with simulated nodes: streams finish when the target
// heartbeats, barriers succeed or fail as a test says. The coordinator is
// "crashed" (closed and reopened from its state file) after every step, and
// the protocol's invariants are checked against a model of which node holds
// a complete copy of which partition.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "coordinator_test_util.h"
#include "quiver/coordinator/coordinator.h"

namespace quiver::coordinator {
namespace {

using testing::ManualClock;
using testing::MustOpen;
using testing::MustRegister;

class MovesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("quiver_moves_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    options_ = testing::TestOptions(dir_.string(), clock_);
    options_.replication_factor = 2;
    options_.max_moves_per_node = 7;  // several waves over 64 partitions
    options_.move_step_interval_us = 0;  // the manual clock does not move
    coordinator_ = MustOpen(options_);
  }
  void TearDown() override {
    coordinator_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Crash() {
    coordinator_.reset();
    coordinator_ = MustOpen(options_);
    ASSERT_NE(coordinator_, nullptr);
  }

  void ApplyRegistry() {
    quiver::v1::ApplyRegistryRequest req;
    auto* r = req.mutable_registry();
    r->set_project("p");
    auto* e = r->add_entities();
    e->set_name("user");
    e->set_join_key("user_id");
    e->set_value_type(quiver::v1::STRING);
    auto* src = r->add_sources();
    src->set_name("s");
    src->set_path("/nonexistent.parquet");
    src->set_timestamp_field("ts");
    auto* fv = r->add_feature_views();
    fv->set_name("v");
    fv->add_entities("user");
    fv->set_source("s");
    fv->set_online(true);
    auto* f = fv->add_features();
    f->set_name("x");
    f->set_type(quiver::v1::INT64);
    auto applied = coordinator_->ApplyRegistry(req);
    ASSERT_TRUE(applied.ok()) << applied.status();
  }

  // Every node holds complete copies of the partitions it owns at start.
  void SeedHoldings() {
    const auto map = coordinator_->GetClusterMap();
    for (int p = 0; p < map.partitions_size(); ++p) {
      for (uint32_t id : map.partitions(p).node_ids()) complete_[id].insert(p);
    }
  }

  // One heartbeat per node: stream tasks are "run" at once (the target then
  // holds the partition) and reported done in the same heartbeat.
  void HeartbeatAll() {
    const auto map = coordinator_->GetClusterMap();
    for (const auto& n : map.nodes()) {
      if (down_.count(n.id())) continue;
      quiver::v1::HeartbeatRequest req;
      req.set_node_id(n.id());
      req.set_epoch(coordinator_->GetClusterMap().epoch());
      for (const auto& t : tasks_[n.id()]) {
        ASSERT_TRUE(complete_[t.source()].count(t.partition()))
            << "move " << t.move_id() << " streams partition " << t.partition() << " from node "
            << t.source() << ", which has no complete copy";
        complete_[n.id()].insert(t.partition());
        auto* r = req.add_streams();
        r->set_move_id(t.move_id());
        r->set_attempt(t.attempt());
        r->set_done(true);
        r->set_rows(10);
        r->set_bytes(1000);
      }
      if (n.state() == quiver::v1::RECOVERING && n.recovery_fenced() == n.recovery()) {
        req.set_repaired_recovery(n.recovery());
      }
      auto resp = coordinator_->Heartbeat(req);
      ASSERT_TRUE(resp.ok()) << resp.status();
      tasks_[n.id()].assign(resp->streams().begin(), resp->streams().end());
    }
  }

  // The invariants of docs/architecture.md, "Rebalancing and epoch fencing".
  void CheckInvariants() {
    const auto s = coordinator_->State();
    const auto& map = s.map();
    for (int p = 0; p < map.partitions_size(); ++p) {
      const auto& part = map.partitions(p);
      ASSERT_FALSE(part.node_ids().empty()) << "partition " << p << " has no owner";
      ASSERT_LE(part.fence_epoch(), map.epoch());
      for (uint32_t id : part.pending_ids()) {
        ASSERT_EQ(std::count(part.node_ids().begin(), part.node_ids().end(), id), 0);
      }
      // Reads go to owners: every owner must hold the whole partition.
      for (uint32_t id : part.node_ids()) {
        ASSERT_TRUE(complete_[id].count(p))
            << "node " << id << " owns partition " << p << " without a complete copy (epoch "
            << map.epoch() << ")";
      }
    }
    std::set<uint32_t> moving;
    for (const auto& m : s.moves()) {
      ASSERT_TRUE(moving.insert(m.partition()).second) << "two moves of partition " << m.partition();
      const auto& part = map.partitions(static_cast<int>(m.partition()));
      const std::vector<uint32_t> owners(part.node_ids().begin(), part.node_ids().end());
      const std::vector<uint32_t> old_r(m.old_replicas().begin(), m.old_replicas().end());
      const std::vector<uint32_t> new_r(m.new_replicas().begin(), m.new_replicas().end());
      std::vector<uint32_t> targets;
      for (uint32_t id : new_r) {
        if (std::find(old_r.begin(), old_r.end(), id) == old_r.end()) targets.push_back(id);
      }
      switch (m.stage()) {
        case quiver::v1::MOVE_PREPARE:
          ASSERT_EQ(owners, old_r);
          break;
        case quiver::v1::MOVE_DOUBLE_WRITE:
        case quiver::v1::MOVE_STREAM:
          ASSERT_EQ(owners, old_r);
          for (uint32_t t : targets) {
            ASSERT_EQ(std::count(part.pending_ids().begin(), part.pending_ids().end(), t), 1)
                << "target " << t << " of partition " << m.partition() << " takes no writes";
          }
          break;
        case quiver::v1::MOVE_READ_NEW:
        case quiver::v1::MOVE_USE_NEW:
          ASSERT_EQ(owners, new_r);
          break;
        default:
          FAIL() << "move " << m.id() << " in stage " << m.stage();
      }
    }
  }

  // Steps until nothing moves (or `max_steps`), crashing after every step
  // when `crash` is set.
  void RunToCompletion(bool crash, int max_steps = 400) {
    BarrierFn barrier = [this](const quiver::v1::ClusterMap& map,
                               const std::vector<quiver::v1::NodeInfo>& nodes) {
      ++barriers_;
      for (const auto& n : nodes) EXPECT_FALSE(down_.count(n.id())) << "barrier asks a DOWN node";
      return !fail_barriers_;
    };
    for (int step = 0; step < max_steps; ++step) {
      ASSERT_TRUE(coordinator_->DriveOnce(barrier).ok());
      ASSERT_NO_FATAL_FAILURE(CheckInvariants());
      if (crash) {
        ASSERT_NO_FATAL_FAILURE(Crash());
      }
      ASSERT_NO_FATAL_FAILURE(HeartbeatAll());
      ASSERT_NO_FATAL_FAILURE(CheckInvariants());
      if (crash) {
        ASSERT_NO_FATAL_FAILURE(Crash());
      }
      const auto nodes = coordinator_->ListNodes();
      if (!nodes.rebalance().active() && nodes.rebalance().under_replicated() == 0 &&
          std::all_of(nodes.nodes().begin(), nodes.nodes().end(), [](const auto& n) {
            return n.node().state() == quiver::v1::UP || n.node().state() == quiver::v1::DOWN ||
                   n.node().state() == quiver::v1::LEAVING;
          })) {
        return;
      }
    }
    FAIL() << "rebalance did not finish in " << max_steps << " steps";
  }

  // Each UP node holds floor or ceil of Q*R/N partitions.
  void ExpectBalanced(size_t nodes) {
    const auto list = coordinator_->ListNodes();
    const uint32_t total = 64 * 2;
    size_t counted = 0;
    for (const auto& n : list.nodes()) {
      if (n.node().state() != quiver::v1::UP) continue;
      ++counted;
      EXPECT_GE(n.partitions_held(), total / nodes) << "node " << n.node().id();
      EXPECT_LE(n.partitions_held(), (total + nodes - 1) / nodes) << "node " << n.node().id();
    }
    EXPECT_EQ(counted, nodes);
  }

  std::filesystem::path dir_;
  ManualClock clock_;
  CoordinatorOptions options_;
  std::unique_ptr<Coordinator> coordinator_;
  std::map<uint32_t, std::set<uint32_t>> complete_;  // node -> partitions it holds whole
  std::map<uint32_t, std::vector<quiver::v1::StreamTask>> tasks_;
  std::set<uint32_t> down_;
  bool fail_barriers_ = false;
  int barriers_ = 0;
};

TEST_F(MovesTest, AJoiningNodeOfAClusterWithARegistryGetsItsShareThroughMoves) {
  for (int i = 1; i <= 3; ++i) MustRegister(*coordinator_, "127.0.0.1:" + std::to_string(7000 + i));
  ApplyRegistry();
  SeedHoldings();
  const uint64_t epoch = coordinator_->GetClusterMap().epoch();
  const uint32_t id = MustRegister(*coordinator_, "127.0.0.1:7004");
  auto map = coordinator_->GetClusterMap();
  for (const auto& n : map.nodes()) {
    if (n.id() == id) {
      EXPECT_EQ(n.state(), quiver::v1::JOINING);
    }
  }
  for (const auto& p : map.partitions()) {
    EXPECT_EQ(std::count(p.node_ids().begin(), p.node_ids().end(), id), 0)
        << "a joining node owns a partition before any move";
  }
  RunToCompletion(/*crash=*/false);
  ExpectBalanced(4);
  EXPECT_GT(coordinator_->GetClusterMap().epoch(), epoch);
  EXPECT_GT(barriers_, 0);
  const auto status = coordinator_->ListNodes().rebalance();
  EXPECT_EQ(status.moves_done(), status.moves_total());
  EXPECT_EQ(status.rows_streamed(), 10u * status.moves_done());
}

TEST_F(MovesTest, ACoordinatorCrashAfterEveryStageResumesEveryMove) {
  for (int i = 1; i <= 3; ++i) MustRegister(*coordinator_, "127.0.0.1:" + std::to_string(7000 + i));
  ApplyRegistry();
  SeedHoldings();
  MustRegister(*coordinator_, "127.0.0.1:7004");
  MustRegister(*coordinator_, "127.0.0.1:7005");
  RunToCompletion(/*crash=*/true);
  ExpectBalanced(5);
  EXPECT_EQ(coordinator_->State().moves_size(), 0);
}

TEST_F(MovesTest, NoMoveAdvancesPastABarrierThatFailed) {
  for (int i = 1; i <= 3; ++i) MustRegister(*coordinator_, "127.0.0.1:" + std::to_string(7000 + i));
  ApplyRegistry();
  SeedHoldings();
  MustRegister(*coordinator_, "127.0.0.1:7004");
  fail_barriers_ = true;
  BarrierFn failing = [](const quiver::v1::ClusterMap&, const std::vector<quiver::v1::NodeInfo>&) {
    return false;
  };
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(coordinator_->DriveOnce(failing).ok());
    HeartbeatAll();
  }
  const auto state = coordinator_->State();
  for (const auto& m : state.moves()) {
    EXPECT_TRUE(m.stage() == quiver::v1::MOVE_PREPARE || m.stage() == quiver::v1::MOVE_DOUBLE_WRITE)
        << "move " << m.id() << " reached stage " << m.stage() << " without a barrier";
  }
  fail_barriers_ = false;
  RunToCompletion(/*crash=*/false);
  ExpectBalanced(4);
}

TEST_F(MovesTest, DrainAndRemoveMoveEveryReplicaOffTheNode) {
  for (int i = 1; i <= 4; ++i) MustRegister(*coordinator_, "127.0.0.1:" + std::to_string(7000 + i));
  ApplyRegistry();
  SeedHoldings();
  // An UP node holding data cannot be removed.
  quiver::v1::RemoveNodeRequest remove;
  remove.set_node_id(4);
  auto refused = coordinator_->RemoveNode(remove);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("drain it first"), std::string::npos);
  quiver::v1::DrainNodeRequest drain;
  drain.set_node_id(4);
  auto drained = coordinator_->DrainNode(drain);
  ASSERT_TRUE(drained.ok()) << drained.status();
  EXPECT_GT(drained->moves_planned(), 0u);
  RunToCompletion(/*crash=*/true);
  auto list = coordinator_->ListNodes();
  for (const auto& n : list.nodes()) {
    if (n.node().id() == 4) {
      EXPECT_EQ(n.partitions_held(), 0u);
    }
  }
  auto removed = coordinator_->RemoveNode(remove);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_TRUE(removed->forgotten());
  EXPECT_EQ(coordinator_->GetClusterMap().nodes_size(), 3);
  // The drained process, still running, cannot come back under its id.
  quiver::v1::RegisterRequest again;
  again.set_node_id(4);
  again.set_address("127.0.0.1:7004");
  auto refused_again = coordinator_->Register(again);
  EXPECT_EQ(refused_again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused_again.status().message().find("was removed"), std::string::npos);
  ExpectBalanced(3);
}

TEST_F(MovesTest, ARemovedDownNodeIsReplacedFromTheSurvivors) {
  for (int i = 1; i <= 4; ++i) MustRegister(*coordinator_, "127.0.0.1:" + std::to_string(7000 + i));
  ApplyRegistry();
  SeedHoldings();
  down_.insert(3);  // and its disk is gone: PickSource must never stream from it
  clock_.Advance(3'000'000);
  HeartbeatAll();
  ASSERT_TRUE(coordinator_->Tick().ok());
  quiver::v1::RemoveNodeRequest remove;
  remove.set_node_id(3);
  auto removed = coordinator_->RemoveNode(remove);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_FALSE(removed->forgotten());
  RunToCompletion(/*crash=*/true);
  const auto map = coordinator_->GetClusterMap();
  EXPECT_EQ(map.nodes_size(), 3) << "the removed node is forgotten once nothing names it";
  for (const auto& p : map.partitions()) EXPECT_EQ(p.node_ids_size(), 2);
  ExpectBalanced(3);
}

TEST_F(MovesTest, AReturningNodeRepairsOnlyAfterItsBarrier) {
  for (int i = 1; i <= 3; ++i) MustRegister(*coordinator_, "127.0.0.1:" + std::to_string(7000 + i));
  ApplyRegistry();
  SeedHoldings();
  const uint64_t before = coordinator_->GetClusterMap().epoch();
  MustRegister(*coordinator_, "127.0.0.1:7002", 2);  // restarted
  auto map = coordinator_->GetClusterMap();
  const quiver::v1::NodeInfo* node = nullptr;
  for (const auto& n : map.nodes()) {
    if (n.id() == 2) node = &n;
  }
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->state(), quiver::v1::RECOVERING);
  EXPECT_LT(node->recovery_fenced(), node->recovery()) << "repair may not start before the barrier";
  for (const auto& p : map.partitions()) {
    if (std::count(p.node_ids().begin(), p.node_ids().end(), 2u)) {
      EXPECT_GT(p.fence_epoch(), before) << "its partitions' fences rise";
    }
  }
  BarrierFn ok = [](const quiver::v1::ClusterMap&, const std::vector<quiver::v1::NodeInfo>&) {
    return true;
  };
  ASSERT_TRUE(coordinator_->DriveOnce(ok).ok());
  map = coordinator_->GetClusterMap();
  for (const auto& n : map.nodes()) {
    if (n.id() == 2) {
      EXPECT_EQ(n.recovery_fenced(), n.recovery());
    }
  }
}

TEST_F(MovesTest, AFailedPersistLeavesTheStateAsItWas) {
  for (int i = 1; i <= 3; ++i) MustRegister(*coordinator_, "127.0.0.1:" + std::to_string(7000 + i));
  ApplyRegistry();
  const auto before = coordinator_->State();
  coordinator_->FailPersistForTesting(true);
  quiver::v1::RegisterRequest req;
  req.set_address("127.0.0.1:7004");
  EXPECT_EQ(coordinator_->Register(req).status().code(), absl::StatusCode::kInternal);
  quiver::v1::DrainNodeRequest drain;
  drain.set_node_id(1);
  EXPECT_EQ(coordinator_->DrainNode(drain).status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(coordinator_->State().SerializeAsString(), before.SerializeAsString())
      << "memory ran ahead of disk";
  coordinator_->FailPersistForTesting(false);
  Crash();
  EXPECT_EQ(coordinator_->State().map().SerializeAsString(), before.map().SerializeAsString());
}

}  // namespace
}  // namespace quiver::coordinator
