// quiver-feature-server (issue 13): Feast's HTTP API over a real cluster.
// Values are checked against DuckDB's reading of the source; one small
// request is checked byte for byte against the body Feast's Python server
// writes (feature_server_utils.convert_response_to_dict, compact JSON as
// Starlette's JSONResponse renders it); bad requests get Feast's statuses;
// the gRPC service through Feast's wire format (feast_wire.h). Tokens, TLS
// and flags: feature_server_security_test.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <bit>
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
           "  - name: extra_stats\n    entities: [user]\n    ttl: 0\n    source: users\n"
           "    schema: [{name: clicks, type: INT64}]\n"
           "feature_services:\n  - {name: svc, features: [user_stats:clicks, old_stats]}\n"
           "push_sources:\n  - {name: user_push, feature_views: [user_stats]}\n";
    auto cluster = LocalCluster::Up(2, 2);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    auto apply = cluster_->Ctl({"apply", repo_->path()});
    ASSERT_EQ(apply.exit_code, 0) << apply.out << apply.err;
    // extra_stats is left for POST /materialize.
    auto mat = cluster_->Ctl({"materialize", "2020-01-01", "2030-01-01", "--views", "user_stats,old_stats"});
    ASSERT_EQ(mat.exit_code, 0) << mat.out << mat.err;
    feature_server::ServerOptions options;
    options.coordinator = cluster_->coordinator();
    options.http_listen = "127.0.0.1:0";
    options.grpc_listen = "127.0.0.1:0";
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

TEST_F(FeatureServerTest, WritesPushesAndMaterializes) {
  auto post = [&](const std::string& path, const std::string& body) {
    auto res = http_->Post(path, body, "application/json");
    EXPECT_TRUE(res) << path;
    return res ? std::make_pair(res->status, res->body) : std::make_pair(0, std::string());
  };
  auto lookup = [&](const std::string& ids, const std::string& features) {
    auto res = Post(absl::StrCat(R"({"entities": {"user_id": )", ids, R"(}, "features": )", features, "}"));
    EXPECT_TRUE(res && res->status == 200) << (res ? res->body : "");
    return res ? Json::parse(res->body) : Json();
  };
  // write-to-online-store: both timestamp spellings, a null feature.
  auto r = post("/write-to-online-store",
                R"({"feature_view_name": "user_stats", "df": {"user_id": ["w1", "w2"],
                    "ts": ["2026-12-02 10:00:00", "2026-12-02T10:00:00.5Z"], "clicks": [10, null],
                    "score": [1.5, 2], "note": ["a", "b"], "ignored": [1, 2]}})");
  EXPECT_EQ(r, std::make_pair(200, std::string("null")));
  Json got = lookup(R"(["w1", "w2"])", R"(["user_stats:clicks", "user_stats:score", "user_stats:note"])");
  EXPECT_EQ(got["results"][1]["values"], Json::parse("[10, null]"));
  EXPECT_EQ(got["results"][1]["statuses"], Json::parse(R"(["PRESENT", "NULL_VALUE"])"));
  EXPECT_EQ(got["results"][2]["values"], Json::parse("[1.5, 2.0]"));
  EXPECT_EQ(got["results"][3]["values"], Json::parse(R"(["a", "b"])"));
  EXPECT_EQ(got["results"][1]["event_timestamps"],
            Json::parse(R"(["2026-12-02T10:00:00Z", "2026-12-02T10:00:00.500Z"])"));

  // push: a newer row wins, an older one loses (last writer wins by event time).
  const std::string frame = R"("df": {"user_id": ["u1"], "ts": [TS], "clicks": [C], "score": [0.5], "note": ["p"]})";
  auto push = [&](const std::string& ts, int clicks) {
    std::string df = frame;
    df.replace(df.find("TS"), 2, ts);
    df.replace(df.find("C]"), 1, std::to_string(clicks));
    return post("/push", absl::StrCat(R"({"push_source_name": "user_push", "to": "online", )", df, "}"));
  };
  EXPECT_EQ(push("\"2027-01-01T00:00:00Z\"", 999).first, 200);
  EXPECT_EQ(push("1700000000", 5).first, 200);  // integer seconds: 2023, older
  got = lookup(R"(["u1"])", R"(["user_stats:clicks"])");
  EXPECT_EQ(got["results"][1]["values"], Json::parse("[999]"));
  EXPECT_EQ(got["results"][1]["event_timestamps"], Json::parse(R"(["2027-01-01T00:00:00Z"])"));

  // Bad writes.
  struct Case {
    std::string path, body;
    int status;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {"/write-to-online-store", R"({"feature_view_name": "nope", "df": {}})", 404, "FeatureViewNotFoundException"},
      {"/write-to-online-store", R"({"df": {}})", 422, "feature_view_name"},
      {"/write-to-online-store", R"({"feature_view_name": "user_stats", "df": {"user_id": ["x"], "ts": ["2026-01-01"]}})",
       400, "df has no column clicks"},
      {"/write-to-online-store",
       R"({"feature_view_name": "user_stats", "df": {"user_id": ["x"], "ts": ["yesterday"], "clicks": [1], "score": [1], "note": ["n"]}})",
       400, "is not a timestamp"},
      {"/write-to-online-store",
       R"({"feature_view_name": "user_stats", "df": {"user_id": ["x"], "ts": ["2026-01-01"], "clicks": ["1"], "score": [1], "note": ["n"]}})",
       400, "is not an integer"},
      {"/push", R"({"push_source_name": "nope", "df": {}})", 422, "PushSourceNotFoundException"},
      {"/push", R"({"push_source_name": "user_push", "df": {}, "to": "offline"})", 422, "online store only"},
      {"/materialize", R"({"end_ts": "2030-01-01"})", 422, "start_ts"},
      {"/materialize", R"({"start_ts": "2030-01-01", "end_ts": "2020-01-01"})", 400, "before"},
      {"/materialize-incremental", R"({"end_ts": "soon"})", 400, "not a timestamp"},
      // Seconds beyond year 9999 would overflow microseconds (found by fuzz_feast_json).
      {"/materialize", R"({"start_ts": -9223372036854775807, "end_ts": 9223372036854775807})", 400,
       "not a timestamp"},
      {"/materialize-incremental", R"({"end_ts": 18446744073709551615})", 400, "not a timestamp"},
  };
  for (const Case& c : cases) {
    auto [status, body] = post(c.path, c.body);
    EXPECT_EQ(status, c.status) << c.path << " " << c.body << " -> " << body;
    EXPECT_NE(body.find(c.needle), std::string::npos) << c.path << " " << c.body << " -> " << body;
  }
  got = lookup(R"(["x"])", R"(["user_stats:clicks"])");  // nothing of the bad writes landed
  EXPECT_EQ(got["results"][1]["statuses"], Json::parse(R"(["NOT_FOUND"])"));

  // materialize: extra_stats was never materialized; afterwards it serves
  // the source's values.
  got = lookup(R"(["u5", "u77"])", R"(["extra_stats:clicks"])");
  EXPECT_EQ(got["results"][1]["statuses"], Json::parse(R"(["NOT_FOUND", "NOT_FOUND"])"));
  r = post("/materialize", R"({"start_ts": "2020-01-01T00:00:00", "end_ts": "2030-01-01T00:00:00",
                               "feature_views": ["extra_stats"]})");
  EXPECT_EQ(r, std::make_pair(200, std::string("null")));
  got = lookup(R"(["u5", "u77"])", R"(["extra_stats:clicks"])");
  EXPECT_EQ(got["results"][1]["values"], Json::parse("[5, 77]"));
  r = post("/materialize-incremental", R"({"end_ts": "2030-01-02T00:00:00Z", "feature_views": ["extra_stats"]})");
  EXPECT_EQ(r, std::make_pair(200, std::string("null")));
}

TEST_F(FeatureServerTest, GrpcServingServiceSpeaksFeastsWireFormat) {
  const std::string address = server_->grpc_address();
  ASSERT_FALSE(address.empty());
  grpc::Status status;
  const Fields info = Parse(RawCall(address, "/feast.serving.ServingService/GetFeastServingInfo", "", &status));
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Messages(info, 1), std::vector<std::string>{"quiver"});

  std::vector<std::string> ids = {"u0", "u1", "u7", "u150", "u299", "nobody"};
  std::string column;
  for (const std::string& id : ids) column += Bytes(1, Bytes(2, id));  // RepeatedValue.val: Value{string_val}
  std::string request = Bytes(2, Bytes(1, "user_stats:clicks") + Bytes(1, "user_stats:score") +
                                      Bytes(1, "user_stats:note"));
  request += Bytes(3, Bytes(1, "user_id") + Bytes(2, column));  // map entry {key=1, value=2}
  const Fields response =
      Parse(RawCall(address, kGetOnlineFeatures, request, &status));
  ASSERT_TRUE(status.ok()) << status.error_message();
  // metadata{feature_names{val}}
  const auto metadata = Messages(response, 1);
  ASSERT_EQ(metadata.size(), 1u);
  EXPECT_EQ(Messages(Parse(Messages(Parse(metadata[0]), 1).at(0)), 1),
            (std::vector<std::string>{"user_id", "clicks", "score", "note"}));
  const auto results = Messages(response, 2);
  ASSERT_EQ(results.size(), 4u);

  auto expected = DuckQuery(absl::StrCat("SELECT user_id, clicks, score, note, epoch_us(ts) FROM '",
                                         repo_->File("data/users.parquet"), "'"));
  ASSERT_TRUE(expected.ok());
  std::map<std::string, std::vector<Cell>> want;
  for (auto& row : *expected) want[row[0].text] = row;
  for (size_t c = 0; c < results.size(); ++c) {
    const Fields vector = Parse(results[c]);
    const auto values = Messages(vector, 1);
    const auto statuses = Packed(Messages(vector, 2).at(0));
    const auto timestamps = Messages(vector, 3);
    ASSERT_EQ(values.size(), ids.size());
    ASSERT_EQ(statuses.size(), ids.size());
    ASSERT_EQ(timestamps.size(), ids.size());
    for (size_t r = 0; r < ids.size(); ++r) {
      SCOPED_TRACE(absl::StrCat("column ", c, " ", ids[r]));
      const Fields value = Parse(values[r]);
      const Fields ts = Parse(timestamps[r]);
      if (c == 0) {  // the join key, echoed: PRESENT, timestamp 0
        EXPECT_EQ(Messages(value, 2), std::vector<std::string>{ids[r]});
        EXPECT_EQ(statuses[r], 1u);
        EXPECT_EQ(ts->field_count(), 0);
        continue;
      }
      auto it = want.find(ids[r]);
      if (it == want.end()) {
        EXPECT_EQ(statuses[r], 3u);  // NOT_FOUND
        EXPECT_EQ(value->field_count(), 0);
        continue;
      }
      const Cell& cell = it->second[c];
      const int64_t us = std::stoll(it->second[4].text);
      ASSERT_GE(ts->field_count(), 1);
      int64_t seconds = 0, nanos = 0;
      for (int i = 0; i < ts->field_count(); ++i) {
        if (ts->field(i).number() == 1) seconds = static_cast<int64_t>(ts->field(i).varint());
        if (ts->field(i).number() == 2) nanos = static_cast<int64_t>(ts->field(i).varint());
      }
      EXPECT_EQ(seconds * 1000000 + nanos / 1000, us);
      if (cell.is_null) {
        EXPECT_EQ(statuses[r], 2u);  // NULL_VALUE
        EXPECT_EQ(value->field_count(), 0);
        continue;
      }
      EXPECT_EQ(statuses[r], 1u);
      ASSERT_EQ(value->field_count(), 1);
      const auto& f = value->field(0);
      switch (c) {
        case 1:
          EXPECT_EQ(f.number(), 4);
          EXPECT_EQ(static_cast<int64_t>(f.varint()), std::stoll(cell.text));
          break;
        case 2:
          EXPECT_EQ(f.number(), 5);
          EXPECT_EQ(std::bit_cast<double>(f.fixed64()), std::stod(cell.text));
          break;
        case 3:
          EXPECT_EQ(f.number(), 2);
          EXPECT_EQ(f.length_delimited(), cell.text);
          break;
      }
    }
  }
  // A feature service and full names (feature_service=1, full_feature_names=4).
  request = Bytes(1, "svc") + Bytes(3, Bytes(1, "user_id") + Bytes(2, Bytes(1, Bytes(2, "u1")))) +
            VarintField(4, 1);
  const Fields by_service =
      Parse(RawCall(address, kGetOnlineFeatures, request, &status));
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Messages(Parse(Messages(Parse(Messages(by_service, 1).at(0)), 1).at(0)), 1),
            (std::vector<std::string>{"user_id", "user_stats__clicks", "old_stats__visits"}));

  // Errors: an unknown view, a join key of another type (int64_val).
  request = Bytes(2, Bytes(1, "nope:clicks")) + Bytes(3, Bytes(1, "user_id") + Bytes(2, column));
  RawCall(address, kGetOnlineFeatures, request, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  request = Bytes(2, Bytes(1, "user_stats:clicks")) +
            Bytes(3, Bytes(1, "user_id") + Bytes(2, Bytes(1, VarintField(4, 7))));
  RawCall(address, kGetOnlineFeatures, request, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
}

}  // namespace
}  // namespace quiver::testing
