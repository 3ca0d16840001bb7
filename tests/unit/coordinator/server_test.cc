// CoordinatorService over gRPC on 127.0.0.1, port 0.
#include "quiver/coordinator/server.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "quiver.grpc.pb.h"
#include "common/temp_dir.h"

namespace quiver::coordinator {
namespace {

TEST(CoordinatorServerTest, ServesRpcsAndConvertsErrors) {
  quiver::testing::TempDir dir;
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.coordinator.data_dir = dir.path();
  options.coordinator.num_partitions = 16;
  auto server = CoordinatorServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_NE((*server)->address(), "127.0.0.1:0");

  auto stub = v1::CoordinatorService::NewStub(
      grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext ctx;
    v1::RegisterRequest req;
    req.set_address("127.0.0.1:7001");
    v1::RegisterResponse resp;
    ASSERT_TRUE(stub->Register(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.node_id(), 1u);
    EXPECT_EQ(resp.map().partitions_size(), 16);
  }
  {
    grpc::ClientContext ctx;
    v1::ListNodesResponse resp;
    ASSERT_TRUE(stub->ListNodes(&ctx, v1::ListNodesRequest(), &resp).ok());
    ASSERT_EQ(resp.nodes_size(), 1);
    EXPECT_EQ(resp.nodes(0).partitions_held(), 16u);
  }
  {
    grpc::ClientContext ctx;
    v1::GetJobRequest req;
    req.set_job_id(9);
    v1::Job job;
    EXPECT_EQ(stub->GetJob(&ctx, req, &job).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::MaterializeRequest req;
    v1::Job job;
    EXPECT_EQ(stub->StartMaterialization(&ctx, req, &job).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }
  (*server)->Shutdown();
  server->reset();  // releases the data dir's lock
  // The state outlives the server.
  auto again = Coordinator::Open(options.coordinator);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->GetClusterMap().nodes_size(), 1);
}

TEST(CoordinatorServerTest, UnbindableAddressIsUnavailable) {
  quiver::testing::TempDir dir;
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.coordinator.data_dir = dir.path();
  auto first = CoordinatorServer::Start(options);
  ASSERT_TRUE(first.ok());
  quiver::testing::TempDir dir2;
  options.coordinator.data_dir = dir2.path();
  options.listen = (*first)->address();  // taken
  EXPECT_EQ(CoordinatorServer::Start(options).status().code(), absl::StatusCode::kUnavailable);
  options.listen = "no-port";
  EXPECT_EQ(CoordinatorServer::Start(options).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quiver::coordinator
