// End to end: quiver-bench-gen data loaded into a real redis-server in Feast's
// layout, read back with FeastRedisReader, every value compared with the
// latest row per entity that DuckDB computes here with its own SQL (a
// max-event-time join, not the loader's window query), nulls and the
// embedding included.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/temp_dir.h"
#include "duckdb.h"
#include "quiver/bench/feast_redis/loader.h"
#include "quiver/bench/feast_redis/reader.h"
#include "quiver/bench/feast_redis/redis_server.h"
#include "quiver/bench/gen/dataset.h"
#include "quiver/bench/gen/duck.h"

namespace quiver::bench::feast {
namespace {

constexpr int64_t kEntities = 2000;

struct Expected {
  std::vector<std::vector<Value>> values;   // [entity - 1][view * 10 + feature]
  std::vector<std::vector<int64_t>> ts_us;  // [entity - 1][view]
};

// The latest row per entity of every view, straight from DuckDB.
Expected ComputeExpected(const std::string& dir) {
  Expected e;
  e.values.assign(kEntities, std::vector<Value>(kViews * kFeaturesPerView));
  e.ts_us.assign(kEntities, std::vector<int64_t>(kViews, 0));
  auto db = DuckDb::Open(2);
  EXPECT_TRUE(db.ok());
  auto conn = DuckConnection::Open(**db);
  EXPECT_TRUE(conn.ok());
  for (int v = 0; v < kViews; ++v) {
    const ViewSpec& view = BenchViews()[v];
    const std::string file = SqlLiteral(absl::StrCat(dir, "/", view.name, ".parquet"));
    std::string cols = "t.entity_id, epoch_us(t.event_timestamp)";
    for (const FeatureSpec& f : view.features) {
      if (IsList(f.type)) {
        absl::StrAppend(&cols, ", t.", f.name, " IS NULL");
        for (int j = 1; j <= kEmbeddingDim; ++j)
          absl::StrAppend(&cols, ", t.", f.name, "[", j, "]");
      } else {
        absl::StrAppend(&cols, ", t.", f.name);
      }
    }
    const std::string sql = absl::StrCat(
        "SELECT ", cols, " FROM read_parquet(", file, ") t JOIN (SELECT entity_id, ",
        "max(event_timestamp) AS m FROM read_parquet(", file, ") GROUP BY entity_id) l ",
        "ON t.entity_id = l.entity_id AND t.event_timestamp = l.m ORDER BY t.entity_id");
    duckdb_result r;
    if (duckdb_query((*conn)->get(), sql.c_str(), &r) == DuckDBError) {
      ADD_FAILURE() << duckdb_result_error(&r);
      duckdb_destroy_result(&r);
      return e;
    }
    EXPECT_EQ(duckdb_row_count(&r), static_cast<idx_t>(kEntities)) << view.name;
    for (idx_t row = 0; row < std::min<idx_t>(duckdb_row_count(&r), kEntities); ++row) {
      const int64_t id = duckdb_value_int64(&r, 0, row);
      EXPECT_EQ(id, static_cast<int64_t>(row) + 1);
      e.ts_us[row][v] = duckdb_value_int64(&r, 1, row);
      idx_t col = 2;
      for (int f = 0; f < kFeaturesPerView; ++f) {
        const ValueType t = view.features[f].type;
        Value& out = e.values[row][v * kFeaturesPerView + f];
        if (IsList(t)) {
          const bool null = duckdb_value_boolean(&r, col, row);
          std::vector<double> xs;
          for (int j = 0; j < kEmbeddingDim; ++j)
            xs.push_back(duckdb_value_float(&r, col + 1 + j, row));
          out = null ? Value::Null(t) : Value{t, xs};
          col += 1 + kEmbeddingDim;
          continue;
        }
        if (duckdb_value_is_null(&r, col, row)) {
          out = Value::Null(t);
        } else if (t == ValueType::kInt64) {
          out = Value::Int64(duckdb_value_int64(&r, col, row));
        } else if (t == ValueType::kDouble) {
          out = Value::Double(duckdb_value_double(&r, col, row));
        } else if (t == ValueType::kFloat) {
          out = Value::Float(duckdb_value_float(&r, col, row));
        } else {
          char* s = duckdb_value_varchar(&r, col, row);
          out = Value::String(s);
          duckdb_free(s);
        }
        ++col;
      }
    }
    duckdb_destroy_result(&r);
  }
  return e;
}

std::vector<FeastFeatureRef> AllFeatures() {
  std::vector<FeastFeatureRef> refs;
  for (const auto& [v, f] : ServiceFeatures(kViews)) {
    const ViewSpec& view = BenchViews()[v];
    refs.push_back({view.name, view.features[f].name, view.features[f].type});
  }
  return refs;
}

class FeastRedisTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    GenOptions o;
    o.entities = kEntities;
    o.out_dir = dir_->path();
    o.seed = 3;
    o.now_us = 1'780'000'000'000'000;
    auto gen = GenerateDataset(o);
    ASSERT_TRUE(gen.ok()) << gen.status();
    auto server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    LoadOptions load;
    load.data_dir = dir_->path();
    load.port = server_->port();
    load.batch_commands = 97;  // not a divisor of the row counts: partial batches drain too
    auto loaded = LoadFeastRedis(load);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    load_ = *loaded;
    expected_ = new Expected(ComputeExpected(dir_->path()));
  }
  static void TearDownTestSuite() {
    delete expected_;
    delete server_;
    delete dir_;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(expected_, nullptr);
  }

  static testing::TempDir* dir_;
  static RedisServer* server_;
  static LoadResult load_;
  static Expected* expected_;
};

testing::TempDir* FeastRedisTest::dir_ = nullptr;
RedisServer* FeastRedisTest::server_ = nullptr;
LoadResult FeastRedisTest::load_;
Expected* FeastRedisTest::expected_ = nullptr;

TEST_F(FeastRedisTest, LoaderReportsWhatItWrote) {
  EXPECT_EQ(load_.entities, kEntities);
  EXPECT_EQ(load_.views, kViews);
  EXPECT_EQ(load_.commands, kEntities * kViews);
  EXPECT_GT(load_.used_memory_mb, 1.0);
}

TEST_F(FeastRedisTest, EveryValueOfEveryEntityEqualsDuckDbsLatestRow) {
  FeastRedisReader reader;
  ASSERT_TRUE(reader.Connect(server_->host(), server_->port(), "bench", AllFeatures()).ok());
  ASSERT_EQ(reader.views().size(), static_cast<size_t>(kViews));
  FeastReadResult out;
  std::vector<int64_t> ids(100);
  int64_t nulls = 0, checked = 0;
  for (int64_t first = 1; first <= kEntities; first += 100) {
    std::iota(ids.begin(), ids.end(), first);
    absl::Status st = reader.Read(ids, &out);
    ASSERT_TRUE(st.ok()) << st;
    ASSERT_EQ(out.rows, ids.size());
    for (size_t row = 0; row < ids.size(); ++row) {
      const auto& want = expected_->values[ids[row] - 1];
      for (size_t f = 0; f < want.size(); ++f) {
        ASSERT_EQ(out.at(row, f), want[f]) << "entity " << ids[row] << " feature " << f;
        nulls += want[f].is_null();
        ++checked;
      }
      for (int v = 0; v < kViews; ++v) {
        ASSERT_EQ(out.event_ts(row, v), expected_->ts_us[ids[row] - 1][v]) << ids[row];
      }
    }
  }
  EXPECT_EQ(checked, kEntities * kViews * kFeaturesPerView);
  EXPECT_GT(nulls, checked / 40);  // the nulls were really compared
}

TEST_F(FeastRedisTest, FeatureOrderIsTheCallersAndUnknownEntitiesAreNull) {
  std::vector<FeastFeatureRef> refs = AllFeatures();
  refs.resize(50);  // bench_50
  std::reverse(refs.begin(), refs.end());
  FeastRedisReader reader;
  ASSERT_TRUE(reader.Connect(server_->host(), server_->port(), "bench", refs).ok());
  EXPECT_EQ(reader.views().front(), "fv_04");
  const std::vector<int64_t> ids = {kEntities, 7, kEntities + 5, 1};
  FeastReadResult out;
  ASSERT_TRUE(reader.Read(ids, &out).ok());
  ASSERT_EQ(out.values.size(), ids.size() * 50);
  for (size_t row = 0; row < ids.size(); ++row) {
    for (size_t f = 0; f < 50; ++f) {
      const size_t global = 49 - f;  // position in view/feature order
      if (ids[row] > kEntities) {
        EXPECT_EQ(out.at(row, f), Value::Null(refs[f].type));
      } else {
        EXPECT_EQ(out.at(row, f), expected_->values[ids[row] - 1][global]);
      }
    }
    for (size_t v = 0; v < 5; ++v) {
      EXPECT_EQ(out.event_ts(row, v),
                ids[row] > kEntities ? 0 : expected_->ts_us[ids[row] - 1][4 - v]);
    }
  }
  // Buffers are reused: a smaller call shrinks the result.
  ASSERT_TRUE(reader.Read(std::vector<int64_t>{3}, &out).ok());
  EXPECT_EQ(out.rows, 1u);
  EXPECT_EQ(out.at(0, 49), expected_->values[2][0]);
}

TEST_F(FeastRedisTest, AStoredValueOfAnotherTypeIsDataLoss) {
  FeastRedisReader reader;
  // fv_01:f1 is a DOUBLE; declare it INT64. Pick entities where it is not null.
  ASSERT_TRUE(reader
                  .Connect(server_->host(), server_->port(), "bench",
                           {{"fv_01", "f1", ValueType::kInt64}, {"fv_01", "f0", ValueType::kInt64}})
                  .ok());
  std::vector<int64_t> bad, null_f1;  // entities whose fv_01:f1 is set / null
  for (int64_t id = 1; id <= kEntities && (bad.size() < 3 || null_f1.size() < 2); ++id) {
    auto& group = expected_->values[id - 1][11].is_null() ? null_f1 : bad;
    if (group.size() < 3) group.push_back(id);
  }
  ASSERT_EQ(bad.size(), 3u);
  ASSERT_GE(null_f1.size(), 2u);
  FeastReadResult out;
  EXPECT_EQ(reader.Read(bad, &out).code(), absl::StatusCode::kDataLoss);
  // Every reply was drained: the same connection answers the next call in step.
  ASSERT_TRUE(reader.Read(null_f1, &out).ok());
  for (size_t row = 0; row < null_f1.size(); ++row) {
    EXPECT_EQ(out.at(row, 0), Value::Null(ValueType::kInt64));
    EXPECT_EQ(out.at(row, 1), expected_->values[null_f1[row] - 1][10]);
  }
}

TEST(FeastRedisReaderTest, ErrorsBeforeConnectAndOnBadArguments) {
  FeastRedisReader reader;
  FeastReadResult out;
  EXPECT_EQ(reader.Read(std::vector<int64_t>{1}, &out).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(reader.Connect("127.0.0.1", 1, "bench", {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reader.Connect("127.0.0.1", 1, "bench", {{"fv_00", "f0", ValueType::kInvalid}}).code(),
            absl::StatusCode::kInvalidArgument);
  // Port 1 on loopback: nothing listens (connection refused).
  EXPECT_EQ(reader.Connect("127.0.0.1", 1, "bench", {{"fv_00", "f0", ValueType::kInt64}}).code(),
            absl::StatusCode::kUnavailable);
}

TEST(FeastRedisLoaderTest, MissingFilesAreInvalidArgument) {
  auto server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  testing::TempDir empty;
  LoadOptions load;
  load.data_dir = empty.path();
  load.port = (*server)->port();
  EXPECT_EQ(LoadFeastRedis(load).status().code(), absl::StatusCode::kInvalidArgument);
  const pid_t pid = (*server)->pid();
  server->reset();
  EXPECT_NE(kill(pid, 0), 0);  // stopped by the destructor
}

}  // namespace
}  // namespace quiver::bench::feast
