#include "quiver/node/grpc_service.h"

#include <chrono>
#include <string>

namespace quiver::node {
namespace {

// Times one RPC and records it when the scope ends.
class RpcTimer {
 public:
  RpcTimer(runtime::RpcMetrics* metrics, const char* method)
      : metrics_(metrics), method_(method), start_(std::chrono::steady_clock::now()) {}
  grpc::Status Done(const absl::Status& status) {
    if (metrics_ != nullptr) {
      metrics_->Record(method_, status.ok(), std::chrono::steady_clock::now() - start_);
    }
    return ToGrpcStatus(status);
  }

 private:
  runtime::RpcMetrics* metrics_;
  const char* method_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

NodeGrpcService::NodeGrpcService(RequestHandler* handler, runtime::RpcMetrics* metrics)
    : handler_(handler), metrics_(metrics) {}

grpc::Status NodeGrpcService::Get(grpc::ServerContext*, const quiver::v1::GetRequest* request,
                                  quiver::v1::GetResponse* response) {
  RpcTimer timer(metrics_, "Get");
  return timer.Done(handler_->Get(*request, response));
}

grpc::Status NodeGrpcService::Write(grpc::ServerContext*, const quiver::v1::WriteRequest* request,
                                    quiver::v1::WriteResponse* response) {
  RpcTimer timer(metrics_, "Write");
  return timer.Done(handler_->Write(*request, response));
}

grpc::Status NodeGrpcService::CommitIngest(grpc::ServerContext*,
                                          const quiver::v1::CommitIngestRequest* request,
                                          quiver::v1::CommitIngestResponse* response) {
  RpcTimer timer(metrics_, "CommitIngest");
  return timer.Done(handler_->CommitIngest(*request, response));
}

grpc::Status NodeGrpcService::ScanPartitions(grpc::ServerContext*,
                                            const quiver::v1::ScanPartitionsRequest* request,
                                            quiver::v1::ScanPartitionsResponse* response) {
  RpcTimer timer(metrics_, "ScanPartitions");
  return timer.Done(handler_->ScanPartitions(*request, response));
}

grpc::Status NodeGrpcService::Backup(grpc::ServerContext*, const quiver::v1::BackupRequest* request,
                                    quiver::v1::BackupResponse* response) {
  RpcTimer timer(metrics_, "Backup");
  return timer.Done(handler_->Backup(*request, response));
}

grpc::Status NodeGrpcService::MergeRows(grpc::ServerContext*,
                                       const quiver::v1::MergeRowsRequest* request,
                                       quiver::v1::MergeRowsResponse* response) {
  RpcTimer timer(metrics_, "MergeRows");
  return timer.Done(handler_->MergeRows(*request, response));
}

grpc::Status NodeGrpcService::AdoptMap(grpc::ServerContext*,
                                      const quiver::v1::AdoptMapRequest* request,
                                      quiver::v1::AdoptMapResponse* response) {
  RpcTimer timer(metrics_, "AdoptMap");
  return timer.Done(handler_->HandleAdoptMap(*request, response));
}

grpc::Status NodeGrpcService::Health(grpc::ServerContext*, const quiver::v1::HealthRequest*,
                                     quiver::v1::HealthResponse* response) {
  RpcTimer timer(metrics_, "Health");
  handler_->Health(response);
  return timer.Done(absl::OkStatus());
}

}  // namespace quiver::node
