// RowStore::DeletePartitions and PartitionsWithRows: the rebalancing
// cleanup's whole-partition operations.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/temp_dir.h"
#include "quiver/keys/entity_key.h"
#include "quiver/storage/row_store.h"

namespace quiver::storage {
namespace {

constexpr uint32_t kPartitions = 16;
constexpr int64_t kT0 = 1'700'000'000'000'000;

std::string Key(int64_t id) { return EncodeEntityKey({{"id", Value::Int64(id)}}).value(); }

class RowStorePartitionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RowStoreOptions o;
    o.path = dir_.File("db");
    o.num_partitions = kPartitions;
    o.block_cache_bytes = 8 << 20;
    auto s = RowStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
    for (const char* view : {"a", "b"}) {
      ASSERT_TRUE(store_->EnsureView({view, 1, {ValueType::kInt64}, std::chrono::seconds(0)}).ok());
    }
    // 400 keys in view a, every third of them in view b too; partitions
    // counted independently of the store (PartitionOf of the entity key).
    std::vector<RowWrite> a, b;
    for (int64_t i = 0; i < 400; ++i) {
      a.push_back({Key(i), kT0, 0, {Value::Int64(i)}});
      per_partition_a_[PartitionOf(Key(i), kPartitions)].push_back(i);
      if (i % 3 == 0) {
        b.push_back({Key(i), kT0, 0, {Value::Int64(-i)}});
        per_partition_b_[PartitionOf(Key(i), kPartitions)].push_back(i);
      }
    }
    ASSERT_TRUE(store_->Write("a", a).ok());
    ASSERT_TRUE(store_->Write("b", b).ok());
  }

  // Which of `ids` read PRESENT in `view`.
  std::set<int64_t> Present(const std::string& view, const std::vector<int64_t>& ids) {
    std::vector<std::string> keys;
    for (int64_t i : ids) keys.push_back(Key(i));
    auto rows = store_->MultiGet(view, keys, std::vector<int>{0});
    EXPECT_TRUE(rows.ok()) << rows.status();
    std::set<int64_t> out;
    for (size_t k = 0; rows.ok() && k < rows->size(); ++k) {
      if ((*rows)[k].status == RowStatus::kPresent) out.insert(ids[k]);
    }
    return out;
  }

  quiver::testing::TempDir dir_;
  std::unique_ptr<RowStore> store_;
  std::map<uint32_t, std::vector<int64_t>> per_partition_a_, per_partition_b_;
};

TEST_F(RowStorePartitionsTest, DeletesExactlyTheNamedPartitionsInEveryView) {
  ASSERT_EQ(per_partition_a_.size(), kPartitions);  // 400 keys fill all 16
  // 3, 4, 5 are one run; 15 is the last partition (end bound = Q); 9 twice.
  const std::vector<uint32_t> drop = {15, 4, 9, 3, 5, 9};
  const std::set<uint32_t> dropped(drop.begin(), drop.end());
  ASSERT_TRUE(store_->DeletePartitions(drop).ok());
  uint64_t kept_a = 0, kept_b = 0;
  for (const auto& [p, ids] : per_partition_a_) {
    SCOPED_TRACE(p);
    const std::set<int64_t> present = Present("a", ids);
    if (dropped.contains(p)) {
      EXPECT_TRUE(present.empty());
    } else {
      EXPECT_EQ(present.size(), ids.size());
      kept_a += ids.size();
    }
  }
  for (const auto& [p, ids] : per_partition_b_) {
    SCOPED_TRACE(p);
    const std::set<int64_t> present = Present("b", ids);
    EXPECT_EQ(present.empty(), dropped.contains(p));
    if (!dropped.contains(p)) kept_b += ids.size();
  }
  EXPECT_EQ(store_->CountRows("a").value(), kept_a);
  EXPECT_EQ(store_->CountRows("b").value(), kept_b);
  // Scans agree: a dropped partition scans empty.
  auto page = store_->ScanRaw("a", 4, 5, "", 1 << 20);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->rows.empty());
  EXPECT_TRUE(page->done);

  auto held = store_->PartitionsWithRows();
  ASSERT_TRUE(held.ok()) << held.status();
  std::vector<uint32_t> want;
  for (uint32_t p = 0; p < kPartitions; ++p) {
    if (!dropped.contains(p)) want.push_back(p);
  }
  EXPECT_EQ(*held, want);

  // Rows written after the delete are kept (the tombstone is older).
  ASSERT_TRUE(store_->Write("a", std::vector<RowWrite>{{Key(per_partition_a_[4][0]), kT0 - 1, 0,
                                                        {Value::Int64(7)}}})
                  .ok());
  EXPECT_EQ(Present("a", {per_partition_a_[4][0]}).size(), 1u);
}

TEST_F(RowStorePartitionsTest, OutOfRangeIsRefusedAndNothingIsDeleted) {
  const std::vector<uint32_t> drop = {2, kPartitions};
  EXPECT_EQ(store_->DeletePartitions(drop).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CountRows("a").value(), 400u);
  EXPECT_TRUE(store_->DeletePartitions({}).ok());
  EXPECT_EQ(store_->CountRows("a").value(), 400u);
}

TEST_F(RowStorePartitionsTest, PartitionsWithRowsListsOnlyNonEmptyOnes) {
  // Empty everything but partitions 0 and 11 (in view b only for 11).
  std::vector<uint32_t> drop;
  for (uint32_t p = 1; p < kPartitions; ++p) drop.push_back(p);
  ASSERT_TRUE(store_->DeletePartitions(drop).ok());
  const int64_t id = per_partition_b_.at(11).front();
  ASSERT_TRUE(store_->Write("b", std::vector<RowWrite>{{Key(id), kT0, 0, {Value::Int64(1)}}}).ok());
  auto held = store_->PartitionsWithRows();
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(*held, (std::vector<uint32_t>{0, 11}));
}

}  // namespace
}  // namespace quiver::storage
