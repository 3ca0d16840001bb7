// FeatureServer (server.h): Feast's HTTP routes over quiver::Client.
#include "quiver/feature_server/server.h"

#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <thread>

#include "absl/strings/str_cat.h"
#include "quiver.grpc.pb.h"
#include "quiver/client/client.h"
#include "access.h"
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
    const security::ServerTls tls{options.tls_cert, options.tls_key, options.tls_client_ca};
    if (tls.enabled() != !options.tls_key.empty()) {
      return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
    }
    if (!options.tls_client_ca.empty() && !tls.enabled()) {
      return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
    }
    for (const auto& [flag, address] :
         {std::pair<const char*, const std::string&>{"http-listen", options.http_listen},
          {"grpc-listen", options.grpc_listen}, {"metrics-listen", options.metrics_listen}}) {
      if (absl::Status s = security::CheckListenAddress(flag, address, tls, options.insecure); !s.ok()) {
        return absl::InvalidArgumentError(s.message());
      }
    }
    auto channels = security::ChannelFactory::Create(options.cluster);
    if (!channels.ok()) return channels.status();
    client::ClientOptions copts;
    copts.coordinator_address = options.coordinator;
    copts.max_entity_rows = options.max_entity_rows;
    copts.security = options.cluster;
    auto c = client::Client::Create(copts);
    if (!c.ok()) return c.status();
    client_ = *std::move(c);

    metrics_registry_ = std::make_shared<prometheus::Registry>();
    rpc_metrics_ = std::make_unique<runtime::RpcMetrics>(*metrics_registry_, "feature_server");
    prometheus::Counter& denials = prometheus::BuildCounter()
                                       .Name("quiver_feature_server_auth_denials_total")
                                       .Help("Requests refused: no or a bad token, or no permission")
                                       .Register(*metrics_registry_)
                                       .Add({});
    security::ProcessSecurity identities;
    identities.auth_tokens = options.auth_tokens;
    identities.jwt_key = options.jwt_key;
    identities.jwt_algorithm = options.jwt_algorithm;
    auto guard = security::CallGuard::Create(identities, &denials);
    if (!guard.ok()) return guard.status();
    access_ = std::make_unique<Access>(*std::move(guard));
    if (!options.metrics_listen.empty()) {
      auto m = runtime::MetricsServer::Start(options.metrics_listen, metrics_registry_, tls);
      if (!m.ok()) return m.status();
      metrics_ = *std::move(m);
    }

    if (tls.enabled()) {
      auto ssl = std::make_unique<httplib::SSLServer>(
          options.tls_cert.c_str(), options.tls_key.c_str(),
          options.tls_client_ca.empty() ? nullptr : options.tls_client_ca.c_str());
      if (!ssl->is_valid()) {
        return absl::InvalidArgumentError("TLS: the certificate, key or client CA does not load");
      }
      http_ = std::move(ssl);
    } else {
      http_ = std::make_unique<httplib::Server>();
    }
    http_->set_payload_max_length(options.max_body_bytes);
    // Small responses must not wait for Nagle's algorithm and the peer's
    // delayed ACK (measured: 40 ms per call without; bench/feature_server).
    http_->set_tcp_nodelay(true);
    http_->Post("/get-online-features", [this](const httplib::Request& req, httplib::Response& res) {
      GetOnlineFeatures(req, res);
    });
    http_->Post("/write-to-online-store", [this](const httplib::Request& req, httplib::Response& res) {
      Write(req, res, /*push=*/false);
    });
    http_->Post("/push", [this](const httplib::Request& req, httplib::Response& res) {
      Write(req, res, /*push=*/true);
    });
    http_->Post("/materialize", [this](const httplib::Request& req, httplib::Response& res) {
      Materialize(req, res, /*incremental=*/false);
    });
    http_->Post("/materialize-incremental", [this](const httplib::Request& req, httplib::Response& res) {
      Materialize(req, res, /*incremental=*/true);
    });
    coordinator_ = quiver::v1::CoordinatorService::NewStub(channels->Make(options.coordinator));
    http_->Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      // Serving needs a registry and a map; the client keeps both cached,
      // so a coordinator outage does not stop lookups.
      res.status = client_->registry() != nullptr && client_->cluster_map() != nullptr ? 200 : 503;
    });
    auto hp = runtime::SplitHostPort(options.http_listen);
    if (!hp.ok()) return hp.status();
    int port = hp->second;
    if (port == 0) {
      port = http_->bind_to_any_port(hp->first);
      if (port < 0) return absl::UnavailableError(absl::StrCat("cannot bind ", options.http_listen));
    } else if (!http_->bind_to_port(hp->first, port)) {
      return absl::UnavailableError(absl::StrCat("cannot bind ", options.http_listen));
    }
    http_address_ = absl::StrCat(hp->first, ":", port);
    http_thread_ = std::thread([this] { http_->listen_after_bind(); });
    // httplib's stop() is a no-op until the loop runs (Stop right after
    // Start would hang in the join).
    for (int i = 0; i < 5000 && !http_->is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }

    if (!options.grpc_listen.empty()) {
      auto gp = runtime::SplitHostPort(options.grpc_listen);
      if (!gp.ok()) return gp.status();
      serving_ = std::make_unique<ServingServiceImpl>(client_.get(), access_.get(), options.max_entity_rows);
      grpc::ServerBuilder builder;
      int bound = 0;
      auto credentials = security::ServerCredentials(tls);
      if (!credentials.ok()) return absl::InvalidArgumentError(credentials.status().message());
      builder.AddListeningPort(options.grpc_listen, *credentials, &bound);
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
    if (http_ != nullptr) http_->stop();  // null when Init failed early
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
    auto identity = Authenticate(req, reply);
    if (!identity.ok()) return;
    std::shared_ptr<const client::RegistryIndex> registry = client_->registry();
    HttpError error;
    auto parsed = ParseGetOnlineFeatures(req.body, *registry, options_.max_entity_rows, &error);
    if (!parsed.ok()) return reply(error.status, error.body);
    if (!Authorize(*identity, *registry, ReadResources(*registry, parsed->request), reply)) return;
    auto response = client_->GetOnlineFeatures(parsed->request);
    if (!response.ok()) {
      const HttpError e = LookupError(response.status());
      return reply(e.status, e.body);
    }
    reply(200, GetOnlineFeaturesJson(*parsed, *response));
  }

  // POST /write-to-online-store and /push: the frame's rows through the
  // client's quorum writes, view by view. Feast answers 200 with `null`
  // (write) or an empty body (push).
  void Write(const httplib::Request& req, httplib::Response& res, bool push) {
    const auto start = std::chrono::steady_clock::now();
    const char* method = push ? "Push" : "WriteToOnlineStore";
    auto reply = [&](int status, const std::string& body) {
      res.status = status;
      res.set_content(body, kJson);
      rpc_metrics_->Record(method, status == 200, std::chrono::steady_clock::now() - start);
    };
    auto identity = Authenticate(req, reply);
    if (!identity.ok()) return;
    std::shared_ptr<const client::RegistryIndex> registry = client_->registry();
    HttpError error;
    auto parsed = push ? ParsePush(req.body, *registry, &error)
                       : ParseWriteToOnlineStore(req.body, *registry, &error);
    if (!parsed.ok()) return reply(error.status, error.body);
    if (!Authorize(*identity, *registry, WriteResources(*registry, parsed->views), reply)) return;
    for (size_t v = 0; v < parsed->views.size(); ++v) {
      if (absl::Status s = client_->Push(parsed->views[v], parsed->rows[v]); !s.ok()) {
        const HttpError e = LookupError(s);
        return reply(e.status, e.body);
      }
    }
    reply(200, push ? "" : "null");
  }

  // POST /materialize[-incremental]: one coordinator job, waited for (Feast's
  // synchronous mode): 200 `null` when it succeeded, 500 with the job's
  // error when it failed.
  void Materialize(const httplib::Request& req, httplib::Response& res, bool incremental) {
    const auto start = std::chrono::steady_clock::now();
    auto reply = [&](int status, const std::string& body) {
      res.status = status;
      res.set_content(body, kJson);
      rpc_metrics_->Record("Materialize", status == 200, std::chrono::steady_clock::now() - start);
    };
    auto identity = Authenticate(req, reply);
    if (!identity.ok()) return;
    HttpError error;
    auto parsed = ParseMaterialize(req.body, incremental, &error);
    if (!parsed.ok()) return reply(error.status, error.body);
    {
      std::shared_ptr<const client::RegistryIndex> registry = client_->registry();
      std::vector<std::string> views = parsed->views;
      if (views.empty()) {
        for (const auto& v : registry->registry().feature_views()) {
          if (v.online()) views.push_back(v.name());
        }
      }
      if (!Authorize(*identity, *registry, WriteResources(*registry, views), reply)) return;
    }
    quiver::v1::MaterializeRequest request;
    request.set_start_us(parsed->start_us);
    request.set_end_us(parsed->end_us);
    request.set_incremental(incremental);
    for (const std::string& v : parsed->views) request.add_views(v);
    quiver::v1::Job job;
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      grpc::Status s = coordinator_->StartMaterialization(&ctx, request, &job);
      if (!s.ok()) {
        const HttpError e = LookupError(absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message()));
        return reply(e.status, e.body);
      }
    }
    int failures = 0;
    while (job.state() != quiver::v1::JOB_SUCCEEDED && job.state() != quiver::v1::JOB_FAILED) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      quiver::v1::GetJobRequest get;
      get.set_job_id(job.id());
      quiver::v1::Job next;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      grpc::Status s = coordinator_->GetJob(&ctx, get, &next);
      if (s.ok()) {
        job = std::move(next);
        failures = 0;
      } else if (++failures > 100) {  // 10 s of a coordinator that does not answer
        return reply(503, FeastErrorBody("FeastError", absl::StrCat("materialization job ", job.id(),
                                                                    ": coordinator unreachable: ", s.error_message())));
      }
    }
    if (job.state() == quiver::v1::JOB_FAILED) {
      return reply(500, FeastErrorBody("FeastError", absl::StrCat("materialization job ", job.id(), " failed: ", job.error())));
    }
    reply(200, "null");
  }

  // The caller, or the 401 already sent through `reply`.
  template <typename Reply>
  absl::StatusOr<std::optional<auth::Identity>> Authenticate(const httplib::Request& req, Reply& reply) {
    Denial denial;
    auto identity = access_->Authenticate(req.get_header_value("Authorization"), &denial);
    if (!identity.ok()) reply(401, DetailBody(denial.message));
    return identity;
  }
  // Whether `identity` may do all of `wanted`; else the 403 is sent.
  template <typename Reply>
  bool Authorize(const std::optional<auth::Identity>& identity, const client::RegistryIndex& registry,
                 const std::vector<std::pair<auth::Resource, quiver::v1::AuthzAction>>& wanted,
                 Reply& reply) {
    if (auto denial = access_->Authorize(identity, registry, wanted)) {
      reply(403, FeastErrorBody("FeastPermissionError", denial->message));
      return false;
    }
    return true;
  }

  ServerOptions options_;
  std::unique_ptr<Access> access_;
  std::unique_ptr<quiver::v1::CoordinatorService::Stub> coordinator_;
  std::unique_ptr<client::Client> client_;
  std::shared_ptr<prometheus::Registry> metrics_registry_;
  std::unique_ptr<runtime::RpcMetrics> rpc_metrics_;
  std::unique_ptr<runtime::MetricsServer> metrics_;
  std::unique_ptr<httplib::Server> http_;  // an SSLServer with TLS
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
