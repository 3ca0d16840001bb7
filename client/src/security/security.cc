// Transport security and the per-call guard (quiver/security/security.h).
#include "quiver/security/security.h"

#include <grpcpp/support/client_interceptor.h>
#include <prometheus/counter.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "quiver/runtime/runtime.h"

namespace quiver::security {
namespace {

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

// Adds "authorization: Bearer <token>" to every call of a channel.
class BearerInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit BearerInterceptor(const std::string* value) : value_(value) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace("authorization", *value_);
    }
    methods->Proceed();
  }

 private:
  const std::string* value_;
};

class BearerFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BearerFactory(std::shared_ptr<const std::string> value) : value_(std::move(value)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo*) override {
    return new BearerInterceptor(value_.get());
  }

 private:
  std::shared_ptr<const std::string> value_;  // owned by every channel made
};

}  // namespace

const std::set<std::string>& ProcessFlagNames() {
  static const std::set<std::string> kNames = {"tls-cert", "tls-key", "tls-client-ca", "tls-ca",
                                               "auth-tokens", "token-file", "jwt-key", "jwt-algorithm"};
  return kNames;
}

const std::set<std::string>& ClientFlagNames() {
  static const std::set<std::string> kNames = {"tls-ca", "tls-cert", "tls-key", "token-file"};
  return kNames;
}

absl::StatusOr<std::string> ReadPem(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.empty()) return absl::InvalidArgumentError(absl::StrCat(path, " is empty"));
  return text;
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  if (path.empty()) return std::string();
  auto text = ReadPem(path);
  if (!text.ok()) return absl::InvalidArgumentError(absl::StrCat("--token-file: ", text.status().message()));
  std::string token = text->substr(0, text->find('\n'));
  absl::StripAsciiWhitespace(&token);
  if (token.empty()) return absl::InvalidArgumentError(absl::StrCat("--token-file ", path, ": no token"));
  return token;
}

absl::StatusOr<ClientSecurity> MakeClientSecurity(const ClientTls& tls, const std::string& token_file) {
  if (tls.cert.empty() != tls.key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (!tls.cert.empty() && tls.ca.empty()) {
    return absl::InvalidArgumentError("a client certificate (--tls-cert) needs --tls-ca");
  }
  ClientSecurity out;
  out.tls = tls;
  auto token = ReadTokenFile(token_file);
  if (!token.ok()) return token.status();
  out.token = *std::move(token);
  return out;
}

absl::StatusOr<ClientSecurity> ParseClientFlags(const runtime::Flags& flags) {
  return MakeClientSecurity({flags.Get("tls-ca"), flags.Get("tls-cert"), flags.Get("tls-key")},
                            flags.Get("token-file"));
}

absl::StatusOr<ProcessSecurity> ParseProcessFlags(const runtime::Flags& flags) {
  ProcessSecurity out;
  out.server.cert = flags.Get("tls-cert");
  out.server.key = flags.Get("tls-key");
  out.server.client_ca = flags.Get("tls-client-ca");
  if (out.server.cert.empty() != out.server.key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (!out.server.client_ca.empty() && out.server.cert.empty()) {
    return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
  }
  out.auth_tokens = flags.Get("auth-tokens");
  out.jwt_key = flags.Get("jwt-key");
  out.jwt_algorithm = flags.Get("jwt-algorithm", out.jwt_algorithm);
  if (flags.Has("jwt-algorithm") && out.jwt_key.empty()) {
    return absl::InvalidArgumentError("--jwt-algorithm needs --jwt-key");
  }
  out.insecure = flags.Has(kInsecureSwitch);
  out.client.tls.ca = flags.Get("tls-ca");
  if (out.client.tls.enabled()) {
    out.client.tls.cert = out.server.cert;
    out.client.tls.key = out.server.key;
  }
  auto token = ReadTokenFile(flags.Get("token-file"));
  if (!token.ok()) return token.status();
  out.client.token = *std::move(token);
  return out;
}

absl::Status CheckListenAddress(const std::string& flag, const std::string& address,
                                const ServerTls& tls, bool insecure) {
  if (address.empty() || tls.enabled() || insecure) return absl::OkStatus();
  auto hp = runtime::SplitHostPort(address);
  if (hp.ok() && IsLoopback(hp->first)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "refusing to listen on ", address, " (--", flag,
      ") without TLS: give --tls-cert/--tls-key, or --insecure"));
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const ServerTls& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  auto cert = ReadPem(tls.cert);
  if (!cert.ok()) return cert.status();
  auto key = ReadPem(tls.key);
  if (!key.ok()) return key.status();
  std::string client_ca;
  if (!tls.client_ca.empty()) {
    auto ca = ReadPem(tls.client_ca);
    if (!ca.ok()) return ca.status();
    client_ca = *std::move(ca);
  }
  grpc::SslServerCredentialsOptions ssl(client_ca.empty()
                                            ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = client_ca;
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(ssl);
}

absl::StatusOr<ChannelFactory> ChannelFactory::Create(const ClientSecurity& security) {
  ChannelFactory f;
  f.security_ = security;
  if (!security.tls.enabled()) {
    f.credentials_ = grpc::InsecureChannelCredentials();
    return f;
  }
  auto ca = ReadPem(security.tls.ca);
  if (!ca.ok()) return ca.status();
  f.ca_pem_ = *std::move(ca);
  if (!security.tls.cert.empty()) {
    auto cert = ReadPem(security.tls.cert);
    if (!cert.ok()) return cert.status();
    auto key = ReadPem(security.tls.key);
    if (!key.ok()) return key.status();
    f.cert_pem_ = *std::move(cert);
    f.key_pem_ = *std::move(key);
  }
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = f.ca_pem_;
  ssl.pem_cert_chain = f.cert_pem_;
  ssl.pem_private_key = f.key_pem_;
  f.credentials_ = grpc::SslCredentials(ssl);
  return f;
}

std::shared_ptr<grpc::Channel> ChannelFactory::Make(const std::string& address,
                                                    const grpc::ChannelArguments& args) const {
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      credentials_ != nullptr ? credentials_ : grpc::InsecureChannelCredentials();
  if (security_.token.empty()) return grpc::CreateCustomChannel(address, credentials, args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<BearerFactory>(
      std::make_shared<const std::string>(absl::StrCat("Bearer ", security_.token))));
  return grpc::experimental::CreateCustomChannelWithInterceptors(address, credentials, args,
                                                                 std::move(interceptors));
}

bool IsCluster(const auth::Identity& identity) {
  for (const std::string& role : identity.roles) {
    if (role == kClusterRole) return true;
  }
  return false;
}

absl::StatusOr<std::unique_ptr<CallGuard>> CallGuard::Create(const ProcessSecurity& security,
                                                             prometheus::Counter* denials) {
  std::shared_ptr<const auth::TokenStore> tokens;
  if (!security.auth_tokens.empty()) {
    auto loaded = auth::TokenStore::Load(security.auth_tokens);
    if (!loaded.ok()) return loaded.status();
    tokens = *std::move(loaded);
  }
  std::shared_ptr<const auth::JwtVerifier> jwt;
  if (!security.jwt_key.empty()) {
    auto loaded = auth::JwtVerifier::Load(security.jwt_key, security.jwt_algorithm);
    if (!loaded.ok()) return loaded.status();
    jwt = *std::move(loaded);
  }
  return std::make_unique<CallGuard>(std::move(tokens), denials, std::move(jwt));
}

void CallGuard::Denied() const {
  if (denials_ != nullptr) denials_->Increment();
}

absl::StatusOr<std::optional<auth::Identity>> CallGuard::Authenticate(std::string_view authorization) const {
  if (!enabled()) return std::optional<auth::Identity>();
  const auth::Identity* identity = tokens_ != nullptr ? tokens_->Authenticate(authorization) : nullptr;
  if (identity == nullptr && jwt_ != nullptr) {
    if (std::optional<auth::Identity> claimed = jwt_->Verify(auth::BearerToken(authorization))) {
      return std::optional<auth::Identity>(*std::move(claimed));
    }
  }
  if (identity == nullptr) {
    // Feast's messages (permissions/server/rest.py).
    const char* message = authorization.empty() ? "Missing authentication token"
                                                : "Invalid or expired access token";
    Denied();
    spdlog::info("audit user=- action=AUTHENTICATE resource=- allowed=false reason=\"{}\"", message);
    return absl::UnauthenticatedError(message);
  }
  return std::optional<auth::Identity>(*identity);
}

absl::StatusOr<std::optional<auth::Identity>> CallGuard::Authenticate(
    const grpc::ServerContext& context) const {
  if (!enabled()) return std::optional<auth::Identity>();
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  std::string_view value;
  if (it != metadata.end()) value = std::string_view(it->second.data(), it->second.size());
  return Authenticate(value);
}

std::shared_ptr<const auth::Authorizer> CallGuard::AuthorizerFor(const quiver::v1::Registry& registry) {
  std::lock_guard<std::mutex> lock(mu_);
  if (authorizer_ == nullptr || version_ != registry.version()) {
    auto built = auth::Authorizer::Build(registry);
    // A registry the coordinator accepted always compiles; if not, deny all.
    authorizer_ = built.ok() ? *built : nullptr;
    version_ = registry.version();
  }
  return authorizer_;
}

absl::Status CallGuard::Authorize(const std::optional<auth::Identity>& identity,
                                  const quiver::v1::Registry& registry, const Wanted& wanted) {
  if (!identity.has_value() || wanted.empty()) return absl::OkStatus();
  const bool cluster = IsCluster(*identity);
  std::shared_ptr<const auth::Authorizer> authorizer = cluster ? nullptr : AuthorizerFor(registry);
  for (const auto& [resource, action] : wanted) {
    std::string why;
    const bool allowed =
        cluster || (authorizer != nullptr && authorizer->Allowed(*identity, resource, action, &why));
    spdlog::info("audit user={} action={} resource={}:{} allowed={}", identity->user,
                 auth::ActionName(action), auth::ResourceTypeName(resource.type), resource.name, allowed);
    if (!allowed) {
      Denied();
      return absl::PermissionDeniedError(absl::StrCat(
          "Permission error:\n", identity->user, ": ",
          why.empty() ? "the registry's permissions do not compile" : why));
    }
  }
  return absl::OkStatus();
}

grpc::Status CallGuard::Check(const grpc::ServerContext& context, const quiver::v1::Registry* registry,
                              const Wanted& wanted) {
  if (!enabled()) return grpc::Status::OK;
  auto identity = Authenticate(context);
  if (!identity.ok()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(identity.status().message()));
  }
  if (wanted.empty()) return grpc::Status::OK;
  static const quiver::v1::Registry kEmpty;
  absl::Status s = Authorize(*identity, registry != nullptr ? *registry : kEmpty, wanted);
  if (!s.ok()) return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, std::string(s.message()));
  return grpc::Status::OK;
}

grpc::Status CallGuard::CheckCluster(const grpc::ServerContext& context, std::string_view rpc) {
  if (!enabled()) return grpc::Status::OK;
  auto identity = Authenticate(context);
  if (!identity.ok()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(identity.status().message()));
  }
  const bool allowed = IsCluster(**identity);
  if (!allowed) {
    spdlog::info("audit user={} action=CLUSTER resource=RPC:{} allowed=false", (*identity)->user, rpc);
    Denied();
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("Permission error:\n", (*identity)->user, ": ", std::string(rpc),
                                     " is a cluster-internal call (role ", kClusterRole, ")"));
  }
  return grpc::Status::OK;
}

}  // namespace quiver::security
