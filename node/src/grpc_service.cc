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

NodeGrpcService::NodeGrpcService(RequestHandler* handler, runtime::RpcMetrics* metrics,
                                 security::CallGuard* guard, const ClusterView* cluster)
    : handler_(handler),
      metrics_(metrics),
      guard_(guard != nullptr && guard->enabled() ? guard : nullptr),
      cluster_(cluster) {}

grpc::Status NodeGrpcService::Allow(const grpc::ServerContext& context,
                                    const std::vector<std::string>& views,
                                    quiver::v1::AuthzAction action) const {
  if (guard_ == nullptr) return grpc::Status::OK;
  std::shared_ptr<const client::RegistryIndex> registry = cluster_->registry();
  static const quiver::v1::Registry kNone;
  const quiver::v1::Registry& r = registry != nullptr ? registry->registry() : kNone;
  security::Wanted wanted;
  for (const std::string& view : views) {
    bool seen = false;
    for (const auto& w : wanted) seen = seen || w.first.name == view;
    if (!seen) wanted.emplace_back(auth::FeatureViewResource(r, view), action);
  }
  return guard_->Check(context, &r, wanted);
}

grpc::Status NodeGrpcService::AllowOperator(const grpc::ServerContext& context) const {
  if (guard_ == nullptr) return grpc::Status::OK;
  std::shared_ptr<const client::RegistryIndex> registry = cluster_->registry();
  static const quiver::v1::Registry kNone;
  const quiver::v1::Registry& r = registry != nullptr ? registry->registry() : kNone;
  return guard_->Check(context, &r, {{auth::ProjectResource(r), quiver::v1::ACTION_UPDATE}});
}

grpc::Status NodeGrpcService::Get(grpc::ServerContext* context, const quiver::v1::GetRequest* request,
                                  quiver::v1::GetResponse* response) {
  RpcTimer timer(metrics_, "Get");
  if (guard_ != nullptr) {
    std::vector<std::string> views;
    for (const auto& lookup : request->lookups()) views.push_back(lookup.view());
    if (grpc::Status s = Allow(*context, views, quiver::v1::ACTION_READ_ONLINE); !s.ok()) {
      return timer.Done(FromGrpcStatus(s));
    }
  }
  return timer.Done(handler_->Get(*request, response));
}

grpc::Status NodeGrpcService::Write(grpc::ServerContext* context, const quiver::v1::WriteRequest* request,
                                    quiver::v1::WriteResponse* response) {
  RpcTimer timer(metrics_, "Write");
  if (grpc::Status s = Allow(*context, {request->view()}, quiver::v1::ACTION_WRITE_ONLINE); !s.ok()) {
    return timer.Done(FromGrpcStatus(s));
  }
  return timer.Done(handler_->Write(*request, response));
}

grpc::Status NodeGrpcService::CommitIngest(grpc::ServerContext* context,
                                          const quiver::v1::CommitIngestRequest* request,
                                          quiver::v1::CommitIngestResponse* response) {
  RpcTimer timer(metrics_, "CommitIngest");
  if (grpc::Status s = AllowOperator(*context); !s.ok()) return timer.Done(FromGrpcStatus(s));
  return timer.Done(handler_->CommitIngest(*request, response));
}

grpc::Status NodeGrpcService::ScanPartitions(grpc::ServerContext* context,
                                            const quiver::v1::ScanPartitionsRequest* request,
                                            quiver::v1::ScanPartitionsResponse* response) {
  RpcTimer timer(metrics_, "ScanPartitions");
  if (grpc::Status s = AllowOperator(*context); !s.ok()) return timer.Done(FromGrpcStatus(s));
  return timer.Done(handler_->ScanPartitions(*request, response));
}

grpc::Status NodeGrpcService::Backup(grpc::ServerContext* context, const quiver::v1::BackupRequest* request,
                                    quiver::v1::BackupResponse* response) {
  RpcTimer timer(metrics_, "Backup");
  if (grpc::Status s = AllowOperator(*context); !s.ok()) return timer.Done(FromGrpcStatus(s));
  return timer.Done(handler_->Backup(*request, response));
}

grpc::Status NodeGrpcService::MergeRows(grpc::ServerContext* context,
                                       const quiver::v1::MergeRowsRequest* request,
                                       quiver::v1::MergeRowsResponse* response) {
  RpcTimer timer(metrics_, "MergeRows");
  if (grpc::Status s = AllowOperator(*context); !s.ok()) return timer.Done(FromGrpcStatus(s));
  return timer.Done(handler_->MergeRows(*request, response));
}

grpc::Status NodeGrpcService::AdoptMap(grpc::ServerContext* context,
                                      const quiver::v1::AdoptMapRequest* request,
                                      quiver::v1::AdoptMapResponse* response) {
  RpcTimer timer(metrics_, "AdoptMap");
  if (guard_ != nullptr) {
    if (grpc::Status s = guard_->CheckCluster(*context, "AdoptMap"); !s.ok()) {
      return timer.Done(FromGrpcStatus(s));
    }
  }
  return timer.Done(handler_->HandleAdoptMap(*request, response));
}

grpc::Status NodeGrpcService::Health(grpc::ServerContext*, const quiver::v1::HealthRequest*,
                                     quiver::v1::HealthResponse* response) {
  RpcTimer timer(metrics_, "Health");
  handler_->Health(response);
  return timer.Done(absl::OkStatus());
}

}  // namespace quiver::node
