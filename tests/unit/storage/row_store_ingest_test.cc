// RowStore's bulk load (BeginIngest / IngestSession): what a session makes
// visible is checked against an independent answer (a map of the latest row
// per key, or the same rows applied with Write), including last-writer-wins
// against rows already stored in the memtable or in SST files.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <tuple>

#include "gtest/gtest.h"
#include "common/temp_dir.h"
#include "quiver/keys/entity_key.h"
#include "quiver/storage/row_store.h"

namespace quiver::storage {
namespace {

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kT0 = 1'700'000'000 * kSecond;
constexpr uint32_t kPartitions = 64;

std::string Key(int64_t id) {
  absl::StatusOr<std::string> k = EncodeEntityKey({{"user_id", Value::Int64(id)}});
  EXPECT_TRUE(k.ok()) << k.status();
  return *k;
}

const std::vector<ValueType> kTypes = {ValueType::kInt64, ValueType::kDouble, ValueType::kString};
const std::vector<int> kAll = {0, 1, 2};

RowWrite Row(int64_t id, int64_t event_ts_us, int64_t created_ts_us, int64_t payload) {
  RowWrite w;
  w.entity_key = Key(id);
  w.event_ts_us = event_ts_us;
  w.created_ts_us = created_ts_us;
  w.values = {Value::Int64(payload),
              payload % 5 == 0 ? Value::Null(ValueType::kDouble) : Value::Double(payload / 4.0),
              Value::String(std::string("s").append(std::to_string(payload)))};
  return w;
}

// Stable sort by stored row key: rows of one key keep their relative order.
void SortByRowKey(std::vector<RowWrite>* rows) {
  std::stable_sort(rows->begin(), rows->end(), [](const RowWrite& a, const RowWrite& b) {
    return RowStore::RowKey(a.entity_key, kPartitions) <
           RowStore::RowKey(b.entity_key, kPartitions);
  });
}

// Rows 0..n-1 (event time kT0, payload = id), sorted by row key.
std::vector<RowWrite> SortedRows(int n) {
  std::vector<RowWrite> rows;
  for (int i = 0; i < n; ++i) rows.push_back(Row(i, kT0, 0, i));
  SortByRowKey(&rows);
  return rows;
}

// Regular files under `dir` (0 when it does not exist).
int FilesUnder(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return 0;
  int n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) ++n;
  }
  return n;
}

class RowStoreIngestTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    store_.reset();
    RowStoreOptions o;
    o.path = dir_.File("db");
    o.num_partitions = kPartitions;
    o.block_cache_bytes = 8 << 20;
    o.clock = [this] { return now_.load(); };
    absl::StatusOr<std::unique_ptr<RowStore>> s = RowStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }

  std::string ScratchDir() const { return dir_.File("db") + ".ingest"; }

  void AddView(const std::string& name, uint32_t version = 1) {
    const ViewSchema schema{name, version, kTypes, std::chrono::seconds(0)};
    ASSERT_TRUE(store_->EnsureView(schema).ok());
  }

  std::unique_ptr<IngestSession> Begin(const std::string& view) {
    absl::StatusOr<std::unique_ptr<IngestSession>> s = store_->BeginIngest(view, 0);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

  // Ingests `rows` (already in row-key order) in Append calls of `chunk` rows.
  void Ingest(const std::string& view, const std::vector<RowWrite>& rows, size_t chunk) {
    std::unique_ptr<IngestSession> s = Begin(view);
    ASSERT_NE(s, nullptr);
    for (size_t pos = 0; pos < rows.size(); pos += chunk) {
      const size_t n = std::min(chunk, rows.size() - pos);
      ASSERT_TRUE(s->Append(std::span(rows).subspan(pos, n)).ok());
    }
    EXPECT_EQ(s->rows_appended(), rows.size());
    absl::Status st = s->Commit();
    ASSERT_TRUE(st.ok()) << st;
  }

  std::vector<RowRead> ReadAll(const std::string& view, const std::vector<std::string>& keys) {
    absl::StatusOr<std::vector<RowRead>> r = store_->MultiGet(view, keys, kAll);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : std::vector<RowRead>(keys.size());
  }

  uint64_t Count(const std::string& view) {
    absl::StatusOr<uint64_t> n = store_->CountRows(view);
    EXPECT_TRUE(n.ok()) << n.status();
    return n.value_or(~0ull);
  }

  // Every key of `want` reads back as exactly that row.
  void ExpectRows(const std::string& view, const std::map<std::string, RowWrite>& want) {
    std::vector<std::string> keys;
    for (const auto& [k, row] : want) keys.push_back(k);
    const std::vector<RowRead> got = ReadAll(view, keys);
    ASSERT_EQ(got.size(), keys.size());
    int mismatches = 0;
    for (size_t i = 0; i < keys.size() && mismatches < 5; ++i) {
      const RowWrite& w = want.at(keys[i]);
      const bool same = got[i].status == RowStatus::kPresent &&
                        got[i].event_ts_us == w.event_ts_us &&
                        got[i].created_ts_us == w.created_ts_us && got[i].values == w.values;
      if (!same) ++mismatches;
      EXPECT_TRUE(same) << "key #" << i << ": event_ts " << got[i].event_ts_us << " want "
                        << w.event_ts_us;
    }
  }

  quiver::testing::TempDir dir_;
  std::atomic<int64_t> now_{kT0};
  std::unique_ptr<RowStore> store_;
};

TEST(RowKeyTest, IsBigEndianPartitionThenEntityKey) {
  for (int64_t id : {0, 1, 77, 123456}) {
    const std::string k = Key(id);
    const uint32_t p = PartitionOf(k, 4096);
    const std::string want = std::string{static_cast<char>(p >> 24), static_cast<char>(p >> 16),
                                         static_cast<char>(p >> 8), static_cast<char>(p)} +
                             k;
    EXPECT_EQ(RowStore::RowKey(k, 4096), want);
  }
}

TEST_F(RowStoreIngestTest, IngestedRowsReadBackAsTheLatestPerKey) {
  AddView("v");
  // 20k rows over 8k keys: most keys repeat, often across Append calls.
  // Event times are distinct, so the latest row per key is unambiguous.
  std::mt19937_64 rng(7);
  constexpr int kRows = 20'000;
  constexpr int kKeys = 8'000;
  std::vector<int64_t> times(kRows);
  for (int i = 0; i < kRows; ++i) times[i] = kT0 + i * kSecond;
  std::shuffle(times.begin(), times.end(), rng);
  std::vector<RowWrite> rows;
  std::map<std::string, RowWrite> latest;  // the independent answer
  for (int i = 0; i < kRows; ++i) {
    rows.push_back(Row(static_cast<int64_t>(rng() % kKeys), times[i], times[i] + 1,
                       static_cast<int64_t>(rng() % 100'000)));
    auto [it, inserted] = latest.emplace(rows.back().entity_key, rows.back());
    if (!inserted && rows.back().event_ts_us > it->second.event_ts_us) it->second = rows.back();
  }
  SortByRowKey(&rows);
  Ingest("v", rows, 777);

  ExpectRows("v", latest);
  EXPECT_EQ(Count("v"), latest.size());
  EXPECT_EQ(FilesUnder(ScratchDir()), 0);
  // Keys never written stay absent.
  const std::vector<RowRead> absent = ReadAll("v", {Key(kKeys), Key(kKeys + 1)});
  EXPECT_EQ(absent[0].status, RowStatus::kNotFound);
  EXPECT_EQ(absent[1].status, RowStatus::kNotFound);
}

TEST_F(RowStoreIngestTest, CommittedRowsSurviveReopen) {
  AddView("v");
  std::vector<RowWrite> rows;
  std::map<std::string, RowWrite> want;
  for (int i = 0; i < 500; ++i) {
    rows.push_back(Row(i, kT0 + i, kT0, i));
    want.emplace(rows.back().entity_key, rows.back());
  }
  SortByRowKey(&rows);
  Ingest("v", rows, 100);
  Reopen();
  ExpectRows("v", want);
  EXPECT_EQ(Count("v"), 500u);
}

// Stored rows (written with Write, in the memtable or flushed into SST files)
// and ingested rows of the same keys: the greater event time wins either way.
TEST_F(RowStoreIngestTest, IngestFollowsLastWriterWinsAgainstStoredRows) {
  for (bool flushed : {false, true}) {
    SCOPED_TRACE(flushed ? "stored rows in SST files" : "stored rows in the memtable");
    const std::string view = flushed ? "sst" : "mem";
    AddView(view);
    std::vector<RowWrite> stored;
    std::vector<RowWrite> ingested;
    std::map<std::string, RowWrite> want;
    auto take = [&want](const RowWrite& r) {
      auto [it, inserted] = want.emplace(r.entity_key, r);
      if (!inserted && r.event_ts_us > it->second.event_ts_us) it->second = r;
    };
    for (int i = 0; i < 3000; ++i) {
      // Keys 0..1999 are stored, 1000..2999 ingested; of the shared keys, the
      // even ones have the newer row stored, the odd ones ingested.
      const int64_t newer = kT0 + 100 * kSecond;
      const int64_t older = kT0;
      if (i < 2000) stored.push_back(Row(i, i % 2 == 0 ? newer : older, 0, i));
      if (i >= 1000) ingested.push_back(Row(i, i % 2 == 0 ? older : newer, 0, -i));
    }
    for (const RowWrite& r : stored) take(r);
    for (const RowWrite& r : ingested) take(r);
    ASSERT_TRUE(store_->Write(view, stored).ok());
    if (flushed) {
      ASSERT_TRUE(store_->CompactView(view).ok());
    }
    SortByRowKey(&ingested);
    Ingest(view, ingested, 512);
    ExpectRows(view, want);
    EXPECT_EQ(Count(view), 3000u);
    // Still the same once compactions have merged the ingested operands.
    ASSERT_TRUE(store_->CompactView(view).ok());
    ExpectRows(view, want);
  }
}

TEST_F(RowStoreIngestTest, WriteAfterIngestFollowsLastWriterWins) {
  AddView("v");
  std::vector<RowWrite> ingested;
  std::vector<RowWrite> written;
  std::map<std::string, RowWrite> want;
  for (int i = 0; i < 1000; ++i) {
    ingested.push_back(Row(i, kT0 + 50 * kSecond, 0, i));
    // Even keys get an older Write (it loses), odd keys a newer one (it wins).
    written.push_back(Row(i, kT0 + (i % 2 == 0 ? 10 : 90) * kSecond, 0, -i));
    want.emplace(written.back().entity_key, i % 2 == 0 ? ingested.back() : written.back());
  }
  SortByRowKey(&ingested);
  Ingest("v", ingested, 1000);
  ASSERT_TRUE(store_->Write("v", written).ok());
  ExpectRows("v", want);
  ASSERT_TRUE(store_->CompactView("v").ok());
  ExpectRows("v", want);
}

// Equal keys within and across Append calls, including exact (event_ts,
// created_ts) ties that only the encoded bytes decide: the row kept must be
// the one two Write calls keep, whichever order they came in.
TEST_F(RowStoreIngestTest, EqualKeysKeepTheSameWinnerAsWrite) {
  std::vector<std::vector<RowWrite>> groups;  // rows of one key
  for (int k = 0; k < 200; ++k) {
    std::vector<RowWrite> g;
    const int n = 2 + k % 4;
    for (int j = 0; j < n; ++j) {
      // Cases by k % 3: all tied; distinct event times; tied event time and
      // distinct created times.
      const int64_t ev = k % 3 == 1 ? kT0 + j * kSecond : kT0;
      const int64_t cr = k % 3 == 2 ? j : 0;
      g.push_back(Row(k, ev, cr, 1000 * k + j * 37 % 11));
    }
    groups.push_back(g);
  }
  auto ordered = [&](bool reverse_within_key) {
    std::vector<RowWrite> rows;
    for (const auto& g : groups) {
      if (reverse_within_key) {
        rows.insert(rows.end(), g.rbegin(), g.rend());
      } else {
        rows.insert(rows.end(), g.begin(), g.end());
      }
    }
    SortByRowKey(&rows);  // stable: each key keeps its rows' order
    return rows;
  };
  for (const char* v : {"write_fwd", "write_rev", "ingest_fwd", "ingest_rev"}) AddView(v);
  // Reference: one Write per row, in both orders.
  for (const RowWrite& r : ordered(false)) ASSERT_TRUE(store_->Write("write_fwd", {&r, 1}).ok());
  for (const RowWrite& r : ordered(true)) ASSERT_TRUE(store_->Write("write_rev", {&r, 1}).ok());
  // Append calls of 3 rows: groups of 2..5 rows straddle calls.
  Ingest("ingest_fwd", ordered(false), 3);
  Ingest("ingest_rev", ordered(true), 3);

  std::vector<std::string> keys;
  for (int k = 0; k < 200; ++k) keys.push_back(Key(k));
  const std::vector<RowRead> ref = ReadAll("write_fwd", keys);
  std::map<std::string, std::vector<RowRead>> got;
  for (const char* v : {"write_rev", "ingest_fwd", "ingest_rev"}) got[v] = ReadAll(v, keys);
  int tie_groups_with_distinct_values = 0;
  for (size_t k = 0; k < keys.size(); ++k) {
    ASSERT_EQ(ref[k].status, RowStatus::kPresent);
    for (const auto& [view, rows] : got) {
      EXPECT_EQ(rows[k].status, RowStatus::kPresent) << view << " key " << k;
      EXPECT_EQ(rows[k].event_ts_us, ref[k].event_ts_us) << view << " key " << k;
      EXPECT_EQ(rows[k].created_ts_us, ref[k].created_ts_us) << view << " key " << k;
      EXPECT_EQ(rows[k].values, ref[k].values) << view << " key " << k;
    }
    if (k % 3 == 0 && groups[k][0].values != groups[k][1].values) ++tie_groups_with_distinct_values;
  }
  // The bytes rule was exercised: exact ties with different values exist.
  EXPECT_GT(tie_groups_with_distinct_values, 10);
  EXPECT_EQ(Count("ingest_fwd"), 200u);
}

TEST_F(RowStoreIngestTest, OutOfOrderKeyFailsTheSessionAndNothingIsVisible) {
  AddView("v");
  std::vector<RowWrite> rows = SortedRows(300);
  std::unique_ptr<IngestSession> s = Begin("v");
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->Append(std::span(rows).subspan(0, 200)).ok());
  EXPECT_GT(FilesUnder(ScratchDir()), 0);  // rows already went to a file
  // A lower key within the next call, after a few valid rows.
  std::vector<RowWrite> next(rows.begin() + 200, rows.begin() + 205);
  next.push_back(rows[10]);
  absl::Status st = s->Append(next);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_EQ(s->Append(std::span(rows).subspan(205, 1)).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s->Commit().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(FilesUnder(ScratchDir()), 0);
  EXPECT_EQ(Count("v"), 0u);
  EXPECT_EQ(ReadAll("v", {rows[0].entity_key})[0].status, RowStatus::kNotFound);
}

TEST_F(RowStoreIngestTest, InvalidRowFailsTheSessionLikeWrite) {
  AddView("v");
  std::vector<RowWrite> bad = {Row(1, kT0, 0, 1)};
  bad[0].values.pop_back();  // 2 values for 3 features
  EXPECT_EQ(store_->Write("v", bad).code(), absl::StatusCode::kInvalidArgument);
  std::unique_ptr<IngestSession> s = Begin("v");
  ASSERT_NE(s, nullptr);
  absl::Status st = s->Append(bad);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  const std::vector<RowWrite> good = {Row(2, kT0, 0, 2)};
  EXPECT_EQ(s->Append(good).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s->rows_appended(), 0u);

  // Wrong type and an empty key, each in a fresh session.
  std::vector<RowWrite> wrong_type = {Row(3, kT0, 0, 3)};
  wrong_type[0].values[0] = Value::Double(1);
  std::vector<RowWrite> empty_key = {Row(4, kT0, 0, 4)};
  empty_key[0].entity_key.clear();
  for (const auto& rows : {wrong_type, empty_key}) {
    std::unique_ptr<IngestSession> t = Begin("v");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->Append(rows).code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(Count("v"), 0u);
}

TEST_F(RowStoreIngestTest, AbortLeavesNothingVisibleAndNoFiles) {
  AddView("v");
  std::vector<RowWrite> rows = SortedRows(2000);
  {
    std::unique_ptr<IngestSession> s = Begin("v");
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->Append(rows).ok());
    EXPECT_GT(FilesUnder(ScratchDir()), 0);
  }  // destroyed without Commit
  EXPECT_EQ(FilesUnder(ScratchDir()), 0);
  EXPECT_EQ(Count("v"), 0u);
  EXPECT_EQ(ReadAll("v", {rows[0].entity_key})[0].status, RowStatus::kNotFound);
  // The store takes another session afterwards.
  Ingest("v", rows, 2000);
  EXPECT_EQ(Count("v"), 2000u);
}

TEST_F(RowStoreIngestTest, SchemaChangeBeforeCommitIsUnavailable) {
  AddView("v", 1);
  std::vector<RowWrite> rows = SortedRows(100);
  std::unique_ptr<IngestSession> s = Begin("v");
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->Append(rows).ok());
  AddView("v", 2);
  absl::Status st = s->Commit();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_EQ(s->Commit().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Count("v"), 0u);  // counts rows of any schema version
  EXPECT_EQ(FilesUnder(ScratchDir()), 0);

  // BeginIngest checks the version the caller expects, and the view.
  EXPECT_EQ(store_->BeginIngest("v", 1).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_->BeginIngest("nope", 0).status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<std::unique_ptr<IngestSession>> again = store_->BeginIngest("v", 2);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE((*again)->Append(rows).ok());
  ASSERT_TRUE((*again)->Commit().ok());
  EXPECT_EQ(Count("v"), 100u);
}

TEST_F(RowStoreIngestTest, EmptySessionCommitsAsNoOp) {
  AddView("v");
  std::unique_ptr<IngestSession> s = Begin("v");
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->Append({}).ok());
  EXPECT_TRUE(s->Commit().ok());
  EXPECT_EQ(s->Commit().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Count("v"), 0u);
}

TEST_F(RowStoreIngestTest, OpenRemovesLeftoverIngestFiles) {
  AddView("v");
  std::vector<RowWrite> rows = SortedRows(200);
  std::unique_ptr<IngestSession> s = Begin("v");
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->Append(rows).ok());
  // What a crash mid-session leaves: a copy of the session's files (the
  // session itself deletes its own when it goes), plus a stray file.
  const std::string crash = dir_.File("crash");
  std::filesystem::copy(ScratchDir(), crash, std::filesystem::copy_options::recursive);
  s.reset();
  store_.reset();
  std::filesystem::copy(crash, ScratchDir(), std::filesystem::copy_options::recursive);
  std::ofstream(ScratchDir() + "/stray.sst") << "junk";
  ASSERT_GT(FilesUnder(ScratchDir()), 1);
  Reopen();
  EXPECT_EQ(FilesUnder(ScratchDir()), 0);
  EXPECT_EQ(Count("v"), 0u);
}

// Timing, not a test: 1M rows of 8 mixed features (bench/materialize/run's
// schema) by bulk load vs by Write in 10k-row batches. Run with
//   row_store_ingest_test --gtest_also_run_disabled_tests --gtest_filter='*Timing*'
// (QUIVER_INGEST_TIMING_ROWS overrides the row count). Prints, never asserts
// timings.
double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);  // every thread: RocksDB's flushes and compactions too
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// 16 hex digits of a hash of `i` (like md5's prefix in bench/materialize/run).
std::string Hex16(uint64_t i) {
  uint64_t h = i * 0x9e3779b97f4a7c15ull;
  std::string s(16, '0');
  for (char& c : s) {
    c = "0123456789abcdef"[h & 15];
    h >>= 4;
  }
  return s;
}

TEST(RowStoreIngestTiming, DISABLED_MillionRowsIngestVsWrite) {
  const char* env = std::getenv("QUIVER_INGEST_TIMING_ROWS");
  const int64_t n = env != nullptr ? std::atoll(env) : 1'000'000;
  const std::vector<ValueType> types = {
      ValueType::kInt64, ValueType::kInt64, ValueType::kDouble, ValueType::kDouble,
      ValueType::kFloat, ValueType::kFloat, ValueType::kString, ValueType::kInt32};
  std::vector<RowWrite> rows(n);
  for (int64_t i = 0; i < n; ++i) {
    RowWrite& w = rows[i];
    w.entity_key = *EncodeEntityKey({{"entity_id", Value::Int64(i * 2654435761 % (n * 4))}});
    w.event_ts_us = kT0 + i * kSecond;
    w.created_ts_us = w.event_ts_us + 5 * kSecond;
    w.values = {Value::Int64(i),
                i % 37 == 0 ? Value::Null(ValueType::kInt64) : Value::Int64(i * 7919 % 1000000),
                Value::Double(i / 7.0),
                i % 41 == 0 ? Value::Null(ValueType::kDouble) : Value::Double(i % 100000 / 1e3),
                Value::Float(static_cast<float>(i % 1000) / 8),
                Value::Float(static_cast<float>(i * 31 % 1000) / 3),
                i % 43 == 0 ? Value::Null(ValueType::kString) : Value::String(Hex16(i)),
                Value::Int32(static_cast<int32_t>(i % 100000))};
  }
  constexpr uint32_t kQ = 4096;
  std::vector<std::string> row_keys(n);
  for (int64_t i = 0; i < n; ++i) row_keys[i] = RowStore::RowKey(rows[i].entity_key, kQ);
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](int64_t a, int64_t b) { return row_keys[a] < row_keys[b]; });
  std::vector<RowWrite> sorted;
  sorted.reserve(n);
  for (int64_t i : order) sorted.push_back(std::move(rows[i]));
  rows.clear();

  quiver::testing::TempDir dir;
  for (const bool ingest : {true, false}) {
    RowStoreOptions o;
    o.path = dir.File(ingest ? "ingest" : "write");
    o.num_partitions = kQ;
    absl::StatusOr<std::unique_ptr<RowStore>> opened = RowStore::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status();
    std::unique_ptr<RowStore> store = *std::move(opened);
    ASSERT_TRUE(store->EnsureView(ViewSchema{"fv", 1, types, std::chrono::seconds(0)}).ok());
    const auto wall0 = std::chrono::steady_clock::now();
    const double cpu0 = CpuSeconds();
    constexpr size_t kBatch = 10'000;
    std::unique_ptr<IngestSession> session;
    if (ingest) {
      absl::StatusOr<std::unique_ptr<IngestSession>> s = store->BeginIngest("fv", 1);
      ASSERT_TRUE(s.ok()) << s.status();
      session = *std::move(s);
    }
    for (size_t pos = 0; pos < sorted.size(); pos += kBatch) {
      const auto batch = std::span(sorted).subspan(pos, std::min(kBatch, sorted.size() - pos));
      ASSERT_TRUE(ingest ? session->Append(batch).ok() : store->Write("fv", batch).ok());
    }
    if (ingest) {
      ASSERT_TRUE(session->Commit().ok());
    }
    const double load_wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    const double load_cpu = CpuSeconds() - cpu0;
    store.reset();  // waits for running flushes and compactions
    const double close_wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    const double close_cpu = CpuSeconds() - cpu0;
    // Reopening replays the WAL of Write's last memtable and flushes it.
    opened = RowStore::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store = *std::move(opened);
    const double reopen_wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    const double reopen_cpu = CpuSeconds() - cpu0;
    std::printf(
        "%s rows=%lld wall_s/cpu_s: load %.2f/%.2f, +close %.2f/%.2f, +reopen %.2f/%.2f\n",
        ingest ? "ingest" : "write_10k_batches", static_cast<long long>(n), load_wall, load_cpu,
        close_wall, close_cpu, reopen_wall, reopen_cpu);
    absl::StatusOr<uint64_t> count = store->CountRows("fv");
    ASSERT_TRUE(count.ok()) << count.status();
    EXPECT_EQ(*count, static_cast<uint64_t>(n));
  }
}

}  // namespace
}  // namespace quiver::storage
