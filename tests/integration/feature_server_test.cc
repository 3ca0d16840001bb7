// quiver-feature-server (issue 13): Feast's HTTP API over a real cluster.
// Values are checked against DuckDB's reading of the source; one small
// request is checked byte for byte against the body Feast's Python server
// writes (feature_server_utils.convert_response_to_dict, compact JSON as
// Starlette's JSONResponse renders it); bad requests get Feast's statuses.
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "harness.h"
#include "nlohmann/json.hpp"
#include "quiver/feature_server/server.h"

namespace quiver::testing {
namespace {

using Json = nlohmann::json;
constexpr int kUsers = 300;

class FeatureServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // user_stats (TTL 0): u0..u299 at fixed times, one row in 7 with a null
    // score; old_stats (TTL 1 day): a row two days old (OUTSIDE_MAX_AGE).
    auto repo = RepoWithUsersParquet(absl::StrCat(
        "SELECT 'u' || i AS user_id, TIMESTAMP '2026-12-01 10:00:00' + to_seconds(i) + "
        "to_milliseconds(CASE WHEN i % 3 = 1 THEN 250 ELSE 0 END) AS ts, i::BIGINT AS clicks, "
        "CASE WHEN i % 7 = 0 THEN NULL ELSE i / 4.0 END AS score, repeat('x', i % 5) AS note "
        "FROM range(", kUsers, ") t(i)"));
    ASSERT_TRUE(repo.ok()) << repo.status();
    repo_ = *std::move(repo);
    ASSERT_TRUE(DuckQuery(absl::StrCat("COPY (SELECT 'u1' AS user_id, now()::TIMESTAMP - INTERVAL 2 DAY AS ts,"
                                       " 5::BIGINT AS visits) TO '", repo_->File("data/old.parquet"),
                                       "' (FORMAT PARQUET)"))
                    .ok());
    std::ofstream(repo_->File("repo.yaml"))
        << "project: fs\n"
           "entities:\n  - {name: user, join_key: user_id, value_type: STRING}\n"
           "sources:\n  - {name: users, path: data/users.parquet, timestamp_field: ts}\n"
           "  - {name: old, path: data/old.parquet, timestamp_field: ts}\n"
           "feature_views:\n  - name: user_stats\n    entities: [user]\n    ttl: 0\n"
           "    source: users\n    schema:\n"
           "      - {name: clicks, type: INT64}\n      - {name: score, type: DOUBLE}\n"
           "      - {name: note, type: STRING}\n"
           "  - name: old_stats\n    entities: [user]\n    ttl: 1d\n    source: old\n"
           "    schema: [{name: visits, type: INT64}]\n"
           "feature_services:\n  - {name: svc, features: [user_stats:clicks, old_stats]}\n";
    auto cluster = LocalCluster::Up(2, 2);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    auto apply = cluster_->Ctl({"apply", repo_->path()});
    ASSERT_EQ(apply.exit_code, 0) << apply.out << apply.err;
    auto mat = cluster_->Ctl({"materialize", "2020-01-01", "2030-01-01"});
    ASSERT_EQ(mat.exit_code, 0) << mat.out << mat.err;
    feature_server::ServerOptions options;
    options.coordinator = cluster_->coordinator();
    options.http_listen = "127.0.0.1:0";
    auto server = feature_server::FeatureServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    const std::string address = server_->http_address();
    http_ = std::make_unique<httplib::Client>("127.0.0.1", std::stoi(address.substr(address.rfind(':') + 1)));
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }

  httplib::Result Post(const std::string& body) {
    return http_->Post("/get-online-features", body, "application/json");
  }

  std::unique_ptr<TempDir> repo_;
  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<feature_server::FeatureServer> server_;
  std::unique_ptr<httplib::Client> http_;
};

TEST_F(FeatureServerTest, GetOnlineFeaturesEqualsDuckDbOnEveryValue) {
  Json request;
  std::vector<std::string> ids;
  for (int i = 0; i < kUsers; ++i) ids.push_back(absl::StrCat("u", i));
  ids.push_back("nobody");
  request["entities"]["user_id"] = ids;
  request["features"] = {"user_stats:clicks", "user_stats:score", "user_stats:note"};
  auto res = Post(request.dump());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const Json body = Json::parse(res->body);
  EXPECT_EQ(body["metadata"]["feature_names"], Json({"user_id", "clicks", "score", "note"}));
  ASSERT_EQ(body["results"].size(), 4u);
  EXPECT_EQ(body["results"][0]["values"], Json(ids));

  auto expected = DuckQuery(absl::StrCat(
      "SELECT user_id, clicks, score, note, strftime(ts, '%Y-%m-%dT%H:%M:%S') || "
      "CASE WHEN epoch_ms(ts) % 1000 = 0 THEN '' ELSE '.' || lpad((epoch_ms(ts) % 1000)::VARCHAR, 3, '0') END"
      " || 'Z' FROM '", repo_->File("data/users.parquet"), "'"));
  ASSERT_TRUE(expected.ok()) << expected.status();
  std::map<std::string, std::vector<Cell>> want;
  for (auto& row : *expected) want[row[0].text] = row;
  int null_scores = 0, fractions = 0;
  for (size_t r = 0; r < ids.size(); ++r) {
    SCOPED_TRACE(ids[r]);
    EXPECT_EQ(body["results"][0]["statuses"][r], "PRESENT");
    EXPECT_EQ(body["results"][0]["event_timestamps"][r], "1970-01-01T00:00:00Z");
    auto it = want.find(ids[r]);
    for (int c = 1; c <= 3; ++c) {
      const Json& column = body["results"][c];
      if (it == want.end()) {
        EXPECT_EQ(column["statuses"][r], "NOT_FOUND");
        EXPECT_TRUE(column["values"][r].is_null());
        EXPECT_EQ(column["event_timestamps"][r], "1970-01-01T00:00:00Z");
        continue;
      }
      const Cell& cell = it->second[static_cast<size_t>(c)];
      EXPECT_EQ(column["event_timestamps"][r], it->second[4].text);
      fractions += c == 1 && it->second[4].text.find('.') != std::string::npos;
      if (cell.is_null) {
        ++null_scores;
        EXPECT_EQ(column["statuses"][r], "NULL_VALUE");
        EXPECT_TRUE(column["values"][r].is_null());
        continue;
      }
      EXPECT_EQ(column["statuses"][r], "PRESENT");
      switch (c) {
        case 1: EXPECT_EQ(column["values"][r].get<int64_t>(), std::stoll(cell.text)); break;
        case 2: EXPECT_EQ(column["values"][r].get<double>(), std::stod(cell.text)); break;
        case 3: EXPECT_EQ(column["values"][r].get<std::string>(), cell.text); break;
      }
    }
  }
  EXPECT_EQ(null_scores, (kUsers + 6) / 7);
  EXPECT_EQ(fractions, kUsers / 3);  // millisecond timestamps print .mmm
}

TEST_F(FeatureServerTest, BodiesAreFeastsByteForByte) {
  // Feast's Python server: join keys first (PRESENT, epoch 0), compact JSON,
  // key order results, metadata.
  auto res = Post(R"({"entities": {"user_id": ["u1", "nobody"]},
                      "features": ["user_stats:clicks", "user_stats:score"]})");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(res->body,
            R"({"results":[{"values":["u1","nobody"],"statuses":["PRESENT","PRESENT"],)"
            R"("event_timestamps":["1970-01-01T00:00:00Z","1970-01-01T00:00:00Z"]},)"
            R"({"values":[1,null],"statuses":["PRESENT","NOT_FOUND"],)"
            R"("event_timestamps":["2026-12-01T10:00:01.250Z","1970-01-01T00:00:00Z"]},)"
            R"({"values":[0.25,null],"statuses":["PRESENT","NOT_FOUND"],)"
            R"("event_timestamps":["2026-12-01T10:00:01.250Z","1970-01-01T00:00:00Z"]}],)"
            R"("metadata":{"feature_names":["user_id","clicks","score"]}})");

  // A feature service, full feature names, a row past its TTL.
  res = Post(R"({"entities": {"user_id": ["u1"]}, "feature_service": "svc", "full_feature_names": true})");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const Json body = Json::parse(res->body);
  EXPECT_EQ(body["metadata"]["feature_names"], Json({"user_id", "user_stats__clicks", "old_stats__visits"}));
  EXPECT_EQ(body["results"][2]["statuses"][0], "OUTSIDE_MAX_AGE");

  auto health = http_->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(FeatureServerTest, BadRequestsGetFeastsStatuses) {
  struct Case {
    std::string body;
    int status;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {"not json", 422, R"("type":"json_invalid")"},
      {"[1, 2]", 422, "valid dictionary"},
      {R"({"features": ["user_stats:clicks"]})", 422, R"("loc":["body","entities"])"},
      {R"({"entities": {"user_id": "u1"}, "features": ["user_stats:clicks"]})", 422, "valid list"},
      {R"({"entities": {"user_id": ["u1"]}, "features": [3]})", 422, "valid string"},
      {R"({"entities": {"user_id": [1]}, "features": ["user_stats:clicks"]})", 400,
       "column user_id, row 0: 1 is not a string"},
      {R"({"entities": {"user_id": ["u1"], "other": [1, 2]}, "features": ["user_stats:clicks"]})", 400,
       "different lengths"},
      {R"({"entities": {"user_id": ["u1"]}})", 400, "features"},
      {R"({"entities": {"user_id": []}, "features": ["user_stats:clicks"]})", 400, "no entity rows"},
      {R"({"entities": {"user_id": ["u1"]}, "features": ["nope:clicks"]})", 404,
       R"(\"class\": \"FeatureViewNotFoundException\")"},
      {R"({"entities": {"user_id": ["u1"]}, "feature_service": "nope"})", 404,
       "FeatureServiceNotFoundException"},
  };
  for (const Case& c : cases) {
    auto res = Post(c.body);
    ASSERT_TRUE(res) << c.body;
    EXPECT_EQ(res->status, c.status) << c.body << " -> " << res->body;
    EXPECT_NE(res->body.find(c.needle), std::string::npos) << c.body << " -> " << res->body;
  }
  // Feast's error body is a JSON string holding the detail object.
  auto res = Post(R"({"entities": {"user_id": ["u1"]}, "features": ["nope:clicks"]})");
  ASSERT_TRUE(res);
  const Json outer = Json::parse(res->body);
  ASSERT_TRUE(outer.is_string());
  const Json detail = Json::parse(outer.get<std::string>());
  EXPECT_EQ(detail["module"], "feast.errors");
  EXPECT_NE(detail["message"].get<std::string>().find("nope"), std::string::npos);
  // Still serving after all that.
  res = Post(R"({"entities": {"user_id": ["u2"]}, "features": ["user_stats:clicks"]})");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST(FeatureServerBinary, RefusesBadFlags) {
  auto r = quiver::testing::Run({BinDir() + "/quiver-feature-server", "--bogus", "1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("bogus"), std::string::npos) << r.err;
  r = quiver::testing::Run({BinDir() + "/quiver-feature-server", "--coordinator", "127.0.0.1:1", "--http-listen",
           "not-an-address"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("quiver-feature-server:"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace quiver::testing
