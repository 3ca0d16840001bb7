#include "quiver/node/materializer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "node_test_util.h"
#include "quiver/keys/entity_key.h"
#include "quiver/keys/packed_values.h"
#include "quiver/storage/offline_store.h"
#include "quiver/storage/row_store.h"

namespace quiver::node {
namespace {

using testing::AddFeature;
using testing::AddSingleEntityView;
using testing::BuildIndex;
using testing::TempDir;

constexpr int64_t kDayUs = 24LL * 3600 * 1000 * 1000;
// 2024-01-01T00:00:00Z
constexpr int64_t kBaseUs = 1704067200LL * 1000 * 1000;

// Collects what a task would send to the replicas (called from the task's
// writer threads).
class CollectingSink final : public RowSink {
 public:
  absl::Status Write(const std::string& view, uint32_t schema_version,
                     const std::vector<client::EncodedRow>& rows) override {
    std::lock_guard<std::mutex> lock(mu);
    if (!fail_with.ok()) return fail_with;
    views.push_back(view);
    schema_versions.push_back(schema_version);
    batch_sizes.push_back(rows.size());
    collected.insert(collected.end(), rows.begin(), rows.end());
    return absl::OkStatus();
  }
  // A bulk-loading sink: rows must come sorted by stored key.
  uint32_t ordered_partitions() const override { return partitions; }
  absl::Status Finish(bool commit) override {
    std::lock_guard<std::mutex> lock(mu);
    finishes.push_back(commit);
    return absl::OkStatus();
  }
  std::mutex mu;
  absl::Status fail_with;
  uint32_t partitions = 0;
  std::vector<bool> finishes;
  std::vector<std::string> views;
  std::vector<uint32_t> schema_versions;
  std::vector<size_t> batch_sizes;
  std::vector<client::EncodedRow> collected;
};

// A collected row's features: the materializer sends them packed.
std::vector<Value> Unpacked(const client::EncodedRow& row, std::vector<ValueType> types) {
  EXPECT_TRUE(row.values.empty());
  std::vector<Value> values;
  absl::Status st = UnpackValues(row.packed_values, types, &values);
  EXPECT_TRUE(st.ok()) << st;
  values.resize(types.size());
  return values;
}

class MaterializerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto offline = storage::OfflineStore::Open(1);
    ASSERT_TRUE(offline.ok()) << offline.status();
    offline_ = *std::move(offline);
    file_ = dir_.path() + "/events.parquet";
    // 1000 events of 50 users over ~16 hours; every 13th score is NULL. For a
    // user, (ts, created) never ties, so "latest" has one answer.
    auto copied = offline_->QueryScalar(absl::StrCat(
        "COPY (SELECT (i % 50)::BIGINT AS user_id, "
        "TIMESTAMP '2024-01-01' + to_minutes((i * 7) % 1000) AS ts, "
        "TIMESTAMP '2024-01-01' + to_seconds(i) AS created, "
        "CASE WHEN i % 13 = 0 THEN NULL ELSE i * 0.5 END::DOUBLE AS score, "
        "'n' || i AS label FROM range(1000) t(i)) TO '",
        file_, "' (FORMAT PARQUET, ROW_GROUP_SIZE 256)"));
    ASSERT_TRUE(copied.ok()) << copied.status();

    quiver::v1::Registry r;
    r.set_project("test");
    r.set_version(5);
    auto* view = AddSingleEntityView(&r, {.entity = "user", .join_key = "user_id",
                                          .source = "events", .path = file_,
                                          .created_column = "created", .view = "user_scores"});
    AddFeature(view, "score", quiver::v1::DOUBLE);
    AddFeature(view, "label", quiver::v1::STRING);
    view->set_schema_version(2);
    registry_ = BuildIndex(r);
  }

  quiver::v1::MaterializationTask Task(uint64_t row_begin, uint64_t row_end, int64_t start_us,
                                       int64_t end_us) const {
    quiver::v1::MaterializationTask task;
    task.set_job_id(1);
    task.set_task_id(1);
    task.set_view("user_scores");
    task.set_file(file_);
    task.set_row_begin(row_begin);
    task.set_row_end(row_end);
    task.set_start_us(start_us);
    task.set_end_us(end_us);
    task.set_registry_version(5);
    return task;
  }

  // DuckDB's own latest-per-user answer, one "user|ts|created|score|label" per user.
  std::string Expected(uint64_t row_begin, uint64_t row_end, int64_t start_us, int64_t end_us) {
    auto text = offline_->QueryScalar(absl::StrCat(
        "SELECT coalesce(string_agg(user_id || '|' || epoch_us(ts) || '|' || epoch_us(created) "
        "|| '|' || coalesce(printf('%.3f', score), 'NULL') || '|' || label, ';' ORDER BY user_id), "
        "'') FROM (SELECT * FROM read_parquet('", file_, "', file_row_number = true) "
        "WHERE file_row_number >= ", row_begin, " AND file_row_number < ", row_end,
        " AND epoch_us(ts) >= ", start_us, " AND epoch_us(ts) < ", end_us,
        " QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY ts DESC, created DESC) = 1)"));
    EXPECT_TRUE(text.ok()) << text.status();
    return text.value_or("");
  }

  static std::string Format(std::vector<client::EncodedRow> rows) {
    std::vector<std::pair<int64_t, std::string>> lines;
    for (const auto& row : rows) {
      auto parts = DecodeEntityKey(row.entity_key);
      EXPECT_TRUE(parts.ok() && parts->size() == 1);
      const int64_t user = std::get<int64_t>((*parts)[0].value.data);
      const std::vector<Value> values = Unpacked(row, {ValueType::kDouble, ValueType::kString});
      const Value& score = values[0];
      lines.emplace_back(
          user, absl::StrCat(user, "|", row.event_ts_us, "|", row.created_ts_us, "|",
                             score.is_null() ? "NULL"
                                             : absl::StrFormat("%.3f", std::get<double>(score.data)),
                             "|", std::get<std::string>(values[1].data)));
    }
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (const auto& [user, line] : lines) absl::StrAppend(&out, out.empty() ? "" : ";", line);
    return out;
  }

  TempDir dir_;
  std::unique_ptr<storage::OfflineStore> offline_;
  std::string file_;
  std::shared_ptr<const client::RegistryIndex> registry_;
};

TEST_F(MaterializerTest, WholeFileMatchesDuckDbLatestPerKey) {
  CollectingSink sink;
  auto task = Task(0, 1000, kBaseUs, kBaseUs + kDayUs);
  auto result = RunMaterializationTask(*registry_, task, *offline_, sink, 10000);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->rows_written, 50u);
  EXPECT_EQ(result->rows_skipped, 0u);
  EXPECT_EQ(Format(sink.collected), Expected(0, 1000, kBaseUs, kBaseUs + kDayUs));
  for (uint32_t v : sink.schema_versions) EXPECT_EQ(v, 2u);
  for (const auto& v : sink.views) EXPECT_EQ(v, "user_scores");
}

TEST_F(MaterializerTest, OrderedSinkGetsRowsInStoredKeyOrderAndOneCommit) {
  CollectingSink sink;
  sink.partitions = 16;
  auto task = Task(0, 1000, kBaseUs, kBaseUs + kDayUs);
  auto result = RunMaterializationTask(*registry_, task, *offline_, sink, 7);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->rows_written, 50u);
  EXPECT_EQ(Format(sink.collected), Expected(0, 1000, kBaseUs, kBaseUs + kDayUs));
  for (size_t i = 1; i < sink.collected.size(); ++i) {
    EXPECT_LT(storage::RowStore::RowKey(sink.collected[i - 1].entity_key, 16),
              storage::RowStore::RowKey(sink.collected[i].entity_key, 16))
        << "row " << i;
  }
  EXPECT_EQ(sink.finishes, std::vector<bool>{true});
}

TEST_F(MaterializerTest, OrderedSinkIsFinishedWithoutCommitWhenAWriteFails) {
  CollectingSink sink;
  sink.partitions = 16;
  sink.fail_with = absl::UnavailableError("replica gone");
  auto result =
      RunMaterializationTask(*registry_, Task(0, 1000, kBaseUs, kBaseUs + kDayUs), *offline_, sink, 10);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(sink.finishes, std::vector<bool>{false});
}

TEST_F(MaterializerTest, RowRangeWindowAndSmallBatchesMatchDuckDb) {
  CollectingSink sink;
  const int64_t start = kBaseUs + 3 * 3600LL * 1000000;
  const int64_t end = kBaseUs + 9 * 3600LL * 1000000;
  auto task = Task(200, 600, start, end);
  auto result = RunMaterializationTask(*registry_, task, *offline_, sink, 7);
  ASSERT_TRUE(result.ok()) << result.status();
  const std::string expected = Expected(200, 600, start, end);
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(Format(sink.collected), expected);
  EXPECT_EQ(result->rows_written, sink.collected.size());
  EXPECT_GT(sink.batch_sizes.size(), 1u);
  for (size_t n : sink.batch_sizes) EXPECT_LE(n, 7u);
}

TEST_F(MaterializerTest, KeysThatCannotBeEncodedAreSkippedAndCounted) {
  const std::string file = dir_.path() + "/names.parquet";
  ASSERT_TRUE(offline_
                  ->QueryScalar(absl::StrCat(
                      "COPY (SELECT CASE WHEN i = 3 THEN repeat('x', 5000) ELSE 'u' || i END "
                      "AS name, TIMESTAMP '2024-01-01' + to_minutes(i) AS ts, i::BIGINT AS v "
                      "FROM range(10) t(i)) TO '",
                      file, "' (FORMAT PARQUET)"))
                  .ok());
  quiver::v1::Registry r = registry_->registry();
  auto* view = AddSingleEntityView(&r, {.entity = "person", .join_key = "name",
                                        .key_type = quiver::v1::STRING, .source = "names",
                                        .path = file, .view = "person_v"});
  AddFeature(view, "v", quiver::v1::INT64);
  auto registry = BuildIndex(r);

  auto task = Task(0, 10, kBaseUs, kBaseUs + kDayUs);
  task.set_view("person_v");
  task.set_file(file);
  CollectingSink sink;
  auto result = RunMaterializationTask(*registry, task, *offline_, sink, 100);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->rows_skipped, 1u);
  EXPECT_EQ(result->rows_written, 9u);
  ASSERT_EQ(sink.collected.size(), 9u);
  for (const auto& row : sink.collected) {
    EXPECT_EQ(row.created_ts_us, 0);  // the source has no created column
    EXPECT_EQ(Unpacked(row, {ValueType::kInt64})[0].type, ValueType::kInt64);
  }
}

TEST_F(MaterializerTest, SinkFailureStopsTheTaskAndIsRetryable) {
  CollectingSink sink;
  sink.fail_with = absl::UnavailableError("quorum missed");
  auto result =
      RunMaterializationTask(*registry_, Task(0, 1000, kBaseUs, kBaseUs + kDayUs), *offline_, sink, 10);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(IsRetryable(result.status()));
}

TEST_F(MaterializerTest, UnknownViewIsNotFoundAndNotRetryable) {
  CollectingSink sink;
  auto task = Task(0, 1000, kBaseUs, kBaseUs + kDayUs);
  task.set_view("nope");
  auto result = RunMaterializationTask(*registry_, task, *offline_, sink, 10);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(IsRetryable(result.status()));
  EXPECT_TRUE(sink.collected.empty());
}

TEST_F(MaterializerTest, CancelledBetweenBatches) {
  CollectingSink sink;
  auto result = RunMaterializationTask(*registry_, Task(0, 1000, kBaseUs, kBaseUs + kDayUs),
                                       *offline_, sink, 10, [] { return true; });
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(sink.collected.empty());
}

TEST(RetryableTest, ClassifiesCodes) {
  EXPECT_TRUE(IsRetryable(absl::DeadlineExceededError("")));
  EXPECT_TRUE(IsRetryable(absl::UnavailableError("")));
  EXPECT_FALSE(IsRetryable(absl::InvalidArgumentError("")));
  EXPECT_FALSE(IsRetryable(absl::NotFoundError("")));
}

}  // namespace
}  // namespace quiver::node
