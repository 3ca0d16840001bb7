#include "quiver/storage/row_store.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quiver/keys/entity_key.h"
#include "quiver/keys/packed_values.h"
#include "raw_row.h"
#include "common/temp_dir.h"

namespace quiver::storage {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kT0 = 1'700'000'000 * kSecond;

std::string Key(int64_t id) {
  absl::StatusOr<std::string> k = EncodeEntityKey({{"user_id", Value::Int64(id)}});
  EXPECT_TRUE(k.ok()) << k.status();
  return *k;
}

class RowStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen(uint32_t partitions = 64) {
    store_.reset();
    RowStoreOptions o;
    o.path = dir_.File("db");
    o.num_partitions = partitions;
    o.block_cache_bytes = 8 << 20;
    o.clock = [this] { return now_.load(); };
    absl::StatusOr<std::unique_ptr<RowStore>> s = RowStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }

  ViewSchema Schema(std::string name, std::vector<ValueType> types, int64_t ttl_s = 0,
                    uint32_t version = 1) {
    return ViewSchema{std::move(name), version, std::move(types), std::chrono::seconds(ttl_s)};
  }

  RowRead ReadOne(const std::string& view, const std::string& key, std::vector<int> indices) {
    std::vector<std::string> keys = {key};
    absl::StatusOr<std::vector<RowRead>> r = store_->MultiGet(view, keys, indices);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && r->size() == 1 ? (*r)[0] : RowRead{};
  }

  uint64_t Count(const std::string& view) {
    absl::StatusOr<uint64_t> n = store_->CountRows(view);
    EXPECT_TRUE(n.ok()) << n.status();
    return n.value_or(~0ull);
  }

  quiver::testing::TempDir dir_;
  std::atomic<int64_t> now_{kT0};
  std::unique_ptr<RowStore> store_;
};

TEST_F(RowStoreTest, LastWriterWinsWhateverTheArrivalOrder) {
  // Per key: writes over few event/created times, so equal event_ts with
  // different created_ts and exact (event_ts, created_ts) ties both occur.
  std::mt19937_64 rng(42);
  constexpr int kKeys = 6;
  std::vector<RowWrite> writes;
  for (int k = 0; k < kKeys; ++k) {
    for (int i = 0; i < 9; ++i) {
      RowWrite w;
      w.entity_key = Key(k);
      w.event_ts_us = kT0 + static_cast<int64_t>(rng() % 3) * kSecond;
      w.created_ts_us = static_cast<int64_t>(rng() % 2);
      w.values = {Value::Int64(static_cast<int64_t>(rng() % 1000)),
                  Value::String(std::string("v").append(std::to_string(rng() % 5)))};
      writes.push_back(w);
    }
    writes.push_back(writes.back());  // an exact duplicate (a retry)
  }
  // Independent answer: the max (event_ts, created_ts) per key, and the set of
  // rows tied at that max (any of which may win, but always the same one).
  std::map<std::string, std::tuple<int64_t, int64_t>> best;
  for (const RowWrite& w : writes) {
    auto t = std::make_tuple(w.event_ts_us, w.created_ts_us);
    auto [it, inserted] = best.emplace(w.entity_key, t);
    if (!inserted) it->second = std::max(it->second, t);
  }
  std::map<std::string, std::vector<std::vector<Value>>> tied;
  for (const RowWrite& w : writes) {
    if (std::make_tuple(w.event_ts_us, w.created_ts_us) == best[w.entity_key]) {
      tied[w.entity_key].push_back(w.values);
    }
  }

  std::vector<std::string> keys;
  for (int k = 0; k < kKeys; ++k) keys.push_back(Key(k));
  const std::vector<int> all = {0, 1};
  std::vector<RowRead> reference;
  for (int trial = 0; trial < 16; ++trial) {
    const std::string view = "lww" + std::to_string(trial);
    ASSERT_TRUE(store_->EnsureView(Schema(view, {ValueType::kInt64, ValueType::kString})).ok());
    std::shuffle(writes.begin(), writes.end(), rng);
    // Mix single writes, multi-row batches (the same key may repeat in one
    // batch) and compactions, so merges happen in memtables, at read time and
    // inside compactions.
    size_t pos = 0;
    while (pos < writes.size()) {
      const size_t n = std::min<size_t>(1 + rng() % 4, writes.size() - pos);
      ASSERT_TRUE(store_->Write(view, std::span(writes).subspan(pos, n)).ok());
      pos += n;
      if (rng() % 7 == 0) {
        ASSERT_TRUE(store_->CompactView(view).ok());
      }
    }
    absl::StatusOr<std::vector<RowRead>> got = store_->MultiGet(view, keys, all);
    ASSERT_TRUE(got.ok()) << got.status();
    for (int k = 0; k < kKeys; ++k) {
      const RowRead& r = (*got)[k];
      ASSERT_EQ(r.status, RowStatus::kPresent);
      EXPECT_EQ(std::make_tuple(r.event_ts_us, r.created_ts_us), best[keys[k]]);
      EXPECT_NE(std::find(tied[keys[k]].begin(), tied[keys[k]].end(), r.values),
                tied[keys[k]].end());
      if (trial > 0) {
        EXPECT_EQ(r.values, reference[k].values) << "trial " << trial << " key " << k;
      }
    }
    if (trial == 0) reference = *got;
    EXPECT_EQ(Count(view), static_cast<uint64_t>(kKeys));
  }
}

TEST_F(RowStoreTest, TtlHidesExpiredRowsAndCompactionDropsThem) {
  ASSERT_TRUE(store_->EnsureView(Schema("ttl", {ValueType::kInt64}, /*ttl_s=*/10)).ok());
  ASSERT_TRUE(store_->EnsureView(Schema("forever", {ValueType::kInt64}, /*ttl_s=*/0)).ok());
  const std::vector<RowWrite> old_row = {{Key(1), kT0 - 5 * kSecond, 0, {Value::Int64(7)}}};
  const std::vector<RowWrite> fresh_row = {{Key(2), kT0 + 20 * kSecond, 0, {Value::Int64(8)}}};
  const std::vector<RowWrite> ancient = {{Key(1), 1, 0, {Value::Int64(9)}}};
  ASSERT_TRUE(store_->Write("ttl", old_row).ok());
  ASSERT_TRUE(store_->Write("ttl", fresh_row).ok());
  ASSERT_TRUE(store_->Write("forever", ancient).ok());
  EXPECT_EQ(ReadOne("ttl", Key(1), {0}).status, RowStatus::kPresent);

  // event_ts + ttl = kT0 + 5 s; at kT0 + 5 s exactly the row is still valid.
  now_ = kT0 + 5 * kSecond;
  EXPECT_EQ(ReadOne("ttl", Key(1), {0}).status, RowStatus::kPresent);
  now_ = kT0 + 6 * kSecond;
  RowRead expired = ReadOne("ttl", Key(1), {0});
  EXPECT_EQ(expired.status, RowStatus::kOutsideMaxAge);
  EXPECT_EQ(expired.event_ts_us, kT0 - 5 * kSecond);
  EXPECT_TRUE(expired.values.empty());
  EXPECT_EQ(Count("ttl"), 1u);

  // A longer TTL applies at once to reads.
  ASSERT_TRUE(store_->EnsureView(Schema("ttl", {ValueType::kInt64}, 100)).ok());
  EXPECT_EQ(ReadOne("ttl", Key(1), {0}).status, RowStatus::kPresent);
  ASSERT_TRUE(store_->EnsureView(Schema("ttl", {ValueType::kInt64}, 10)).ok());

  ASSERT_TRUE(store_->CompactView("ttl").ok());
  ASSERT_TRUE(store_->CompactView("forever").ok());
  // Move the clock back: a row only hidden by the read path would reappear;
  // the compaction filter must have removed it for good.
  now_ = kT0;
  EXPECT_EQ(ReadOne("ttl", Key(1), {0}).status, RowStatus::kNotFound);
  EXPECT_EQ(ReadOne("ttl", Key(2), {0}).status, RowStatus::kPresent);
  EXPECT_EQ(Count("ttl"), 1u);
  // TTL 0 never expires, however old the row.
  now_ = kT0 + 1'000'000 * kSecond;
  RowRead forever = ReadOne("forever", Key(1), {0});
  EXPECT_EQ(forever.status, RowStatus::kPresent);
  EXPECT_EQ(forever.values, std::vector<Value>{Value::Int64(9)});
  EXPECT_EQ(Count("forever"), 1u);
}

TEST_F(RowStoreTest, DecodesOnlyRequestedFeaturesInRequestedOrderWithNulls) {
  const std::vector<ValueType> types = {
      ValueType::kInt32,  ValueType::kDouble,     ValueType::kString,
      ValueType::kFloatList, ValueType::kBool,    ValueType::kBytes,
      ValueType::kUnixTimestamp, ValueType::kInt64List, ValueType::kStringList};
  ASSERT_TRUE(store_->EnsureView(Schema("wide", types)).ok());
  const std::vector<Value> values = {
      Value::Int32(-5),
      Value::Null(ValueType::kDouble),
      Value::String("hello"),
      Value{ValueType::kFloatList, std::vector<double>{0.5, -1.25, 3}},
      Value::Bool(true),
      Value::Bytes(std::string("\0\xff", 2)),
      Value::UnixTimestamp(kT0),
      Value{ValueType::kInt64List, std::vector<int64_t>{}},
      Value::Null(ValueType::kStringList)};
  const std::vector<RowWrite> rows = {{Key(3), kT0, kT0, values}};
  ASSERT_TRUE(store_->Write("wide", rows).ok());

  RowRead r = ReadOne("wide", Key(3), {6, 0, 3, 8, 1, 0});
  ASSERT_EQ(r.status, RowStatus::kPresent);
  EXPECT_EQ(r.event_ts_us, kT0);
  EXPECT_EQ(r.created_ts_us, kT0);
  EXPECT_EQ(r.values, (std::vector<Value>{values[6], values[0], values[3], values[8], values[1],
                                          values[0]}));
  EXPECT_TRUE(r.values[3].is_null());
  EXPECT_EQ(r.values[3].type, ValueType::kStringList);

  RowRead none = ReadOne("wide", Key(3), {});
  EXPECT_EQ(none.status, RowStatus::kPresent);
  EXPECT_TRUE(none.values.empty());

  // A batch mixing found and missing keys keeps the request order.
  std::vector<std::string> keys = {Key(99), Key(3), Key(98)};
  absl::StatusOr<std::vector<RowRead>> batch = store_->MultiGet("wide", keys, std::vector<int>{5});
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->size(), 3u);
  EXPECT_EQ((*batch)[0].status, RowStatus::kNotFound);
  EXPECT_EQ((*batch)[1].values, std::vector<Value>{values[5]});
  EXPECT_EQ((*batch)[2].status, RowStatus::kNotFound);

  EXPECT_EQ(store_->MultiGet("wide", keys, std::vector<int>{9}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->MultiGet("wide", keys, std::vector<int>{-1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->MultiGet("nope", keys, std::vector<int>{0}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(RowStoreTest, OtherSchemaVersionReadsAsNotFound) {
  ASSERT_TRUE(store_->EnsureView(Schema("v", {ValueType::kInt64}, 0, /*version=*/1)).ok());
  const std::vector<RowWrite> rows = {{Key(1), kT0, 0, {Value::Int64(1)}}};
  ASSERT_TRUE(store_->Write("v", rows).ok());
  ASSERT_TRUE(store_->EnsureView(Schema("v", {ValueType::kInt64}, 0, /*version=*/2)).ok());
  EXPECT_EQ(ReadOne("v", Key(1), {0}).status, RowStatus::kNotFound);
  // A newer write under version 2 is served again.
  const std::vector<RowWrite> newer = {{Key(1), kT0 + 1, 0, {Value::Int64(2)}}};
  ASSERT_TRUE(store_->Write("v", newer).ok());
  EXPECT_EQ(ReadOne("v", Key(1), {0}).values, std::vector<Value>{Value::Int64(2)});
}

TEST_F(RowStoreTest, NewerSchemaVersionWinsOverNewerEventTime) {
  ASSERT_TRUE(store_->EnsureView(Schema("s", {ValueType::kInt64}, 0, /*version=*/1)).ok());
  const std::vector<RowWrite> old_schema = {{Key(1), kT0 + 1000, 0, {Value::Int64(1)}}};
  ASSERT_TRUE(store_->Write("s", old_schema).ok());
  ASSERT_TRUE(store_->EnsureView(Schema("s", {ValueType::kInt64}, 0, /*version=*/2)).ok());
  // Re-materializing after the schema change brings an older event time.
  const std::vector<RowWrite> new_schema = {{Key(1), kT0, 0, {Value::Int64(2)}}};
  ASSERT_TRUE(store_->Write("s", new_schema).ok());
  // The merge keeps the version-2 row through compaction too.
  ASSERT_TRUE(store_->CompactView("s").ok());
  const RowRead r = ReadOne("s", Key(1), {0});
  EXPECT_EQ(r.status, RowStatus::kPresent);
  EXPECT_EQ(r.event_ts_us, kT0);
  EXPECT_EQ(r.values, std::vector<Value>{Value::Int64(2)});
}

TEST_F(RowStoreTest, RequestsValidatedAgainstAnotherSchemaVersionAreRefused) {
  ASSERT_TRUE(store_->EnsureView(Schema("r", {ValueType::kInt64}, 0, /*version=*/3)).ok());
  const std::vector<RowWrite> rows = {{Key(1), kT0, 0, {Value::Int64(7)}}};
  EXPECT_EQ(store_->Write("r", rows, /*expected_schema_version=*/2).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(Count("r"), 0u);
  ASSERT_TRUE(store_->Write("r", rows, 3).ok());
  const std::vector<std::string> keys = {Key(1)};
  EXPECT_EQ(store_->MultiGet("r", keys, std::vector<int>{0}, 2).status().code(),
            absl::StatusCode::kUnavailable);
  auto read = store_->MultiGet("r", keys, std::vector<int>{0}, 3);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ((*read)[0].values, std::vector<Value>{Value::Int64(7)});
  // A caller with an older registry never moves the view back.
  ASSERT_TRUE(store_->EnsureView(Schema("r", {ValueType::kInt64}, 0, /*version=*/2)).ok());
  EXPECT_TRUE(store_->MultiGet("r", keys, std::vector<int>{0}, 3).ok());
}

TEST_F(RowStoreTest, PackedRowsStoreWhatValueRowsStore) {
  const std::vector<ValueType> types = {ValueType::kInt64,     ValueType::kString,
                                        ValueType::kFloatList, ValueType::kBool,
                                        ValueType::kInt32,     ValueType::kDouble};
  ASSERT_TRUE(store_->EnsureView(Schema("v", types)).ok());
  ASSERT_TRUE(store_->EnsureView(Schema("p", types)).ok());
  std::vector<RowWrite> plain, packed;
  std::vector<std::string> bytes(50);  // packed rows point into these
  for (int i = 0; i < 50; ++i) {
    std::vector<Value> values = {
        Value::Int64(i),
        i % 7 == 0 ? Value::Null(ValueType::kString) : Value::String(std::string(i, 's')),
        Value{ValueType::kFloatList, std::vector<double>(i % 4, 0.5 * i)},
        Value::Bool(i % 2 == 0),
        Value::Int32(-i),
        i % 5 == 0 ? Value::Null(ValueType::kDouble) : Value::Double(i / 3.0)};
    AppendPackedValues(values, &bytes[i]);
    plain.push_back({Key(i), kT0 + i, kT0 - i, values});
    packed.push_back({Key(i), kT0 + i, kT0 - i, {}, bytes[i]});
  }
  ASSERT_TRUE(store_->Write("v", plain).ok());
  // Half written, half bulk-loaded.
  ASSERT_TRUE(store_->Write("p", std::span<const RowWrite>(packed).first(25)).ok());
  std::vector<RowWrite> rest(packed.begin() + 25, packed.end());
  std::sort(rest.begin(), rest.end(), [](const RowWrite& a, const RowWrite& b) {
    return RowStore::RowKey(a.entity_key, 64) < RowStore::RowKey(b.entity_key, 64);
  });
  absl::StatusOr<std::unique_ptr<IngestSession>> session = store_->BeginIngest("p");
  ASSERT_TRUE(session.ok()) << session.status();
  ASSERT_TRUE((*session)->Append(rest).ok());
  ASSERT_TRUE((*session)->Commit().ok());

  std::vector<std::string> keys;
  for (int i = 0; i < 50; ++i) keys.push_back(Key(i));
  const std::vector<int> all = {0, 1, 2, 3, 4, 5};
  absl::StatusOr<std::vector<RowRead>> want = store_->MultiGet("v", keys, all);
  absl::StatusOr<std::vector<RowRead>> got = store_->MultiGet("p", keys, all);
  ASSERT_TRUE(want.ok() && got.ok());
  for (int i = 0; i < 50; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ((*got)[i].status, RowStatus::kPresent);
    EXPECT_EQ((*got)[i].event_ts_us, (*want)[i].event_ts_us);
    EXPECT_EQ((*got)[i].created_ts_us, (*want)[i].created_ts_us);
    EXPECT_EQ((*got)[i].values, (*want)[i].values);
    EXPECT_EQ((*got)[i].values, plain[i].values);
  }
  // Writing either form over the other changes nothing.
  ASSERT_TRUE(store_->Write("p", plain).ok());
  ASSERT_TRUE(store_->Write("v", packed).ok());
  EXPECT_EQ(Count("p"), 50u);
  EXPECT_EQ(store_->MultiGet("p", keys, all)->at(7).values, plain[7].values);

  // A malformed packed row rejects its whole batch.
  std::string bad = bytes[1];
  bad[0] = static_cast<char>(ValueType::kDouble);  // tag of feature 0
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"wrong tag", bad}, {"trailing bytes", bytes[1] + "x"}, {"short", bytes[1].substr(0, 3)}};
  for (const auto& [name, b] : cases) {
    SCOPED_TRACE(name);
    const std::vector<RowWrite> batch = {{Key(100), kT0, 0, {}, bytes[2]},
                                         {Key(101), kT0, 0, {}, b}};
    absl::Status st = store_->Write("p", batch);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(st.message(), HasSubstr("row 1 of view p"));
  }
  const std::vector<RowWrite> both = {{Key(100), kT0, 0, plain[0].values, bytes[0]}};
  EXPECT_EQ(store_->Write("p", both).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadOne("p", Key(100), {0}).status, RowStatus::kNotFound);
}

// Repair: ScanRaw pages through a partition range of one replica and
// MergeRaw applies the pages to another under last-writer-wins.
TEST_F(RowStoreTest, ScanRawPagesAPartitionRangeAndMergeRawRepairsAnotherStore) {
  ASSERT_TRUE(store_->EnsureView(Schema("r", {ValueType::kInt64, ValueType::kString})).ok());
  std::vector<RowWrite> rows;
  for (int i = 0; i < 500; ++i) {
    rows.push_back({Key(i), kT0 + i, 0, {Value::Int64(i), Value::String(std::string(i % 40, 'x'))}});
  }
  ASSERT_TRUE(store_->Write("r", rows).ok());
  auto partition = [](const std::string& row_key) {
    return (static_cast<uint32_t>(static_cast<uint8_t>(row_key[0])) << 24) |
           (static_cast<uint32_t>(static_cast<uint8_t>(row_key[1])) << 16) |
           (static_cast<uint32_t>(static_cast<uint8_t>(row_key[2])) << 8) |
           static_cast<uint32_t>(static_cast<uint8_t>(row_key[3]));
  };
  // Independently: which keys fall in partitions [10, 30).
  std::set<std::string> want;
  for (int i = 0; i < 500; ++i) {
    const std::string k = RowStore::RowKey(Key(i), 64);
    if (partition(k) >= 10 && partition(k) < 30) want.insert(k);
  }
  ASSERT_GT(want.size(), 50u);
  // Small pages: every key once, in order, resumed after the last key.
  std::vector<RawRow> got;
  std::string after;
  int pages = 0;
  while (true) {
    absl::StatusOr<RawScan> page = store_->ScanRaw("r", 10, 30, after, 500);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    for (RawRow& r : page->rows) got.push_back(std::move(r));
    if (page->done) break;
    ASSERT_FALSE(got.empty());
    after = got.back().key;
  }
  EXPECT_GT(pages, 5);
  std::set<std::string> keys;
  for (size_t i = 0; i < got.size(); ++i) {
    if (i > 0) {
      EXPECT_LT(got[i - 1].key, got[i].key);
    }
    keys.insert(got[i].key);
  }
  EXPECT_EQ(keys, want);
  // The last partition has no upper bound; a whole-range scan sees all rows.
  absl::StatusOr<RawScan> all = store_->ScanRaw("r", 0, 64, "", 1 << 30);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->done);
  EXPECT_EQ(all->rows.size(), 500u);

  // A second replica that missed the writes, with one newer and one older
  // row of its own.
  RowStoreOptions o;
  o.path = dir_.File("db2");
  o.num_partitions = 64;
  o.clock = [this] { return now_.load(); };
  absl::StatusOr<std::unique_ptr<RowStore>> other = RowStore::Open(o);
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_TRUE((*other)->EnsureView(Schema("r", {ValueType::kInt64, ValueType::kString})).ok());
  const std::vector<RowWrite> own = {{Key(1), kT0 + 1000, 0, {Value::Int64(-1), Value::String("new")}},
                                     {Key(2), kT0 - 1000, 0, {Value::Int64(-2), Value::String("old")}}};
  ASSERT_TRUE((*other)->Write("r", own).ok());
  ASSERT_TRUE((*other)->MergeRaw("r", all->rows).ok());
  std::vector<std::string> entity_keys;
  for (int i = 0; i < 500; ++i) entity_keys.push_back(Key(i));
  auto a = store_->MultiGet("r", entity_keys, std::vector<int>{0, 1});
  auto b = (*other)->MultiGet("r", entity_keys, std::vector<int>{0, 1});
  ASSERT_TRUE(a.ok() && b.ok());
  for (int i = 0; i < 500; ++i) {
    SCOPED_TRACE(i);
    if (i == 1) {  // its own newer row stays
      EXPECT_EQ((*b)[i].values[1], Value::String("new"));
      continue;
    }
    EXPECT_EQ((*b)[i].values, (*a)[i].values);
    EXPECT_EQ((*b)[i].event_ts_us, (*a)[i].event_ts_us);
  }

  // Bad input: nothing of the batch is written.
  RawRow wrong_partition = all->rows[0];
  wrong_partition.key[0] = static_cast<char>(wrong_partition.key[0] ^ 0x7f);
  RawRow malformed = all->rows[1];
  malformed.value = "not a row";
  const RawRow fresh = {RowStore::RowKey(Key(777), 64), all->rows[2].value};
  for (const RawRow& bad : {wrong_partition, malformed, RawRow{"", "x"}}) {
    const std::vector<RawRow> batch = {fresh, bad};
    EXPECT_EQ((*other)->MergeRaw("r", batch).code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ((*other)->MultiGet("r", std::vector<std::string>{Key(777)}, std::vector<int>{0})
                ->at(0)
                .status,
            RowStatus::kNotFound);
  EXPECT_EQ(store_->ScanRaw("r", 5, 5, "", 100).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ScanRaw("r", 0, 65, "", 100).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ScanRaw("nope", 0, 1, "", 100).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RowStoreTest, BadWritesAreRejectedWholeAndStoreNothing) {
  ASSERT_TRUE(store_->EnsureView(Schema("b", {ValueType::kInt64, ValueType::kInt32})).ok());
  const RowWrite good{Key(1), kT0, 0, {Value::Int64(1), Value::Int32(2)}};
  auto rejected = [&](RowWrite bad) {
    const std::vector<RowWrite> batch = {good, std::move(bad)};
    return store_->Write("b", batch).code();
  };
  EXPECT_EQ(rejected({Key(2), kT0, 0, {Value::Int64(1)}}), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rejected({Key(2), kT0, 0, {Value::Int64(1), Value::Int64(2)}}),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rejected({Key(2), kT0, 0, {Value::Int64(1), Value{ValueType::kInt32, int64_t{1} << 40}}}),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rejected({Key(2), kT0, 0, {Value::Int64(1), Value{ValueType::kInt32, 2.5}}}),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rejected({Key(2), kT0, 0, {Value::Null(ValueType::kString), Value::Int32(2)}}),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rejected({std::string(kMaxEntityKeyBytes + 1, 'k'), kT0, 0,
                      {Value::Int64(1), Value::Int32(2)}}),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rejected({"", kT0, 0, {Value::Int64(1), Value::Int32(2)}}),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Count("b"), 0u);
  EXPECT_EQ(ReadOne("b", Key(1), {0}).status, RowStatus::kNotFound);

  const std::vector<RowWrite> one = {good};
  EXPECT_EQ(store_->Write("unknown", one).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->Write("b", one).ok());
  EXPECT_EQ(Count("b"), 1u);
  EXPECT_EQ(store_->EnsureView(Schema("", {ValueType::kInt64})).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->EnsureView(Schema("x", {ValueType::kInvalid})).code(),
            absl::StatusCode::kInvalidArgument);
  // New types need a new schema version.
  EXPECT_EQ(store_->EnsureView(Schema("b", {ValueType::kInt64, ValueType::kString})).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(store_->EnsureView(Schema("b", {ValueType::kInt64, ValueType::kString}, 0, 2)).ok());
}

TEST_F(RowStoreTest, ReopenKnowsViewsBeforeEnsureView) {
  ASSERT_TRUE(store_->EnsureView(Schema("a", {ValueType::kString}, /*ttl_s=*/10)).ok());
  ASSERT_TRUE(store_->EnsureView(Schema("b", {ValueType::kInt64})).ok());
  std::vector<RowWrite> rows;
  for (int i = 0; i < 100; ++i) {
    rows.push_back({Key(i), kT0, 0, {Value::String(std::string("s").append(std::to_string(i)))}});
  }
  ASSERT_TRUE(store_->Write("a", rows).ok());
  Reopen();
  EXPECT_EQ(Count("a"), 100u);
  EXPECT_EQ(Count("b"), 0u);
  EXPECT_EQ(ReadOne("a", Key(42), {0}).values, std::vector<Value>{Value::String("s42")});
  // The recorded TTL survived the restart.
  now_ = kT0 + 11 * kSecond;
  EXPECT_EQ(ReadOne("a", Key(42), {0}).status, RowStatus::kOutsideMaxAge);

  // The partition count is fixed for the store's life.
  store_.reset();
  RowStoreOptions o;
  o.path = dir_.File("db");
  o.num_partitions = 128;
  EXPECT_EQ(RowStore::Open(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.num_partitions = 100;
  EXPECT_EQ(RowStore::Open(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RowStoreTest, CorruptStoredRowIsDataLossAndAValidWriteHealsIt) {
  ASSERT_TRUE(store_->EnsureView(Schema("c", {ValueType::kInt64})).ok());
  const std::vector<RowWrite> rows = {{Key(1), kT0, 0, {Value::Int64(1)}}};
  ASSERT_TRUE(store_->Write("c", rows).ok());
  store_.reset();
  // Garbage straight through RocksDB at the row's key.
  quiver::testing::PutRawRow(dir_.File("db"), 64, "c", Key(1), "\x01garbage");
  Reopen();
  std::vector<std::string> keys = {Key(1)};
  EXPECT_EQ(store_->MultiGet("c", keys, std::vector<int>{0}).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(store_->CountRows("c").status().code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE(store_->CompactView("c").ok());  // the TTL filter keeps what it cannot read
  const std::vector<RowWrite> repair = {{Key(1), kT0, 0, {Value::Int64(5)}}};
  ASSERT_TRUE(store_->Write("c", repair).ok());
  EXPECT_EQ(ReadOne("c", Key(1), {0}).values, std::vector<Value>{Value::Int64(5)});
}

TEST_F(RowStoreTest, ConcurrentWritersReadersAndEnsureView) {
  ASSERT_TRUE(store_->EnsureView(Schema("shared", {ValueType::kInt64})).ok());
  constexpr int kThreads = 4;
  constexpr int kRounds = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      const std::string own = "own" + std::to_string(t);
      EXPECT_TRUE(store_->EnsureView(Schema(own, {ValueType::kInt64})).ok());
      std::vector<std::string> keys = {Key(1), Key(2)};
      for (int i = 0; i < kRounds; ++i) {
        // Every thread races on the same keys; the largest event time wins.
        const std::vector<RowWrite> rows = {{Key(i % 2 + 1), kT0 + i * kThreads + t, 0,
                                             {Value::Int64(i * kThreads + t)}}};
        EXPECT_TRUE(store_->Write("shared", rows).ok());
        EXPECT_TRUE(store_->Write(own, rows).ok());
        EXPECT_TRUE(store_->MultiGet("shared", keys, std::vector<int>{0}).ok());
      }
    });
  }
  for (std::thread& th : threads) th.join();
  const int64_t last = (kRounds - 1) * kThreads + kThreads - 1;  // i = kRounds-1 is odd: Key(2)
  EXPECT_EQ(ReadOne("shared", Key(2), {0}).values, std::vector<Value>{Value::Int64(last)});
  EXPECT_EQ(ReadOne("shared", Key(1), {0}).values,
            std::vector<Value>{Value::Int64(last - kThreads)});
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(Count("own" + std::to_string(t)), 2u);
}

TEST_F(RowStoreTest, OpenRejectsBadOptions) {
  RowStoreOptions o;
  EXPECT_EQ(RowStore::Open(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.path = dir_.File("other");
  o.num_partitions = 3;
  EXPECT_EQ(RowStore::Open(o).status().code(), absl::StatusCode::kInvalidArgument);
  // Another RowStore on a path in use: RocksDB's lock error, not a crash.
  o.path = dir_.File("db");
  o.num_partitions = 64;
  absl::Status st = RowStore::Open(o).status();
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("lock"));
}

}  // namespace
}  // namespace quiver::storage
