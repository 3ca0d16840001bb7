// quiver-feature-server: Feast's feature server API over a Quiver cluster.
//   quiver-feature-server --coordinator HOST:PORT --http-listen HOST:PORT
//       [--grpc-listen HOST:PORT] [--auth-tokens FILE]
//       [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]] [--insecure]
//       [--tls-ca FILE] [--token-file FILE]   (its own calls to the cluster)
//       [--jwt-key FILE [--jwt-algorithm HS256|RS256]]
//       [--metrics-listen HOST:PORT] [--log-level info]
// Prints one stdout line "http=HOST:PORT grpc=HOST:PORT metrics=HOST:PORT"
// once serving,
// then runs until SIGINT/SIGTERM.
#include <spdlog/spdlog.h>

#include <iostream>
#include <set>
#include <thread>

#include "absl/synchronization/notification.h"
#include "quiver/feature_server/server.h"
#include "quiver/runtime/runtime.h"
#include "quiver/security/security.h"

namespace {

int Fail(const std::string& message, int code = 1) {
  std::cerr << "quiver-feature-server: " << message << std::endl;
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  quiver::runtime::InstallSignalHandlers();
  std::set<std::string> known = {"coordinator", "http-listen", "grpc-listen", "metrics-listen",
                                 "log-level"};
  known.insert(quiver::security::ProcessFlagNames().begin(), quiver::security::ProcessFlagNames().end());
  auto flags = quiver::runtime::Flags::Parse(argc, argv, 1, known, {quiver::security::kInsecureSwitch});
  if (!flags.ok()) return Fail(std::string(flags.status().message()), 2);
  auto security = quiver::security::ParseProcessFlags(*flags);
  if (!security.ok()) return Fail(std::string(security.status().message()), 2);
  quiver::feature_server::ServerOptions options;
  options.coordinator = flags->Get("coordinator", "127.0.0.1:6000");
  options.http_listen = flags->Get("http-listen", "127.0.0.1:6566");
  options.grpc_listen = flags->Get("grpc-listen");
  options.metrics_listen = flags->Get("metrics-listen");
  options.auth_tokens = security->auth_tokens;
  options.jwt_key = security->jwt_key;
  options.jwt_algorithm = security->jwt_algorithm;
  options.tls_cert = security->server.cert;
  options.tls_key = security->server.key;
  options.tls_client_ca = security->server.client_ca;
  options.insecure = security->insecure;
  options.cluster = security->client;
  if (auto s = quiver::runtime::SetupLogging("quiver-feature-server", flags->Get("log-level", "info"));
      !s.ok()) {
    return Fail(std::string(s.message()), 2);
  }
  auto server = quiver::feature_server::FeatureServer::Start(options);
  if (!server.ok()) return Fail(std::string(server.status().message()));
  std::cout << "http=" << (*server)->http_address() << " grpc=" << (*server)->grpc_address()
            << " metrics=" << (*server)->metrics_address() << std::endl;
  quiver::runtime::WaitForShutdownSignal();
  spdlog::info("shutting down");
  (*server)->Stop();
  return 0;
}
