// The assembled Node against an in-process fake coordinator: start-up,
// persisted id and partition count, heartbeats, re-registration and one
// materialization task end to end (lease, scan, quorum write to itself, report).
#include "quiver/node/node.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <deque>
#include <fstream>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "node_test_util.h"
#include "quiver.grpc.pb.h"
#include "quiver/keys/entity_key.h"
#include "quiver/storage/offline_store.h"

namespace quiver::node {
namespace {

using testing::AddFeature;
using testing::AddSingleEntityView;
using testing::TempDir;

constexpr int64_t kBaseUs = 1704067200LL * 1000 * 1000;  // 2024-01-01
constexpr int64_t kDayUs = 24LL * 3600 * 1000 * 1000;

class FakeCoordinator final : public quiver::v1::CoordinatorService::Service {
 public:
  explicit FakeCoordinator(uint32_t q) { map_.set_num_partitions(q); }

  grpc::Status Register(grpc::ServerContext*, const quiver::v1::RegisterRequest* request,
                        quiver::v1::RegisterResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    register_requests_.push_back(*request);
    const uint32_t id = request->node_id() != 0 ? request->node_id() : 1;
    map_.clear_nodes();
    map_.clear_partitions();
    auto* node = map_.add_nodes();
    node->set_id(id);
    node->set_address(request->address());
    node->set_state(state_);
    node->set_recovery(recovery_);
    node->set_recovery_fenced(recovery_fenced_);
    for (uint32_t p = 0; p < map_.num_partitions(); ++p) map_.add_partitions()->add_node_ids(id);
    map_.set_epoch(map_.epoch() + 1);
    known_ = true;
    response->set_node_id(id);
    *response->mutable_map() = map_;
    return grpc::Status::OK;
  }
  grpc::Status Heartbeat(grpc::ServerContext*, const quiver::v1::HeartbeatRequest* request,
                         quiver::v1::HeartbeatResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++heartbeats_;
    if (!known_) return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown node");
    heartbeat_requests_.push_back(*request);
    response->set_epoch(map_.epoch());
    response->set_registry_version(registry_.version());
    response->set_state(state_);
    response->set_recovery(recovery_);
    response->set_recovery_fenced(recovery_fenced_);
    for (const auto& t : streams_) *response->add_streams() = t;
    return grpc::Status::OK;
  }
  grpc::Status GetClusterMap(grpc::ServerContext*, const quiver::v1::GetClusterMapRequest*,
                             quiver::v1::ClusterMap* map) override {
    std::lock_guard<std::mutex> lock(mu_);
    *map = map_;
    return grpc::Status::OK;
  }
  grpc::Status GetRegistry(grpc::ServerContext*, const quiver::v1::GetRegistryRequest*,
                           quiver::v1::Registry* registry) override {
    std::lock_guard<std::mutex> lock(mu_);
    *registry = registry_;
    return grpc::Status::OK;
  }
  grpc::Status LeaseTask(grpc::ServerContext*, const quiver::v1::LeaseTaskRequest*,
                         quiver::v1::LeaseTaskResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!tasks_.empty()) {
      *response->mutable_task() = tasks_.front();
      tasks_.pop_front();
    }
    return grpc::Status::OK;
  }
  grpc::Status CompleteTask(grpc::ServerContext*, const quiver::v1::CompleteTaskRequest* request,
                            quiver::v1::CompleteTaskResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    completed_.push_back(*request);
    return grpc::Status::OK;
  }

  std::mutex mu_;
  quiver::v1::ClusterMap map_;
  quiver::v1::Registry registry_;
  bool known_ = false;
  int heartbeats_ = 0;
  quiver::v1::NodeState state_ = quiver::v1::UP;
  uint64_t recovery_ = 0;
  uint64_t recovery_fenced_ = 0;
  std::vector<quiver::v1::StreamTask> streams_;
  std::vector<quiver::v1::HeartbeatRequest> heartbeat_requests_;
  std::vector<quiver::v1::RegisterRequest> register_requests_;
  std::deque<quiver::v1::MaterializationTask> tasks_;
  std::vector<quiver::v1::CompleteTaskRequest> completed_;
};

class NodeProcessTest : public ::testing::Test {
 protected:
  void StartCoordinator(uint32_t q) {
    coordinator_ = std::make_unique<FakeCoordinator>(q);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(coordinator_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    coordinator_address_ = absl::StrCat("127.0.0.1:", port);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  NodeOptions Options() const {
    NodeOptions o;
    o.listen = "127.0.0.1:0";
    o.metrics_listen = "127.0.0.1:0";
    o.coordinator = coordinator_address_;
    o.data_dir = dir_.path() + "/node";
    o.block_cache_mb = 8;
    o.heartbeat = std::chrono::milliseconds(50);
    return o;
  }

  // Waits up to 10 s for `done` (checked under the coordinator's lock).
  bool WaitFor(const std::function<bool()>& done) {
    for (int i = 0; i < 1000; ++i) {
      {
        std::lock_guard<std::mutex> lock(coordinator_->mu_);
        if (done()) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  TempDir dir_;
  std::unique_ptr<FakeCoordinator> coordinator_;
  std::unique_ptr<grpc::Server> server_;
  std::string coordinator_address_;
};

TEST_F(NodeProcessTest, RegistersServesAndPersistsItsIdAndPartitionCount) {
  StartCoordinator(16);
  auto node = Node::Start(Options());
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ((*node)->node_id(), 1u);
  EXPECT_NE((*node)->listen_address(), "127.0.0.1:0");
  EXPECT_EQ((*node)->advertise_address(), (*node)->listen_address());

  auto stub = quiver::v1::NodeService::NewStub(grpc::CreateChannel(
      (*node)->listen_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  quiver::v1::HealthResponse health;
  ASSERT_TRUE(stub->Health(&ctx, quiver::v1::HealthRequest(), &health).ok());
  EXPECT_EQ(health.node_id(), 1u);
  EXPECT_TRUE(health.serving());
  EXPECT_TRUE(WaitFor([&] { return coordinator_->heartbeats_ >= 2; }));
  (*node)->Stop();

  std::ifstream id_file(Options().data_dir + "/node_id");
  uint32_t id = 0;
  id_file >> id;
  EXPECT_EQ(id, 1u);

  // Restart: the persisted id is offered again.
  auto again = Node::Start(Options());
  ASSERT_TRUE(again.ok()) << again.status();
  {
    std::lock_guard<std::mutex> lock(coordinator_->mu_);
    EXPECT_EQ(coordinator_->register_requests_.back().node_id(), 1u);
  }
  (*again)->Stop();

  // A cluster with another partition count cannot use this store.
  server_->Shutdown();
  StartCoordinator(32);
  auto mismatch = Node::Start(Options());
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(NodeProcessTest, ReRegistersWhenTheCoordinatorForgetsIt) {
  StartCoordinator(16);
  auto node = Node::Start(Options());
  ASSERT_TRUE(node.ok()) << node.status();
  {
    std::lock_guard<std::mutex> lock(coordinator_->mu_);
    coordinator_->known_ = false;
  }
  EXPECT_TRUE(WaitFor([&] { return coordinator_->known_; }));
  std::lock_guard<std::mutex> lock(coordinator_->mu_);
  EXPECT_EQ(coordinator_->register_requests_.size(), 2u);
  EXPECT_EQ(coordinator_->register_requests_.back().node_id(), 1u);
}

TEST_F(NodeProcessTest, StartIsCancelledWhileTheCoordinatorIsUnreachable) {
  coordinator_address_ = "127.0.0.1:1";
  absl::Notification cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cancel.Notify();
  });
  auto node = Node::Start(Options(), &cancel);
  canceller.join();
  EXPECT_EQ(node.status().code(), absl::StatusCode::kCancelled);
}

TEST_F(NodeProcessTest, MaterializesALeasedTaskIntoItsOwnStore) {
  StartCoordinator(16);
  auto offline = storage::OfflineStore::Open(1);
  ASSERT_TRUE(offline.ok());
  const std::string file = dir_.path() + "/events.parquet";
  ASSERT_TRUE((*offline)
                  ->QueryScalar(absl::StrCat(
                      "COPY (SELECT (i % 20)::BIGINT AS user_id, TIMESTAMP '2024-01-01' + "
                      "to_minutes(i) AS ts, i::BIGINT AS clicks FROM range(100) t(i)) TO '",
                      file, "' (FORMAT PARQUET)"))
                  .ok());
  {
    std::lock_guard<std::mutex> lock(coordinator_->mu_);
    quiver::v1::Registry& r = coordinator_->registry_;
    r.set_project("test");
    r.set_version(3);
    auto* view = AddSingleEntityView(&r, {.entity = "user", .join_key = "user_id",
                                          .source = "events", .path = file,
                                          .view = "user_clicks"});
    AddFeature(view, "clicks", quiver::v1::INT64);
  }
  auto node = Node::Start(Options());
  ASSERT_TRUE(node.ok()) << node.status();
  {
    std::lock_guard<std::mutex> lock(coordinator_->mu_);
    quiver::v1::MaterializationTask task;
    task.set_job_id(9);
    task.set_task_id(4);
    task.set_view("user_clicks");
    task.set_file(file);
    task.set_row_end(100);
    task.set_start_us(kBaseUs);
    task.set_end_us(kBaseUs + kDayUs);
    task.set_registry_version(3);
    task.set_attempt(2);
    coordinator_->tasks_.push_back(task);
  }
  ASSERT_TRUE(WaitFor([&] { return !coordinator_->completed_.empty(); }));
  {
    std::lock_guard<std::mutex> lock(coordinator_->mu_);
    const auto& done = coordinator_->completed_[0];
    EXPECT_TRUE(done.ok()) << done.error();
    EXPECT_EQ(done.rows_written(), 20u);
    EXPECT_EQ(done.job_id(), 9u);
    EXPECT_EQ(done.task_id(), 4u);
    EXPECT_EQ(done.attempt(), 2u);
    EXPECT_EQ(done.node_id(), 1u);
  }
  // user 7's latest event is i = 87.
  auto stub = quiver::v1::NodeService::NewStub(grpc::CreateChannel(
      (*node)->listen_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  quiver::v1::GetRequest request;
  auto* lookup = request.add_lookups();
  lookup->set_view("user_clicks");
  lookup->add_entity_keys(EncodeEntityKey({{"user_id", Value::Int64(7)}}).value());
  quiver::v1::GetResponse response;
  ASSERT_TRUE(stub->Get(&ctx, request, &response).ok());
  const auto& row = response.results(0).rows(0);
  EXPECT_EQ(row.status(), quiver::v1::PRESENT);
  EXPECT_EQ(row.values(0).int64_val(), 87);
  EXPECT_EQ(row.event_ts_us(), kBaseUs + 87LL * 60 * 1000000);
}

TEST_F(NodeProcessTest, RepairsARecoveryOnlyOnceItIsFenced) {
  StartCoordinator(16);
  {
    std::lock_guard<std::mutex> lock(coordinator_->mu_);
    coordinator_->state_ = quiver::v1::RECOVERING;
    coordinator_->recovery_ = 3;
    coordinator_->recovery_fenced_ = 2;  // the barrier of recovery 3 is not complete
  }
  auto node = Node::Start(Options());
  ASSERT_TRUE(node.ok()) << node.status();
  ASSERT_TRUE(WaitFor([&] { return coordinator_->heartbeat_requests_.size() >= 5; }));
  {
    std::lock_guard<std::mutex> lock(coordinator_->mu_);
    for (const auto& hb : coordinator_->heartbeat_requests_) EXPECT_EQ(hb.repaired_recovery(), 0u);
    coordinator_->recovery_fenced_ = 3;
  }
  // A single node has no peer to copy from: the repair completes at once.
  EXPECT_TRUE(WaitFor([&] {
    return !coordinator_->heartbeat_requests_.empty() &&
           coordinator_->heartbeat_requests_.back().repaired_recovery() == 3;
  }));
}

TEST_F(NodeProcessTest, RunsTheStreamsItIsHandedAndReportsThem) {
  StartCoordinator(16);
  {
    std::lock_guard<std::mutex> lock(coordinator_->mu_);
    quiver::v1::Registry& r = coordinator_->registry_;
    r.set_project("test");
    r.set_version(2);
    auto* view = AddSingleEntityView(&r, {.entity = "user", .join_key = "user_id",
                                          .source = "events", .path = "/nonexistent.parquet",
                                          .view = "user_clicks"});
    AddFeature(view, "clicks", quiver::v1::INT64);
  }
  auto node = Node::Start(Options());
  ASSERT_TRUE(node.ok()) << node.status();
  {
    // The node streams a partition it owns from itself: the wiring (heartbeat
    // -> Streamer -> ScanPartitions over gRPC -> MergeStreamed -> report).
    std::lock_guard<std::mutex> lock(coordinator_->mu_);
    quiver::v1::StreamTask task;
    task.set_move_id(5);
    task.set_partition(3);
    task.set_source(1);
    task.set_source_address((*node)->listen_address());
    task.set_attempt(1);
    coordinator_->streams_.push_back(task);
  }
  EXPECT_TRUE(WaitFor([&] {
    if (coordinator_->heartbeat_requests_.empty()) return false;
    const auto& hb = coordinator_->heartbeat_requests_.back();
    return hb.streams_size() == 1 && hb.streams(0).done();
  }));
  size_t seen = 0;
  {
    std::lock_guard<std::mutex> lock(coordinator_->mu_);
    const auto& report = coordinator_->heartbeat_requests_.back().streams(0);
    EXPECT_EQ(report.move_id(), 5u);
    EXPECT_EQ(report.attempt(), 1u);
    EXPECT_TRUE(report.error().empty()) << report.error();
    coordinator_->streams_.clear();
    seen = coordinator_->heartbeat_requests_.size();
  }
  // Not listed any more: forgotten, no more reports.
  EXPECT_TRUE(WaitFor([&] {
    return coordinator_->heartbeat_requests_.size() > seen + 1 &&
           coordinator_->heartbeat_requests_.back().streams_size() == 0;
  }));
}

TEST_F(NodeProcessTest, APushedMapIsAdoptedAndTheClientRefreshes) {
  StartCoordinator(16);
  auto node = Node::Start(Options());
  ASSERT_TRUE(node.ok()) << node.status();
  quiver::v1::AdoptMapRequest request;
  {
    std::lock_guard<std::mutex> lock(coordinator_->mu_);
    coordinator_->map_.set_epoch(coordinator_->map_.epoch() + 10);
    for (auto& p : *coordinator_->map_.mutable_partitions()) p.set_fence_epoch(coordinator_->map_.epoch());
    *request.mutable_map() = coordinator_->map_;
  }
  auto stub = quiver::v1::NodeService::NewStub(grpc::CreateChannel(
      (*node)->listen_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  quiver::v1::AdoptMapResponse response;
  ASSERT_TRUE(stub->AdoptMap(&ctx, request, &response).ok());
  EXPECT_EQ(response.epoch(), request.map().epoch());
  EXPECT_EQ(response.sessions_waited() + response.sessions_fenced(), 0u);
  // The node's own client catches up (its heartbeats carry its map's epoch).
  EXPECT_TRUE(WaitFor([&] {
    return !coordinator_->heartbeat_requests_.empty() &&
           coordinator_->heartbeat_requests_.back().epoch() == request.map().epoch();
  }));
  // A map that does not build is refused.
  request.mutable_map()->set_num_partitions(5);
  grpc::ClientContext bad_ctx;
  EXPECT_EQ(stub->AdoptMap(&bad_ctx, request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace quiver::node

namespace quiver::node {
namespace {

absl::StatusOr<NodeOptions> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), {"quiver-node", "--coordinator=127.0.0.1:1", "--data-dir=/tmp/x"});
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseNodeFlags(static_cast<int>(argv.size()), argv.data());
}

TEST(NodeFlagsTest, StreamThrottleDefaultsTo200AndTakesZeroForUnlimited) {
  auto defaults = Parse({});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->stream_mb_per_s, 200u);
  auto fifty = Parse({"--stream-mb-per-s=50"});
  ASSERT_TRUE(fifty.ok()) << fifty.status();
  EXPECT_EQ(fifty->stream_mb_per_s, 50u);
  auto unlimited = Parse({"--stream-mb-per-s=0"});
  ASSERT_TRUE(unlimited.ok()) << unlimited.status();
  EXPECT_EQ(unlimited->stream_mb_per_s, 0u);
  EXPECT_EQ(Parse({"--stream-mb-per-s=-1"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse({"--stream-mb-per-s=fast"}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quiver::node
