// RowStore on a full disk: writes fail with kResourceExhausted, stored rows
// stay readable, and writes resume once space is back (RocksDB's own
// recovery would wait for 64 MiB free). Needs a tmpfs mount (root); skipped
// otherwise.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "common/temp_dir.h"
#include "gtest/gtest.h"
#include "quiver/keys/entity_key.h"
#include "quiver/storage/row_store.h"

namespace quiver::storage {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000'000;

std::string Key(int64_t id) { return EncodeEntityKey({{"user_id", Value::Int64(id)}}).value(); }

std::vector<RowWrite> Rows(int64_t first, int n, int64_t ts) {
  std::vector<RowWrite> rows;
  for (int64_t i = first; i < first + n; ++i) {
    rows.push_back(RowWrite{Key(i), ts, ts, {Value::Int64(i), Value::String(std::string(1000, 'x'))}});
  }
  return rows;
}

class RowStoreDiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs_ = dir_.File("fs");
    std::filesystem::create_directories(fs_);
    if (mount("tmpfs", fs_.c_str(), "tmpfs", 0, "size=8m") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
    }
    mounted_ = true;
    RowStoreOptions o;
    o.path = fs_ + "/db";
    o.num_partitions = 64;
    o.block_cache_bytes = 1 << 20;
    auto s = RowStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
    ASSERT_TRUE(store_->EnsureView(ViewSchema{"v", 1, {ValueType::kInt64, ValueType::kString},
                                              std::chrono::seconds(0)})
                    .ok());
  }
  void TearDown() override {
    store_.reset();
    if (mounted_) umount2(fs_.c_str(), MNT_DETACH);
  }

  // Fills the file system but for `leave` bytes.
  void Fill(uint64_t leave) {
    struct statvfs st {};
    ASSERT_EQ(statvfs(fs_.c_str(), &st), 0);
    const uint64_t avail = st.f_bavail * st.f_frsize;
    ASSERT_GT(avail, leave);
    const int fd = open((fs_ + "/fill").c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(posix_fallocate(fd, 0, static_cast<off_t>(avail - leave)), 0);
    close(fd);
  }

  int64_t Stored(int64_t id) {
    std::vector<std::string> keys = {Key(id)};
    auto r = store_->MultiGet("v", keys, std::vector<int>{0});
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || (*r)[0].status != RowStatus::kPresent) return -1;
    return std::get<int64_t>((*r)[0].values[0].data);
  }

  quiver::testing::TempDir dir_;
  std::string fs_;
  bool mounted_ = false;
  std::unique_ptr<RowStore> store_;
};

TEST_F(RowStoreDiskFullTest, RefusesWritesWhileFullAndResumesOnceSpaceIsBack) {
  ASSERT_TRUE(store_->Write("v", Rows(0, 100, kT0)).ok());
  Fill(32 << 10);
  absl::Status full;
  for (int batch = 1; batch <= 50 && full.ok(); ++batch) {
    full = store_->Write("v", Rows(1000 * batch, 100, kT0));
  }
  ASSERT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_NE(full.message().find("No space"), std::string::npos) << full;
  // Still full: refused again, and what was stored reads back.
  EXPECT_EQ(store_->Write("v", Rows(0, 1, kT0 + 1)).code(), absl::StatusCode::kResourceExhausted);
  for (int64_t id : {0, 50, 99}) EXPECT_EQ(Stored(id), id);

  std::filesystem::remove(fs_ + "/fill");
  // The next write after the space is back resumes the store (at most one
  // DB::Resume() per 200 ms is tried).
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  absl::Status back = store_->Write("v", Rows(0, 100, kT0 + 2));
  ASSERT_TRUE(back.ok()) << back;
  ASSERT_TRUE(store_->Write("v", Rows(200000, 100, kT0 + 2)).ok());
  for (int64_t id : {0, 99, 200000, 200099}) EXPECT_EQ(Stored(id), id);
}

}  // namespace
}  // namespace quiver::storage
