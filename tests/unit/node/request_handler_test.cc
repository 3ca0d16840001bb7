#include "quiver/node/request_handler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "node_test_util.h"
#include "absl/strings/str_cat.h"
#include "quiver/client/convert.h"
#include "quiver/keys/entity_key.h"
#include "quiver/storage/row_store.h"

namespace quiver::node {
namespace {

using testing::AddFeature;
using testing::AddSingleEntityView;
using testing::BuildIndex;
using testing::OpenTestStore;
using testing::FakeCluster;
using testing::OwnEverything;
using testing::TempDir;

constexpr int64_t kHourUs = 3600LL * 1000 * 1000;
constexpr int64_t kStartUs = 1'700'000'000LL * 1000 * 1000;

quiver::v1::Registry MakeRegistry(uint64_t version) {
  quiver::v1::Registry r;
  r.set_project("test");
  r.set_version(version);
  auto* view = AddSingleEntityView(&r, {.entity = "user", .join_key = "user_id",
                                        .source = "events",
                                        .path = "/nonexistent/events.parquet",
                                        .view = "user_stats"});
  AddFeature(view, "clicks", quiver::v1::INT64);
  AddFeature(view, "score", quiver::v1::DOUBLE);
  AddFeature(view, "name", quiver::v1::STRING);
  AddFeature(view, "embedding", quiver::v1::FLOAT_LIST);
  view->set_ttl_seconds(3600);
  view->set_schema_version(3);
  return r;
}

std::string Key(int64_t user_id) {
  return EncodeEntityKey({{"user_id", Value::Int64(user_id)}}).value();
}

quiver::v1::WriteRow Row(int64_t user_id, int64_t event_ts_us, std::vector<Value> values) {
  quiver::v1::WriteRow row;
  row.set_entity_key(Key(user_id));
  row.set_event_ts_us(event_ts_us);
  row.set_created_ts_us(event_ts_us);
  for (const Value& v : values) client::ToProto(v, row.add_values());
  return row;
}

std::vector<Value> UserValues(int64_t clicks, std::optional<double> score, std::string name) {
  return {Value::Int64(clicks),
          score ? Value::Double(*score) : Value::Null(ValueType::kDouble),
          Value::String(std::move(name)),
          Value{ValueType::kFloatList, std::vector<double>{0.5, -1.25}}};
}

class RequestHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenTestStore(dir_.path(), [this] { return now_us_; });
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    cluster_.current = BuildIndex(MakeRegistry(1));
    handler_ = std::make_unique<RequestHandler>(store_.get(), &cluster_);
    OwnEverything(*handler_);
    ASSERT_TRUE(handler_->SyncViews(*cluster_.current).ok());
  }

  absl::Status Write(std::vector<quiver::v1::WriteRow> rows, uint32_t schema_version = 3) {
    quiver::v1::WriteRequest request;
    request.set_view("user_stats");
    request.set_schema_version(schema_version);
    for (auto& r : rows) *request.add_rows() = std::move(r);
    quiver::v1::WriteResponse response;
    absl::Status s = handler_->Write(request, &response);
    if (s.ok()) {
      EXPECT_EQ(response.rows_written(), static_cast<uint64_t>(request.rows_size()));
    }
    return s;
  }

  absl::StatusOr<quiver::v1::GetResponse> Get(const std::string& view,
                                              const std::vector<int64_t>& users,
                                              const std::vector<std::string>& features = {}) {
    quiver::v1::GetRequest request;
    auto* lookup = request.add_lookups();
    lookup->set_view(view);
    for (const auto& f : features) lookup->add_features(f);
    for (int64_t u : users) lookup->add_entity_keys(Key(u));
    quiver::v1::GetResponse response;
    absl::Status s = handler_->Get(request, &response);
    if (!s.ok()) return s;
    return response;
  }

  TempDir dir_;
  int64_t now_us_ = kStartUs;
  std::unique_ptr<storage::RowStore> store_;
  FakeCluster cluster_;
  std::unique_ptr<RequestHandler> handler_;
};

Value Decode(const quiver::v1::Value& v, ValueType t) { return client::FromProto(v, t).value(); }

TEST_F(RequestHandlerTest, WrittenRowsReadBackWithStatusesAndNulls) {
  ASSERT_TRUE(Write({Row(1, kStartUs - 1000, UserValues(5, 0.75, "ann")),
                     Row(2, kStartUs - 2000, UserValues(9, std::nullopt, "bob"))})
                  .ok());
  auto response = Get("user_stats", {1, 2, 3});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->epoch(), 7u);
  ASSERT_EQ(response->results_size(), 1);
  const auto& rows = response->results(0).rows();
  ASSERT_EQ(rows.size(), 3);

  EXPECT_EQ(rows[0].status(), quiver::v1::PRESENT);
  EXPECT_EQ(rows[0].event_ts_us(), kStartUs - 1000);
  ASSERT_EQ(rows[0].values_size(), 4);
  const auto expected = UserValues(5, 0.75, "ann");
  EXPECT_EQ(Decode(rows[0].values(0), ValueType::kInt64), expected[0]);
  EXPECT_EQ(Decode(rows[0].values(1), ValueType::kDouble), expected[1]);
  EXPECT_EQ(Decode(rows[0].values(2), ValueType::kString), expected[2]);
  EXPECT_EQ(Decode(rows[0].values(3), ValueType::kFloatList), expected[3]);

  EXPECT_EQ(rows[1].status(), quiver::v1::PRESENT);
  EXPECT_EQ(rows[1].values(1).val_case(), quiver::v1::Value::VAL_NOT_SET);  // NULL score
  EXPECT_EQ(rows[1].values(0).int64_val(), 9);

  EXPECT_EQ(rows[2].status(), quiver::v1::NOT_FOUND);
  ASSERT_EQ(rows[2].values_size(), 4);
  for (const auto& v : rows[2].values()) EXPECT_EQ(v.val_case(), quiver::v1::Value::VAL_NOT_SET);
}

TEST_F(RequestHandlerTest, SelectedFeaturesComeInRequestedOrder) {
  ASSERT_TRUE(Write({Row(1, kStartUs, UserValues(5, 0.75, "ann"))}).ok());
  auto response = Get("user_stats", {1}, {"name", "clicks"});
  ASSERT_TRUE(response.ok()) << response.status();
  const auto& row = response->results(0).rows(0);
  ASSERT_EQ(row.values_size(), 2);
  EXPECT_EQ(row.values(0).string_val(), "ann");
  EXPECT_EQ(row.values(1).int64_val(), 5);
}

TEST_F(RequestHandlerTest, RowOlderThanTtlIsOutsideMaxAge) {
  ASSERT_TRUE(Write({Row(1, kStartUs - 10 * 1000000LL, UserValues(5, 0.75, "ann"))}).ok());
  auto fresh = Get("user_stats", {1});
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->results(0).rows(0).status(), quiver::v1::PRESENT);

  now_us_ += kHourUs;  // event_ts + ttl < now
  auto stale = Get("user_stats", {1});
  ASSERT_TRUE(stale.ok()) << stale.status();
  EXPECT_EQ(stale->results(0).rows(0).status(), quiver::v1::OUTSIDE_MAX_AGE);
  for (const auto& v : stale->results(0).rows(0).values()) {
    EXPECT_EQ(v.val_case(), quiver::v1::Value::VAL_NOT_SET);
  }
}

TEST_F(RequestHandlerTest, UnknownViewIsNotFoundAfterOneRefresh) {
  auto response = Get("no_such_view", {1});
  EXPECT_EQ(response.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cluster_.refreshes, 1);
}

TEST_F(RequestHandlerTest, ViewAddedToRegistryIsFoundAfterRefresh) {
  auto next = MakeRegistry(2);
  auto* view = next.add_feature_views();
  *view = next.feature_views(0);
  view->set_name("user_stats_v2");
  cluster_.next = BuildIndex(next);

  auto response = Get("user_stats_v2", {1});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->results(0).rows(0).status(), quiver::v1::NOT_FOUND);
  EXPECT_EQ(cluster_.refreshes, 1);
}

TEST_F(RequestHandlerTest, UnknownFeatureIsInvalidArgument) {
  auto response = Get("user_stats", {1}, {"clicks", "nope"});
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RequestHandlerTest, SchemaVersionMismatchIsFailedPrecondition) {
  EXPECT_EQ(Write({Row(1, kStartUs, UserValues(5, 0.75, "ann"))}, 2).code(),
            absl::StatusCode::kFailedPrecondition);
  // A newer version than ours triggers one refresh before failing.
  EXPECT_EQ(Write({Row(1, kStartUs, UserValues(5, 0.75, "ann"))}, 4).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(cluster_.refreshes, 1);
  EXPECT_EQ(store_->CountRows("user_stats").value(), 0u);
}

TEST_F(RequestHandlerTest, WrongValueTypeIsInvalidArgumentAndWritesNothing) {
  auto bad = UserValues(7, 1.0, "eve");
  bad[0] = Value::String("not a number");
  absl::Status s = Write({Row(1, kStartUs, UserValues(5, 0.75, "ann")), Row(2, kStartUs, bad)});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(store_->CountRows("user_stats").value(), 0u);
  auto response = Get("user_stats", {1, 2});
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->results(0).rows(0).status(), quiver::v1::NOT_FOUND);
  EXPECT_EQ(response->results(0).rows(1).status(), quiver::v1::NOT_FOUND);
}

TEST_F(RequestHandlerTest, WrongValueCountIsInvalidArgument) {
  auto values = UserValues(5, 0.75, "ann");
  values.pop_back();
  EXPECT_EQ(Write({Row(1, kStartUs, values)}).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RequestHandlerTest, OversizedRequestsAreInvalidArgument) {
  quiver::v1::GetRequest request;
  for (int l = 0; l < 2; ++l) {
    auto* lookup = request.add_lookups();
    lookup->set_view("user_stats");
    for (int i = 0; i < 5001; ++i) lookup->add_entity_keys(Key(i));
  }
  quiver::v1::GetResponse response;
  EXPECT_EQ(handler_->Get(request, &response).code(), absl::StatusCode::kInvalidArgument);

  quiver::v1::GetRequest long_key;
  auto* lookup = long_key.add_lookups();
  lookup->set_view("user_stats");
  lookup->add_entity_keys(std::string(kMaxEntityKeyBytes + 1, 'k'));
  EXPECT_EQ(handler_->Get(long_key, &response).code(), absl::StatusCode::kInvalidArgument);

  std::vector<quiver::v1::WriteRow> rows;
  for (int i = 0; i < 10001; ++i) rows.push_back(Row(i, kStartUs, UserValues(i, 1.0, "x")));
  EXPECT_EQ(Write(std::move(rows)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CountRows("user_stats").value(), 0u);
}

TEST_F(RequestHandlerTest, NoRegistryYetIsUnavailable) {
  cluster_.current = nullptr;
  EXPECT_EQ(Get("user_stats", {1}).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(RequestHandlerTest, HealthReportsIdEpochAndRegistryVersion) {
  handler_->set_node_id(4);
  quiver::v1::HealthResponse health;
  handler_->Health(&health);
  EXPECT_EQ(health.node_id(), 4u);
  EXPECT_EQ(health.epoch(), 7u);
  EXPECT_EQ(health.registry_version(), 1u);
  EXPECT_TRUE(health.serving());
}

// WriteRow.packed_values built byte by byte from the format in
// proto/quiver.proto, independent of the client's encoder.
std::string PackedUser(int64_t clicks, bool null_score, const std::string& name) {
  auto le = [](uint64_t v, int bytes) {
    std::string out;
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return out;
  };
  auto bits = [](auto x) {
    uint64_t u = 0;
    std::memcpy(&u, &x, sizeof(x));
    return u;
  };
  std::string p;
  p += '\x02' + le(static_cast<uint64_t>(clicks), 8);                       // INT64
  p += null_score ? std::string(1, '\0') : '\x04' + le(bits(0.75), 8);        // DOUBLE or null
  p += '\x06' + le(name.size(), 4) + name;                                    // STRING
  p += '\x13' + le(12, 4) + le(2, 4) + le(bits(0.5f), 4) + le(bits(-1.25f), 4);  // LIST<FLOAT>
  return p;
}

quiver::v1::WriteRow PackedRow(int64_t user_id, int64_t event_ts_us, std::string packed) {
  quiver::v1::WriteRow row;
  row.set_entity_key(Key(user_id));
  row.set_event_ts_us(event_ts_us);
  row.set_created_ts_us(event_ts_us);
  row.set_packed_values(std::move(packed));
  return row;
}

TEST_F(RequestHandlerTest, PackedAndValueRowsReadBackAlike) {
  ASSERT_TRUE(Write({PackedRow(1, kStartUs - 1000, PackedUser(5, false, "ann")),
                     Row(2, kStartUs - 1000, UserValues(5, 0.75, "ann")),
                     PackedRow(3, kStartUs - 2000, PackedUser(9, true, "bob"))})
                  .ok());
  auto response = Get("user_stats", {1, 2, 3});
  ASSERT_TRUE(response.ok()) << response.status();
  const auto& rows = response->results(0).rows();
  ASSERT_EQ(rows.size(), 3);
  const auto expected = UserValues(5, 0.75, "ann");
  const ValueType types[] = {ValueType::kInt64, ValueType::kDouble, ValueType::kString,
                             ValueType::kFloatList};
  for (int r : {0, 1}) {
    EXPECT_EQ(rows[r].status(), quiver::v1::PRESENT);
    EXPECT_EQ(rows[r].event_ts_us(), kStartUs - 1000);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(Decode(rows[r].values(i), types[i]), expected[i]) << i;
  }
  EXPECT_EQ(rows[2].status(), quiver::v1::PRESENT);
  EXPECT_EQ(rows[2].values(0).int64_val(), 9);
  EXPECT_EQ(rows[2].values(1).val_case(), quiver::v1::Value::VAL_NOT_SET);  // null score
  EXPECT_EQ(rows[2].values(2).string_val(), "bob");
}

TEST_F(RequestHandlerTest, MalformedPackedValuesAreInvalidArgumentAndWriteNothing) {
  const std::string good = PackedUser(5, false, "ann");
  std::string wrong_tag = good;
  wrong_tag[0] = '\x01';  // INT32 where INT64 is declared
  std::string long_string = good;
  long_string[1 + 8 + 1 + 8 + 1] = '\x7f';  // string length past the end
  for (const std::string& bad : {wrong_tag, good.substr(0, good.size() - 1), good + "x",
                                 long_string, std::string()}) {
    absl::Status s = Write({PackedRow(1, kStartUs, good), PackedRow(2, kStartUs, bad)});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  }
  EXPECT_EQ(store_->CountRows("user_stats").value(), 0u);
}

// WriteRequest.packed_rows built byte by byte from the format in
// proto/quiver.proto: u32 key length, key, i64 event ts, i64 created ts,
// u32 packed length, packed values.
std::string PackedRows(const std::vector<quiver::v1::WriteRow>& rows) {
  auto le = [](uint64_t v, int bytes) {
    std::string out;
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return out;
  };
  std::string out;
  for (const auto& r : rows) {
    out += le(r.entity_key().size(), 4) + r.entity_key();
    out += le(static_cast<uint64_t>(r.event_ts_us()), 8) +
           le(static_cast<uint64_t>(r.created_ts_us()), 8);
    out += le(r.packed_values().size(), 4) + r.packed_values();
  }
  return out;
}

TEST_F(RequestHandlerTest, PackedRowsReadBackAndMalformedOnesWriteNothing) {
  auto write = [&](std::string packed_rows, std::vector<quiver::v1::WriteRow> rows = {}) {
    quiver::v1::WriteRequest request;
    request.set_view("user_stats");
    request.set_schema_version(3);
    request.set_packed_rows(std::move(packed_rows));
    for (auto& r : rows) *request.add_rows() = std::move(r);
    quiver::v1::WriteResponse response;
    absl::Status s = handler_->Write(request, &response);
    return std::make_pair(s, response.rows_written());
  };
  const std::vector<quiver::v1::WriteRow> good = {
      PackedRow(1, kStartUs - 1000, PackedUser(5, false, "ann")),
      PackedRow(3, kStartUs - 2000, PackedUser(9, true, "bob"))};
  const std::string blob = PackedRows(good);
  std::string bad_cell = blob;
  bad_cell[4 + Key(1).size() + 16 + 4] = '\x01';  // first cell: INT32 where INT64 is declared
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::string>>{
           {"truncated", blob.substr(0, blob.size() - 3)},
           {"bad cell", bad_cell},
           {"empty key", PackedRows({PackedRow(1, kStartUs, PackedUser(1, true, "x"))})
                             .replace(0, 4 + Key(1).size(), std::string(4, '\0'))}}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(write(bytes).first.code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(write(blob, {Row(2, kStartUs, UserValues(1, 1.0, "x"))}).first.code(),
            absl::StatusCode::kInvalidArgument);  // both forms in one request
  std::vector<quiver::v1::WriteRow> many;
  for (int i = 0; i < 10001; ++i) many.push_back(PackedRow(i, kStartUs, PackedUser(i, true, "")));
  EXPECT_EQ(write(PackedRows(many)).first.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CountRows("user_stats").value(), 0u);

  const auto [status, written] = write(blob);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(written, 2u);
  auto response = Get("user_stats", {1, 2, 3});
  ASSERT_TRUE(response.ok()) << response.status();
  const auto& rows = response->results(0).rows();
  EXPECT_EQ(rows[0].event_ts_us(), kStartUs - 1000);
  EXPECT_EQ(rows[0].values(0).int64_val(), 5);
  EXPECT_EQ(rows[0].values(2).string_val(), "ann");
  EXPECT_EQ(rows[1].status(), quiver::v1::NOT_FOUND);
  EXPECT_EQ(rows[2].values(0).int64_val(), 9);
  EXPECT_EQ(rows[2].values(1).val_case(), quiver::v1::Value::VAL_NOT_SET);
}


// Ingest sessions (WriteRequest.ingest_session, CommitIngest): rows become
// visible only at commit, the commit checks the writer's row count, and a
// session refuses rows out of stored-key order.
class IngestSessionTest : public RequestHandlerTest {
 protected:
  // Users 1..n as rows sorted by their stored key.
  std::vector<quiver::v1::WriteRow> SortedRows(int n, int64_t ts) {
    std::vector<std::pair<std::string, int64_t>> keyed;
    for (int64_t u = 1; u <= n; ++u) keyed.push_back({storage::RowStore::RowKey(Key(u), 16), u});
    std::sort(keyed.begin(), keyed.end());
    std::vector<quiver::v1::WriteRow> rows;
    for (const auto& [key, u] : keyed) rows.push_back(Row(u, ts, UserValues(u, 0.5, "n")));
    return rows;
  }

  absl::Status Append(const std::string& session, std::vector<quiver::v1::WriteRow> rows,
                      uint32_t schema_version = 3) {
    quiver::v1::WriteRequest request;
    request.set_view("user_stats");
    request.set_schema_version(schema_version);
    request.set_ingest_session(session);
    for (auto& r : rows) *request.add_rows() = std::move(r);
    quiver::v1::WriteResponse response;
    return handler_->Write(request, &response);
  }

  absl::StatusOr<uint64_t> Commit(const std::string& session, uint64_t expected, bool abort = false) {
    quiver::v1::CommitIngestRequest request;
    request.set_session(session);
    request.set_expected_rows(expected);
    request.set_abort(abort);
    quiver::v1::CommitIngestResponse response;
    absl::Status s = handler_->CommitIngest(request, &response);
    if (!s.ok()) return s;
    return response.rows_ingested();
  }

  int Present(int n) {
    std::vector<int64_t> users;
    for (int64_t u = 1; u <= n; ++u) users.push_back(u);
    auto response = Get("user_stats", users);
    EXPECT_TRUE(response.ok()) << response.status();
    int present = 0;
    for (const auto& row : response->results(0).rows()) present += row.status() == quiver::v1::PRESENT;
    return present;
  }
};

TEST_F(IngestSessionTest, RowsAreVisibleOnlyAfterCommit) {
  auto rows = SortedRows(50, kStartUs - 1000);
  std::vector<quiver::v1::WriteRow> first(rows.begin(), rows.begin() + 20);
  std::vector<quiver::v1::WriteRow> second(rows.begin() + 20, rows.end());
  ASSERT_TRUE(Append("job/1", first).ok());
  ASSERT_TRUE(Append("job/1", second).ok());
  EXPECT_EQ(Present(50), 0);
  auto committed = Commit("job/1", 50);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(*committed, 50u);
  EXPECT_EQ(Present(50), 50);
  auto response = Get("user_stats", {7});
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->results(0).rows(0).values(0).int64_val(), 7);
}

TEST_F(IngestSessionTest, IngestedOlderRowsLoseToStoredNewerOnes) {
  ASSERT_TRUE(Write({Row(3, kStartUs - 10, UserValues(333, 1.0, "new"))}).ok());
  ASSERT_TRUE(Append("s", SortedRows(5, kStartUs - 5000)).ok());
  ASSERT_TRUE(Commit("s", 5).ok());
  auto response = Get("user_stats", {3, 4});
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->results(0).rows(0).values(0).int64_val(), 333);
  EXPECT_EQ(response->results(0).rows(1).values(0).int64_val(), 4);
}

TEST_F(IngestSessionTest, WrongRowCountAbortsAndWritesNothing) {
  ASSERT_TRUE(Append("s", SortedRows(10, kStartUs - 1000)).ok());
  auto committed = Commit("s", 11);
  EXPECT_EQ(committed.status().code(), absl::StatusCode::kAborted) << committed.status();
  EXPECT_EQ(Present(10), 0);
  // The session is gone: a commit expecting rows is NotFound, one expecting
  // none (a node that got no rows) commits nothing.
  EXPECT_EQ(Commit("s", 10).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Commit("never-opened", 0).ok());
}

TEST_F(IngestSessionTest, AbortDropsRows) {
  ASSERT_TRUE(Append("s", SortedRows(10, kStartUs - 1000)).ok());
  ASSERT_TRUE(Commit("s", 10, /*abort=*/true).ok());
  EXPECT_EQ(Present(10), 0);
  EXPECT_TRUE(Commit("s", 0, /*abort=*/true).ok());  // aborting twice is harmless
}

TEST_F(IngestSessionTest, OutOfOrderRowsFailTheSession) {
  auto rows = SortedRows(10, kStartUs - 1000);
  std::swap(rows[2], rows[7]);
  EXPECT_EQ(Append("s", rows).code(), absl::StatusCode::kInvalidArgument);
  // Later requests of the failed session are refused, and so is its commit.
  EXPECT_EQ(Append("s", SortedRows(10, kStartUs - 1000)).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(Commit("s", 10).ok());
  EXPECT_EQ(Present(10), 0);
}

TEST_F(IngestSessionTest, SessionKeepsItsSchemaVersion) {
  ASSERT_TRUE(Append("s", SortedRows(3, kStartUs - 1000)).ok());
  EXPECT_EQ(Append("s", SortedRows(3, kStartUs - 1000), 2).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(IngestSessionTest, SessionsAreBounded) {
  for (size_t i = 0; i < RequestHandler::kMaxIngestSessions; ++i) {
    ASSERT_TRUE(Append(absl::StrCat("s", i), SortedRows(1, kStartUs - 1000)).ok());
  }
  EXPECT_EQ(Append("one-more", SortedRows(1, kStartUs - 1000)).code(),
            absl::StatusCode::kResourceExhausted);
  handler_->AbortIngestSessions();
  EXPECT_TRUE(Append("one-more", SortedRows(1, kStartUs - 1000)).ok());
}

}  // namespace
}  // namespace quiver::node
