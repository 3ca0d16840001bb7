// NodeGrpcService: quiver.v1.NodeService over gRPC's synchronous server,
// delegating to RequestHandler. Status conversion between absl::Status and
// grpc::Status happens here and nowhere else in the node.
//
// Authentication and permissions (quiver/security/security.h; checked
// here, before the handler): Get needs READ_ONLINE and Write WRITE_ONLINE
// on each feature view they name (Feast's actions); ScanPartitions,
// CommitIngest, Backup and MergeRows (repair, streaming, ingest, quiverctl
// backup/restore/verify) need UPDATE on the PROJECT; AdoptMap only the
// cluster role; Health needs nothing.
//
// Thread-safety: gRPC calls the methods concurrently; the handler and the
// guard are thread-safe.
#ifndef QUIVER_NODE_GRPC_SERVICE_H_
#define QUIVER_NODE_GRPC_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "quiver.grpc.pb.h"
#include "quiver/node/request_handler.h"
#include "quiver/runtime/runtime.h"
#include "quiver/security/security.h"

namespace quiver::node {

// The canonical codes are numbered alike in both libraries.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

class NodeGrpcService final : public quiver::v1::NodeService::Service {
 public:
  // `handler` must outlive the service; `metrics` may be null; `guard` null
  // or disabled: no authentication; else `cluster` (the registry whose
  // permissions apply) must outlive the service.
  NodeGrpcService(RequestHandler* handler, runtime::RpcMetrics* metrics,
                  security::CallGuard* guard = nullptr, const ClusterView* cluster = nullptr);

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
  // OK when the caller may do `action` on each of `views`.
  grpc::Status Allow(const grpc::ServerContext& context, const std::vector<std::string>& views,
                     quiver::v1::AuthzAction action) const;
  // OK when the caller may do UPDATE on the project (operators, the cluster).
  grpc::Status AllowOperator(const grpc::ServerContext& context) const;

  RequestHandler* handler_;
  runtime::RpcMetrics* metrics_;
  security::CallGuard* guard_;
  const ClusterView* cluster_;
};

}  // namespace quiver::node

#endif  // QUIVER_NODE_GRPC_SERVICE_H_
