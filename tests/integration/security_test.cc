// Tokens, Feast's permissions and TLS on the cluster's own ports (issue 13):
// a cluster started by `deploy/local/cluster up --tls --auth` (mutual TLS on
// every listener, tokens on every call) and one with tokens only (the lean
// lookup port in plaintext). Readers, a PII reader, a writer and the admin
// use the C++ client, quiverctl and raw gRPC stubs against the nodes; values
// are checked against DuckDB's reading of the same Parquet file.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>

#include <fstream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "harness.h"
#include "quiver.grpc.pb.h"
#include "quiver/keys/entity_key.h"

namespace quiver::testing {
namespace {

constexpr int kUsers = 200;

// Tokens the test hands out (the cluster's own token has the cluster role).
constexpr char kClusterToken[] = "cluster-secret-token";
constexpr char kAdminToken[] = "admin-token";
constexpr char kReaderToken[] = "reader-token";
constexpr char kPiiToken[] = "pii-reader-token";
constexpr char kWriterToken[] = "writer-token";

void WriteTokens(const std::filesystem::path& dir) {
  std::ofstream(dir / "tokens.yaml")
      << "tokens:\n"
      << "  - {token: \"" << kClusterToken << "\", user: quiver, roles: [\"quiver:cluster\"]}\n"
      << "  - {token: \"" << kAdminToken << "\", user: admin, roles: [admin]}\n"
      << "  - {token: \"" << kReaderToken << "\", user: alice, roles: [reader]}\n"
      << "  - {token: \"" << kPiiToken << "\", user: bob, roles: [reader, pii_reader]}\n"
      << "  - {token: \"" << kWriterToken << "\", user: carol, roles: [writer]}\n";
  std::ofstream(dir / "cluster.token") << kClusterToken << "\n";
  std::ofstream(dir / "admin.token") << kAdminToken << "\n";
}

// Two views over one file: `profile` is public, `contact` is tagged PII.
std::unique_ptr<TempDir> MakeRepo() {
  auto repo = RepoWithUsersParquet(absl::StrCat(
      "SELECT 'u' || i AS user_id, TIMESTAMP '2026-12-01 10:00:00' + to_seconds(i) AS ts, "
      "i::BIGINT * 3 AS age, 'mail' || i || '@example.com' AS email FROM range(",
      kUsers, ") t(i)"));
  EXPECT_TRUE(repo.ok()) << repo.status();
  if (!repo.ok()) return nullptr;
  std::ofstream((*repo)->File("repo.yaml"))
      << "project: secure\n"
         "entities:\n  - {name: user, join_key: user_id, value_type: STRING}\n"
         "sources:\n  - {name: users, path: data/users.parquet, timestamp_field: ts}\n"
         "feature_views:\n"
         "  - {name: profile, entities: [user], ttl: 0, source: users,"
         " schema: [{name: age, type: INT64}]}\n"
         "  - {name: contact, entities: [user], ttl: 0, source: users, tags: {pii: \"true\"},"
         " schema: [{name: email, type: STRING}]}\n"
         "permissions:\n"
         "  - {name: admin_all, types: [PROJECT, FEATURE_VIEW], actions: [CREATE, UPDATE, DELETE,"
         " DESCRIBE, READ_ONLINE, WRITE_ONLINE], policy: {roles: [admin]}}\n"
         "  - {name: public_read, types: [FEATURE_VIEW], name_patterns: [profile],"
         " actions: [READ_ONLINE], policy: {roles: [reader]}}\n"
         "  - {name: pii_only_for_pii_readers, types: [FEATURE_VIEW], required_tags: {pii: \"true\"},"
         " actions: [READ_ONLINE], policy: {roles: [pii_reader]}}\n"
         "  - {name: writers, types: [FEATURE_VIEW], name_patterns: [profile],"
         " actions: [WRITE_ONLINE], policy: {roles: [writer]}}\n";
  return *std::move(repo);
}

// DuckDB's answer: user_id -> (age, email).
std::map<std::string, std::pair<int64_t, std::string>> Expected(const TempDir& repo) {
  std::map<std::string, std::pair<int64_t, std::string>> out;
  auto rows = DuckQuery(absl::StrCat("SELECT user_id, age, email FROM '", repo.File("data/users.parquet"), "'"));
  EXPECT_TRUE(rows.ok()) << rows.status();
  if (!rows.ok()) return out;
  for (const auto& r : *rows) out[r[0].text] = {std::stoll(r[1].text), r[2].text};
  return out;
}

client::OnlineRequest Lookup(const std::string& feature, int users) {
  client::OnlineRequest request;
  request.features = {feature};
  for (int i = 0; i < users; ++i) request.entity_rows.push_back({{"user_id", Value::String(absl::StrCat("u", i))}});
  return request;
}

security::ClientSecurity Tls(const LocalCluster& cluster, const std::string& token, bool client_cert = true) {
  security::ClientSecurity s;
  const auto certs = cluster.dir() / "certs";
  s.tls.ca = (certs / "ca.pem").string();
  if (client_cert) {
    s.tls.cert = (certs / "client.pem").string();
    s.tls.key = (certs / "client-key.pem").string();
  }
  s.token = token;
  return s;
}

// Every value of `feature` for the first kUsers users equals DuckDB's.
void ExpectValues(client::Client& client, const std::string& feature, const TempDir& repo) {
  auto want = Expected(repo);
  auto response = client.GetOnlineFeatures(Lookup(feature, kUsers));
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->rows.size(), static_cast<size_t>(kUsers));
  for (int i = 0; i < kUsers; ++i) {
    const auto& cell = response->rows[i][0];
    const auto& w = want.at(absl::StrCat("u", i));
    ASSERT_EQ(cell.status, client::FeatureStatus::kPresent) << i;
    if (feature == "profile:age") {
      EXPECT_EQ(cell.value, Value::Int64(w.first)) << i;
    } else {
      EXPECT_EQ(cell.value, Value::String(w.second)) << i;
    }
  }
}

class SecureClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // OpenSSL writes to sockets the server closed (the refused handshakes
    // below): an error, not a signal, for this process.
    signal(SIGPIPE, SIG_IGN);
    repo_ = MakeRepo();
    ASSERT_NE(repo_, nullptr);
    auto cluster = LocalCluster::Up(2, 2, 64, {"--tls", "--auth"}, WriteTokens);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    // quiverctl carries the admin token and the client certificate
    // (DIR/quiverctl.args, which `cluster up` wrote).
    auto apply = cluster_->Ctl({"apply", repo_->path()});
    ASSERT_EQ(apply.exit_code, 0) << apply.out << apply.err;
    auto mat = cluster_->Ctl({"materialize", "2020-01-01", "2030-01-01"});
    ASSERT_EQ(mat.exit_code, 0) << mat.out << mat.err;
  }

  absl::StatusOr<std::unique_ptr<client::Client>> Connect(const std::string& token, bool client_cert = true) {
    client::ClientOptions options;
    options.security = Tls(*cluster_, token, client_cert);
    return cluster_->Connect(options);
  }

  // A raw NodeService stub to node 1 over TLS with the client certificate.
  std::unique_ptr<quiver::v1::NodeService::Stub> NodeStub() {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFile(cluster_->dir() / "certs/ca.pem");
    ssl.pem_cert_chain = ReadFile(cluster_->dir() / "certs/client.pem");
    ssl.pem_private_key = ReadFile(cluster_->dir() / "certs/client-key.pem");
    return quiver::v1::NodeService::NewStub(grpc::CreateChannel(cluster_->NodeAddress(1), grpc::SslCredentials(ssl)));
  }

  std::unique_ptr<TempDir> repo_;
  std::unique_ptr<LocalCluster> cluster_;
};

TEST_F(SecureClusterTest, ReadersSeeWhatTheirRolesAllowOverMutualTls) {
  auto reader = Connect(kReaderToken);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ExpectValues(**reader, "profile:age", *repo_);
  auto denied = (*reader)->GetOnlineFeatures(Lookup("contact:email", 5));
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied) << denied.status();

  auto pii = Connect(kPiiToken);
  ASSERT_TRUE(pii.ok()) << pii.status();
  ExpectValues(**pii, "contact:email", *repo_);
  ExpectValues(**pii, "profile:age", *repo_);
}

TEST_F(SecureClusterTest, WritesNeedWriteOnline) {
  auto reader = Connect(kReaderToken);
  ASSERT_TRUE(reader.ok()) << reader.status();
  client::WriteRowInput row;
  row.entity = {{"user_id", Value::String("u1")}};
  row.event_ts_us = NowMicros();
  row.created_ts_us = row.event_ts_us;
  row.values = {Value::Int64(999)};
  absl::Status refused = (*reader)->Push("profile", {row});
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied) << refused;

  auto writer = Connect(kWriterToken);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Push("profile", {row}).ok());
  // The write landed (read back by the PII reader, who may read profile).
  auto pii = Connect(kPiiToken);
  ASSERT_TRUE(pii.ok()) << pii.status();
  auto back = (*pii)->GetOnlineFeatures(Lookup("profile:age", 2));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->rows[1][0].value, Value::Int64(999));
  EXPECT_EQ(back->rows[0][0].value, Value::Int64(0));
  // The writer may not write the PII view.
  client::WriteRowInput contact = row;
  contact.values = {Value::String("x@example.com")};
  EXPECT_EQ((*writer)->Push("contact", {contact}).code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(SecureClusterTest, NodePortsAuthenticateAndAuthorizeEveryCall) {
  auto stub = NodeStub();
  quiver::v1::GetRequest request;
  auto* lookup = request.add_lookups();
  lookup->set_view("contact");
  auto key = EncodeEntityKey({KeyPart{"user_id", Value::String("u1")}});
  ASSERT_TRUE(key.ok());
  lookup->add_entity_keys(*key);
  const auto call = [&](const std::string& token) {
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    quiver::v1::GetResponse response;
    return stub->Get(&ctx, request, &response).error_code();
  };
  EXPECT_EQ(call(""), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call("not-a-token"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call(kReaderToken), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(call(kPiiToken), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(call(kPiiToken), grpc::StatusCode::UNAUTHENTICATED);

  // Cluster-internal calls: not even the admin may adopt a map.
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kAdminToken));
  quiver::v1::AdoptMapResponse adopted;
  EXPECT_EQ(stub->AdoptMap(&ctx, quiver::v1::AdoptMapRequest(), &adopted).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // Backups read everything: PROJECT UPDATE (the admin), not a reader.
  grpc::ClientContext backup_ctx;
  backup_ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kReaderToken));
  quiver::v1::BackupResponse backup;
  EXPECT_EQ(stub->Backup(&backup_ctx, quiver::v1::BackupRequest(), &backup).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(SecureClusterTest, OperatorActionsNeedTheProject) {
  std::ofstream(cluster_->dir() / "reader.token") << kReaderToken << "\n";
  const auto certs = cluster_->dir() / "certs";
  const std::vector<std::string> as_reader = {
      BinDir() + "/quiverctl", "--coordinator", cluster_->coordinator(), "--tls-ca",
      (certs / "ca.pem").string(), "--tls-cert", (certs / "client.pem").string(), "--tls-key",
      (certs / "client-key.pem").string(), "--token-file", (cluster_->dir() / "reader.token").string()};
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"apply", repo_->path()}, {"nodes", "drain", "1"}, {"nodes", "remove", "1"},
        {"materialize", "2020-01-01", "2030-01-01"}}) {
    std::vector<std::string> argv = as_reader;
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = quiver::testing::Run(argv, 60);
    EXPECT_EQ(r.exit_code, 1) << args[1] << ": " << r.out << r.err;
    EXPECT_NE(r.err.find("Permission error"), std::string::npos) << args[1] << ": " << r.err;
  }
  // Reads of the map are any authenticated identity's.
  std::vector<std::string> nodes = as_reader;
  nodes.push_back("nodes");
  const auto listed = quiver::testing::Run(nodes, 60);
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("UP"), std::string::npos) << listed.out;
  // Without a token nothing at all.
  const auto anonymous = quiver::testing::Run({BinDir() + "/quiverctl", "--coordinator", cluster_->coordinator(), "--tls-ca",
                              (certs / "ca.pem").string(), "--tls-cert", (certs / "client.pem").string(),
                              "--tls-key", (certs / "client-key.pem").string(), "nodes"},
                             60);
  EXPECT_EQ(anonymous.exit_code, 1);
  EXPECT_NE(anonymous.err.find("Missing authentication token"), std::string::npos) << anonymous.err;
}

TEST_F(SecureClusterTest, TlsRefusesPlaintextAndClientsWithoutCertificates) {
  // No token: the client cannot even fetch the map.
  auto anonymous = Connect("");
  ASSERT_FALSE(anonymous.ok());
  EXPECT_EQ(anonymous.status().code(), absl::StatusCode::kUnauthenticated) << anonymous.status();
  // Mutual TLS: a client without a certificate is refused by the handshake.
  auto no_cert = Connect(kReaderToken, /*client_cert=*/false);
  EXPECT_FALSE(no_cert.ok());
  // Plaintext to the TLS ports fails (coordinator, node).
  for (const std::string& address : {cluster_->coordinator(), cluster_->NodeAddress(1)}) {
    auto plain = quiver::v1::NodeService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    quiver::v1::HealthResponse health;
    EXPECT_NE(plain->Health(&ctx, quiver::v1::HealthRequest(), &health).error_code(), grpc::StatusCode::OK)
        << address;
  }
  // /metrics is HTTPS with client certificates too; the nodes' counters show
  // the client's lookups took the lean port (over TLS).
  auto pii = Connect(kPiiToken);
  ASSERT_TRUE(pii.ok()) << pii.status();
  ExpectValues(**pii, "contact:email", *repo_);
  std::vector<std::string> metrics_addresses;
  for (const auto& address : cluster_->AllListeningAddresses()) {
    if (address != cluster_->coordinator() && address != cluster_->NodeAddress(1) &&
        address != cluster_->NodeAddress(2)) {
      metrics_addresses.push_back(address);
    }
  }
  ASSERT_EQ(metrics_addresses.size(), 3u);
  bool lean_served = false;
  for (const auto& address : metrics_addresses) {
    httplib::SSLClient scrape(address.substr(0, address.rfind(':')), std::stoi(address.substr(address.rfind(':') + 1)),
                              (cluster_->dir() / "certs/client.pem").string(),
                              (cluster_->dir() / "certs/client-key.pem").string());
    scrape.set_ca_cert_path((cluster_->dir() / "certs/ca.pem").string());
    auto body = scrape.Get("/metrics");
    ASSERT_TRUE(body) << address;
    lean_served = lean_served || body->body.find("method=\"LeanGet\",outcome=\"ok\"") != std::string::npos;
  }
  EXPECT_TRUE(lean_served);
  const std::string metrics = metrics_addresses[0];
  const std::string host = metrics.substr(0, metrics.rfind(':'));
  const int port = std::stoi(metrics.substr(metrics.rfind(':') + 1));
  const auto certs = cluster_->dir() / "certs";
  httplib::SSLClient https(host, port, (certs / "client.pem").string(), (certs / "client-key.pem").string());
  https.set_ca_cert_path((certs / "ca.pem").string());
  auto scraped = https.Get("/metrics");
  ASSERT_TRUE(scraped) << httplib::to_string(scraped.error());
  EXPECT_EQ(scraped->status, 200);
  EXPECT_NE(scraped->body.find("quiver_auth_denials_total"), std::string::npos);
  httplib::Client plain(host, port);
  plain.set_connection_timeout(3);
  plain.set_read_timeout(3);
  auto refused = plain.Get("/metrics");
  EXPECT_TRUE(!refused || refused->status != 200);
  httplib::SSLClient no_cert_https(host, port);
  no_cert_https.set_ca_cert_path((certs / "ca.pem").string());
  auto refused_tls = no_cert_https.Get("/metrics");
  EXPECT_FALSE(refused_tls);
}

// The lean lookup port (plaintext cluster, tokens on): the client's
// connections authenticate once; frames without it are refused.
TEST(LeanPortAuthTest, TokensAndPermissionsOnTheLookupPort) {
  auto repo = MakeRepo();
  ASSERT_NE(repo, nullptr);
  auto cluster = LocalCluster::Up(2, 2, 64, {"--auth"}, WriteTokens);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_EQ((*cluster)->Ctl({"apply", repo->path()}).exit_code, 0);
  ASSERT_EQ((*cluster)->Ctl({"materialize", "2020-01-01", "2030-01-01"}).exit_code, 0);

  client::ClientOptions options;
  options.security.token = kReaderToken;
  ASSERT_TRUE(options.lean_lookups);
  auto reader = (*cluster)->Connect(options);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ExpectValues(**reader, "profile:age", *repo);
  auto denied = (*reader)->GetOnlineFeatures(Lookup("contact:email", 3));
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied) << denied.status();
  options.security.token = kPiiToken;
  auto pii = (*cluster)->Connect(options);
  ASSERT_TRUE(pii.ok()) << pii.status();
  ExpectValues(**pii, "contact:email", *repo);

  // A raw frame without an auth frame first: UNAUTHENTICATED, then closed.
  auto map = (*reader)->cluster_map();
  ASSERT_NE(map, nullptr);
  std::string lean;
  for (const auto& node : map->nodes()) {
    if (!node.lookup_address().empty()) lean = node.lookup_address();
  }
  ASSERT_FALSE(lean.empty());
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(lean.substr(lean.rfind(':') + 1))));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  quiver::v1::GetRequest request;
  request.add_lookups()->set_view("profile");
  const std::string body = request.SerializeAsString();
  std::string frame(9, '\0');
  for (int i = 0; i < 4; ++i) frame[i] = static_cast<char>((body.size() >> (8 * i)) & 0xff);
  frame[4] = 7;
  frame[8] = 1;  // Get
  frame += body;
  ASSERT_EQ(send(fd, frame.data(), frame.size(), 0), static_cast<ssize_t>(frame.size()));
  char header[9];
  ASSERT_EQ(recv(fd, header, sizeof(header), MSG_WAITALL), 9);
  EXPECT_EQ(static_cast<uint8_t>(header[8]), 16);  // UNAUTHENTICATED
  close(fd);
}

}  // namespace
}  // namespace quiver::testing
