// FeatureServer (server.h): Feast's HTTP routes over quiver::Client.
#include "quiver/feature_server/server.h"

#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "quiver/client/client.h"
#include "grpc_service.h"
#include "quiver/feature_server/feast_json.h"
#include "quiver/runtime/runtime.h"

namespace quiver::feature_server {
namespace {

constexpr char kJson[] = "application/json";

class Impl : public FeatureServer {
 public:
  ~Impl() override { Stop(); }

  absl::Status Init(const ServerOptions& options) {
    options_ = options;
    client::ClientOptions copts;
    copts.coordinator_address = options.coordinator;
    copts.max_entity_rows = options.max_entity_rows;
    auto c = client::Client::Create(copts);
    if (!c.ok()) return c.status();
    client_ = *std::move(c);

    metrics_registry_ = std::make_shared<prometheus::Registry>();
    rpc_metrics_ = std::make_unique<runtime::RpcMetrics>(*metrics_registry_, "feature_server");
    if (!options.metrics_listen.empty()) {
      auto m = runtime::MetricsServer::Start(options.metrics_listen, metrics_registry_);
      if (!m.ok()) return m.status();
      metrics_ = *std::move(m);
    }

    http_.set_payload_max_length(options.max_body_bytes);
    http_.Post("/get-online-features", [this](const httplib::Request& req, httplib::Response& res) {
      GetOnlineFeatures(req, res);
    });
    http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      // Serving needs a registry and a map; the client keeps both cached,
      // so a coordinator outage does not stop lookups.
      res.status = client_->registry() != nullptr && client_->cluster_map() != nullptr ? 200 : 503;
    });
    auto hp = runtime::SplitHostPort(options.http_listen);
    if (!hp.ok()) return hp.status();
    int port = hp->second;
    if (port == 0) {
      port = http_.bind_to_any_port(hp->first);
      if (port < 0) return absl::UnavailableError(absl::StrCat("cannot bind ", options.http_listen));
    } else if (!http_.bind_to_port(hp->first, port)) {
      return absl::UnavailableError(absl::StrCat("cannot bind ", options.http_listen));
    }
    http_address_ = absl::StrCat(hp->first, ":", port);
    http_thread_ = std::thread([this] { http_.listen_after_bind(); });

    if (!options.grpc_listen.empty()) {
      auto gp = runtime::SplitHostPort(options.grpc_listen);
      if (!gp.ok()) return gp.status();
      serving_ = std::make_unique<ServingServiceImpl>(client_.get(), options.max_entity_rows);
      grpc::ServerBuilder builder;
      int bound = 0;
      builder.AddListeningPort(options.grpc_listen, grpc::InsecureServerCredentials(), &bound);
      builder.RegisterService(serving_.get());
      builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_body_bytes));
      grpc_ = builder.BuildAndStart();
      if (grpc_ == nullptr || bound == 0) {
        return absl::UnavailableError(absl::StrCat("cannot bind ", options.grpc_listen));
      }
      grpc_address_ = absl::StrCat(gp->first, ":", bound);
    }
    return absl::OkStatus();
  }

  std::string http_address() const override { return http_address_; }
  std::string grpc_address() const override { return grpc_address_; }
  std::string metrics_address() const override { return metrics_ ? metrics_->address() : ""; }

  void Stop() override {
    if (grpc_ != nullptr) {
      grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
      grpc_.reset();
    }
    http_.stop();
    if (http_thread_.joinable()) http_thread_.join();
  }

 private:
  void GetOnlineFeatures(const httplib::Request& req, httplib::Response& res) {
    const auto start = std::chrono::steady_clock::now();
    auto reply = [&](int status, const std::string& body) {
      res.status = status;
      res.set_content(body, kJson);
      rpc_metrics_->Record("GetOnlineFeatures", status == 200, std::chrono::steady_clock::now() - start);
    };
    std::shared_ptr<const client::RegistryIndex> registry = client_->registry();
    HttpError error;
    auto parsed = ParseGetOnlineFeatures(req.body, *registry, options_.max_entity_rows, &error);
    if (!parsed.ok()) return reply(error.status, error.body);
    auto response = client_->GetOnlineFeatures(parsed->request);
    if (!response.ok()) {
      const HttpError e = LookupError(response.status());
      return reply(e.status, e.body);
    }
    reply(200, GetOnlineFeaturesJson(*parsed, *response));
  }

  ServerOptions options_;
  std::unique_ptr<client::Client> client_;
  std::shared_ptr<prometheus::Registry> metrics_registry_;
  std::unique_ptr<runtime::RpcMetrics> rpc_metrics_;
  std::unique_ptr<runtime::MetricsServer> metrics_;
  httplib::Server http_;
  std::string http_address_;
  std::thread http_thread_;
  std::unique_ptr<ServingServiceImpl> serving_;
  std::unique_ptr<grpc::Server> grpc_;
  std::string grpc_address_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<FeatureServer>> FeatureServer::Start(const ServerOptions& options) {
  auto server = std::make_unique<Impl>();
  if (absl::Status s = server->Init(options); !s.ok()) return s;
  return std::unique_ptr<FeatureServer>(std::move(server));
}

}  // namespace quiver::feature_server
