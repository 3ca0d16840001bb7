// feast.serving.ServingService (proto/feast/serving/ServingService.proto)
// over quiver::Client: Feast's Go and Java clients read from Quiver.
//
// GetOnlineFeatures: columnar `entities` (join keys, and on-demand request
// fields Python-style) and `request_context`; `features` or
// `feature_service`; `full_feature_names`. The response is columnar: the
// request's join keys first (sorted by name: a proto map has no order;
// status PRESENT, timestamp 0), then one vector per feature in request
// order; FieldStatus and event timestamps per value; a missing or null
// value is an unset feast.types.Value.
// Errors: INVALID_ARGUMENT (a value of another type than declared, columns
// of different lengths, no rows, too many rows, neither features nor a
// service), NOT_FOUND (unknown view, feature or service), UNAVAILABLE /
// DEADLINE_EXCEEDED (retryable: no replica answered in time).
//
// Thread-safety: handlers run concurrently on gRPC's threads.
#ifndef QUIVER_FEATURE_SERVER_GRPC_SERVICE_H_
#define QUIVER_FEATURE_SERVER_GRPC_SERVICE_H_

#include "access.h"
#include "feast/serving/ServingService.grpc.pb.h"
#include "quiver/client/client.h"

namespace quiver::feature_server {

class ServingServiceImpl final : public feast::serving::ServingService::Service {
 public:
  // `access` checks the `authorization` metadata (Bearer token) and Feast's
  // permissions: UNAUTHENTICATED / PERMISSION_DENIED.
  ServingServiceImpl(client::Client* client, Access* access, size_t max_entity_rows)
      : client_(client), access_(access), max_entity_rows_(max_entity_rows) {}

  grpc::Status GetFeastServingInfo(grpc::ServerContext* ctx,
                                   const feast::serving::GetFeastServingInfoRequest* req,
                                   feast::serving::GetFeastServingInfoResponse* resp) override;
  grpc::Status GetOnlineFeatures(grpc::ServerContext* ctx,
                                 const feast::serving::GetOnlineFeaturesRequest* req,
                                 feast::serving::GetOnlineFeaturesResponse* resp) override;

 private:
  client::Client* client_;
  Access* access_;
  size_t max_entity_rows_;
};

}  // namespace quiver::feature_server

#endif  // QUIVER_FEATURE_SERVER_GRPC_SERVICE_H_
