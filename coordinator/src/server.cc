#include "quiver/coordinator/server.h"

#include <grpcpp/grpcpp.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "quiver.grpc.pb.h"
#include "barrier.h"
#include "quiver/runtime/runtime.h"

namespace quiver::coordinator {
namespace {

// The one place where absl::Status becomes grpc::Status (codes share numbers).
grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(static_cast<int>(s.code())),
                      std::string(s.message()));
}

class Gauges {
 public:
  explicit Gauges(prometheus::Registry& registry)
      : family_(prometheus::BuildGauge()
                    .Name("quiver_coordinator")
                    .Help("Coordinator state, by quantity")
                    .Register(registry)),
        nodes_up_(family_.Add({{"quantity", "nodes_up"}})),
        nodes_down_(family_.Add({{"quantity", "nodes_down"}})),
        epoch_(family_.Add({{"quantity", "map_epoch"}})),
        registry_version_(family_.Add({{"quantity", "registry_version"}})),
        jobs_running_(family_.Add({{"quantity", "jobs_running"}})),
        tasks_pending_(family_.Add({{"quantity", "tasks_pending"}})),
        moves_active_(family_.Add({{"quantity", "moves_active"}})),
        moves_pending_(family_.Add({{"quantity", "moves_pending"}})),
        under_replicated_(family_.Add({{"quantity", "partitions_under_replicated"}})),
        rows_streamed_(family_.Add({{"quantity", "rebalance_rows_streamed"}})),
        bytes_streamed_(family_.Add({{"quantity", "rebalance_bytes_streamed"}})) {}

  void Update(const CoordinatorStats& s) {
    nodes_up_.Set(static_cast<double>(s.nodes_up));
    nodes_down_.Set(static_cast<double>(s.nodes_down));
    epoch_.Set(static_cast<double>(s.epoch));
    registry_version_.Set(static_cast<double>(s.registry_version));
    jobs_running_.Set(static_cast<double>(s.jobs_running));
    tasks_pending_.Set(static_cast<double>(s.tasks_pending));
    moves_active_.Set(static_cast<double>(s.moves_active));
    moves_pending_.Set(static_cast<double>(s.moves_pending));
    under_replicated_.Set(static_cast<double>(s.under_replicated));
    rows_streamed_.Set(static_cast<double>(s.rows_streamed));
    bytes_streamed_.Set(static_cast<double>(s.bytes_streamed));
  }

 private:
  prometheus::Family<prometheus::Gauge>& family_;
  prometheus::Gauge& nodes_up_;
  prometheus::Gauge& nodes_down_;
  prometheus::Gauge& epoch_;
  prometheus::Gauge& registry_version_;
  prometheus::Gauge& jobs_running_;
  prometheus::Gauge& tasks_pending_;
  prometheus::Gauge& moves_active_;
  prometheus::Gauge& moves_pending_;
  prometheus::Gauge& under_replicated_;
  prometheus::Gauge& rows_streamed_;
  prometheus::Gauge& bytes_streamed_;
};

class Service final : public quiver::v1::CoordinatorService::Service {
 public:
  // `guard` may be null (no authentication).
  Service(Coordinator& coordinator, prometheus::Registry& registry, security::CallGuard* guard)
      : coordinator_(coordinator),
        metrics_(registry, "CoordinatorService"),
        gauges_(registry),
        guard_(guard != nullptr && guard->enabled() ? guard : nullptr) {
    gauges_.Update(coordinator_.Stats());
  }

  void UpdateGauges() { gauges_.Update(coordinator_.Stats()); }

  grpc::Status Register(grpc::ServerContext* context, const quiver::v1::RegisterRequest* req,
                        quiver::v1::RegisterResponse* resp) override {
    if (grpc::Status a = Cluster(*context, "Register"); !a.ok()) return Refused("Register", a);
    return Run("Register", resp, [&] { return coordinator_.Register(*req); });
  }
  grpc::Status Heartbeat(grpc::ServerContext* context, const quiver::v1::HeartbeatRequest* req,
                         quiver::v1::HeartbeatResponse* resp) override {
    if (grpc::Status a = Cluster(*context, "Heartbeat"); !a.ok()) return Refused("Heartbeat", a);
    return Run("Heartbeat", resp, [&] { return coordinator_.Heartbeat(*req); });
  }
  grpc::Status GetClusterMap(grpc::ServerContext* context, const quiver::v1::GetClusterMapRequest*,
                             quiver::v1::ClusterMap* resp) override {
    if (grpc::Status a = Allow(*context, {}); !a.ok()) return Refused("GetClusterMap", a);
    return Run("GetClusterMap", resp, [&] {
      return absl::StatusOr<quiver::v1::ClusterMap>(coordinator_.GetClusterMap());
    });
  }
  grpc::Status ApplyRegistry(grpc::ServerContext* context, const quiver::v1::ApplyRegistryRequest* req,
                             quiver::v1::ApplyRegistryResponse* resp) override {
    if (grpc::Status a = AllowProject(*context, quiver::v1::ACTION_UPDATE); !a.ok()) return Refused("ApplyRegistry", a);
    return Run("ApplyRegistry", resp, [&] { return coordinator_.ApplyRegistry(*req); });
  }
  grpc::Status GetRegistry(grpc::ServerContext* context, const quiver::v1::GetRegistryRequest*,
                           quiver::v1::Registry* resp) override {
    if (grpc::Status a = Allow(*context, {}); !a.ok()) return Refused("GetRegistry", a);
    return Run("GetRegistry", resp, [&] {
      return absl::StatusOr<quiver::v1::Registry>(coordinator_.GetRegistry());
    });
  }
  grpc::Status StartMaterialization(grpc::ServerContext* context, const quiver::v1::MaterializeRequest* req,
                                    quiver::v1::Job* resp) override {
    if (grpc::Status a = AllowMaterialize(*context, *req); !a.ok()) return Refused("StartMaterialization", a);
    return Run("StartMaterialization", resp,
               [&] { return coordinator_.StartMaterialization(*req); });
  }
  grpc::Status GetJob(grpc::ServerContext* context, const quiver::v1::GetJobRequest* req,
                      quiver::v1::Job* resp) override {
    if (grpc::Status a = Allow(*context, {}); !a.ok()) return Refused("GetJob", a);
    return Run("GetJob", resp, [&] { return coordinator_.GetJob(req->job_id()); });
  }
  grpc::Status LeaseTask(grpc::ServerContext* context, const quiver::v1::LeaseTaskRequest* req,
                         quiver::v1::LeaseTaskResponse* resp) override {
    if (grpc::Status a = Cluster(*context, "LeaseTask"); !a.ok()) return Refused("LeaseTask", a);
    return Run("LeaseTask", resp, [&] { return coordinator_.LeaseTask(*req); });
  }
  grpc::Status CompleteTask(grpc::ServerContext* context, const quiver::v1::CompleteTaskRequest* req,
                            quiver::v1::CompleteTaskResponse* resp) override {
    if (grpc::Status a = Cluster(*context, "CompleteTask"); !a.ok()) return Refused("CompleteTask", a);
    return Run("CompleteTask", resp, [&] {
      absl::Status s = coordinator_.CompleteTask(*req);
      if (!s.ok()) return absl::StatusOr<quiver::v1::CompleteTaskResponse>(s);
      return absl::StatusOr<quiver::v1::CompleteTaskResponse>(quiver::v1::CompleteTaskResponse());
    });
  }
  grpc::Status ListNodes(grpc::ServerContext* context, const quiver::v1::ListNodesRequest*,
                         quiver::v1::ListNodesResponse* resp) override {
    if (grpc::Status a = Allow(*context, {}); !a.ok()) return Refused("ListNodes", a);
    return Run("ListNodes", resp, [&] {
      return absl::StatusOr<quiver::v1::ListNodesResponse>(coordinator_.ListNodes());
    });
  }
  grpc::Status GetIntervals(grpc::ServerContext* context, const quiver::v1::GetIntervalsRequest*,
                            quiver::v1::GetIntervalsResponse* resp) override {
    if (grpc::Status a = Allow(*context, {}); !a.ok()) return Refused("GetIntervals", a);
    return Run("GetIntervals", resp, [&] {
      return absl::StatusOr<quiver::v1::GetIntervalsResponse>(coordinator_.GetIntervals());
    });
  }
  grpc::Status ReportMissedWrites(grpc::ServerContext* context,
                                  const quiver::v1::ReportMissedWritesRequest* req,
                                  quiver::v1::ReportMissedWritesResponse* resp) override {
    if (grpc::Status a = Allow(*context, {}); !a.ok()) return Refused("ReportMissedWrites", a);
    return Run("ReportMissedWrites", resp, [&] { return coordinator_.ReportMissedWrites(*req); });
  }
  grpc::Status Rebalance(grpc::ServerContext* context, const quiver::v1::RebalanceRequest*,
                         quiver::v1::RebalanceResponse* resp) override {
    if (grpc::Status a = AllowProject(*context, quiver::v1::ACTION_UPDATE); !a.ok()) return Refused("Rebalance", a);
    return Run("Rebalance", resp, [&] { return coordinator_.Rebalance(); });
  }
  grpc::Status DrainNode(grpc::ServerContext* context, const quiver::v1::DrainNodeRequest* req,
                         quiver::v1::DrainNodeResponse* resp) override {
    if (grpc::Status a = AllowProject(*context, quiver::v1::ACTION_UPDATE); !a.ok()) return Refused("DrainNode", a);
    return Run("DrainNode", resp, [&] { return coordinator_.DrainNode(*req); });
  }
  grpc::Status RemoveNode(grpc::ServerContext* context, const quiver::v1::RemoveNodeRequest* req,
                          quiver::v1::RemoveNodeResponse* resp) override {
    if (grpc::Status a = AllowProject(*context, quiver::v1::ACTION_DELETE); !a.ok()) return Refused("RemoveNode", a);
    return Run("RemoveNode", resp, [&] { return coordinator_.RemoveNode(*req); });
  }
  grpc::Status Restore(grpc::ServerContext* context, const quiver::v1::RestoreRequest* req,
                       quiver::v1::RestoreResponse* resp) override {
    if (grpc::Status a = AllowProject(*context, quiver::v1::ACTION_UPDATE); !a.ok()) return Refused("Restore", a);
    return Run("Restore", resp, [&] { return coordinator_.Restore(*req); });
  }

 private:
  // Authentication alone (empty `wanted`) or with permissions against the
  // current registry.
  grpc::Status Allow(const grpc::ServerContext& context, const security::Wanted& wanted) {
    if (guard_ == nullptr) return grpc::Status::OK;
    if (wanted.empty()) return guard_->Check(context, nullptr, {});
    const quiver::v1::Registry registry = coordinator_.GetRegistry();
    return guard_->Check(context, &registry, wanted);
  }
  grpc::Status AllowProject(const grpc::ServerContext& context, quiver::v1::AuthzAction action) {
    if (guard_ == nullptr) return grpc::Status::OK;
    const quiver::v1::Registry registry = coordinator_.GetRegistry();
    return guard_->Check(context, &registry, {{auth::ProjectResource(registry), action}});
  }
  // WRITE_ONLINE on each view the request names, or on every view when none.
  grpc::Status AllowMaterialize(const grpc::ServerContext& context,
                                const quiver::v1::MaterializeRequest& request) {
    if (guard_ == nullptr) return grpc::Status::OK;
    const quiver::v1::Registry registry = coordinator_.GetRegistry();
    security::Wanted wanted;
    if (request.views().empty()) {
      for (const auto& view : registry.feature_views()) {
        wanted.emplace_back(auth::FeatureViewResource(registry, view.name()), quiver::v1::ACTION_WRITE_ONLINE);
      }
    } else {
      for (const std::string& view : request.views()) {
        wanted.emplace_back(auth::FeatureViewResource(registry, view), quiver::v1::ACTION_WRITE_ONLINE);
      }
    }
    return guard_->Check(context, &registry, wanted);
  }
  grpc::Status Cluster(const grpc::ServerContext& context, const char* method) {
    if (guard_ == nullptr) return grpc::Status::OK;
    return guard_->CheckCluster(context, method);
  }
  grpc::Status Refused(const char* method, const grpc::Status& status) {
    metrics_.Record(method, false, std::chrono::nanoseconds(0));
    return status;
  }

  // Runs one RPC: records its metrics, refreshes the gauges and converts the
  // outcome.
  template <typename Resp, typename Fn>
  grpc::Status Run(const char* method, Resp* resp, Fn&& fn) {
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<Resp> result = fn();
    if (result.ok()) {
      *resp = std::move(*result);
    } else if (result.status().code() != absl::StatusCode::kNotFound) {
      spdlog::warn("{} failed: {}", method, result.status().ToString());
    }
    metrics_.Record(method, result.ok(), std::chrono::steady_clock::now() - start);
    UpdateGauges();
    return ToGrpc(result.status());
  }

  Coordinator& coordinator_;
  runtime::RpcMetrics metrics_;
  Gauges gauges_;
  security::CallGuard* guard_;
};

}  // namespace

class CoordinatorServer::Impl {
 public:
  std::unique_ptr<Coordinator> coordinator;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<security::CallGuard> guard;
  std::unique_ptr<Service> service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<runtime::MetricsServer> metrics;
  std::string address;
  std::thread ticker;
  std::thread driver;  // rebalancing and recovery barriers (Coordinator::DriveOnce)
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  bool stopped = false;

  void Tick(std::chrono::milliseconds period) {
    std::unique_lock<std::mutex> lock(mu);
    while (!stopping) {
      cv.wait_for(lock, period, [this] { return stopping; });
      if (stopping) break;
      lock.unlock();
      if (absl::Status s = coordinator->Tick(); !s.ok()) {
        spdlog::error("tick failed: {}", s.ToString());
      }
      service->UpdateGauges();
      lock.lock();
    }
  }

  void Drive(std::chrono::milliseconds period, const BarrierFn& barrier) {
    std::unique_lock<std::mutex> lock(mu);
    while (!stopping) {
      cv.wait_for(lock, period, [this] { return stopping; });
      if (stopping) break;
      lock.unlock();
      if (absl::Status s = coordinator->DriveOnce(barrier); !s.ok()) {
        spdlog::error("rebalance step failed (retried): {}", s.ToString());
      }
      lock.lock();
    }
  }

  void Shutdown() {
    if (stopped) return;
    stopped = true;
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
    }
    cv.notify_all();
    if (ticker.joinable()) ticker.join();
    if (driver.joinable()) driver.join();
    if (server) server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    metrics.reset();
  }
};

CoordinatorServer::CoordinatorServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

void CoordinatorServer::Shutdown() { impl_->Shutdown(); }

const std::string& CoordinatorServer::address() const { return impl_->address; }
const std::string& CoordinatorServer::metrics_address() const { return impl_->metrics->address(); }
Coordinator& CoordinatorServer::coordinator() { return *impl_->coordinator; }

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(ServerOptions options) {
  auto host_port = runtime::SplitHostPort(options.listen);
  if (!host_port.ok()) return host_port.status();
  const int64_t tick_ms =
      std::clamp<int64_t>(options.coordinator.heartbeat_timeout_us / 4000, 10, 250);
  auto impl = std::make_unique<Impl>();
  const uint32_t drain_ms = options.coordinator.barrier_drain_ms;
  auto coordinator = Coordinator::Open(std::move(options.coordinator));
  if (!coordinator.ok()) return coordinator.status();
  impl->coordinator = std::move(*coordinator);
  auto guard = security::CallGuard::Create(
      options.security,
      &prometheus::BuildCounter()
           .Name("quiver_auth_denials_total")
           .Help("Calls refused: no or an unknown token, or no permission")
           .Register(*impl->registry)
           .Add({{"process", "coordinator"}}));
  if (!guard.ok()) return guard.status();
  impl->guard = *std::move(guard);
  auto channels = security::ChannelFactory::Create(options.security.client);
  if (!channels.ok()) return channels.status();
  auto credentials = security::ServerCredentials(options.security.server);
  if (!credentials.ok()) return credentials.status();
  impl->service = std::make_unique<Service>(*impl->coordinator, *impl->registry, impl->guard.get());

  auto metrics =
      runtime::MetricsServer::Start(options.metrics_listen, impl->registry, options.security.server);
  if (!metrics.ok()) return metrics.status();
  impl->metrics = std::move(*metrics);

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen, *credentials, &port);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  // Two coordinators must not share a port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(impl->service.get());
  impl->server = builder.BuildAndStart();
  if (!impl->server || port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  impl->address = absl::StrCat(host_port->first, ":", port);
  Impl* raw = impl.get();
  impl->ticker = std::thread([raw, tick_ms] { raw->Tick(std::chrono::milliseconds(tick_ms)); });
  BarrierFn barrier = MakeGrpcBarrier(drain_ms, options.max_message_bytes, *std::move(channels));
  impl->driver = std::thread([raw, barrier] { raw->Drive(std::chrono::milliseconds(100), barrier); });
  return std::unique_ptr<CoordinatorServer>(new CoordinatorServer(std::move(impl)));
}

}  // namespace quiver::coordinator
