// PeerStubs: NodeService stubs of the node's peers, for repair and streams.
// Private to node/. Thread-safe.
#ifndef QUIVER_NODE_SRC_PEER_STUBS_H_
#define QUIVER_NODE_SRC_PEER_STUBS_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "quiver.grpc.pb.h"
#include "quiver/security/security.h"
#include "quiver/node/grpc_service.h"

namespace quiver::node {

// One channel per peer address, created on first use; pages of
// ScanPartitions with a 30 s deadline. Errors: the peer's or the transport's.
class PeerStubs {
 public:
  // `channels` (TLS, token) must outlive the stubs.
  PeerStubs(size_t max_message_bytes, const security::ChannelFactory* channels)
      : max_message_bytes_(max_message_bytes), channels_(channels) {}

  absl::StatusOr<quiver::v1::ScanPartitionsResponse> ScanPartitions(
      const std::string& address, const quiver::v1::ScanPartitionsRequest& request) {
    quiver::v1::NodeService::Stub* stub = Stub(address);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    quiver::v1::ScanPartitionsResponse response;
    absl::Status s = FromGrpcStatus(stub->ScanPartitions(&ctx, request, &response));
    if (!s.ok()) return s;
    return response;
  }

 private:
  quiver::v1::NodeService::Stub* Stub(const std::string& address) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& stub = stubs_[address];
    if (stub == nullptr) {
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(static_cast<int>(max_message_bytes_));
      stub = quiver::v1::NodeService::NewStub(channels_->Make(address, args));
    }
    return stub.get();
  }

  const size_t max_message_bytes_;
  const security::ChannelFactory* channels_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<quiver::v1::NodeService::Stub>> stubs_;
};

}  // namespace quiver::node

#endif  // QUIVER_NODE_SRC_PEER_STUBS_H_
