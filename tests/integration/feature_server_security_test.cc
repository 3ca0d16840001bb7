// quiver-feature-server's security (issue 13): tokens and Feast's
// permissions over HTTP and gRPC, HTTPS and gRPC over mutual TLS with the
// certificates of scripts/gen-certs.sh, and the flags it refuses.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "feast_wire.h"
#include "harness.h"
#include "nlohmann/json.hpp"
#include "quiver/feature_server/server.h"

namespace quiver::testing {
namespace {

using Json = nlohmann::json;

// Tokens and Feast's permissions: a reader reads public views and gets 403
// on a view tagged pii; a pii_reader reads it; a reader's write is refused,
// a writer's accepted; no token or an unknown one gets 401; the same over
// gRPC.
TEST(FeatureServerAuth, TokensAndFeastsPermissions) {
  auto repo = RepoWithUsersParquet(
      "SELECT 'u' || i AS user_id, TIMESTAMP '2026-12-01 10:00:00' AS ts, i::BIGINT AS clicks, "
      "'secret' || i AS email FROM range(20) t(i)");
  ASSERT_TRUE(repo.ok()) << repo.status();
  std::ofstream((*repo)->File("repo.yaml"))
      << "project: auth\n"
         "entities:\n  - {name: user, join_key: user_id, value_type: STRING}\n"
         "sources:\n  - {name: users, path: data/users.parquet, timestamp_field: ts}\n"
         "feature_views:\n"
         "  - {name: public_stats, entities: [user], ttl: 0, source: users, schema: [{name: clicks, type: INT64}]}\n"
         "  - {name: pii_stats, entities: [user], ttl: 0, source: users, tags: {pii: \"true\"},"
         " schema: [{name: email, type: STRING}]}\n"
         "permissions:\n"
         "  - {name: public_reads, types: [FEATURE_VIEW], name_patterns: [\"public_.*\"], actions: [READ_ONLINE],"
         " policy: {roles: [reader]}}\n"
         "  - name: pii_only_for_pii_readers\n    types: [FEATURE_VIEW]\n    name_patterns: [\".*\"]\n"
         "    required_tags: {pii: \"true\"}\n    actions: [READ_ONLINE]\n    policy: {roles: [pii_reader]}\n"
         "  - {name: writes, types: [FEATURE_VIEW], actions: [WRITE_ONLINE], policy: {roles: [writer]}}\n";
  TempDir secrets;  // not in the repository: apply reads every YAML file there
  std::ofstream(secrets.File("tokens.yaml"))
      << "tokens:\n  - {token: \"alice-token\", user: alice, roles: [reader]}\n"
         "  - {token: \"bob-token\", user: bob, roles: [reader, pii_reader]}\n"
         "  - {token: \"carol-token\", user: carol, roles: [writer]}\n";
  auto cluster = LocalCluster::Up(1, 1);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  auto apply = (*cluster)->Ctl({"apply", (*repo)->path()});
  ASSERT_EQ(apply.exit_code, 0) << apply.out << apply.err;
  auto mat = (*cluster)->Ctl({"materialize", "2020-01-01", "2030-01-01"});
  ASSERT_EQ(mat.exit_code, 0) << mat.out << mat.err;
  feature_server::ServerOptions options;
  options.coordinator = (*cluster)->coordinator();
  options.http_listen = "127.0.0.1:0";
  options.grpc_listen = "127.0.0.1:0";
  options.auth_tokens = secrets.File("tokens.yaml");
  auto server = feature_server::FeatureServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string http_address = (*server)->http_address();
  httplib::Client http("127.0.0.1", std::stoi(http_address.substr(http_address.rfind(':') + 1)));
  auto call = [&](const std::string& path, const std::string& token, const std::string& body) {
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    auto res = http.Post(path, headers, body, "application/json");
    EXPECT_TRUE(res) << path;
    return res ? std::make_pair(res->status, res->body) : std::make_pair(0, std::string());
  };
  const std::string read_public = R"({"entities": {"user_id": ["u3"]}, "features": ["public_stats:clicks"]})";
  const std::string read_pii = R"({"entities": {"user_id": ["u3"]}, "features": ["pii_stats:email"]})";
  const std::string write = R"({"feature_view_name": "public_stats", "df": {"user_id": ["u3"],
                               "ts": ["2026-12-02T00:00:00Z"], "clicks": [42]}})";

  EXPECT_EQ(call("/get-online-features", "", read_public),
            std::make_pair(401, std::string(R"({"detail":"Missing authentication token"})")));
  EXPECT_EQ(call("/get-online-features", "nope", read_public),
            std::make_pair(401, std::string(R"({"detail":"Invalid or expired access token"})")));
  auto r = call("/get-online-features", "alice-token", read_public);
  EXPECT_EQ(r.first, 200) << r.second;
  EXPECT_NE(r.second.find(R"("values":[3])"), std::string::npos) << r.second;
  r = call("/get-online-features", "alice-token", read_pii);
  EXPECT_EQ(r.first, 403) << r.second;
  EXPECT_NE(r.second.find("FeastPermissionError"), std::string::npos) << r.second;
  EXPECT_EQ(r.second.find("secret"), std::string::npos) << r.second;
  r = call("/get-online-features", "bob-token", read_pii);
  EXPECT_EQ(r.first, 200) << r.second;
  EXPECT_NE(r.second.find(R"("values":["secret3"])"), std::string::npos) << r.second;
  EXPECT_EQ(call("/write-to-online-store", "alice-token", write).first, 403);
  EXPECT_EQ(call("/materialize", "alice-token", R"({"start_ts": "2020-01-01", "end_ts": "2030-01-01"})").first, 403);
  EXPECT_EQ(call("/write-to-online-store", "carol-token", write).first, 200);
  r = call("/get-online-features", "alice-token", read_public);
  EXPECT_NE(r.second.find(R"("values":[42])"), std::string::npos) << r.second;  // carol's write landed
  auto health = http.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);  // no token needed, as Feast's

  // gRPC: the `authorization` metadata.
  auto grpc_call = [&](const std::string& token, const std::string& view_feature) {
    grpc::Status status;
    RawCall((*server)->grpc_address(), kGetOnlineFeatures, OneRowRequest(view_feature, "u3"), &status, token);
    return status.error_code();
  };
  EXPECT_EQ(grpc_call("", "public_stats:clicks"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(grpc_call("nope", "public_stats:clicks"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(grpc_call("alice-token", "public_stats:clicks"), grpc::StatusCode::OK);
  EXPECT_EQ(grpc_call("alice-token", "pii_stats:email"), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(grpc_call("bob-token", "pii_stats:email"), grpc::StatusCode::OK);
  (*server)->Stop();

  // A token file that does not parse stops the server from starting.
  std::ofstream(secrets.File("bad.yaml")) << "tokens: [{user: nobody}]\n";
  options.auth_tokens = secrets.File("bad.yaml");
  auto bad = feature_server::FeatureServer::Start(options);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();
}

// TLS with scripts/gen-certs.sh's CA: HTTPS and gRPC over TLS work with a
// client certificate; plaintext to the TLS ports fails; mutual TLS refuses a
// client without a certificate.
TEST(FeatureServerTls, HttpsAndGrpcWithMutualTls) {
  TempDir certs;
  auto gen = quiver::testing::Run({"bash", SourceDir() + "/scripts/gen-certs.sh", certs.path()});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  auto repo = RepoWithUsersParquet(
      "SELECT 'u' || i AS user_id, TIMESTAMP '2026-12-01 10:00:00' AS ts, i::BIGINT AS clicks FROM range(5) t(i)");
  ASSERT_TRUE(repo.ok()) << repo.status();
  std::ofstream((*repo)->File("repo.yaml"))
      << "project: tls\n"
         "entities:\n  - {name: user, join_key: user_id, value_type: STRING}\n"
         "sources:\n  - {name: users, path: data/users.parquet, timestamp_field: ts}\n"
         "feature_views:\n"
         "  - {name: stats, entities: [user], ttl: 0, source: users, schema: [{name: clicks, type: INT64}]}\n";
  auto cluster = LocalCluster::Up(1, 1);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_EQ((*cluster)->Ctl({"apply", (*repo)->path()}).exit_code, 0);
  ASSERT_EQ((*cluster)->Ctl({"materialize", "2020-01-01", "2030-01-01"}).exit_code, 0);
  feature_server::ServerOptions options;
  options.coordinator = (*cluster)->coordinator();
  options.http_listen = "127.0.0.1:0";
  options.grpc_listen = "127.0.0.1:0";
  options.tls_cert = certs.File("server.pem");
  options.tls_key = certs.File("server-key.pem");
  options.tls_client_ca = certs.File("ca.pem");
  auto server = feature_server::FeatureServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string http_address = (*server)->http_address();
  const int port = std::stoi(http_address.substr(http_address.rfind(':') + 1));
  const std::string body = R"({"entities": {"user_id": ["u3"]}, "features": ["stats:clicks"]})";

  httplib::SSLClient https("127.0.0.1", port, certs.File("client.pem"), certs.File("client-key.pem"));
  https.set_ca_cert_path(certs.File("ca.pem").c_str());
  https.enable_server_certificate_verification(true);
  auto res = https.Post("/get-online-features", body, "application/json");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find(R"("values":[3])"), std::string::npos) << res->body;
  // No client certificate: the handshake fails.
  httplib::SSLClient anonymous("127.0.0.1", port);
  anonymous.set_ca_cert_path(certs.File("ca.pem").c_str());
  anonymous.enable_server_certificate_verification(true);
  EXPECT_FALSE(anonymous.Post("/get-online-features", body, "application/json"));
  // Plaintext to the TLS port fails.
  httplib::Client plain("127.0.0.1", port);
  auto plain_res = plain.Post("/get-online-features", body, "application/json");
  EXPECT_TRUE(!plain_res || plain_res->status != 200);

  auto read_file = [](const std::string& path) { return ReadFile(path); };
  auto grpc_status = [&](std::shared_ptr<grpc::ChannelCredentials> credentials) {
    grpc::Status status;
    RawCall((*server)->grpc_address(), kGetOnlineFeatures, OneRowRequest("stats:clicks", "u3"), &status, "",
            credentials, /*deadline_s=*/5);
    return status.error_code();
  };
  grpc::SslCredentialsOptions mutual;
  mutual.pem_root_certs = read_file(certs.File("ca.pem"));
  mutual.pem_private_key = read_file(certs.File("client-key.pem"));
  mutual.pem_cert_chain = read_file(certs.File("client.pem"));
  EXPECT_EQ(grpc_status(grpc::SslCredentials(mutual)), grpc::StatusCode::OK);
  grpc::SslCredentialsOptions no_cert;
  no_cert.pem_root_certs = mutual.pem_root_certs;
  EXPECT_NE(grpc_status(grpc::SslCredentials(no_cert)), grpc::StatusCode::OK);
  EXPECT_NE(grpc_status(grpc::InsecureChannelCredentials()), grpc::StatusCode::OK);
  (*server)->Stop();

  // Off loopback without TLS: refused unless --insecure; a key that does not load: refused.
  options.tls_cert = options.tls_key = options.tls_client_ca = "";
  options.http_listen = "0.0.0.0:0";
  auto open = feature_server::FeatureServer::Start(options);
  EXPECT_EQ(open.status().code(), absl::StatusCode::kInvalidArgument) << open.status();
  options.http_listen = "127.0.0.1:0";
  options.tls_cert = certs.File("server.pem");
  options.tls_key = certs.File("client-key.pem");  // not the certificate's key
  auto mismatched = feature_server::FeatureServer::Start(options);
  EXPECT_EQ(mismatched.status().code(), absl::StatusCode::kInvalidArgument) << mismatched.status();
}

TEST(FeatureServerBinary, RefusesBadFlags) {
  auto r = quiver::testing::Run({BinDir() + "/quiver-feature-server", "--bogus", "1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("bogus"), std::string::npos) << r.err;
  r = quiver::testing::Run({BinDir() + "/quiver-feature-server", "--coordinator", "127.0.0.1:1", "--http-listen",
           "not-an-address"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("quiver-feature-server:"), std::string::npos) << r.err;
  r = quiver::testing::Run({BinDir() + "/quiver-feature-server", "--coordinator", "127.0.0.1:1",
                            "--http-listen", "0.0.0.0:0"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("without TLS"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace quiver::testing
