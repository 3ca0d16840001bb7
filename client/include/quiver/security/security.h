// Transport security shared by every Quiver process and client: TLS for
// listeners and channels, bearer tokens on outgoing gRPC calls, the
// "no plaintext off loopback" rule, and the per-call guard that
// authenticates and authorizes incoming gRPC calls (quiver/auth for the
// identities and Feast's permission decision).
//
// Flags (the same on quiver-coordinator, quiver-node, quiver-feature-server):
//   --tls-cert FILE --tls-key FILE   this process's certificate (PEM); serves
//                                    TLS on every listener, and is presented
//                                    as the client certificate on calls to
//                                    other Quiver processes
//   --tls-client-ca FILE             listeners require a client certificate
//                                    signed by this CA (mutual TLS)
//   --tls-ca FILE                    calls to other processes use TLS and
//                                    verify their certificates with this CA
//   --auth-tokens FILE               incoming calls need a bearer token from
//                                    this file (quiver/auth/auth.h)
//   --token-file FILE                the bearer token this process presents
//                                    (the file's first line)
//   --jwt-key FILE --jwt-algorithm A incoming calls may also carry a JWT
//                                    signed with this key (HS256 secret or
//                                    RS256 public key; quiver/auth/auth.h)
//   --insecure                       allow a plaintext listener off loopback
// quiverctl and clients take --tls-ca, --tls-cert/--tls-key (client
// certificate) and --token-file, or ClientOptions::security.
//
// gRPC's SSL credentials check the server's name against the certificate's
// subject alternative names (IP addresses included); scripts/gen-certs.sh
// makes certificates valid for 127.0.0.1 and localhost.
//
// Thread-safety: ChannelFactory and CallGuard are immutable after
// construction (CallGuard's authorizer cache is mutex-guarded); share them.
#ifndef QUIVER_SECURITY_SECURITY_H_
#define QUIVER_SECURITY_SECURITY_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "quiver.pb.h"
#include "quiver/auth/auth.h"
#include "quiver/runtime/runtime.h"

namespace prometheus {
class Counter;
}

namespace quiver::security {

// A listener's TLS: PEM file paths (cert, key, client_ca; a non-empty
// client_ca means mutual TLS); all empty = plaintext.
using ServerTls = runtime::TlsFiles;

// A caller's TLS: the CA that signs the servers' certificates (non-empty =
// TLS), and optionally a client certificate for mutual TLS.
struct ClientTls {
  std::string ca;
  std::string cert;
  std::string key;
  bool enabled() const { return !ca.empty(); }
};

// What a client presents: TLS and a bearer token (empty = none).
struct ClientSecurity {
  ClientTls tls;
  std::string token;
};

// Everything a server process reads from the flags above.
struct ProcessSecurity {
  ServerTls server;
  ClientSecurity client;
  std::string auth_tokens;  // path; empty (and no jwt_key) = authentication off
  std::string jwt_key;      // path; empty = no JWTs
  std::string jwt_algorithm = "RS256";
  bool insecure = false;
};

// The flag names ProcessSecurity reads, for runtime::Flags::Parse's known set,
// and the switch --insecure.
const std::set<std::string>& ProcessFlagNames();
inline constexpr const char* kInsecureSwitch = "insecure";

// Reads the flags. A cluster process that serves TLS (--tls-cert) presents
// its certificate on its own calls too; --tls-ca turns TLS on for them.
// Errors: kInvalidArgument (--tls-cert without --tls-key or the reverse,
// --tls-client-ca without --tls-cert, an unreadable --token-file). Not
// retryable.
absl::StatusOr<ProcessSecurity> ParseProcessFlags(const runtime::Flags& flags);
// A client's --tls-ca, --tls-cert/--tls-key, --token-file (quiverctl).
absl::StatusOr<ClientSecurity> ParseClientFlags(const runtime::Flags& flags);
// The same from values already parsed: checks that --tls-cert and --tls-key
// go together and that a client certificate comes with --tls-ca, and reads
// the token. Errors: kInvalidArgument (not retryable).
absl::StatusOr<ClientSecurity> MakeClientSecurity(const ClientTls& tls, const std::string& token_file);
// --token-file's token: the file's first line, trimmed ("" for no path).
// Errors: kInvalidArgument when the file is unreadable, empty or has no token.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);
const std::set<std::string>& ClientFlagNames();

// Reads a whole file. Errors: kNotFound, kInvalidArgument (empty).
absl::StatusOr<std::string> ReadPem(const std::string& path);

// Listeners off loopback carry tokens and features: refused without TLS
// unless `insecure`. "0.0.0.0", "[::]", a host name or any non-127/::1
// address counts as off loopback. Errors: kFailedPrecondition naming the
// flag and address.
absl::Status CheckListenAddress(const std::string& flag, const std::string& address,
                                const ServerTls& tls, bool insecure);

// gRPC server credentials: insecure, TLS, or mutual TLS (client certificate
// required and verified). Errors: kNotFound/kInvalidArgument for a PEM file.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const ServerTls& tls);

// Makes channels to other processes with the caller's TLS and token (the
// token is added as "authorization: Bearer <token>" metadata to every call
// by a client interceptor, so it also works on plaintext channels, as
// gRPC's call credentials do not).
class ChannelFactory {
 public:
  ChannelFactory() = default;  // plaintext, no token
  // Errors: kNotFound/kInvalidArgument for a PEM file.
  static absl::StatusOr<ChannelFactory> Create(const ClientSecurity& security);

  std::shared_ptr<grpc::Channel> Make(const std::string& address,
                                      const grpc::ChannelArguments& args = {}) const;
  const ClientSecurity& security() const { return security_; }
  // The PEM contents (empty without TLS), for the lean lookup client.
  const std::string& ca_pem() const { return ca_pem_; }
  const std::string& cert_pem() const { return cert_pem_; }
  const std::string& key_pem() const { return key_pem_; }

 private:
  ClientSecurity security_;
  std::string ca_pem_, cert_pem_, key_pem_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
};

// The identities' role that Quiver's own processes carry (nodes, the
// coordinator): it may call the cluster-internal RPCs (register,
// heartbeat, task leases, scans, merges, map adoption) and is allowed every
// action, so that an applied permission list can never lock the cluster out
// of itself. Give it only to the token in the processes' --token-file.
inline constexpr const char* kClusterRole = "quiver:cluster";

using Wanted = std::vector<std::pair<auth::Resource, quiver::v1::AuthzAction>>;

// Authentication and authorization of incoming calls with one audit log
// line per decision ("audit user=... action=... resource=TYPE:name
// allowed=..."), and denials counted.
class CallGuard {
 public:
  // `tokens` and `jwt` both null: authentication off (Feast's no_auth),
  // everything allowed. `denials` may be null.
  CallGuard(std::shared_ptr<const auth::TokenStore> tokens, prometheus::Counter* denials,
            std::shared_ptr<const auth::JwtVerifier> jwt = nullptr)
      : tokens_(std::move(tokens)), jwt_(std::move(jwt)), denials_(denials) {}
  // Loads --auth-tokens and --jwt-key (empty paths: off). Errors: as
  // TokenStore::Load and JwtVerifier::Load.
  static absl::StatusOr<std::unique_ptr<CallGuard>> Create(const ProcessSecurity& security,
                                                           prometheus::Counter* denials);

  bool enabled() const { return tokens_ != nullptr || jwt_ != nullptr; }

  // The caller of an Authorization value ("Bearer <token>": a token from
  // the file, else a JWT that verifies). nullopt when authentication is off. Errors: kUnauthenticated with Feast's messages
  // ("Missing authentication token", "Invalid or expired access token").
  absl::StatusOr<std::optional<auth::Identity>> Authenticate(std::string_view authorization) const;
  // The same from a gRPC call's metadata.
  absl::StatusOr<std::optional<auth::Identity>> Authenticate(const grpc::ServerContext& context) const;

  // Feast's decision for each of `wanted` against `registry`'s
  // permissions; the cluster role is allowed everything. Errors:
  // kPermissionDenied ("Permission error:\n<user>: <why>") at the first
  // denial. OK when `identity` is nullopt (authentication off).
  absl::Status Authorize(const std::optional<auth::Identity>& identity,
                         const quiver::v1::Registry& registry, const Wanted& wanted);

  // Authenticate + Authorize for a gRPC call, as a grpc::Status
  // (UNAUTHENTICATED / PERMISSION_DENIED). `registry` may be null only when
  // `wanted` is empty (authentication alone).
  grpc::Status Check(const grpc::ServerContext& context, const quiver::v1::Registry* registry,
                     const Wanted& wanted);
  // A cluster-internal RPC: only the cluster role (kClusterRole).
  grpc::Status CheckCluster(const grpc::ServerContext& context, std::string_view rpc);

 private:
  std::shared_ptr<const auth::Authorizer> AuthorizerFor(const quiver::v1::Registry& registry);
  void Denied() const;

  std::shared_ptr<const auth::TokenStore> tokens_;
  std::shared_ptr<const auth::JwtVerifier> jwt_;
  prometheus::Counter* denials_;
  std::mutex mu_;
  uint64_t version_ = 0;
  std::shared_ptr<const auth::Authorizer> authorizer_;
};

bool IsCluster(const auth::Identity& identity);

}  // namespace quiver::security

#endif  // QUIVER_SECURITY_SECURITY_H_
