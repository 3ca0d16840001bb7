#include "quiver/storage/offline_store.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "common/temp_dir.h"
#include "quiver/keys/packed_values.h"

namespace quiver::storage {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kHour = 3600LL * 1'000'000;
constexpr int64_t kBase = 1'704'067'200LL * 1'000'000;  // 2024-01-01T00:00:00Z
constexpr int kRows = 10000;
constexpr int kIds = 500;

std::string Lit(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// `bytes` low bytes of `v`, most significant first.
std::string BigEndian(uint64_t v, int bytes) {
  std::string out(bytes, '\0');
  for (int i = bytes - 1; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}

// An order key whose byte order is the numeric order of a signed key.
std::string OrderedInt64(int64_t v) { return BigEndian(static_cast<uint64_t>(v) ^ (1ULL << 63), 8); }

// Unsigned bytewise order, as memcmp with the shorter prefix first.
bool BytesLess(const std::string& a, const std::string& b) {
  const int c = std::memcmp(a.data(), b.data(), std::min(a.size(), b.size()));
  return c < 0 || (c == 0 && a.size() < b.size());
}

absl::StatusOr<std::string> OrderByInt64Key(std::span<const Value> keys) {
  if (keys.size() != 1 || keys[0].type != ValueType::kInt64 || keys[0].is_null()) {
    return absl::InternalError("expected one non-null INT64 key");
  }
  return OrderedInt64(std::get<int64_t>(keys[0].data));
}

class OfflineStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<OfflineStore>> s = OfflineStore::Open(2);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
    // Per id: 20 rows over 5 event times (4 rows each), distinct created
    // times, so the created column breaks event-time ties; some null ids,
    // delays and embeddings; several row groups.
    file_ = dir_.File("events.parquet");
    Run(absl::StrCat(
        "COPY (SELECT CASE WHEN i % 997 = 3 THEN NULL ELSE i % ", kIds, " END AS id, ",
        "'r' || (i % 7) AS route, ",
        "make_timestamp(", kBase, " + ((i // ", kIds, ") % 5) * ", kHour, ") AS ts, ",
        "make_timestamp(", kBase, " + i * 1000000) AS created, ",
        "CASE WHEN i % 11 = 0 THEN NULL ELSE (i * 31) % 1000 END AS delay, ",
        "CASE WHEN i % 13 = 0 THEN NULL ELSE [i::FLOAT, (i % 3)::FLOAT] END AS emb, ",
        "(i % 100)::INTEGER AS small, i % 2 = 0 AS flag ",
        "FROM range(", kRows, ") t(i)) TO ", Lit(file_),
        " (FORMAT PARQUET, ROW_GROUP_SIZE 2048)"));
  }

  std::string Run(const std::string& sql) {
    absl::StatusOr<std::string> r = store_->QueryScalar(sql);
    EXPECT_TRUE(r.ok()) << r.status() << "\n" << sql;
    return r.value_or("");
  }

  LatestQuery Query(int64_t start, int64_t end) {
    LatestQuery q;
    q.file = file_;
    q.start_us = start;
    q.end_us = end;
    q.join_keys = {{"id", ValueType::kInt64}};
    q.timestamp_field = "ts";
    q.created_timestamp_column = "created";
    q.features = {{"delay", ValueType::kInt64}, {"emb", ValueType::kFloatList}};
    return q;
  }

  // Every row ScanLatest handed to the sink, in arrival order.
  absl::StatusOr<std::vector<OfflineRow>> ScanRows(const LatestQuery& q, size_t batch_rows,
                                                   size_t* max_batch = nullptr) {
    std::vector<OfflineRow> rows;
    absl::Status st = store_->ScanLatest(q, batch_rows, [&](std::vector<OfflineRow>& batch) {
      if (max_batch != nullptr) *max_batch = std::max(*max_batch, batch.size());
      for (OfflineRow& r : batch) rows.push_back(std::move(r));
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
    return rows;
  }

  // "id|ts|created|delay|emb" of a row of Query().
  static std::string Format(const OfflineRow& r) {
    std::string delay =
        r.values[0].is_null() ? "null" : std::to_string(std::get<int64_t>(r.values[0].data));
    std::string emb = "null";
    if (!r.values[1].is_null()) {
      std::vector<std::string> parts;
      for (double d : std::get<std::vector<double>>(r.values[1].data)) {
        parts.push_back(std::to_string(static_cast<int64_t>(d)));
      }
      emb = absl::StrJoin(parts, ";");
    }
    return absl::StrCat(std::get<int64_t>(r.join_key_values[0].data), "|", r.event_ts_us, "|",
                        r.created_ts_us, "|", delay, "|", emb);
  }

  // Format() per row, sorted by id, as ScanLatest saw them.
  absl::StatusOr<std::string> Scan(const LatestQuery& q, size_t batch_rows,
                                   size_t* max_batch = nullptr) {
    absl::StatusOr<std::vector<OfflineRow>> got = ScanRows(q, batch_rows, max_batch);
    if (!got.ok()) return got.status();
    std::map<int64_t, std::string> rows;
    for (const OfflineRow& r : *got) {
      const int64_t id = std::get<int64_t>(r.join_key_values[0].data);
      EXPECT_TRUE(rows.emplace(id, Format(r)).second) << "id " << id << " returned twice";
    }
    std::vector<std::string> out;
    for (auto& [id, s] : rows) out.push_back(s);
    return absl::StrJoin(out, ",");
  }

  // The same answer computed independently: max event time per id, then the
  // max created time among those rows (unique by construction).
  std::string Expected(int64_t start, int64_t end, const std::string& row_filter = "true") {
    return Run(absl::StrCat(
        "WITH t AS (SELECT * FROM read_parquet(", Lit(file_), ", file_row_number = true) ",
        "WHERE id IS NOT NULL AND ", row_filter, " AND epoch_us(ts) >= ", start,
        " AND epoch_us(ts) < ", end, "), ",
        "m AS (SELECT id, max(ts) AS mts FROM t GROUP BY id), ",
        "c AS (SELECT t.id, max(t.created) AS mc FROM t JOIN m ON t.id = m.id AND t.ts = m.mts "
        "GROUP BY t.id) ",
        "SELECT string_agg(t.id || '|' || epoch_us(t.ts) || '|' || epoch_us(t.created) || '|' || "
        "coalesce(t.delay::VARCHAR, 'null') || '|' || "
        "coalesce(array_to_string(list_transform(t.emb, x -> CAST(x AS BIGINT)), ';'), 'null'), "
        "',' ORDER BY t.id) FROM t JOIN c ON t.id = c.id AND t.created = c.mc"));
  }

  quiver::testing::TempDir dir_;
  std::unique_ptr<OfflineStore> store_;
  std::string file_;
};

TEST_F(OfflineStoreTest, DescribeMapsTypesExactly) {
  const std::string f = dir_.File("types.parquet");
  Run(absl::StrCat("COPY (SELECT 1::INTEGER a, 2::BIGINT b, 1.5::FLOAT c, 2.5::DOUBLE d, true e, "
                   "'x' f, 'y'::BLOB g, now()::TIMESTAMP h, now() i, [1.0]::FLOAT[] j, "
                   "['s'] k, 1.5::DECIMAL(10, 2) l, 4::SMALLINT m) TO ",
                   Lit(f), " (FORMAT PARQUET)"));
  absl::StatusOr<std::vector<ParquetColumn>> cols = store_->Describe(f);
  ASSERT_TRUE(cols.ok()) << cols.status();
  std::map<std::string, std::optional<ValueType>> got;
  for (const ParquetColumn& c : *cols) got[c.name] = c.type;
  EXPECT_EQ(got["a"], ValueType::kInt32);
  EXPECT_EQ(got["b"], ValueType::kInt64);
  EXPECT_EQ(got["c"], ValueType::kFloat);
  EXPECT_EQ(got["d"], ValueType::kDouble);
  EXPECT_EQ(got["e"], ValueType::kBool);
  EXPECT_EQ(got["f"], ValueType::kString);
  EXPECT_EQ(got["g"], ValueType::kBytes);
  EXPECT_EQ(got["h"], ValueType::kUnixTimestamp);
  EXPECT_EQ(got["i"], ValueType::kUnixTimestamp);
  EXPECT_EQ(got["j"], ValueType::kFloatList);
  EXPECT_EQ(got["k"], ValueType::kStringList);
  EXPECT_EQ(got["l"], std::nullopt);
  EXPECT_EQ(got["m"], std::nullopt);
}

TEST_F(OfflineStoreTest, ValidateNamesFileColumnAndTypes) {
  const std::vector<std::string> files = {file_};
  std::vector<NamedType> ok = {{"id", ValueType::kInt64}, {"route", ValueType::kString},
                               {"delay", ValueType::kInt64}, {"emb", ValueType::kFloatList},
                               {"small", ValueType::kInt32}, {"flag", ValueType::kBool}};
  EXPECT_TRUE(store_->Validate(files, "ts", "created", ok).ok());

  std::vector<NamedType> narrow = {{"delay", ValueType::kInt32}};
  absl::Status st = store_->Validate(files, "ts", "", narrow);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), absl::StrCat("column 'delay' of ", file_,
                                       " is BIGINT but feature view schema says INT32"));

  std::vector<NamedType> wider = {{"small", ValueType::kInt64}};
  EXPECT_EQ(store_->Validate(files, "ts", "", wider).code(), absl::StatusCode::kInvalidArgument);
  std::vector<NamedType> list = {{"emb", ValueType::kDoubleList}};
  EXPECT_EQ(store_->Validate(files, "ts", "", list).code(), absl::StatusCode::kInvalidArgument);

  std::vector<NamedType> missing = {{"date", ValueType::kInt64}};
  st = store_->Validate(files, "ts", "", missing);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(),
            absl::StrCat("column 'date' not found in ", file_,
                         " (columns: id, route, ts, created, delay, emb, small, flag)"));

  st = store_->Validate(files, "event_time", "", ok);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("'event_time' not found"));
  st = store_->Validate(files, "delay", "", ok);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("is BIGINT but must be TIMESTAMP"));
  EXPECT_EQ(store_->Validate(files, "ts", "route", ok).code(), absl::StatusCode::kInvalidArgument);

  const std::vector<std::string> gone = {dir_.File("gone.parquet")};
  EXPECT_EQ(store_->Validate(gone, "ts", "", ok).code(), absl::StatusCode::kNotFound);
}

TEST_F(OfflineStoreTest, CorruptOrTruncatedFilesAreInvalidArgument) {
  const std::string truncated = dir_.File("truncated.parquet");
  const auto size = std::filesystem::file_size(file_);
  std::filesystem::copy_file(file_, truncated);
  std::filesystem::resize_file(truncated, size / 2);
  const std::string garbage = dir_.File("garbage.parquet");
  std::ofstream(garbage) << "this is not parquet";

  for (const std::string& f : {truncated, garbage}) {
    EXPECT_EQ(store_->Describe(f).status().code(), absl::StatusCode::kInvalidArgument) << f;
    const std::vector<std::string> files = {f};
    EXPECT_EQ(store_->Validate(files, "ts", "", {}).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->RowGroups(f, "ts").status().code(), absl::StatusCode::kInvalidArgument);
    LatestQuery q = Query(kBase, kBase + 10 * kHour);
    q.file = f;
    EXPECT_EQ(store_->ScanLatest(q, 100, [](auto&) { return absl::OkStatus(); }).code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(store_->Describe(dir_.File("nope.parquet")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->QueryScalar("SELEKT 1").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(OfflineStoreTest, ExpandPathHandlesFilesGlobsAndDirectories) {
  const std::string root = dir_.File("it's a dir");
  std::filesystem::create_directories(root + "/sub");
  std::filesystem::copy_file(file_, root + "/b.parquet");
  std::filesystem::copy_file(file_, root + "/sub/a.parquet");
  std::ofstream(root + "/notes.txt") << "x";

  absl::StatusOr<std::vector<std::string>> files = store_->ExpandPath(root);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(*files, (std::vector<std::string>{root + "/b.parquet", root + "/sub/a.parquet"}));
  files = store_->ExpandPath(root + "/*.parquet");
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(*files, std::vector<std::string>{root + "/b.parquet"});
  files = store_->ExpandPath(root + "/sub/a.parquet");
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(files->size(), 1u);
  // A quote in the path must not break the SQL DuckDB sees.
  EXPECT_TRUE(store_->Describe(root + "/b.parquet").ok());

  absl::Status st = store_->ExpandPath(root + "/*.csv").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(st.message()), HasSubstr(root + "/*.csv"));
  EXPECT_EQ(store_->ExpandPath(dir_.File("missing")).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(OfflineStoreTest, MaxTimestampOfAColumnOverFiles) {
  // The fixture's created column: kBase + i seconds (µs), i < kRows.
  auto max = store_->MaxTimestamp({file_}, "created");
  ASSERT_TRUE(max.ok()) << max.status();
  EXPECT_EQ(*max, std::optional<int64_t>(
                      std::stoll(Run(absl::StrCat("SELECT max(epoch_us(created)) FROM ", Lit(file_))))));
  EXPECT_EQ(*max, std::optional<int64_t>(kBase + (kRows - 1) * int64_t{1000000}));
  // A file whose column is all null, and no file at all: nothing.
  const std::string nulls = dir_.File("nulls.parquet");
  Run(absl::StrCat("COPY (SELECT NULL::TIMESTAMP AS created FROM range(3)) TO ", Lit(nulls),
                   " (FORMAT PARQUET)"));
  EXPECT_EQ(store_->MaxTimestamp({nulls}, "created").value(), std::nullopt);
  EXPECT_EQ(store_->MaxTimestamp({}, "created").value(), std::nullopt);
  EXPECT_FALSE(store_->MaxTimestamp({file_}, "no_such_column").ok());
}

TEST_F(OfflineStoreTest, RowGroupsCoverTheFileWithTimestampStats) {
  absl::StatusOr<std::vector<RowGroupInfo>> groups = store_->RowGroups(file_, "ts");
  ASSERT_TRUE(groups.ok()) << groups.status();
  ASSERT_GE(groups->size(), 2u);
  uint64_t next = 0;
  for (const RowGroupInfo& g : *groups) {
    EXPECT_EQ(g.file, file_);
    EXPECT_EQ(g.row_begin, next);
    EXPECT_GT(g.row_end, g.row_begin);
    next = g.row_end;
    ASSERT_TRUE(g.has_stats);
    EXPECT_EQ(absl::StrCat(g.ts_min_us, ",", g.ts_max_us),
              Run(absl::StrCat("SELECT epoch_us(min(ts)) || ',' || epoch_us(max(ts)) FROM "
                               "read_parquet(", Lit(file_), ", file_row_number = true) WHERE "
                               "file_row_number >= ", g.row_begin, " AND file_row_number < ",
                               g.row_end)));
  }
  EXPECT_EQ(next, static_cast<uint64_t>(kRows));
  // No statistics for a column that does not exist: never pruned.
  groups = store_->RowGroups(file_, "nope");
  ASSERT_TRUE(groups.ok());
  for (const RowGroupInfo& g : *groups) EXPECT_FALSE(g.has_stats);
}

TEST_F(OfflineStoreTest, ScanLatestMatchesAnIndependentQuery) {
  // Whole window, a window cutting off the latest event times, and an empty one.
  for (auto [start, end] : {std::pair{kBase, kBase + 10 * kHour},
                            std::pair{kBase + kHour, kBase + 3 * kHour},
                            std::pair{kBase + 20 * kHour, kBase + 30 * kHour}}) {
    absl::StatusOr<std::string> got = Scan(Query(start, end), 1000);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, Expected(start, end)) << start << ".." << end;
  }
  absl::StatusOr<std::string> all = Scan(Query(kBase, kBase + 10 * kHour), 1000);
  EXPECT_EQ(std::count(all->begin(), all->end(), ','), kIds - 1);  // null ids skipped
}

TEST_F(OfflineStoreTest, PackedValuesAreTheValuesPackedCellForCell) {
  // Every column type of the file: INT64, LIST<FLOAT>, INT32, BOOL, STRING,
  // nulls included. The packed scan must produce exactly AppendPackedValues
  // of what the Value scan reads.
  LatestQuery q = Query(kBase, kBase + 10 * kHour);
  q.features = {{"delay", ValueType::kInt64},  {"emb", ValueType::kFloatList},
                {"small", ValueType::kInt32},  {"flag", ValueType::kBool},
                {"route", ValueType::kString}, {"ts", ValueType::kUnixTimestamp}};
  absl::StatusOr<std::vector<OfflineRow>> plain = ScanRows(q, 100);
  ASSERT_TRUE(plain.ok()) << plain.status();
  q.pack_values = true;
  absl::StatusOr<std::vector<OfflineRow>> packed = ScanRows(q, 100);
  ASSERT_TRUE(packed.ok()) << packed.status();
  ASSERT_EQ(packed->size(), plain->size());
  std::map<int64_t, std::string> want;
  for (const OfflineRow& r : *plain) {
    EXPECT_TRUE(r.packed_values.empty());
    std::string bytes;
    AppendPackedValues(r.values, &bytes);
    want[std::get<int64_t>(r.join_key_values[0].data)] = bytes;
  }
  size_t nulls = 0;
  for (const OfflineRow& r : *packed) {
    EXPECT_TRUE(r.values.empty());
    const int64_t id = std::get<int64_t>(r.join_key_values[0].data);  // no order key: kept
    EXPECT_EQ(r.packed_values, want[id]) << "id " << id;
    nulls += std::count(r.packed_values.begin(), r.packed_values.end(), '\0') > 0;
  }
  EXPECT_GT(nulls, 0u);
  // With an order key the key values are left out (the order key has them).
  q.order_key = [](std::span<const Value> keys) -> absl::StatusOr<std::string> {
    return OrderedInt64(std::get<int64_t>(keys[0].data));
  };
  packed = ScanRows(q, 100);
  ASSERT_TRUE(packed.ok()) << packed.status();
  ASSERT_EQ(packed->size(), plain->size());
  for (const OfflineRow& r : *packed) EXPECT_TRUE(r.join_key_values.empty());
}

TEST_F(OfflineStoreTest, ATaskTooLargeForTheHashJoinFallsBackToASpillingSort) {
  // 400,000 keys, two rows each (the later one wins). Under a 48 MB cap the
  // latest-row hash join cannot hold the keys (DuckDB fails it with
  // kResourceExhausted); the window spills to the temp directory and
  // finishes.
  const std::string f = dir_.File("many_keys.parquet");
  Run(absl::StrCat("COPY (SELECT (i % 400000)::BIGINT AS id, make_timestamp(", kBase,
                   " + (i // 400000) * 1000000) AS ts, make_timestamp(", kBase,
                   ") AS created, i::BIGINT AS delay, NULL::FLOAT[] AS emb FROM range(800000) "
                   "t(i)) TO ",
                   Lit(f), " (FORMAT PARQUET, ROW_GROUP_SIZE 100000)"));
  absl::StatusOr<std::unique_ptr<OfflineStore>> small =
      OfflineStore::Open(1, "48MB", dir_.File("spill"));
  ASSERT_TRUE(small.ok()) << small.status();
  LatestQuery q = Query(kBase, kBase + kHour);
  q.file = f;
  q.order_key = [](std::span<const Value> keys) -> absl::StatusOr<std::string> {
    return OrderedInt64(std::get<int64_t>(keys[0].data));
  };
  uint64_t rows = 0, delay_sum = 0;
  std::string last_key;
  bool sorted = true;
  absl::Status st = (*small)->ScanLatest(q, 10000, [&](std::vector<OfflineRow>& batch) {
    for (const OfflineRow& r : batch) {
      ++rows;
      delay_sum += static_cast<uint64_t>(std::get<int64_t>(r.values[0].data));
      sorted = sorted && r.order_key > last_key;
      last_key = r.order_key;
    }
    return absl::OkStatus();
  });
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ((*small)->sort_fallbacks(), 1u);  // else: grow the input until the join fails
  EXPECT_EQ(store_->sort_fallbacks(), 0u);
  EXPECT_EQ(rows, 400000u);
  EXPECT_TRUE(sorted);
  // Independently: the winners are rows 400000..799999.
  EXPECT_EQ(std::to_string(delay_sum), Run("SELECT sum(i) FROM range(400000, 800000) t(i)"));
}

TEST_F(OfflineStoreTest, ScanLatestHonoursRowRangesAndBoundsBatches) {
  absl::StatusOr<std::vector<RowGroupInfo>> groups = store_->RowGroups(file_, "ts");
  ASSERT_TRUE(groups.ok());
  const RowGroupInfo& g = (*groups)[1];
  LatestQuery q = Query(kBase, kBase + 10 * kHour);
  q.row_begin = g.row_begin;
  q.row_end = g.row_end;
  size_t max_batch = 0;
  absl::StatusOr<std::string> got = Scan(q, 7, &max_batch);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, Expected(kBase, kBase + 10 * kHour,
                           absl::StrCat("file_row_number >= ", g.row_begin,
                                        " AND file_row_number < ", g.row_end)));
  EXPECT_EQ(max_batch, 7u);

  // A sink error stops the scan and comes back as is.
  int calls = 0;
  absl::Status st = store_->ScanLatest(q, 5, [&](std::vector<OfflineRow>&) {
    ++calls;
    return absl::AbortedError("stop");
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(calls, 1);
}

TEST_F(OfflineStoreTest, CreatedTimestampBreaksTiesAndExactTiesReturnEveryTiedRow) {
  const std::string f = dir_.File("ties.parquet");
  Run(absl::StrCat(
      "COPY (SELECT * FROM (VALUES ",
      "(1, make_timestamp(", kBase, "), make_timestamp(5), 10::BIGINT, 'a'),",
      "(1, make_timestamp(", kBase, "), make_timestamp(9), 20::BIGINT, 'b'),",
      "(1, make_timestamp(", kBase, "), NULL, 30::BIGINT, 'c'),",
      "(2, make_timestamp(", kBase, "), make_timestamp(5), 40::BIGINT, 'd'),",
      "(2, make_timestamp(", kBase, "), make_timestamp(5), 50::BIGINT, 'e'),",
      "(2, make_timestamp(", kBase, "), make_timestamp(4), 60::BIGINT, 'f'),",
      "(3, make_timestamp(", kBase + 1, "), NULL, NULL, NULL),",
      "(4, make_timestamp(", kBase, "), NULL, 70::BIGINT, 'g'),",
      "(4, make_timestamp(", kBase, "), NULL, 80::BIGINT, 'h'),",
      "(5, make_timestamp(", kBase + 2, "), make_timestamp(1), 90::BIGINT, 'i'),",
      "(5, make_timestamp(", kBase, "), make_timestamp(100), 91::BIGINT, 'j')",
      ") v(k, ts, created, x, s)) TO ", Lit(f), " (FORMAT PARQUET)"));
  LatestQuery q;
  q.file = f;
  q.start_us = kBase;
  q.end_us = kBase + kHour;
  q.join_keys = {{"k", ValueType::kInt32}};
  q.timestamp_field = "ts";
  q.created_timestamp_column = "created";
  q.features = {{"x", ValueType::kInt64}, {"s", ValueType::kString}};
  // "k|ts|created|x|s" per row; a multiset, the order is unspecified.
  auto format = [](const OfflineRow& r) {
    return absl::StrCat(std::get<int64_t>(r.join_key_values[0].data), "|",
                        r.event_ts_us - kBase, "|", r.created_ts_us, "|",
                        r.values[0].is_null() ? "null" : absl::StrCat(std::get<int64_t>(
                                                             r.values[0].data)),
                        "|", r.values[1].is_null() ? "null"
                                                   : std::get<std::string>(r.values[1].data));
  };
  const std::multiset<std::string> expected = {
      "1|0|9|20|b",           // greatest created wins; a null created loses
      "2|0|5|40|d",           // an exact (ts, created) tie: every tied row
      "2|0|5|50|e",           //   (the online store's merge picks one)
      "3|1|0|null|null",      // null created reads as 0
      "4|0|0|70|g",           // two null created: a tie too
      "4|0|0|80|h",
      "5|2|1|90|i",           // event time first, then created
  };
  for (size_t batch_rows : {2, 100}) {
    absl::StatusOr<std::vector<OfflineRow>> got = ScanRows(q, batch_rows);
    ASSERT_TRUE(got.ok()) << got.status();
    std::multiset<std::string> rows;
    for (const OfflineRow& r : *got) rows.insert(format(r));
    EXPECT_EQ(rows, expected);
  }
  // Ordered by key: the same rows, tied rows next to each other.
  q.order_key = [](std::span<const Value> keys) -> absl::StatusOr<std::string> {
    return OrderedInt64(std::get<int64_t>(keys[0].data));
  };
  absl::StatusOr<std::vector<OfflineRow>> got = ScanRows(q, 3);
  ASSERT_TRUE(got.ok()) << got.status();
  std::multiset<std::string> rows;
  std::vector<int64_t> keys;
  for (const OfflineRow& r : *got) {
    rows.insert(format(r));
    keys.push_back(std::get<int64_t>(r.join_key_values[0].data));
    EXPECT_EQ(r.order_key, OrderedInt64(keys.back()));
  }
  EXPECT_EQ(rows, expected);
  EXPECT_EQ(keys, (std::vector<int64_t>{1, 2, 2, 3, 4, 4, 5}));
  // The declared join-key type is checked against the file too.
  q.join_keys = {{"k", ValueType::kInt64}};
  EXPECT_EQ(store_->ScanLatest(q, 2, [](auto&) { return absl::OkStatus(); }).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(OfflineStoreTest, OrderKeySortsTheLatestRowsByItsBytes) {
  // OrderedInt64's bytes sort as the ids do, so the ordered scan must arrive
  // exactly as the independent answer lists its rows (by id).
  std::atomic<int64_t> calls = 0;
  for (auto [start, end] : {std::pair{kBase, kBase + 10 * kHour},
                            std::pair{kBase + kHour, kBase + 3 * kHour},
                            std::pair{kBase + 20 * kHour, kBase + 30 * kHour}}) {
    LatestQuery q = Query(start, end);
    q.order_key = [&calls](std::span<const Value> keys) {
      calls.fetch_add(1, std::memory_order_relaxed);
      return OrderByInt64Key(keys);
    };
    calls = 0;
    size_t max_batch = 0;
    absl::StatusOr<std::vector<OfflineRow>> got = ScanRows(q, 7, &max_batch);
    ASSERT_TRUE(got.ok()) << got.status();
    std::vector<std::string> formatted;
    for (const OfflineRow& r : *got) {
      formatted.push_back(Format(r));
      EXPECT_EQ(r.order_key, OrderedInt64(std::get<int64_t>(r.join_key_values[0].data)));
    }
    EXPECT_EQ(absl::StrJoin(formatted, ","), Expected(start, end)) << start << ".." << end;
    // The same rows as the unordered scan.
    LatestQuery unordered = Query(start, end);
    absl::StatusOr<std::string> plain = Scan(unordered, 1000);
    ASSERT_TRUE(plain.ok()) << plain.status();
    std::sort(formatted.begin(), formatted.end(), [](const std::string& a, const std::string& b) {
      return std::stoll(a) < std::stoll(b);
    });
    EXPECT_EQ(absl::StrJoin(formatted, ","), *plain);
    // Computed only for the rows the window keeps.
    EXPECT_EQ(calls.load(), static_cast<int64_t>(got->size()));
    EXPECT_LE(max_batch, 7u);
  }
  // Unordered rows carry no order key.
  absl::StatusOr<std::vector<OfflineRow>> plain = ScanRows(Query(kBase, kBase + 10 * kHour), 100);
  ASSERT_TRUE(plain.ok());
  ASSERT_FALSE(plain->empty());
  for (const OfflineRow& r : *plain) EXPECT_EQ(r.order_key, "");
}

TEST_F(OfflineStoreTest, OrderKeyBytesCompareUnsignedWithPrefixesFirst) {
  // One row per id; id i's order key is keys[i]: bytes around 0x00, 0x7f,
  // 0x80 and 0xff, prefixes of each other, around DuckDB's 4-byte prefix and
  // 12-byte inline string sizes, and random ones over a small alphabet so
  // that long shared prefixes are common.
  std::vector<std::string> keys = {
      "", std::string("\0", 1), std::string("\0\0", 2), "\x01", "\x7f", "\x80", "\xff",
      "\xff\xff", "a", "ab", std::string("ab\0", 3), "ab\x7f", "ab\x80", "abc",
      std::string(12, '\x80'), std::string(12, '\x80') + std::string("\0", 1),
      std::string(11, '\x80') + "\x7f", std::string(13, '\x7f'),
      std::string(30, 'z') + "\x7f" + std::string(9, 'z'), std::string(30, 'z') + "\x80",
      std::string(30, 'z')};
  std::mt19937 rng(20240611);
  const char alphabet[] = {'\0', '\x01', '\x7f', '\x80', '\xfe', '\xff'};
  while (keys.size() < 6000) {
    std::string k(rng() % 20, '\0');
    for (char& c : k) c = alphabet[rng() % sizeof(alphabet)];
    keys.push_back(std::move(k));
  }
  const std::string f = dir_.File("blob_order.parquet");
  Run(absl::StrCat("COPY (SELECT i::BIGINT AS id, make_timestamp(", kBase,
                   ") AS ts FROM range(", keys.size(), ") t(i)) TO ", Lit(f),
                   " (FORMAT PARQUET, ROW_GROUP_SIZE 1000)"));
  LatestQuery q;
  q.file = f;
  q.start_us = kBase;
  q.end_us = kBase + 1;
  q.join_keys = {{"id", ValueType::kInt64}};
  q.timestamp_field = "ts";
  q.order_key = [&keys](std::span<const Value> k) -> absl::StatusOr<std::string> {
    return keys.at(std::get<int64_t>(k[0].data));
  };
  absl::StatusOr<std::vector<OfflineRow>> got = ScanRows(q, 500);
  ASSERT_TRUE(got.ok()) << got.status();
  std::vector<std::string> arrived;
  for (const OfflineRow& r : *got) {
    EXPECT_EQ(r.order_key, keys[std::get<int64_t>(r.join_key_values[0].data)]);
    arrived.push_back(r.order_key);
  }
  std::vector<std::string> expected = keys;
  std::sort(expected.begin(), expected.end(), BytesLess);
  ASSERT_EQ(arrived.size(), expected.size());
  EXPECT_TRUE(arrived == expected);  // (a byte-level diff would flood the log)
  for (size_t i = 1; i < arrived.size(); ++i) {
    ASSERT_FALSE(BytesLess(arrived[i], arrived[i - 1])) << "out of order at " << i;
  }
}

TEST_F(OfflineStoreTest, OrderKeyWorksForCompositeKeys) {
  // route ‖ 0x00 ‖ big-endian small (sign bit flipped): (route, small) order.
  LatestQuery q = Query(kBase, kBase + 10 * kHour);
  q.join_keys = {{"route", ValueType::kString}, {"small", ValueType::kInt32}};
  q.features = {{"delay", ValueType::kInt64}, {"route", ValueType::kString}};
  auto key_of = [](std::span<const Value> k) {
    return std::get<std::string>(k[0].data) + std::string(1, '\0') +
           BigEndian(static_cast<uint32_t>(std::get<int64_t>(k[1].data)) ^ 0x80000000u, 4);
  };
  q.order_key = [&key_of](std::span<const Value> k) -> absl::StatusOr<std::string> {
    if (k.size() != 2 || k[0].type != ValueType::kString || k[1].type != ValueType::kInt32) {
      return absl::InternalError("unexpected key types");
    }
    return key_of(k);
  };
  absl::StatusOr<std::vector<OfflineRow>> got = ScanRows(q, 64);
  ASSERT_TRUE(got.ok()) << got.status();
  std::vector<std::string> rows;
  for (const OfflineRow& r : *got) {
    EXPECT_EQ(r.order_key, key_of(r.join_key_values));
    EXPECT_EQ(r.values[1], r.join_key_values[0]);  // a feature may repeat a key column
    rows.push_back(absl::StrCat(std::get<std::string>(r.join_key_values[0].data), "|",
                                std::get<int64_t>(r.join_key_values[1].data), "|",
                                r.event_ts_us, "|", r.created_ts_us));
  }
  EXPECT_EQ(absl::StrJoin(rows, ","),
            Run(absl::StrCat("SELECT string_agg(route || '|' || small || '|' || m[1] || '|' || "
                             "m[2], ',' ORDER BY route, small) FROM (SELECT route, small, "
                             "max([epoch_us(ts), epoch_us(created)]) AS m FROM read_parquet(",
                             Lit(file_), ") GROUP BY route, small)")));
}

TEST_F(OfflineStoreTest, OrderKeyErrorsFailTheScanWithTheirMessage) {
  LatestQuery q = Query(kBase, kBase + 10 * kHour);
  q.order_key = [](std::span<const Value> k) -> absl::StatusOr<std::string> {
    if (std::get<int64_t>(k[0].data) == 42) return absl::InvalidArgumentError("key 42 is bad");
    return OrderByInt64Key(k);
  };
  int sunk = 0;
  absl::Status st = store_->ScanLatest(q, 10, [&](std::vector<OfflineRow>& b) {
    sunk += static_cast<int>(b.size());
    return absl::OkStatus();
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), absl::StrCat("scanning ", file_, ": order_key: key 42 is bad"));
  EXPECT_EQ(sunk, 0);  // the sort needs every key before the first row

  q.order_key = [](std::span<const Value>) -> absl::StatusOr<std::string> {
    return absl::FailedPreconditionError("no cluster map");
  };
  st = store_->ScanLatest(q, 10, [](auto&) { return absl::OkStatus(); });
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(st.message()), HasSubstr("order_key: no cluster map"));

  q.order_key = [](std::span<const Value>) -> absl::StatusOr<std::string> {
    throw std::runtime_error("boom");
  };
  st = store_->ScanLatest(q, 10, [](auto&) { return absl::OkStatus(); });
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(st.message()), HasSubstr("order_key threw: boom"));

  // The store still works, and the function is no way into a scan's state.
  q.order_key = OrderByInt64Key;
  EXPECT_TRUE(store_->ScanLatest(q, 10, [](auto&) { return absl::OkStatus(); }).ok());
  absl::StatusOr<std::string> direct = store_->QueryScalar("SELECT quiver_order_key(1, 2)");
  EXPECT_EQ(direct.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(direct.status().message()), HasSubstr("internal to ScanLatest"));
}

TEST_F(OfflineStoreTest, TimestampWithTimeZoneReadsAsUtcMicros) {
  const std::string f = dir_.File("tz.parquet");
  Run(absl::StrCat("COPY (SELECT 'k' || (i % 3) AS name, "
                   "CAST(make_timestamp(", kBase, " + i * 1000001) AS TIMESTAMPTZ) AS ts, "
                   "[i, i + 1]::BIGINT[] AS ids FROM range(30) t(i)) TO ",
                   Lit(f), " (FORMAT PARQUET)"));
  LatestQuery q;
  q.file = f;
  q.start_us = kBase;
  q.end_us = kBase + 27 * 1000001;  // rows 0..26
  q.join_keys = {{"name", ValueType::kString}};
  q.timestamp_field = "ts";
  q.features = {{"ids", ValueType::kInt64List}};
  std::map<std::string, OfflineRow> got;
  ASSERT_TRUE(store_->ScanLatest(q, 100, [&](std::vector<OfflineRow>& batch) {
                       for (OfflineRow& r : batch) {
                         got[std::get<std::string>(r.join_key_values[0].data)] = r;
                       }
                       return absl::OkStatus();
                     }).ok());
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got["k2"].event_ts_us, kBase + 26 * 1000001);
  EXPECT_EQ(got["k2"].values[0], (Value{ValueType::kInt64List, std::vector<int64_t>{26, 27}}));
  EXPECT_EQ(got["k0"].event_ts_us, kBase + 24 * 1000001);
  absl::StatusOr<std::vector<RowGroupInfo>> groups = store_->RowGroups(f, "ts");
  ASSERT_TRUE(groups.ok());
  ASSERT_EQ(groups->size(), 1u);
  EXPECT_TRUE((*groups)[0].has_stats);
  EXPECT_EQ((*groups)[0].ts_min_us, kBase);
  EXPECT_EQ((*groups)[0].ts_max_us, kBase + 29 * 1000001);
}

TEST_F(OfflineStoreTest, RealFlightsFileRowGroupsAndScan) {
  const char* src = std::getenv("QUIVER_SOURCE_DIR");
  const std::string flights =
      std::string(src != nullptr ? src : ".") + "/third_party/vega-datasets/data/flights-3m.parquet";
  if (!std::filesystem::exists(flights)) GTEST_SKIP() << flights << " missing";
  absl::StatusOr<std::vector<RowGroupInfo>> groups = store_->RowGroups(flights, "date");
  ASSERT_TRUE(groups.ok()) << groups.status();
  ASSERT_EQ(groups->size(), 11u);
  EXPECT_EQ(groups->back().row_end, 3'000'000u);
  LatestQuery q;
  q.file = flights;
  q.row_begin = (*groups)[3].row_begin;
  q.row_end = (*groups)[3].row_end;
  q.start_us = (*groups)[3].ts_min_us;
  q.end_us = (*groups)[3].ts_max_us + 1;
  q.join_keys = {{"origin", ValueType::kString}, {"destination", ValueType::kString}};
  q.timestamp_field = "date";
  q.features = {{"delay", ValueType::kInt64}, {"distance", ValueType::kInt64}};
  uint64_t rows = 0;
  ASSERT_TRUE(store_->ScanLatest(q, 512, [&](std::vector<OfflineRow>& batch) {
                       rows += batch.size();
                       return absl::OkStatus();
                     }).ok());
  EXPECT_EQ(absl::StrCat(rows),
            Run(absl::StrCat("SELECT count(DISTINCT (origin, destination)) FROM read_parquet(",
                             Lit(flights), ", file_row_number = true) WHERE file_row_number >= ",
                             q.row_begin, " AND file_row_number < ", q.row_end)));
}

}  // namespace
}  // namespace quiver::storage
