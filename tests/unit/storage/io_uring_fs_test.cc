#include "quiver/storage/io_uring_fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

#include "common/temp_dir.h"
#include "gtest/gtest.h"
#include "rocksdb/file_system.h"

namespace quiver::storage {
namespace {

constexpr size_t kAlign = 4096;

struct AlignedFree {
  void operator()(char* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<char, AlignedFree>;

Buffer AlignedBuffer(size_t bytes) {
  return Buffer(static_cast<char*>(std::aligned_alloc(kAlign, (bytes + kAlign - 1) / kAlign * kAlign)));
}

// The independent answer: what pread returns for [offset, offset + len).
std::string Pread(const std::string& path, uint64_t offset, size_t len) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0);
  std::string out(len, '\0');
  size_t got = 0;
  while (got < len) {
    const ssize_t r = ::pread(fd, out.data() + got, len - got, static_cast<off_t>(offset + got));
    EXPECT_GE(r, 0);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

class IoUringFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!IoUringSupported()) GTEST_SKIP() << "io_uring is not available here";
    path_ = dir_.File("data");
    std::mt19937_64 rng(1);
    std::string bytes(kFileBytes, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    std::ofstream(path_, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    fs_ = NewIoUringFileSystem(rocksdb::FileSystem::Default());
  }

  std::unique_ptr<rocksdb::FSRandomAccessFile> Open(bool direct) {
    rocksdb::FileOptions options;
    options.use_direct_reads = direct;
    std::unique_ptr<rocksdb::FSRandomAccessFile> file;
    rocksdb::IOStatus s = fs_->NewRandomAccessFile(path_, options, &file, nullptr);
    if (!s.ok()) return nullptr;
    return file;
  }

  // Not a multiple of the sector size, so reads across the end are short.
  static constexpr size_t kFileBytes = (1 << 20) + 1234;
  quiver::testing::TempDir dir_;
  std::string path_;
  std::shared_ptr<rocksdb::FileSystem> fs_;
};

TEST_F(IoUringFsTest, BufferedMultiReadReturnsWhatPreadReturns) {
  std::unique_ptr<rocksdb::FSRandomAccessFile> file = Open(false);
  ASSERT_NE(file, nullptr);
  std::mt19937_64 rng(2);
  // More requests than a ring holds, so the batch is submitted in parts.
  constexpr size_t kReqs = 300;
  std::vector<rocksdb::FSReadRequest> reqs(kReqs);
  std::vector<std::string> scratch(kReqs);
  for (size_t i = 0; i < kReqs; ++i) {
    reqs[i].offset = rng() % kFileBytes;
    reqs[i].len = 1 + rng() % 20000;
    scratch[i].resize(reqs[i].len);
    reqs[i].scratch = scratch[i].data();
  }
  reqs[0].offset = kFileBytes - 10;  // crosses the end: 10 bytes
  reqs[0].len = 100;
  reqs[1].offset = kFileBytes + 50;  // wholly past the end: nothing
  reqs[1].len = 100;
  const IoUringCounters before = GetIoUringCounters();
  ASSERT_TRUE(file->MultiRead(reqs.data(), kReqs, rocksdb::IOOptions(), nullptr).ok());
  const IoUringCounters after = GetIoUringCounters();
  EXPECT_EQ(after.multi_reads - before.multi_reads, 1u);
  EXPECT_EQ(after.requests - before.requests, kReqs);
  for (size_t i = 0; i < kReqs; ++i) {
    ASSERT_TRUE(reqs[i].status.ok()) << i << ": " << reqs[i].status.ToString();
    EXPECT_EQ(reqs[i].result.ToString(), Pread(path_, reqs[i].offset, reqs[i].len)) << i;
  }
  EXPECT_EQ(reqs[0].result.size(), 10u);
  EXPECT_EQ(reqs[1].result.size(), 0u);
}

TEST_F(IoUringFsTest, DirectMultiReadWithAlignedBuffersReturnsWhatPreadReturns) {
  std::unique_ptr<rocksdb::FSRandomAccessFile> file = Open(true);
  if (file == nullptr) GTEST_SKIP() << "O_DIRECT is not supported on " << path_;
  ASSERT_TRUE(file->use_direct_io());
  std::mt19937_64 rng(3);
  constexpr size_t kReqs = 40;
  const size_t blocks = kFileBytes / kAlign + 1;
  std::vector<rocksdb::FSReadRequest> reqs(kReqs);
  std::vector<Buffer> buffers;
  for (size_t i = 0; i < kReqs; ++i) {
    reqs[i].offset = (rng() % blocks) * kAlign;
    reqs[i].len = (1 + rng() % 4) * kAlign;
    buffers.push_back(AlignedBuffer(reqs[i].len));
    reqs[i].scratch = buffers.back().get();
  }
  reqs[0].offset = (kFileBytes / kAlign) * kAlign;  // the last, partial sector
  reqs[0].len = 2 * kAlign;
  ASSERT_TRUE(file->MultiRead(reqs.data(), kReqs, rocksdb::IOOptions(), nullptr).ok());
  for (size_t i = 0; i < kReqs; ++i) {
    ASSERT_TRUE(reqs[i].status.ok()) << i << ": " << reqs[i].status.ToString();
    EXPECT_EQ(reqs[i].result.ToString(), Pread(path_, reqs[i].offset, reqs[i].len)) << i;
  }
  EXPECT_EQ(reqs[0].result.size(), kFileBytes % kAlign);
}

TEST_F(IoUringFsTest, FailedRequestGetsAnErrorStatusAndOthersStillRead) {
  std::unique_ptr<rocksdb::FSRandomAccessFile> file = Open(true);
  if (file == nullptr) GTEST_SKIP() << "O_DIRECT is not supported on " << path_;
  std::vector<rocksdb::FSReadRequest> reqs(2);
  Buffer a = AlignedBuffer(kAlign);
  Buffer b = AlignedBuffer(2 * kAlign);
  reqs[0].offset = kAlign;
  reqs[0].len = kAlign;
  reqs[0].scratch = a.get();
  reqs[1].offset = 1;  // unaligned under O_DIRECT: the kernel answers EINVAL
  reqs[1].len = kAlign;
  reqs[1].scratch = b.get() + 1;
  ASSERT_TRUE(file->MultiRead(reqs.data(), 2, rocksdb::IOOptions(), nullptr).ok());
  ASSERT_TRUE(reqs[0].status.ok());
  EXPECT_EQ(reqs[0].result.ToString(), Pread(path_, kAlign, kAlign));
  EXPECT_TRUE(reqs[1].status.IsIOError()) << reqs[1].status.ToString();
}

TEST_F(IoUringFsTest, ThreadsReadConcurrentlyThroughTheirOwnRings) {
  std::unique_ptr<rocksdb::FSRandomAccessFile> file = Open(false);
  ASSERT_NE(file, nullptr);
  const std::string whole = Pread(path_, 0, kFileBytes);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(10 + t);
      for (int round = 0; round < 50; ++round) {
        std::vector<rocksdb::FSReadRequest> reqs(16);
        std::vector<std::string> scratch(reqs.size());
        for (size_t i = 0; i < reqs.size(); ++i) {
          reqs[i].offset = rng() % kFileBytes;
          reqs[i].len = 1 + rng() % 8000;
          scratch[i].resize(reqs[i].len);
          reqs[i].scratch = scratch[i].data();
        }
        if (!file->MultiRead(reqs.data(), reqs.size(), rocksdb::IOOptions(), nullptr).ok()) {
          ++mismatches;
        }
        for (const rocksdb::FSReadRequest& r : reqs) {
          if (!r.status.ok() || r.result.ToString() != whole.substr(r.offset, r.len)) ++mismatches;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(IoUringEnvTest, DisableVariable) {
  ::unsetenv("QUIVER_DISABLE_IO_URING");
  EXPECT_FALSE(IoUringDisabledByEnv());
  ::setenv("QUIVER_DISABLE_IO_URING", "0", 1);
  EXPECT_FALSE(IoUringDisabledByEnv());
  ::setenv("QUIVER_DISABLE_IO_URING", "1", 1);
  EXPECT_TRUE(IoUringDisabledByEnv());
  ::unsetenv("QUIVER_DISABLE_IO_URING");
}

}  // namespace
}  // namespace quiver::storage
