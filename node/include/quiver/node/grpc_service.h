// NodeGrpcService: quiver.v1.NodeService over gRPC's synchronous server,
// delegating to RequestHandler. Status conversion between absl::Status and
// grpc::Status happens here and nowhere else in the node.
//
// Thread-safety: gRPC calls the methods concurrently; the handler is
// thread-safe.
#ifndef QUIVER_NODE_GRPC_SERVICE_H_
#define QUIVER_NODE_GRPC_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "quiver.grpc.pb.h"
#include "quiver/node/request_handler.h"
#include "quiver/runtime/runtime.h"

namespace quiver::node {

// The canonical codes are numbered alike in both libraries.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

class NodeGrpcService final : public quiver::v1::NodeService::Service {
 public:
  // `handler` must outlive the service; `metrics` may be null.
  NodeGrpcService(RequestHandler* handler, runtime::RpcMetrics* metrics);

  grpc::Status Get(grpc::ServerContext* context, const quiver::v1::GetRequest* request,
                   quiver::v1::GetResponse* response) override;
  grpc::Status Write(grpc::ServerContext* context, const quiver::v1::WriteRequest* request,
                     quiver::v1::WriteResponse* response) override;
  grpc::Status CommitIngest(grpc::ServerContext* context,
                            const quiver::v1::CommitIngestRequest* request,
                            quiver::v1::CommitIngestResponse* response) override;
  grpc::Status ScanPartitions(grpc::ServerContext* context,
                              const quiver::v1::ScanPartitionsRequest* request,
                              quiver::v1::ScanPartitionsResponse* response) override;
  grpc::Status Backup(grpc::ServerContext* context, const quiver::v1::BackupRequest* request,
                      quiver::v1::BackupResponse* response) override;
  grpc::Status MergeRows(grpc::ServerContext* context, const quiver::v1::MergeRowsRequest* request,
                         quiver::v1::MergeRowsResponse* response) override;
  // The barrier (RequestHandler::HandleAdoptMap); blocks up to the drain timeout.
  grpc::Status AdoptMap(grpc::ServerContext* context, const quiver::v1::AdoptMapRequest* request,
                        quiver::v1::AdoptMapResponse* response) override;
  grpc::Status Health(grpc::ServerContext* context, const quiver::v1::HealthRequest* request,
                      quiver::v1::HealthResponse* response) override;

 private:
  RequestHandler* handler_;
  runtime::RpcMetrics* metrics_;
};

}  // namespace quiver::node

#endif  // QUIVER_NODE_GRPC_SERVICE_H_
