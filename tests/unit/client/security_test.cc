// quiver::security: the flags every process reads, the rule against
// plaintext listeners off loopback, PEM and token files, and the call
// guard's decisions (Feast's, plus the cluster role).
#include "quiver/security/security.h"

#include <gtest/gtest.h>

#include <jwt.h>

#include <ctime>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/temp_dir.h"

namespace quiver::security {
namespace {

absl::StatusOr<runtime::Flags> Parse(std::vector<std::string> args) {
  std::vector<char*> argv = {const_cast<char*>("quiver-node")};
  for (auto& a : args) argv.push_back(a.data());
  std::set<std::string> known = ProcessFlagNames();
  return runtime::Flags::Parse(static_cast<int>(argv.size()), argv.data(), 1, known, {kInsecureSwitch});
}

TEST(SecurityFlagsTest, CertificatesComeInPairsAndTokensFromAFile) {
  quiver::testing::TempDir dir;
  const std::string token = dir.File("token");
  std::ofstream(token) << "  s3cret  \nignored second line\n";
  auto flags = Parse({"--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem", "--token-file", token});
  ASSERT_TRUE(flags.ok()) << flags.status();
  auto parsed = ParseProcessFlags(*flags);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->server.enabled());
  EXPECT_EQ(parsed->client.token, "s3cret");
  // The process presents its own certificate on its calls (mutual TLS).
  EXPECT_EQ(parsed->client.tls.cert, "c.pem");
  EXPECT_EQ(parsed->client.tls.ca, "ca.pem");

  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--tls-cert", "c.pem"}, {"--tls-key", "k.pem"},
        {"--tls-client-ca", "ca.pem"}, {"--token-file", dir.File("missing")}}) {
    auto f = Parse(bad);
    ASSERT_TRUE(f.ok());
    auto p = ParseProcessFlags(*f);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << bad[0];
  }
  std::ofstream(dir.File("empty")) << "\n";
  auto empty = Parse({"--token-file", dir.File("empty")});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(ParseProcessFlags(*empty).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SecurityFlagsTest, PlaintextOffLoopbackNeedsInsecure) {
  const ServerTls none;
  const ServerTls tls{"c.pem", "k.pem", ""};
  EXPECT_TRUE(CheckListenAddress("listen", "127.0.0.1:0", none, false).ok());
  EXPECT_TRUE(CheckListenAddress("listen", "localhost:7000", none, false).ok());
  EXPECT_TRUE(CheckListenAddress("listen", "[::1]:7000", none, false).ok());
  EXPECT_TRUE(CheckListenAddress("listen", "", none, false).ok());
  for (const char* address : {"0.0.0.0:7000", "10.1.2.3:7000", "node-1.internal:7000", "*:7000"}) {
    absl::Status s = CheckListenAddress("listen", address, none, false);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << address;
    EXPECT_NE(s.message().find("--listen"), std::string_view::npos) << s;
    EXPECT_TRUE(CheckListenAddress("listen", address, tls, false).ok()) << address;
    EXPECT_TRUE(CheckListenAddress("listen", address, none, true).ok()) << address;
  }
}

TEST(SecurityFlagsTest, UnreadablePemFilesAreClearErrors) {
  quiver::testing::TempDir dir;
  ClientSecurity client;
  client.tls.ca = dir.File("nope.pem");
  EXPECT_EQ(ChannelFactory::Create(client).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ServerCredentials(ServerTls{dir.File("c.pem"), dir.File("k.pem"), ""}).status().code(),
            absl::StatusCode::kNotFound);
  // Plaintext needs no file.
  EXPECT_TRUE(ChannelFactory::Create(ClientSecurity{}).ok());
}

TEST(CallGuardTest, FeastDecisionPlusTheClusterRole) {
  quiver::testing::TempDir dir;
  std::ofstream(dir.File("tokens.yaml"))
      << "tokens:\n"
         "  - {token: t-reader, user: alice, roles: [reader]}\n"
         "  - {token: t-cluster, user: quiver, roles: [\"quiver:cluster\"]}\n";
  ProcessSecurity config;
  config.auth_tokens = dir.File("tokens.yaml");
  auto guard = CallGuard::Create(config, nullptr);
  ASSERT_TRUE(guard.ok()) << guard.status();
  ASSERT_TRUE((*guard)->enabled());
  EXPECT_EQ((*guard)->Authenticate("").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ((*guard)->Authenticate("Bearer nope").status().message(), "Invalid or expired access token");
  auto alice = (*guard)->Authenticate("Bearer t-reader");
  ASSERT_TRUE(alice.ok());
  auto cluster = (*guard)->Authenticate("bearer t-cluster");
  ASSERT_TRUE(cluster.ok());
  EXPECT_TRUE(IsCluster(**cluster));
  EXPECT_FALSE(IsCluster(**alice));

  quiver::v1::Registry registry;
  registry.set_project("p");
  registry.set_version(1);
  auto* pii = registry.add_feature_views();
  pii->set_name("contact");
  (*pii->mutable_tags())["pii"] = "true";
  registry.add_feature_views()->set_name("profile");
  auto* perm = registry.add_permissions();
  perm->set_name("public");
  perm->add_types(quiver::v1::RESOURCE_FEATURE_VIEW);
  perm->add_name_patterns("profile");
  perm->add_actions(quiver::v1::ACTION_READ_ONLINE);
  perm->add_roles("reader");
  const auto read = [&](const char* view) {
    return Wanted{{auth::FeatureViewResource(registry, view), quiver::v1::ACTION_READ_ONLINE}};
  };
  EXPECT_TRUE((*guard)->Authorize(*alice, registry, read("profile")).ok());
  absl::Status denied = (*guard)->Authorize(*alice, registry, read("contact"));
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(denied.message().find("alice"), std::string_view::npos) << denied;
  // The cluster role is never locked out, whatever the permissions say.
  EXPECT_TRUE((*guard)->Authorize(*cluster, registry, read("contact")).ok());
  EXPECT_TRUE((*guard)
                  ->Authorize(*cluster, registry, {{auth::ProjectResource(registry), quiver::v1::ACTION_DELETE}})
                  .ok());
  // Authentication off: everything allowed.
  CallGuard off(nullptr, nullptr);
  auto nobody = off.Authenticate("");
  ASSERT_TRUE(nobody.ok());
  EXPECT_FALSE(nobody->has_value());
  EXPECT_TRUE(off.Authorize(*nobody, registry, read("contact")).ok());
}

// A compact JWT signed with `secret` under `alg`, with these claims.
std::string MakeJwt(jwt_alg_t alg, const std::string& secret, const std::string& claims_json) {
  jwt_t* jwt = nullptr;
  EXPECT_EQ(jwt_new(&jwt), 0);
  EXPECT_EQ(jwt_add_grants_json(jwt, claims_json.c_str()), 0);
  EXPECT_EQ(jwt_set_alg(jwt, alg, alg == JWT_ALG_NONE ? nullptr : reinterpret_cast<const unsigned char*>(secret.data()),
                        alg == JWT_ALG_NONE ? 0 : static_cast<int>(secret.size())),
            0);
  char* text = jwt_encode_str(jwt);
  std::string out = text != nullptr ? text : "";
  free(text);
  jwt_free(jwt);
  return out;
}

TEST(CallGuardTest, SignedJwtsAreASecondSourceOfIdentities) {
  quiver::testing::TempDir dir;
  const std::string secret = "a-shared-secret-of-32-bytes-long!";
  std::ofstream(dir.File("jwt.key")) << secret;
  ProcessSecurity config;
  config.jwt_key = dir.File("jwt.key");
  config.jwt_algorithm = "HS256";
  auto guard = CallGuard::Create(config, nullptr);
  ASSERT_TRUE(guard.ok()) << guard.status();
  ASSERT_TRUE((*guard)->enabled());
  const long now = static_cast<long>(std::time(nullptr));
  const std::string good = MakeJwt(JWT_ALG_HS256, secret,
                                   absl::StrCat(R"({"sub": "bob", "roles": ["reader", "pii_reader"], "exp": )",
                                                now + 600, "}"));
  auto bob = (*guard)->Authenticate("Bearer " + good);
  ASSERT_TRUE(bob.ok()) << bob.status();
  ASSERT_TRUE(bob->has_value());
  EXPECT_EQ((*bob)->user, "bob");
  EXPECT_EQ((*bob)->roles, (std::vector<std::string>{"reader", "pii_reader"}));

  // Refused: another key, expired, not yet valid, unsigned ("none"), no user, garbage.
  for (const std::string& bad :
       {MakeJwt(JWT_ALG_HS256, "another-secret-another-secret-xx", R"({"sub": "bob"})"),
        MakeJwt(JWT_ALG_HS256, secret, absl::StrCat(R"({"sub": "bob", "exp": )", now - 1, "}")),
        MakeJwt(JWT_ALG_HS256, secret, absl::StrCat(R"({"sub": "bob", "nbf": )", now + 600, "}")),
        MakeJwt(JWT_ALG_NONE, "", R"({"sub": "bob"})"), MakeJwt(JWT_ALG_HS256, secret, R"({"roles": ["x"]})"),
        std::string("a.b.c"), std::string("not a jwt")}) {
    auto refused = (*guard)->Authenticate("Bearer " + bad);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated) << bad;
  }
  // The algorithm is the configured one: an HS256 token is no RS256 token.
  config.jwt_algorithm = "RS256";
  auto rs = CallGuard::Create(config, nullptr);
  ASSERT_TRUE(rs.ok());
  EXPECT_EQ((*rs)->Authenticate("Bearer " + good).status().code(), absl::StatusCode::kUnauthenticated);
  config.jwt_algorithm = "none";
  EXPECT_EQ(CallGuard::Create(config, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quiver::security
