// quiver-feature-server: a stateless process that serves Feast's feature
// server API (../shared/research/feast-compat.md §2) from a Quiver cluster
// through one quiver::Client, so that many can run behind a load balancer.
//
// HTTP (cpp-httplib, Debian's libcpp-httplib-dev; a thread pool of its
// own): POST /get-online-features, /write-to-online-store, /push,
// /materialize, /materialize-incremental; GET /health. Bodies as Feast's Python
// server (feast_json.h). gRPC: feast.serving.ServingService
// (GetFeastServingInfo, GetOnlineFeatures), wire-compatible with Feast's
// protos (proto/feast/).
//
// Thread-safety: Start/Stop from one thread; requests are served
// concurrently (quiver::Client is thread-safe).
#ifndef QUIVER_FEATURE_SERVER_SERVER_H_
#define QUIVER_FEATURE_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "quiver/security/security.h"

namespace quiver::feature_server {

struct ServerOptions {
  std::string coordinator;   // host:port of the coordinator
  std::string http_listen;   // host:port; port 0 picks one (Feast's default is 6566)
  std::string grpc_listen;   // host:port; port 0 picks one; empty: no gRPC
  std::string metrics_listen;  // host:port of /metrics; empty: none
  // The token file (quiver/auth/auth.h); empty: authentication off.
  std::string auth_tokens;
  // JWTs as a second source of identities (quiver/auth/auth.h); empty: none.
  std::string jwt_key;
  std::string jwt_algorithm = "RS256";
  // TLS for HTTP and gRPC (PEM files; both or neither). With
  // `tls_client_ca`, clients must present a certificate it signed (mutual
  // TLS). A listener off loopback without TLS is refused unless `insecure`.
  std::string tls_cert, tls_key, tls_client_ca;
  bool insecure = false;
  // TLS and the token of the server's own calls to the coordinator and the
  // nodes (--tls-ca, and --tls-cert/--tls-key as its client certificate;
  // --token-file).
  security::ClientSecurity cluster;
  // Entity rows per request; more gets 400.
  size_t max_entity_rows = 10000;
  // Request bodies larger than this get 413. unit: bytes.
  size_t max_body_bytes = 16 << 20;
};

class FeatureServer {
 public:
  // Connects the client and starts listening. Errors: kInvalidArgument (a
  // malformed address, TLS files missing or not loading, a non-loopback
  // listener without TLS or `insecure`, a bad token file), kUnavailable (the coordinator is unreachable, or the
  // address cannot be bound; retryable).
  static absl::StatusOr<std::unique_ptr<FeatureServer>> Start(const ServerOptions& options);
  virtual ~FeatureServer() = default;

  // "host:port" actually bound.
  virtual std::string http_address() const = 0;
  virtual std::string grpc_address() const = 0;  // empty without gRPC
  virtual std::string metrics_address() const = 0;
  // Stops accepting and waits for requests in flight.
  virtual void Stop() = 0;
};

}  // namespace quiver::feature_server

#endif  // QUIVER_FEATURE_SERVER_SERVER_H_
