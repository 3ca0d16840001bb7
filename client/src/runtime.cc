#include "quiver/runtime/runtime.h"

#include <prometheus/counter.h>
#include <httplib.h>
#include <prometheus/text_serializer.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace quiver::runtime {

absl::StatusOr<Flags> Flags::Parse(int argc, char** argv, int first,
                                   const std::set<std::string>& known,
                                   const std::set<std::string>& switches) {
  Flags flags;
  std::map<std::string, std::string> cli;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      flags.positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2), value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (switches.count(name)) {
      value = "true";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
    }
    if (name != "config" && !known.count(name) && !switches.count(name)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    cli[name] = value;
  }
  if (auto it = cli.find("config"); it != cli.end()) {
    const std::string& path = it->second;
    if (!std::filesystem::exists(path)) {
      return absl::NotFoundError(absl::StrCat("config file ", path, " not found"));
    }
    try {
      YAML::Node root = YAML::LoadFile(path);
      if (!root.IsMap()) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": config must be a YAML mapping"));
      }
      for (const auto& kv : root) {
        const std::string name = kv.first.as<std::string>();
        if (!known.count(name)) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ": unknown setting '", name, "'"));
        }
        if (!kv.second.IsScalar()) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ": setting '", name, "' must be a scalar"));
        }
        flags.values_[name] = kv.second.as<std::string>();
      }
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
    }
  }
  for (auto& [k, v] : cli) flags.values_[k] = v;
  return flags;
}

std::string Flags::Get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

absl::StatusOr<int64_t> Flags::GetInt(const std::string& name, int64_t fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  int64_t v;
  if (!absl::SimpleAtoi(it->second, &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " must be an integer, got '", it->second, "'"));
  }
  return v;
}

absl::Status SetupLogging(const std::string& process_name, const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(absl::StrCat("unknown log level '", level, "'"));
  }
  // stdout carries results other tools parse (listening= lines, JSON lines):
  // logs always go to stderr.
  if (!spdlog::get(process_name)) spdlog::set_default_logger(spdlog::stderr_color_mt(process_name));
  spdlog::set_level(lvl);
  spdlog::set_pattern(absl::StrCat("%Y-%m-%dT%H:%M:%S.%e %^%l%$ ", process_name, "[%P] %v"));
  return absl::OkStatus();
}

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(const std::string& address) {
  const auto colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", address, "' is not a host:port address"));
  }
  return std::make_pair(address.substr(0, colon), port);
}

RpcMetrics::RpcMetrics(prometheus::Registry& registry, const std::string& service)
    : requests_(&prometheus::BuildCounter()
                     .Name("quiver_rpc_requests_total")
                     .Help("RPCs handled, by service, method and outcome")
                     .Register(registry)),
      latency_(&prometheus::BuildHistogram()
                    .Name("quiver_rpc_latency_seconds")
                    .Help("RPC handling latency in seconds, by service and method")
                    .Register(registry)),
      service_(service) {}

void RpcMetrics::Record(const std::string& method, bool ok, std::chrono::nanoseconds latency) {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 100e-3, 1.0};
  requests_->Add({{"service", service_}, {"method", method}, {"outcome", ok ? "ok" : "error"}})
      .Increment();
  latency_->Add({{"service", service_}, {"method", method}}, kBuckets)
      .Observe(std::chrono::duration<double>(latency).count());
}

struct MetricsServer::Impl {
  std::unique_ptr<httplib::Server> http;
  std::thread thread;
  ~Impl() {
    if (http != nullptr) http->stop();
    if (thread.joinable()) thread.join();
  }
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& address, std::shared_ptr<prometheus::Registry> registry, const TlsFiles& tls) {
  auto hp = SplitHostPort(address);
  if (!hp.ok()) return hp.status();
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->impl_ = std::make_unique<Impl>();
  Impl& impl = *server->impl_;
  if (tls.enabled()) {
    auto ssl = std::make_unique<httplib::SSLServer>(
        tls.cert.c_str(), tls.key.c_str(), tls.client_ca.empty() ? nullptr : tls.client_ca.c_str());
    if (!ssl->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics TLS: the certificate ", tls.cert, ", key ", tls.key,
          tls.client_ca.empty() ? "" : absl::StrCat(" or client CA ", tls.client_ca), " does not load"));
    }
    impl.http = std::move(ssl);
  } else {
    impl.http = std::make_unique<httplib::Server>();
  }
  impl.http->new_task_queue = [] { return new httplib::ThreadPool(1); };
  impl.http->Get("/metrics", [registry](const httplib::Request&, httplib::Response& res) {
    const std::string body = prometheus::TextSerializer().Serialize(registry->Collect());
    res.set_content(body, "text/plain; version=0.0.4");
  });
  int port = hp->second;
  if (port == 0) {
    port = impl.http->bind_to_any_port(hp->first);
  } else if (!impl.http->bind_to_port(hp->first, port)) {
    port = -1;
  }
  if (port < 0) return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", address));
  server->address_ = absl::StrCat(hp->first, ":", port);
  impl.thread = std::thread([&impl] { impl.http->listen_after_bind(); });
  // httplib's stop() is a no-op until the loop runs: a server stopped right
  // after Start would otherwise listen forever and its join hang.
  for (int i = 0; i < 5000 && !impl.http->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return server;
}

MetricsServer::~MetricsServer() = default;

void InstallSignalHandlers() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int WaitForShutdownSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

}  // namespace quiver::runtime
