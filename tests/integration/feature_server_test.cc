// quiver-feature-server (issue 13): Feast's HTTP API over a real cluster.
// Values are checked against DuckDB's reading of the source; one small
// request is checked byte for byte against the body Feast's Python server
// writes (feature_server_utils.convert_response_to_dict, compact JSON as
// Starlette's JSONResponse renders it); bad requests get Feast's statuses.
#include <google/protobuf/unknown_field_set.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <bit>
#include <future>

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

// gRPC without the server's .proto: requests are encoded here by hand from
// Feast's published field numbers (ServingService.proto and Value.proto at
// v0.66.0: GetOnlineFeaturesRequest{features=2: FeatureList{val=1},
// entities=3: map<string, RepeatedValue{val=1}>}, Value{string_val=2,
// int64_val=4, double_val=5}), sent with gRPC's generic stub, and responses
// decoded with protobuf's schema-less UnknownFieldSet.
std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
std::string Bytes(int field, const std::string& payload) {
  return Varint(static_cast<uint64_t>(field) << 3 | 2) + Varint(payload.size()) + payload;
}
std::string VarintField(int field, uint64_t v) {
  return Varint(static_cast<uint64_t>(field) << 3) + Varint(v);
}

// One unary call to `method` with raw request bytes; the raw response.
// `token` (if any) goes in the `authorization` metadata as a bearer token.
std::string RawCall(const std::string& address, const std::string& method, const std::string& request,
                    grpc::Status* status, const std::string& token = "",
                    std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials(),
                    int deadline_s = 10) {
  grpc::GenericStub stub(grpc::CreateChannel(address, credentials));
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1), response;
  grpc::ClientContext ctx;
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(deadline_s));
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request_buffer, &response,
                 [&](grpc::Status s) { done.set_value(std::move(s)); });
  *status = done.get_future().get();
  std::vector<grpc::Slice> slices;
  std::string out;
  if (status->ok() && response.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

constexpr char kGetOnlineFeatures[] = "/feast.serving.ServingService/GetOnlineFeatures";

// GetOnlineFeaturesRequest{features=2: FeatureList{val=1: [ref]},
// entities=3: {"user_id": RepeatedValue{val=1: [Value{string_val=2: id}]}}}.
std::string OneRowRequest(const std::string& ref, const std::string& id) {
  return Bytes(2, Bytes(1, ref)) + Bytes(3, Bytes(1, "user_id") + Bytes(2, Bytes(1, Bytes(2, id))));
}

using Fields = std::shared_ptr<google::protobuf::UnknownFieldSet>;
std::vector<std::string> Messages(const Fields& set, int number) {
  std::vector<std::string> out;
  for (int i = 0; i < set->field_count(); ++i) {
    if (set->field(i).number() == number) out.push_back(set->field(i).length_delimited());
  }
  return out;
}
Fields Parse(const std::string& bytes) {
  auto set = std::make_shared<google::protobuf::UnknownFieldSet>();
  EXPECT_TRUE(set->ParseFromString(bytes));
  return set;
}
// A packed repeated enum: its varints.
std::vector<uint64_t> Packed(const std::string& bytes) {
  std::vector<uint64_t> out;
  uint64_t v = 0;
  int shift = 0;
  for (unsigned char c : bytes) {
    v |= static_cast<uint64_t>(c & 0x7f) << shift;
    shift += 7;
    if (!(c & 0x80)) {
      out.push_back(v);
      v = 0;
      shift = 0;
    }
  }
  return out;
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
