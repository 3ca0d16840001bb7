// Bad input gets a clear error and a non-zero exit (or an error status), and
// neither the registry nor the stored rows change.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "flights_util.h"
#include "harness.h"

namespace quiver::testing {
namespace {
namespace fs = std::filesystem;

// A one-view repository over a small Parquet file written by DuckDB.
class BadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto c = LocalCluster::Up(3, 2);
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = c->release();
    auto repo = RepoWithUsersParquet(
        "SELECT 'u' || (i % 50) AS user_id, TIMESTAMP '2026-01-01' + to_seconds(i) AS ts, "
        "i AS clicks, (i * 0.5)::DOUBLE AS score FROM range(1000) t(i)");
    ASSERT_TRUE(repo.ok()) << repo.status();
    repo_ = repo->release();
    WriteRepo("repo.yaml", GoodYaml());
    auto apply = cluster_->Ctl({"apply", repo_->path()});
    ASSERT_EQ(apply.exit_code, 0) << apply.out << apply.err;
    auto mat = cluster_->Ctl({"materialize", "2025-01-01", "2027-01-01"});
    ASSERT_EQ(mat.exit_code, 0) << mat.err;
  }
  static void TearDownTestSuite() {
    delete cluster_;
    delete repo_;
  }

  static std::string GoodYaml(const std::string& clicks_type = "INT64",
                              const std::string& ts_field = "ts",
                              const std::string& path = "data/users.parquet") {
    return absl::StrCat(
        "project: bad_input\n"
        "entities:\n  - {name: user, join_key: user_id, value_type: STRING}\n"
        "sources:\n  - {name: users, path: ", path, ", timestamp_field: ", ts_field, "}\n",
        "feature_views:\n  - name: user_stats\n    entities: [user]\n    ttl: 0\n"
        "    source: users\n    schema:\n      - {name: clicks, type: ", clicks_type, "}\n",
        "      - {name: score, type: DOUBLE}\n");
  }
  static void WriteRepo(const std::string& file, const std::string& text) {
    for (const auto& e : fs::directory_iterator(repo_->path())) {
      if (e.path().extension() == ".yaml") fs::remove(e.path());
    }
    std::ofstream(repo_->File(file)) << text;
  }

  // The registry and a recount of stored rows, to prove nothing changed.
  std::string Snapshot() {
    auto dump = cluster_->Ctl({"registry-dump"});
    EXPECT_EQ(dump.exit_code, 0) << dump.err;
    auto client = cluster_->Connect();
    EXPECT_TRUE(client.ok()) << client.status();
    client::OnlineRequest req;
    req.features = {"user_stats:clicks", "user_stats:score"};
    for (int i = 0; i < 50; ++i) {
      req.entity_rows.push_back({{"user_id", Value::String(absl::StrCat("u", i))}});
    }
    auto resp = (*client)->GetOnlineFeatures(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    std::string rows;
    for (const auto& row : resp->rows) {
      for (const auto& f : row) {
        AppendJson(f.value, &rows);
        rows += absl::StrCat(":", f.event_ts_us, ";");
      }
    }
    return dump.out + "\n" + rows;
  }

  // The command fails with exit code 1 and a message containing `what`,
  // and nothing changed.
  void ExpectRejected(const std::vector<std::string>& args, const std::string& what) {
    const std::string before = Snapshot();
    auto r = cluster_->Ctl(args);
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_NE(r.exit_code, 128 + SIGSEGV);
    EXPECT_NE(r.err.find(what), std::string::npos) << "stderr: " << r.err;
    EXPECT_EQ(Snapshot(), before);
  }

  static LocalCluster* cluster_;
  static TempDir* repo_;
};
LocalCluster* BadInputTest::cluster_ = nullptr;
TempDir* BadInputTest::repo_ = nullptr;

TEST_F(BadInputTest, StoredRowsMatchDuckDb) {
  auto expected = DuckQuery(absl::StrCat(
      "SELECT count(*) FILTER (WHERE clicks >= 950) FROM (SELECT user_id, arg_max(i, ts) AS "
      "clicks FROM (SELECT 'u' || (i % 50) AS user_id, i, TIMESTAMP '2026-01-01' + to_seconds(i) "
      "AS ts FROM range(1000) t(i)) GROUP BY user_id)"));
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ((*expected)[0][0].text, "50");  // every user's latest click count is >= 950
  const std::string snap = Snapshot();
  for (int i = 0; i < 50; ++i) {
    EXPECT_NE(snap.find(absl::StrCat(950 + i, ":")), std::string::npos) << i;
  }
}

TEST_F(BadInputTest, MalformedYaml) {
  WriteRepo("repo.yaml", "project: bad_input\nentities: [ {name: user\n");
  ExpectRejected({"apply", repo_->path()}, "repo.yaml");
  WriteRepo("repo.yaml", GoodYaml());
}

TEST_F(BadInputTest, UnknownTypeInSchema) {
  WriteRepo("repo.yaml", GoodYaml("DECIMAL"));
  ExpectRejected({"apply", repo_->path()}, "DECIMAL");
  WriteRepo("repo.yaml", GoodYaml());
}

TEST_F(BadInputTest, ParquetColumnTypeDoesNotMatchSchema) {
  WriteRepo("repo.yaml", GoodYaml("INT32"));  // the column is BIGINT: no silent narrowing
  ExpectRejected({"apply", repo_->path()}, "clicks");
  WriteRepo("repo.yaml", GoodYaml());
}

TEST_F(BadInputTest, MissingTimestampColumn) {
  WriteRepo("repo.yaml", GoodYaml("INT64", "event_time"));
  ExpectRejected({"apply", repo_->path()}, "event_time");
  WriteRepo("repo.yaml", GoodYaml());
}

TEST_F(BadInputTest, MissingFile) {
  WriteRepo("repo.yaml", GoodYaml("INT64", "ts", "data/nope.parquet"));
  ExpectRejected({"apply", repo_->path()}, "nope.parquet");
  WriteRepo("repo.yaml", GoodYaml());
}

TEST_F(BadInputTest, MaterializeOverCorruptOrRetypedFile) {
  const fs::path file = repo_->File("data/users.parquet");
  const fs::path saved = repo_->File("users.saved");
  fs::copy_file(file, saved, fs::copy_options::overwrite_existing);
  // The same column with another type, after apply: refused at materialization.
  auto made = DuckQuery(absl::StrCat(
      "COPY (SELECT 'u1' AS user_id, TIMESTAMP '2026-06-01' AS ts, 'many' AS clicks, 1.0 AS "
      "score) TO '", file.string(), "' (FORMAT PARQUET)"));
  ASSERT_TRUE(made.ok());
  ExpectRejected({"materialize", "2025-01-01", "2027-01-01"}, "clicks");
  // A truncated file.
  fs::resize_file(file, 100);
  ExpectRejected({"materialize", "2025-01-01", "2027-01-01"}, "users.parquet");
  fs::copy_file(saved, file, fs::copy_options::overwrite_existing);
}

TEST_F(BadInputTest, UnknownFeatureReference) {
  std::ofstream(repo_->File("e.csv")) << "user_id\nu1\n";
  ExpectRejected({"get-online", "--features", "user_stats:nope", "--entities",
                  repo_->File("e.csv")},
                 "user_stats:nope");
  ExpectRejected({"get-online", "--features", "no_view:clicks", "--entities",
                  repo_->File("e.csv")},
                 "no_view");
}

TEST_F(BadInputTest, EntityCsvWithUnknownJoinKey) {
  std::ofstream(repo_->File("bad.csv")) << "customer\nu1\n";
  ExpectRejected({"get-online", "--features", "user_stats:clicks", "--entities",
                  repo_->File("bad.csv")},
                 "customer");
}

TEST_F(BadInputTest, UnknownEntityKeyIsNotFound) {
  std::ofstream(repo_->File("e.csv")) << "user_id\nnobody\n";
  auto r = cluster_->Ctl({"get-online", "--features", "user_stats:clicks", "--entities",
                          repo_->File("e.csv")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "{\"user_id\":\"nobody\",\"features\":{\"user_stats:clicks\":{\"value\":null,"
            "\"status\":\"NOT_FOUND\",\"event_timestamp\":null}}}\n");
}

TEST_F(BadInputTest, OversizedRequestIsRefused) {
  client::ClientOptions opts;
  opts.max_entity_rows = 100;
  auto client = cluster_->Connect(opts);
  ASSERT_TRUE(client.ok());
  client::OnlineRequest req;
  req.features = {"user_stats:clicks"};
  for (int i = 0; i < 101; ++i) req.entity_rows.push_back({{"user_id", Value::String("u1")}});
  EXPECT_EQ((*client)->GetOnlineFeatures(req).status().code(),
            absl::StatusCode::kInvalidArgument);
  // An entity key over the size limit.
  req.entity_rows = {{{"user_id", Value::String(std::string(10000, 'x'))}}};
  EXPECT_EQ((*client)->GetOnlineFeatures(req).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(BadInputTest, GarbageOnEveryPortCrashesNothing) {
  const std::string before = Snapshot();
  const std::vector<std::string> addresses = cluster_->AllListeningAddresses();
  ASSERT_EQ(addresses.size(), 8u);  // coordinator and 3 nodes, each gRPC + /metrics
  std::mt19937 rng(42);
  for (const auto& addr : addresses) {
    const int port = std::stoi(addr.substr(addr.rfind(':') + 1));
    for (int attempt = 0; attempt < 5; ++attempt) {
      const int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(port);
      inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
      ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0) << addr;
      std::string junk(4096 * (attempt + 1), '\0');
      for (auto& ch : junk) ch = static_cast<char>(rng());
      if (attempt == 0) junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
      (void)!write(fd, junk.data(), junk.size());
      close(fd);
    }
  }
  ASSERT_TRUE(cluster_->WaitUp(3, 10).ok());
  EXPECT_EQ(Snapshot(), before);
}

}  // namespace
}  // namespace quiver::testing
