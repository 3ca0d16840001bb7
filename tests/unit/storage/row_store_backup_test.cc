// RowStore digests, checkpoints and backups (row_store.h): a restored backup
// holds exactly the rows the store held when it was taken, its digest says
// so, and digests do not depend on the partition count.
#include <xxhash.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "common/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quiver/keys/entity_key.h"
#include "quiver/storage/row_store.h"

namespace quiver::storage {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr int64_t kT0 = 1'700'000'000'000'000;

std::string Key(int64_t id) {
  absl::StatusOr<std::string> k = EncodeEntityKey({{"user_id", Value::Int64(id)}});
  EXPECT_TRUE(k.ok()) << k.status();
  return *k;
}

std::unique_ptr<RowStore> OpenStore(const std::string& path, uint32_t partitions,
                                    bool frozen = false) {
  RowStoreOptions o;
  o.path = path;
  o.num_partitions = partitions;
  o.block_cache_bytes = 8 << 20;
  o.clock = [] { return kT0; };
  o.frozen = frozen;
  absl::StatusOr<std::unique_ptr<RowStore>> s = RowStore::Open(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

const ViewSchema kSchema{"v", 1, {ValueType::kInt64, ValueType::kString}, std::chrono::seconds(0)};

void WriteRows(RowStore* store, int begin, int end, int64_t ts) {
  std::vector<RowWrite> rows;
  for (int i = begin; i < end; ++i) {
    rows.push_back({Key(i), ts + i, 0, {Value::Int64(i), Value::String(std::string(i % 50, 'y'))}});
  }
  ASSERT_TRUE(store->Write("v", rows).ok());
}

// Every stored row of view "v": entity key -> encoded value.
std::map<std::string, std::string> Rows(RowStore* store, uint32_t partitions) {
  absl::StatusOr<RawScan> all = store->ScanRaw("v", 0, partitions, "", 1 << 30);
  EXPECT_TRUE(all.ok()) << all.status();
  std::map<std::string, std::string> out;
  if (!all.ok()) return out;
  for (const RawRow& r : all->rows) out[std::string(RowStore::EntityKeyOfRowKey(r.key))] = r.value;
  return out;
}

// The digest recomputed independently: the documented formula over a scan.
std::pair<uint64_t, uint64_t> Recount(const std::map<std::string, std::string>& rows) {
  uint64_t sum = 0;
  for (const auto& [k, v] : rows) {
    sum += XXH3_64bits_withSeed(v.data(), v.size(), XXH3_64bits(k.data(), k.size()));
  }
  return {rows.size(), sum};
}

TEST(RowStoreBackupTest, ARestoredBackupHoldsTheRowsOfItsTimeAndTheirDigest) {
  quiver::testing::TempDir dir;
  auto store = OpenStore(dir.File("db"), 64);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->EnsureView(kSchema).ok());
  WriteRows(store.get(), 0, 3000, kT0);
  const auto rows1 = Rows(store.get(), 64);
  const std::string backups = dir.File("backups");

  absl::StatusOr<BackupResult> b1 = store->CreateBackup(backups);
  ASSERT_TRUE(b1.ok()) << b1.status();
  ASSERT_EQ(b1->views.size(), 1u);
  EXPECT_EQ(b1->views[0].view, "v");
  EXPECT_EQ(std::make_pair(b1->views[0].rows, b1->views[0].checksum), Recount(rows1));
  uint64_t partition_rows = 0;
  for (const PartitionDigest& p : b1->views[0].partitions) partition_rows += p.rows;
  EXPECT_EQ(partition_rows, 3000u);
  EXPECT_GT(b1->size_bytes, 0u);
  EXPECT_GT(b1->new_bytes, 0u);
  EXPECT_FALSE(fs::exists(dir.File("db.backup")));  // the checkpoint is gone

  // Newer rows for some keys, new keys: a second, incremental backup.
  WriteRows(store.get(), 2900, 3100, kT0 + 1'000'000);
  const auto rows2 = Rows(store.get(), 64);
  ASSERT_NE(rows1, rows2);
  absl::StatusOr<BackupResult> b2 = store->CreateBackup(backups);
  ASSERT_TRUE(b2.ok()) << b2.status();
  EXPECT_NE(b2->backup_id, b1->backup_id);
  EXPECT_EQ(std::make_pair(b2->views[0].rows, b2->views[0].checksum), Recount(rows2));
  // The first backup's SST files are shared, not copied again.
  EXPECT_LT(b2->new_bytes, b2->size_bytes);

  // Each backup restores to exactly its own rows.
  for (const auto& [id, want] : {std::make_pair(b1->backup_id, rows1),
                                 std::make_pair(b2->backup_id, rows2)}) {
    const std::string out = dir.File("restored-" + std::to_string(id));
    ASSERT_TRUE(RowStore::RestoreBackup(backups, id, out).ok());
    auto restored = OpenStore(out, 64, /*frozen=*/true);
    ASSERT_NE(restored, nullptr);
    EXPECT_EQ(Rows(restored.get(), 64), want);
    absl::StatusOr<std::vector<ViewDigest>> d = restored->Digest();
    ASSERT_TRUE(d.ok()) << d.status();
    ASSERT_EQ(d->size(), 1u);
    EXPECT_EQ(std::make_pair((*d)[0].rows, (*d)[0].checksum), Recount(want));
  }
}

TEST(RowStoreBackupTest, DigestsDoNotDependOnThePartitionCount) {
  quiver::testing::TempDir dir;
  auto a = OpenStore(dir.File("a"), 16);
  auto b = OpenStore(dir.File("b"), 1024);
  ASSERT_TRUE(a->EnsureView(kSchema).ok());
  ASSERT_TRUE(b->EnsureView(kSchema).ok());
  WriteRows(a.get(), 0, 700, kT0);
  WriteRows(b.get(), 0, 700, kT0);
  auto da = a->Digest();
  auto db = b->Digest();
  ASSERT_TRUE(da.ok() && db.ok());
  EXPECT_EQ((*da)[0].rows, 700u);
  EXPECT_EQ((*da)[0].checksum, (*db)[0].checksum);
  EXPECT_LE((*da)[0].partitions.size(), 16u);
  EXPECT_GT((*db)[0].partitions.size(), 16u);
  // One changed row changes the checksum.
  WriteRows(b.get(), 5, 6, kT0 + 1);
  db = b->Digest();
  EXPECT_NE((*da)[0].checksum, (*db)[0].checksum);
}

TEST(RowStoreBackupTest, BadBackupRequestsAndCorruptBackupsAreRefused) {
  quiver::testing::TempDir dir;
  auto store = OpenStore(dir.File("db"), 64);
  ASSERT_TRUE(store->EnsureView(kSchema).ok());
  WriteRows(store.get(), 0, 500, kT0);
  EXPECT_EQ(store->CreateBackup("relative/dir").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->CreateBackup("").status().code(), absl::StatusCode::kInvalidArgument);
  const std::string backups = dir.File("backups");
  absl::StatusOr<BackupResult> b = store->CreateBackup(backups);
  ASSERT_TRUE(b.ok()) << b.status();

  EXPECT_EQ(RowStore::RestoreBackup(backups, b->backup_id + 7, dir.File("x")).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(RowStore::RestoreBackup(dir.File("nowhere"), 1, dir.File("x")).code(),
            absl::StatusCode::kNotFound);
  // A target that already holds files is never overwritten.
  fs::create_directories(dir.File("full"));
  std::ofstream(dir.File("full/keep")) << "data";
  absl::Status s = RowStore::RestoreBackup(backups, b->backup_id, dir.File("full"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(fs::exists(dir.File("full/keep")));

  // Flip bytes in the middle of every SST file of the backup: the restore
  // notices (checksums), it does not hand back damaged rows.
  int damaged = 0;
  for (const auto& e : fs::recursive_directory_iterator(backups)) {
    if (e.path().extension() != ".sst") continue;
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(e.path()) / 2));
    f.write("\xde\xad\xbe\xef", 4);
    ++damaged;
  }
  ASSERT_GT(damaged, 0);
  s = RowStore::RestoreBackup(backups, b->backup_id, dir.File("restored"));
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("restoring backup"));
  // The live store is untouched by all of this.
  EXPECT_EQ(Rows(store.get(), 64).size(), 500u);
}

}  // namespace
}  // namespace quiver::storage
