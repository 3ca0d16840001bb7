// RowStore's digests, checkpoints and backups (row_store.h). Kept apart from
// the read and write paths in row_store.cc; uses only the store's public
// scans plus its RocksDB handle.
#include <xxhash.h>

#include <filesystem>
#include <limits>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "quiver/storage/row_store.h"
#include "rocks_status.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/utilities/backup_engine.h"
#include "rocksdb/utilities/checkpoint.h"
#include "spdlog/spdlog.h"

namespace quiver::storage {
namespace {

namespace fs = std::filesystem;
using internal::FromRocks;

// One page of a digest scan: bounded, so a large view is never held whole.
constexpr size_t kDigestPageBytes = 4u << 20;
constexpr size_t kCheckpointCacheBytes = 8u << 20;

uint32_t PartitionOfRowKey(std::string_view key) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(key[0])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(key[1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(key[2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(key[3]));
}

// Bytes of every regular file below `dir` (0 when it does not exist).
uint64_t TreeBytes(const std::string& dir) {
  std::error_code ec;
  uint64_t total = 0;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      const uintmax_t n = it->file_size(size_ec);
      if (!size_ec) total += n;
    }
  }
  return total;
}

// Removes `dir` when the scope ends.
class RemoveOnExit {
 public:
  explicit RemoveOnExit(std::string dir) : dir_(std::move(dir)) {}
  ~RemoveOnExit() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    if (ec) spdlog::warn("RowStore: could not remove {}: {}", dir_, ec.message());
  }
  RemoveOnExit(const RemoveOnExit&) = delete;
  RemoveOnExit& operator=(const RemoveOnExit&) = delete;

 private:
  std::string dir_;
};

}  // namespace

uint32_t RowStore::num_partitions() const { return options().num_partitions; }

uint64_t RowStore::RowChecksum(std::string_view entity_key, std::string_view value) {
  return XXH3_64bits_withSeed(value.data(), value.size(),
                              XXH3_64bits(entity_key.data(), entity_key.size()));
}

absl::StatusOr<std::vector<ViewDigest>> RowStore::Digest() {
  std::vector<ViewDigest> out;
  const uint32_t q = options().num_partitions;
  for (const std::string& name : ViewNames()) {
    ViewDigest d;
    d.view = name;
    std::string after;
    for (;;) {
      absl::StatusOr<RawScan> page = ScanRaw(name, 0, q, after, kDigestPageBytes);
      if (!page.ok()) return page.status();
      for (const RawRow& row : page->rows) {
        if (row.key.size() <= 4) {
          return absl::DataLossError(absl::StrCat("view ", name, ": malformed row key"));
        }
        const uint32_t p = PartitionOfRowKey(row.key);
        if (d.partitions.empty() || d.partitions.back().partition != p) {
          d.partitions.push_back({p, 0, 0});
        }
        const uint64_t h = RowChecksum(EntityKeyOfRowKey(row.key), row.value);
        d.partitions.back().rows += 1;
        d.partitions.back().checksum += h;
        d.rows += 1;
        d.checksum += h;
      }
      if (page->done || page->rows.empty()) break;
      after = page->rows.back().key;
    }
    out.push_back(std::move(d));
  }
  return out;
}

absl::Status RowStore::Checkpoint(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) return absl::AlreadyExistsError(absl::StrCat(dir, " already exists"));
  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status s = rocksdb::Checkpoint::Create(rocks(), &raw);
  if (!s.ok()) return FromRocks(s, "starting a checkpoint");
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // log_size_for_flush 0: always flush the memtables, so the checkpoint is
  // SST files only.
  return FromRocks(checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/0),
                   "creating checkpoint " + dir);
}

absl::StatusOr<BackupResult> RowStore::CreateBackup(const std::string& backup_dir) {
  if (backup_dir.empty() || !fs::path(backup_dir).is_absolute()) {
    return absl::InvalidArgumentError(
        absl::StrCat("backup directory '", backup_dir, "' is not an absolute path"));
  }
  std::lock_guard<std::mutex> lock(backup_mu_);
  const std::string checkpoint_dir = options().path + ".backup";
  std::error_code ec;
  fs::remove_all(checkpoint_dir, ec);  // left by a backup that died midway
  if (absl::Status st = Checkpoint(checkpoint_dir); !st.ok()) {
    fs::remove_all(checkpoint_dir, ec);
    return st;
  }
  RemoveOnExit cleanup(checkpoint_dir);

  RowStoreOptions copy_options;
  copy_options.path = checkpoint_dir;
  copy_options.num_partitions = options().num_partitions;
  copy_options.block_cache_bytes = kCheckpointCacheBytes;
  copy_options.clock = options().clock;
  copy_options.use_io_uring = false;
  copy_options.frozen = true;
  absl::StatusOr<std::unique_ptr<RowStore>> copy = RowStore::Open(std::move(copy_options));
  if (!copy.ok()) return copy.status();

  BackupResult result;
  absl::StatusOr<std::vector<ViewDigest>> digest = (*copy)->Digest();
  if (!digest.ok()) return digest.status();
  result.views = *std::move(digest);

  const uint64_t bytes_before = TreeBytes(backup_dir);
  rocksdb::BackupEngineOptions engine_options(backup_dir);
  engine_options.share_table_files = true;
  engine_options.share_files_with_checksum = true;
  engine_options.sync = true;
  engine_options.max_background_operations = 2;
  rocksdb::BackupEngine* raw_engine = nullptr;
  rocksdb::IOStatus io =
      rocksdb::BackupEngine::Open(engine_options, rocksdb::Env::Default(), &raw_engine);
  if (!io.ok()) return FromRocks(io, "opening backup directory " + backup_dir);
  std::unique_ptr<rocksdb::BackupEngine> engine(raw_engine);
  rocksdb::CreateBackupOptions create;
  create.flush_before_backup = false;  // a checkpoint has no memtable content
  rocksdb::BackupID id = 0;
  io = engine->CreateNewBackup(create, (*copy)->rocks(), &id);
  if (!io.ok()) {
    // Files of the failed attempt are not referenced by any backup.
    engine->GarbageCollect().PermitUncheckedError();
    return FromRocks(io, "backing up into " + backup_dir);
  }
  rocksdb::BackupInfo info;
  if (rocksdb::Status s = engine->GetBackupInfo(id, &info); !s.ok()) {
    return FromRocks(s, "reading backup info");
  }
  result.backup_id = id;
  result.size_bytes = info.size;
  const uint64_t bytes_after = TreeBytes(backup_dir);
  result.new_bytes = bytes_after > bytes_before ? bytes_after - bytes_before : 0;
  return result;
}

absl::Status RowStore::RestoreBackup(const std::string& backup_dir, uint32_t backup_id,
                                     const std::string& db_dir) {
  std::error_code ec;
  if (fs::exists(db_dir, ec) && !fs::is_empty(db_dir, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(db_dir, " is not empty"));
  }
  if (!fs::is_directory(backup_dir, ec)) {
    return absl::NotFoundError(absl::StrCat("no backup directory ", backup_dir));
  }
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  rocksdb::IOStatus io = rocksdb::BackupEngineReadOnly::Open(
      rocksdb::BackupEngineOptions(backup_dir), rocksdb::Env::Default(), &raw);
  if (!io.ok()) return FromRocks(io, "opening backup directory " + backup_dir);
  std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw);
  rocksdb::BackupInfo info;
  if (rocksdb::Status s = engine->GetBackupInfo(backup_id, &info); !s.ok()) {
    return absl::NotFoundError(
        absl::StrCat("backup ", backup_id, " of ", backup_dir, ": ", s.ToString()));
  }
  io = engine->RestoreDBFromBackup(rocksdb::RestoreOptions(), backup_id, db_dir, db_dir);
  if (io.ok()) return absl::OkStatus();
  if (io.IsCorruption() || io.IsNotFound() || io.IsIOError()) {
    return absl::DataLossError(
        absl::StrCat("restoring backup ", backup_id, " of ", backup_dir, ": ", io.ToString()));
  }
  return FromRocks(io, absl::StrCat("restoring backup ", backup_id, " of ", backup_dir));
}

}  // namespace quiver::storage
