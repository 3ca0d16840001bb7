#include "quiver/node/grpc_service.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "absl/synchronization/notification.h"
#include "absl/strings/str_cat.h"
#include "node_test_util.h"
#include "quiver/storage/row_store.h"

namespace quiver::node {
namespace {

using testing::BuildIndex;
using testing::OpenTestStore;
using testing::FakeCluster;
using testing::OwnEverything;
using testing::TempDir;

class GrpcServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenTestStore(dir_.path());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    quiver::v1::Registry r;
    r.set_project("test");
    r.set_version(1);
    cluster_.current = BuildIndex(r);
    handler_ = std::make_unique<RequestHandler>(store_.get(), &cluster_);
    OwnEverything(*handler_);
    service_ = std::make_unique<NodeGrpcService>(handler_.get(), nullptr);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                   grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  TempDir dir_;
  std::unique_ptr<storage::RowStore> store_;
  FakeCluster cluster_;
  std::unique_ptr<RequestHandler> handler_;
  std::unique_ptr<NodeGrpcService> service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(GrpcServiceTest, StatusCodesCrossTheWireUnchanged) {
  auto stub = quiver::v1::NodeService::NewStub(channel_);
  grpc::ClientContext ctx;
  quiver::v1::GetRequest request;
  auto* lookup = request.add_lookups();
  lookup->set_view("missing");
  lookup->add_entity_keys("k");
  quiver::v1::GetResponse response;
  grpc::Status s = stub->Get(&ctx, request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("missing"), std::string::npos);
}

TEST_F(GrpcServiceTest, GarbageBytesAreRejectedAndTheServerKeepsServing) {
  grpc::GenericStub generic(channel_);
  for (const char* method : {"/quiver.v1.NodeService/Get", "/quiver.v1.NodeService/Write"}) {
    const std::string garbage = "\xff\xff\xff\xff\x0f\x12\x80garbage";
    grpc::Slice slice(garbage);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::ClientContext ctx;
    absl::Notification done;
    grpc::Status status;
    generic.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                      [&](grpc::Status s) {
                        status = std::move(s);
                        done.Notify();
                      });
    done.WaitForNotification();
    EXPECT_FALSE(status.ok()) << method;
  }
  auto stub = quiver::v1::NodeService::NewStub(channel_);
  grpc::ClientContext ctx;
  quiver::v1::HealthResponse health;
  EXPECT_TRUE(stub->Health(&ctx, quiver::v1::HealthRequest(), &health).ok());
  EXPECT_EQ(health.epoch(), 7u);
}

TEST_F(GrpcServiceTest, AdoptMapMovesTheNodeToTheNewMapAndRefusalsAreAborted) {
  auto stub = quiver::v1::NodeService::NewStub(channel_);
  // Epoch 9: node 2 took every partition from node 1.
  quiver::v1::AdoptMapRequest adopt;
  adopt.mutable_map()->set_epoch(9);
  adopt.mutable_map()->set_num_partitions(16);
  for (uint32_t id : {1u, 2u}) {
    auto* n = adopt.mutable_map()->add_nodes();
    n->set_id(id);
    n->set_address(absl::StrCat("n", id, ":1"));
    n->set_state(quiver::v1::UP);
  }
  for (int p = 0; p < 16; ++p) {
    auto* part = adopt.mutable_map()->add_partitions();
    part->add_node_ids(2);
    part->set_fence_epoch(9);
  }
  adopt.set_drain_timeout_ms(100);
  quiver::v1::AdoptMapResponse adopted;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->AdoptMap(&ctx, adopt, &adopted).ok());
  }
  EXPECT_EQ(adopted.epoch(), 9u);
  EXPECT_EQ(adopted.sessions_fenced(), 0u);
  grpc::ClientContext ctx;
  quiver::v1::GetRequest request;
  auto* lookup = request.add_lookups();
  lookup->set_view("missing");
  lookup->add_entity_keys("k");
  quiver::v1::GetResponse response;
  grpc::Status s = stub->Get(&ctx, request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(s.error_message().rfind("stale map:", 0), 0u) << s.error_message();
  // A map that does not build is refused and changes nothing.
  adopt.mutable_map()->set_epoch(10);
  adopt.mutable_map()->mutable_partitions(0)->add_node_ids(99);
  grpc::ClientContext bad;
  EXPECT_EQ(stub->AdoptMap(&bad, adopt, &adopted).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(handler_->adopted_epoch(), 9u);
}

TEST(StatusConversionTest, CodesAndMessagesRoundTrip) {
  grpc::Status g = ToGrpcStatus(absl::FailedPreconditionError("schema"));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(g.error_message(), "schema");
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  absl::Status a = FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "down"));
  EXPECT_EQ(a.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(a.message(), "down");
}

}  // namespace
}  // namespace quiver::node
