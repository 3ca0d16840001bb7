// RowStore::MultiGetCells (the zero-copy read path) against MultiGet and the
// written rows, with and without the io_uring FileSystem.
#include <stdlib.h>

#include <algorithm>
#include <map>
#include <random>

#include "common/temp_dir.h"
#include "gtest/gtest.h"
#include "quiver/keys/entity_key.h"
#include "quiver/storage/io_uring_fs.h"
#include "quiver/storage/row_store.h"
#include "raw_row.h"

namespace quiver::storage {
namespace {

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kT0 = 1'700'000'000 * kSecond;
constexpr uint32_t kPartitions = 64;

std::string Key(int64_t id) { return *EncodeEntityKey({{"user_id", Value::Int64(id)}}); }

// One visit of MultiGetCells, with the cells copied out.
struct Visit {
  size_t index = 0;
  RowStatus status = RowStatus::kNotFound;
  int64_t event_ts_us = 0;
  std::vector<std::string> cells;
  bool operator==(const Visit&) const = default;
};

class RowStoreCellsTest : public ::testing::Test {
 protected:
  void TearDown() override { ::unsetenv("QUIVER_DISABLE_IO_URING"); }

  void Reopen(bool disable_io_uring = false) {
    store_.reset();
    if (disable_io_uring) {
      ::setenv("QUIVER_DISABLE_IO_URING", "1", 1);
    } else {
      ::unsetenv("QUIVER_DISABLE_IO_URING");
    }
    RowStoreOptions o;
    o.path = dir_.File("db");
    o.num_partitions = kPartitions;
    o.block_cache_bytes = 8 << 20;
    o.clock = [] { return kT0; };
    absl::StatusOr<std::unique_ptr<RowStore>> s = RowStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }

  absl::StatusOr<std::vector<Visit>> Cells(const std::string& view,
                                           const std::vector<std::string>& keys,
                                           const std::vector<int>& indices,
                                           uint32_t expected_version = 0) {
    std::vector<std::string_view> views(keys.begin(), keys.end());
    std::vector<Visit> out;
    absl::Status st = store_->MultiGetCells(
        view, views, indices, expected_version,
        [&](size_t i, RowStatus status, int64_t ts, std::span<const std::string_view> cells) {
          out.push_back({i, status, ts, std::vector<std::string>(cells.begin(), cells.end())});
        });
    if (!st.ok()) return st;
    return out;
  }

  // Puts raw bytes at a row's key straight through RocksDB (store closed).
  void PutRaw(const std::string& view, const std::string& entity_key, const std::string& bytes) {
    store_.reset();
    quiver::testing::PutRawRow(dir_.File("db"), kPartitions, view, entity_key, bytes);
    Reopen();
  }

  quiver::testing::TempDir dir_;
  std::unique_ptr<RowStore> store_;
};

// A format-1 row (row_store.h) with one cell, built by hand.
std::string RawRow(uint32_t schema_version, const std::string& cell) {
  std::string row(1, '\x01');
  auto put = [&row](uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) row.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  put(static_cast<uint64_t>(kT0), 8);
  put(0, 8);
  put(schema_version, 4);
  put(1, 2);
  put(cell.size(), 4);
  return row + cell;
}

TEST_F(RowStoreCellsTest, SameAnswersAsMultiGetWithAndWithoutIoUring) {
  Reopen();
  const std::vector<ValueType> types = {ValueType::kInt64, ValueType::kDouble, ValueType::kString,
                                        ValueType::kInt64List, ValueType::kBool};
  ASSERT_TRUE(store_->EnsureView({"mix", 1, types, std::chrono::seconds(3600)}).ok());
  constexpr int kRows = 3000;
  std::map<std::string, RowWrite> written;
  std::vector<RowWrite> rows;
  std::vector<RowWrite> expired;
  for (int id = 0; id < kRows; ++id) {
    RowWrite w;
    w.entity_key = Key(id);
    // Every 10th row is two hours old: outside the one-hour TTL.
    w.event_ts_us = id % 10 == 0 ? kT0 - 7200 * kSecond : kT0 - id;
    w.values = {Value::Int64(id * 7), Value::Double(id / 3.0),
                id % 7 == 0 ? Value::Null(ValueType::kString) : Value::String(std::string(id % 50, 'x')),
                Value{ValueType::kInt64List, std::vector<int64_t>{id, -id}}, Value::Bool(id % 2 == 0)};
    written[w.entity_key] = w;
    (id % 10 == 0 ? expired : rows).push_back(std::move(w));
  }
  ASSERT_TRUE(store_->Write("mix", rows).ok());
  ASSERT_TRUE(store_->CompactView("mix").ok());  // rows in SST files, read from disk
  // Expired rows after the compaction (its TTL filter would drop them): they
  // are read from the memtable and the log.
  ASSERT_TRUE(store_->Write("mix", expired).ok());

  // Keys in random order, 10% never written; repeats in the feature list.
  std::vector<std::string> keys;
  for (int id = 0; id < kRows + kRows / 10; ++id) keys.push_back(Key(id));
  std::shuffle(keys.begin(), keys.end(), std::mt19937_64(5));
  const std::vector<int> indices = {4, 0, 2, 2, 3, 1};

  std::vector<std::vector<Visit>> answers;
  for (bool disable : {false, true}) {
    Reopen(disable);  // a cold block cache: batches read many blocks
    const IoUringCounters before = GetIoUringCounters();
    std::vector<Visit> all;
    for (size_t begin = 0; begin < keys.size(); begin += 64) {
      const std::vector<std::string> batch(keys.begin() + begin,
                                           keys.begin() + std::min(keys.size(), begin + 64));
      absl::StatusOr<std::vector<Visit>> cells = Cells("mix", batch, indices);
      ASSERT_TRUE(cells.ok()) << cells.status();
      absl::StatusOr<std::vector<RowRead>> reads = store_->MultiGet("mix", batch, indices);
      ASSERT_TRUE(reads.ok()) << reads.status();
      // Every key visited once, in order.
      ASSERT_EQ(cells->size(), batch.size());
      for (size_t i = 0; i < batch.size(); ++i) {
        const Visit& v = (*cells)[i];
        const RowRead& r = (*reads)[i];
        ASSERT_EQ(v.index, i);
        EXPECT_EQ(v.status, r.status);
        EXPECT_EQ(v.event_ts_us, r.event_ts_us);
        // The independent answer: what was written.
        auto w = written.find(batch[i]);
        if (w == written.end()) {
          EXPECT_EQ(v.status, RowStatus::kNotFound);
          EXPECT_EQ(v.event_ts_us, 0);
          EXPECT_TRUE(v.cells.empty());
          continue;
        }
        EXPECT_EQ(v.event_ts_us, w->second.event_ts_us);
        if (w->second.event_ts_us < kT0 - 3600 * kSecond) {
          EXPECT_EQ(v.status, RowStatus::kOutsideMaxAge);
          EXPECT_TRUE(v.cells.empty());
          continue;
        }
        ASSERT_EQ(v.status, RowStatus::kPresent);
        ASSERT_EQ(v.cells.size(), indices.size());
        for (size_t j = 0; j < indices.size(); ++j) {
          const Value& expected = w->second.values[indices[j]];
          EXPECT_EQ(r.values[j], expected);
          // A cell is the tag then the payload; decoding it gives MultiGet's value.
          const std::string& cell = v.cells[j];
          ASSERT_FALSE(cell.empty());
          if (expected.is_null()) {
            EXPECT_EQ(cell, std::string(1, '\0'));
            continue;
          }
          EXPECT_EQ(static_cast<uint8_t>(cell[0]), static_cast<uint8_t>(types[indices[j]]));
          absl::StatusOr<Value> decoded = DecodePayload(types[indices[j]], cell.substr(1));
          ASSERT_TRUE(decoded.ok()) << decoded.status();
          EXPECT_EQ(*decoded, r.values[j]);
        }
      }
      all.insert(all.end(), cells->begin(), cells->end());
    }
    const IoUringCounters after = GetIoUringCounters();
    if (!disable && IoUringSupported()) {
      EXPECT_GT(after.multi_reads, before.multi_reads) << "reads did not go through io_uring";
      EXPECT_GT(after.requests - before.requests, after.multi_reads - before.multi_reads);
    } else {
      EXPECT_EQ(after.multi_reads, before.multi_reads) << "io_uring used although disabled";
    }
    answers.push_back(std::move(all));
  }
  EXPECT_EQ(answers[0], answers[1]);
}

TEST_F(RowStoreCellsTest, ErrorsAndVersionsLikeMultiGet) {
  Reopen();
  ASSERT_TRUE(store_->EnsureView({"v", 1, {ValueType::kInt64}, std::chrono::seconds(0)}).ok());
  const std::vector<RowWrite> rows = {{Key(1), kT0, 0, {Value::Int64(1)}}};
  ASSERT_TRUE(store_->Write("v", rows).ok());
  const std::vector<std::string> keys = {Key(1)};
  EXPECT_EQ(Cells("v", keys, {1}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Cells("v", keys, {-1}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Cells("nope", keys, {0}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Cells("v", keys, {0}, 2).status().code(), absl::StatusCode::kUnavailable);
  absl::StatusOr<std::vector<Visit>> empty = Cells("v", {}, {0});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  // No requested features: present, no cells.
  absl::StatusOr<std::vector<Visit>> none = Cells("v", keys, {});
  ASSERT_TRUE(none.ok());
  ASSERT_EQ(none->size(), 1u);
  EXPECT_EQ((*none)[0].status, RowStatus::kPresent);
  EXPECT_TRUE((*none)[0].cells.empty());
  // Rows of an older schema version read as not found.
  ASSERT_TRUE(store_->EnsureView({"v", 2, {ValueType::kInt64}, std::chrono::seconds(0)}).ok());
  absl::StatusOr<std::vector<Visit>> old = Cells("v", keys, {0}, 2);
  ASSERT_TRUE(old.ok());
  EXPECT_EQ((*old)[0].status, RowStatus::kNotFound);
  EXPECT_EQ((*old)[0].event_ts_us, 0);
}

TEST_F(RowStoreCellsTest, CorruptRowsAreDataLoss) {
  Reopen();
  ASSERT_TRUE(store_->EnsureView({"c", 1, {ValueType::kInt64}, std::chrono::seconds(0)}).ok());
  const std::vector<RowWrite> rows = {{Key(1), kT0, 0, {Value::Int64(1)}}};
  ASSERT_TRUE(store_->Write("c", rows).ok());
  const std::vector<std::string> keys = {Key(2), Key(1)};
  std::string int64_cell(1, static_cast<char>(ValueType::kInt64));
  int64_cell.append(8, '\x05');
  // A well-formed row is read fine (the hand-built encoding is right)...
  PutRaw("c", Key(1), RawRow(1, int64_cell));
  absl::StatusOr<std::vector<Visit>> fine = Cells("c", keys, {0});
  ASSERT_TRUE(fine.ok()) << fine.status();
  EXPECT_EQ((*fine)[1].cells, std::vector<std::string>{int64_cell});
  // ...while garbage, a tag of another type and a null with a payload are not.
  std::string string_cell(1, static_cast<char>(ValueType::kString));
  string_cell += "abcdefgh";
  for (const std::string& bad :
       {std::string("\x01garbage"), RawRow(1, string_cell), RawRow(1, std::string("\0\x01", 2))}) {
    PutRaw("c", Key(1), bad);
    EXPECT_EQ(Cells("c", keys, {0}).status().code(), absl::StatusCode::kDataLoss);
    EXPECT_EQ(store_->MultiGet("c", keys, std::vector<int>{0}).status().code(),
              absl::StatusCode::kDataLoss);
  }
}

}  // namespace
}  // namespace quiver::storage
