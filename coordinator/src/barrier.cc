#include "barrier.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "quiver.grpc.pb.h"

namespace quiver::coordinator {

BarrierFn MakeGrpcBarrier(uint32_t drain_timeout_ms, int max_message_bytes,
                          security::ChannelFactory channels) {
  struct Stubs {
    security::ChannelFactory channels;
    std::mutex mu;
    std::map<std::string, std::shared_ptr<quiver::v1::NodeService::Stub>> by_address;
    std::shared_ptr<quiver::v1::NodeService::Stub> For(const std::string& address, int max_bytes) {
      std::lock_guard<std::mutex> lock(mu);
      auto& stub = by_address[address];
      if (stub == nullptr) {
        grpc::ChannelArguments args;
        args.SetMaxSendMessageSize(max_bytes);
        args.SetMaxReceiveMessageSize(max_bytes);
        args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
        args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
        stub = quiver::v1::NodeService::NewStub(channels.Make(address, args));
      }
      return stub;
    }
  };
  auto stubs = std::make_shared<Stubs>();
  stubs->channels = std::move(channels);
  return [stubs, drain_timeout_ms, max_message_bytes](
             const quiver::v1::ClusterMap& map, const std::vector<quiver::v1::NodeInfo>& nodes) {
    quiver::v1::AdoptMapRequest request;
    *request.mutable_map() = map;
    request.set_drain_timeout_ms(drain_timeout_ms);
    std::vector<char> ok(nodes.size(), 0);
    std::vector<std::thread> calls;
    calls.reserve(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
      calls.emplace_back([&, i] {
        auto stub = stubs->For(nodes[i].address(), max_message_bytes);
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(drain_timeout_ms) + std::chrono::seconds(5));
        quiver::v1::AdoptMapResponse response;
        const grpc::Status s = stub->AdoptMap(&ctx, request, &response);
        if (!s.ok()) {
          spdlog::warn("barrier at epoch {}: node {} ({}): {}", map.epoch(), nodes[i].id(),
                       nodes[i].address(), s.error_message());
          return;
        }
        if (response.sessions_fenced() > 0) {
          spdlog::warn("barrier at epoch {}: node {} fenced {} stale ingest sessions (their "
                       "tasks are retried under the new map)",
                       map.epoch(), nodes[i].id(), response.sessions_fenced());
        }
        ok[i] = response.epoch() >= map.epoch();
      });
    }
    for (auto& t : calls) t.join();
    for (char c : ok) {
      if (!c) return false;
    }
    spdlog::debug("barrier at epoch {}: {} nodes", map.epoch(), nodes.size());
    return true;
  };
}

}  // namespace quiver::coordinator
