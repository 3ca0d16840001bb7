#include "quiver/storage/row_store.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "quiver/keys/entity_key.h"
#include "quiver/keys/packed_values.h"
#include "quiver/storage/io_uring_fs.h"
#include "rocksdb/cache.h"
#include "rocksdb/compaction_filter.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/listener.h"
#include "rocksdb/merge_operator.h"
#include "rocksdb/sst_file_writer.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "rocks_status.h"
#include "row_codec.h"
#include "spdlog/spdlog.h"

namespace quiver::storage {
namespace {

using internal::AppendPackedRow;
using internal::FromRocks;
using internal::AppendRow;
using internal::CheckCell;
using internal::RowCell;
using internal::IsExpired;
using internal::ParseRowHeader;
using internal::RowHeader;
using internal::RowWins;

constexpr char kViewCfPrefix[] = "fv:";
// Metadata lives in the default column family, which holds nothing else.
constexpr char kViewMetaPrefix[] = "quiver/view/";
constexpr char kPartitionsKey[] = "quiver/num_partitions";
constexpr char kViewMetaMagic[] = "QVS1";
constexpr size_t kMaxFeatures = 65535;
// SST files of a view: MultiGet reads each file's blocks with one MultiRead,
// one file after the other, so fewer, larger files mean larger batches for
// io_uring to run in parallel (RocksDB's default is 64 MiB).
constexpr uint64_t kTargetFileBytes = 256ull << 20;
constexpr size_t kBlockBytes = 4 << 10;  // rows are ~100s of bytes; a read fetches one block

// Out of disk space, RocksDB stops writes (a background error) and would
// resume by itself only once the free space exceeds its largest write buffer
// (64 MiB, checked every 5 s), which a small or nearly full disk never
// reaches. So its automatic recovery is turned off and the next write after
// the error calls DB::Resume() instead (at most every kResumeEvery): the
// first write once space is back succeeds. Callbacks run under RocksDB's
// mutex: they only set a flag.
class NoSpaceListener : public rocksdb::EventListener {
 public:
  void OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status* error) override {
    if (error != nullptr && error->IsNoSpace()) stopped_.store(true);
  }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status error,
                            bool* auto_recovery) override {
    if (error.IsNoSpace()) *auto_recovery = false;
    error.PermitUncheckedError();
  }
  bool stopped() const { return stopped_.load(); }
  void Resumed() { stopped_.store(false); }

 private:
  std::atomic<bool> stopped_{false};
};
constexpr auto kResumeEvery = std::chrono::milliseconds(200);

// RocksDB's own log goes to the process log (spdlog) instead of a LOG file in
// the data directory: on a full disk, the file logger's next line after a
// failed write trips an assertion in RocksDB (WritableFileWriter,
// sync_without_flush_called_) that aborts the process with the RocksDB this
// project builds against. RocksDB's INFO lines (flushes, compactions) become
// debug lines.
class SpdlogLogger : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    const spdlog::level::level_enum to = level >= rocksdb::InfoLogLevel::ERROR_LEVEL  ? spdlog::level::err
                                         : level == rocksdb::InfoLogLevel::WARN_LEVEL ? spdlog::level::warn
                                                                                      : spdlog::level::debug;
    if (!spdlog::should_log(to)) return;
    char line[2048];
    std::vsnprintf(line, sizeof(line), format, ap);
    spdlog::log(to, "rocksdb: {}", line);
  }
};

// Last writer wins: keep the greater of two rows (row_codec.h). Associative
// and commutative, so the merged row is independent of arrival order.
class LwwMergeOperator : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& /*key*/, const rocksdb::Slice* existing,
             const rocksdb::Slice& value, std::string* new_value,
             rocksdb::Logger* /*logger*/) const override {
    if (existing == nullptr || RowWins(value.ToStringView(), existing->ToStringView())) {
      new_value->assign(value.data(), value.size());
    } else {
      new_value->assign(existing->data(), existing->size());
    }
    return true;
  }
  const char* Name() const override { return "quiver.LwwMergeOperator.v1"; }
};

// Drops rows past the view's TTL. Dropping an expired merge operand is safe:
// every row that it could win over is older, hence expired as well.
class TtlCompactionFilter : public rocksdb::CompactionFilter {
 public:
  explicit TtlCompactionFilter(Clock clock) : clock_(std::move(clock)) {}

  void set_ttl_seconds(int64_t ttl) { ttl_seconds_.store(ttl, std::memory_order_relaxed); }

  Decision FilterV2(int /*level*/, const rocksdb::Slice& /*key*/, ValueType value_type,
                    const rocksdb::Slice& existing_value, std::string* /*new_value*/,
                    std::string* /*skip_until*/) const override {
    if (value_type == ValueType::kBlobIndex) return Decision::kKeep;
    const int64_t ttl = ttl_seconds_.load(std::memory_order_relaxed);
    if (ttl <= 0) return Decision::kKeep;
    // An unreadable row is kept: reads report it as kDataLoss instead of the
    // data silently disappearing.
    const std::optional<RowHeader> h = ParseRowHeader(existing_value.ToStringView());
    if (!h.has_value()) return Decision::kKeep;
    return IsExpired(h->event_ts_us, ttl, clock_()) ? Decision::kRemove : Decision::kKeep;
  }
  const char* Name() const override { return "quiver.TtlCompactionFilter"; }

 private:
  Clock clock_;
  std::atomic<int64_t> ttl_seconds_{0};
};

std::string EncodeViewMeta(const ViewSchema& s) {
  std::string out(kViewMetaMagic);
  auto put = [&out](uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  put(s.schema_version, 4);
  put(static_cast<uint64_t>(s.ttl.count()), 8);
  put(s.feature_types.size(), 2);
  for (ValueType t : s.feature_types) out.push_back(static_cast<char>(t));
  return out;
}

absl::StatusOr<ViewSchema> DecodeViewMeta(const std::string& name, std::string_view in) {
  auto bad = [&] { return absl::DataLossError(absl::StrCat("corrupt metadata of view ", name)); };
  const size_t magic = sizeof(kViewMetaMagic) - 1;
  if (in.size() < magic + 14 || in.substr(0, magic) != kViewMetaMagic) return bad();
  auto get = [&in](size_t pos, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(in[pos + i]);
    return v;
  };
  ViewSchema s;
  s.name = name;
  s.schema_version = static_cast<uint32_t>(get(magic, 4));
  s.ttl = std::chrono::seconds(static_cast<int64_t>(get(magic + 4, 8)));
  const size_t n = get(magic + 12, 2);
  if (in.size() != magic + 14 + n) return bad();
  for (size_t i = 0; i < n; ++i) {
    const auto t = static_cast<ValueType>(in[magic + 14 + i]);
    if (!IsValidType(t)) return bad();
    s.feature_types.push_back(t);
  }
  return s;
}

// Appends the first 4 bytes of every row key of partition `p`: u32 big-endian.
void AppendPartitionPrefix(uint32_t p, std::string* out) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>((p >> shift) & 0xff));
}

std::string PartitionPrefix(uint32_t p) {
  std::string out;
  AppendPartitionPrefix(p, &out);
  return out;
}

// Appends the row key of `entity_key`: partition (u32 big-endian) ‖ key.
void AppendRowKey(std::string_view entity_key, uint32_t num_partitions, std::string* out) {
  AppendPartitionPrefix(PartitionOf(entity_key, num_partitions), out);
  out->append(entity_key);
}

// LZ4 when this RocksDB build has it (cheap to decompress on the read path),
// else Snappy, else none.
rocksdb::CompressionType PickCompression() {
  const std::vector<rocksdb::CompressionType> have = rocksdb::GetSupportedCompressions();
  for (rocksdb::CompressionType t : {rocksdb::kLZ4Compression, rocksdb::kSnappyCompression}) {
    if (std::find(have.begin(), have.end(), t) != have.end()) return t;
  }
  return rocksdb::kNoCompression;
}

// An Env whose FileSystem serves MultiRead through io_uring, or null when
// io_uring is disabled or unavailable (then RocksDB's default Env reads with
// preads; said once per process).
std::unique_ptr<rocksdb::Env> NewIoUringEnvOrNull() {
  const bool disabled = IoUringDisabledByEnv();
  if (!disabled && IoUringSupported()) {
    return rocksdb::NewCompositeEnv(NewIoUringFileSystem(rocksdb::FileSystem::Default()));
  }
  static std::once_flag logged;
  std::call_once(logged, [disabled] {
    spdlog::warn("RowStore: io_uring {}; batched reads use preads",
                 disabled ? "disabled by QUIVER_DISABLE_IO_URING" : "is not available here");
  });
  return nullptr;
}

absl::Status CheckSchema(const ViewSchema& s) {
  if (s.name.empty()) return absl::InvalidArgumentError("view name is empty");
  if (s.feature_types.size() > kMaxFeatures) {
    return absl::InvalidArgumentError(
        absl::StrCat("view ", s.name, " has more than ", kMaxFeatures, " features"));
  }
  for (ValueType t : s.feature_types) {
    if (!IsValidType(t)) {
      return absl::InvalidArgumentError(absl::StrCat("view ", s.name, " has an invalid type"));
    }
  }
  if (s.ttl.count() < 0) return absl::InvalidArgumentError("negative ttl");
  return absl::OkStatus();
}

absl::Status CheckRow(const ViewSchema& s, const RowWrite& row, size_t index) {
  auto where = [&] { return absl::StrCat("row ", index, " of view ", s.name, ": "); };
  if (row.entity_key.empty() || row.entity_key.size() > kMaxEntityKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat(where(), "entity key of ", row.entity_key.size(),
                                                   " bytes (allowed 1..", kMaxEntityKeyBytes, ")"));
  }
  if (!row.packed_values.empty()) {
    if (!row.values.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where(), "both values and packed values"));
    }
    size_t bad = 0;
    absl::Status st = CheckPackedValues(row.packed_values, s.feature_types, &bad);
    if (st.ok()) return st;
    if (bad >= s.feature_types.size()) return absl::InvalidArgumentError(absl::StrCat(where(), st.message()));
    return absl::InvalidArgumentError(absl::StrCat(where(), "feature ", bad, ": ", st.message()));
  }
  if (row.values.size() != s.feature_types.size()) {
    return absl::InvalidArgumentError(absl::StrCat(where(), row.values.size(), " values for ",
                                                   s.feature_types.size(), " features"));
  }
  for (size_t i = 0; i < row.values.size(); ++i) {
    const Value& v = row.values[i];
    if (v.type != s.feature_types[i]) {
      return absl::InvalidArgumentError(absl::StrCat(where(), "feature ", i, " is ",
                                                     TypeName(v.type), ", schema says ",
                                                     TypeName(s.feature_types[i])));
    }
    if (absl::Status st = CheckValue(v); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where(), "feature ", i, ": ", st.message()));
    }
  }
  return absl::OkStatus();
}

// The checks Write and IngestSession::Append apply to a batch; `first_index`
// numbers the rows in error messages.
absl::Status CheckRows(const ViewSchema& s, std::span<const RowWrite> rows, size_t first_index) {
  for (size_t i = 0; i < rows.size(); ++i) {
    if (absl::Status st = CheckRow(s, rows[i], first_index + i); !st.ok()) return st;
  }
  return absl::OkStatus();
}

// The stored key and value of a checked row, replacing `*key` and `*value`
// (callers reuse both buffers across rows).
void EncodeRow(const RowWrite& row, const ViewSchema& schema, uint32_t num_partitions,
               std::string* key, std::string* value) {
  key->clear();
  AppendRowKey(row.entity_key, num_partitions, key);
  value->clear();
  if (row.packed_values.empty()) {
    AppendRow(row.event_ts_us, row.created_ts_us, schema.schema_version, row.values, value);
  } else {
    // Checked by CheckRow.
    AppendPackedRow(row.event_ts_us, row.created_ts_us, schema.schema_version, row.packed_values,
                    schema.feature_types, value);
  }
}

// options.path + ".ingest", also when the path ends in '/'.
std::string IngestScratchDir(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path + ".ingest";
}

// Where a bulk load's rows go; made by RowStore::Impl::BeginIngest.
struct IngestTarget {
  std::shared_ptr<const ViewSchema> schema;  // the version rows are encoded with
  uint32_t num_partitions = 0;
  rocksdb::ColumnFamilyHandle* cf = nullptr;
  rocksdb::Options options;  // the view's DB and column family options
  std::string dir;           // the session's own scratch directory (exists)
  // Ingests finished files in one call if the view is still at schema's version.
  std::function<absl::Status(const std::vector<std::string>& files)> ingest;
};

}  // namespace

int64_t SystemNowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A bulk load (row_store.h). The row with the greatest key so far is held
// back ("pending") until a greater key arrives, so equal keys reduce to one
// entry: an SST file needs strictly increasing keys, and one ingested file
// shares one sequence number, so RocksDB could not order two entries of one
// key in it.
class IngestSession::Impl {
 public:
  explicit Impl(IngestTarget target) : t_(std::move(target)) {}
  ~Impl() { Close(); }

  absl::Status Append(std::span<const RowWrite> rows) {
    if (absl::Status st = CheckOpen(); !st.ok()) return st;
    const ViewSchema& schema = *t_.schema;
    if (absl::Status st = CheckRows(schema, rows, rows_appended_); !st.ok()) return Fail(st);
    for (size_t i = 0; i < rows.size(); ++i) {
      EncodeRow(rows[i], schema, t_.num_partitions, &key_, &value_);
      if (has_pending_) {
        const int order = key_.compare(pending_key_);  // bytewise, as RocksDB's comparator
        if (order < 0) {
          return Fail(absl::InvalidArgumentError(absl::StrCat(
              "row ", rows_appended_ + i, " of view ", schema.name,
              ": row key is lower than the previous row's (Append needs RowStore::RowKey order)")));
        }
        if (order == 0) {
          // What the merge operator would keep of the two.
          if (RowWins(value_, pending_value_)) pending_value_.swap(value_);
          continue;
        }
        if (absl::Status st = WritePending(); !st.ok()) return Fail(st);
      }
      pending_key_.swap(key_);
      pending_value_.swap(value_);
      has_pending_ = true;
    }
    rows_appended_ += rows.size();
    return absl::OkStatus();
  }

  uint64_t rows_appended() const { return rows_appended_; }

  absl::Status Commit() {
    if (absl::Status st = CheckOpen(); !st.ok()) return st;
    absl::Status st = FinishFiles();
    if (st.ok() && !files_.empty()) st = t_.ingest(files_);
    Close();
    return st;
  }

 private:
  absl::Status CheckOpen() const {
    if (open_) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(
        "ingest session of view ", t_.schema->name, " is over (committed, failed or aborted)"));
  }

  absl::Status Fail(absl::Status st) {
    Close();
    return st;
  }

  // Ends the session: abandons an unfinished file and deletes the scratch
  // directory (after a successful ingestion RocksDB has already removed the
  // moved files' original links).
  void Close() {
    open_ = false;
    writer_.reset();
    std::error_code ec;
    std::filesystem::remove_all(t_.dir, ec);
    if (ec) spdlog::warn("RowStore: could not delete ingest files in {}: {}", t_.dir, ec.message());
  }

  // Adds the pending row to the current file, starting a file if none is
  // open and finishing it once it reaches the view's target file size.
  absl::Status WritePending() {
    if (writer_ == nullptr) {
      files_.push_back(absl::StrCat(t_.dir, "/", files_.size(), ".sst"));
      // The file is ingested and read soon: keep it in the page cache.
      writer_ = std::make_unique<rocksdb::SstFileWriter>(rocksdb::EnvOptions(t_.options),
                                                         t_.options, t_.cf,
                                                         /*invalidate_page_cache=*/false);
      rocksdb::Status s = writer_->Open(files_.back());
      if (!s.ok()) return FromRocks(s, "creating " + files_.back());
    }
    rocksdb::Status s = writer_->Merge(pending_key_, pending_value_);
    if (!s.ok()) return FromRocks(s, "writing " + files_.back());
    if (writer_->FileSize() >= kTargetFileBytes) return FinishFile();
    return absl::OkStatus();
  }

  absl::Status FinishFile() {
    rocksdb::Status s = writer_->Finish();  // syncs the file
    writer_.reset();
    return FromRocks(s, "finishing " + files_.back());
  }

  absl::Status FinishFiles() {
    if (has_pending_) {
      has_pending_ = false;
      if (absl::Status st = WritePending(); !st.ok()) return st;
    }
    return writer_ != nullptr ? FinishFile() : absl::OkStatus();
  }

  IngestTarget t_;
  bool open_ = true;
  uint64_t rows_appended_ = 0;
  std::unique_ptr<rocksdb::SstFileWriter> writer_;  // null between files
  std::vector<std::string> files_;                   // every file started, in key order
  bool has_pending_ = false;
  std::string pending_key_;
  std::string pending_value_;
  std::string key_;  // buffers reused for every row
  std::string value_;
};

class RowStore::Impl {
 public:
  struct View {
    rocksdb::ColumnFamilyHandle* cf = nullptr;
    std::shared_ptr<const ViewSchema> schema;  // null: column family without metadata yet
    TtlCompactionFilter* filter = nullptr;
  };

  explicit Impl(RowStoreOptions options)
      : options_(std::move(options)), scratch_dir_(IngestScratchDir(options_.path)) {
    merge_op_ = std::make_shared<LwwMergeOperator>();
    compression_ = PickCompression();
    rocksdb::LRUCacheOptions cache;
    cache.capacity = options_.block_cache_bytes;
    cache.high_pri_pool_ratio = 0.5;  // index and filter blocks go there first
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = rocksdb::NewLRUCache(cache);
    table.block_size = kBlockBytes;
    // Point lookups: a whole-key bloom filter answers most misses without a
    // read, and a hash index inside each data block finds the key without a
    // binary search (RocksDB wiki, "Data Block Hash Index").
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    table.whole_key_filtering = true;
    table.data_block_index_type = rocksdb::BlockBasedTableOptions::kDataBlockBinaryAndHash;
    table.data_block_hash_table_util_ratio = 0.75;
    // Index and filter blocks are charged to the block cache and pinned there
    // for every open file (they are ~2% of the data): a cold lookup then
    // costs one data-block read, which MultiGet batches, instead of up to
    // three reads one after the other.
    table.cache_index_and_filter_blocks = true;
    table.cache_index_and_filter_blocks_with_high_priority = true;
    table.pin_l0_filter_and_index_blocks_in_cache = true;
    table.metadata_cache_options.unpartitioned_pinning = rocksdb::PinningTier::kAll;
    table.format_version = 5;
    table_factory_.reset(rocksdb::NewBlockBasedTableFactory(table));
  }

  ~Impl() {
    if (db_ != nullptr) {
      for (rocksdb::ColumnFamilyHandle* h : handles_) db_->DestroyColumnFamilyHandle(h);
      db_->Close().PermitUncheckedError();
    }
  }

  rocksdb::ColumnFamilyOptions BaseCfOptions() const {
    rocksdb::ColumnFamilyOptions cf;
    cf.table_factory = table_factory_;
    cf.level_compaction_dynamic_level_bytes = true;
    cf.compression = compression_;
    cf.bottommost_compression = compression_;
    cf.disable_auto_compactions = options_.frozen;
    return cf;
  }

  // Options of a view's column family; the filter stays owned by this Impl
  // and outlives the DB.
  rocksdb::ColumnFamilyOptions ViewCfOptions(TtlCompactionFilter** filter) {
    rocksdb::ColumnFamilyOptions cf = BaseCfOptions();
    cf.merge_operator = merge_op_;
    filters_.push_back(std::make_unique<TtlCompactionFilter>(options_.clock));
    *filter = filters_.back().get();
    cf.compaction_filter = *filter;
    cf.target_file_size_base = kTargetFileBytes;
    // Whole-key bloom filter on the memtable too: a lookup of a key that was
    // not written lately skips the memtable search.
    cf.memtable_prefix_bloom_size_ratio = 0.02;
    cf.memtable_whole_key_filtering = true;
    // The memtable is RocksDB's default skip list. A hash of skip lists by
    // partition prefix (HashSkipList, used until 2026-12) made every
    // total-order iterator copy the whole memtable into a new skip list
    // (each scan page of a stream, repair or verify), and Debian's RocksDB,
    // built with assertions on, searched the bucket from its top on every
    // insert (`assert(!Contains(key))`): 68 % of a streaming node's CPU
    // (bench/results/2026-12-03-rebalance-perf-report.txt). Lookups gain
    // little from it: bulk loads arrive as SST files, and the memtable's
    // whole-key bloom filter above skips it for keys not written lately.
    if (options_.periodic_compaction_seconds > 0) {
      cf.periodic_compaction_seconds = options_.periodic_compaction_seconds;
    }
    return cf;
  }

  absl::Status Open() {
    rocksdb::DBOptions db_options;
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    db_options.max_background_jobs = 4;
    db_options.bytes_per_sync = 1 << 20;
    db_options.max_open_files = -1;  // table readers (and pinned metadata) stay loaded
    db_options.use_direct_reads = options_.use_direct_reads;
    if (options_.use_io_uring) env_ = NewIoUringEnvOrNull();
    if (env_ != nullptr) db_options.env = env_.get();
    if (options_.low_priority_compactions) {
      rocksdb::Status lowered = db_options.env->LowerThreadPoolCPUPriority(
          rocksdb::Env::Priority::LOW, rocksdb::CpuPriority::kLow);
      if (!lowered.ok()) spdlog::warn("RowStore: compactions keep their priority: {}", lowered.ToString());
    }
    db_options.listeners.push_back(no_space_);
    db_options.info_log = std::make_shared<SpdlogLogger>();

    std::vector<std::string> names;
    std::error_code ec;
    if (std::filesystem::exists(std::filesystem::path(options_.path) / "CURRENT", ec)) {
      rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_options, options_.path, &names);
      if (!s.ok()) return FromRocks(s, "listing column families of " + options_.path);
    }
    if (names.empty()) names.push_back(rocksdb::kDefaultColumnFamilyName);

    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    std::vector<TtlCompactionFilter*> filters;
    for (const std::string& name : names) {
      TtlCompactionFilter* filter = nullptr;
      if (name.starts_with(kViewCfPrefix)) {
        descriptors.emplace_back(name, ViewCfOptions(&filter));
      } else {
        descriptors.emplace_back(name, BaseCfOptions());
      }
      filters.push_back(filter);
    }
    rocksdb::DB* db = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(db_options, options_.path, descriptors, &handles_, &db);
    if (!s.ok()) return FromRocks(s, "opening RocksDB at " + options_.path);
    db_.reset(db);
    // Only now that this process holds the DB's lock: files of an interrupted
    // bulk load, never ingested.
    std::filesystem::remove_all(scratch_dir_, ec);
    if (ec) spdlog::warn("RowStore: could not clear {}: {}", scratch_dir_, ec.message());

    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == rocksdb::kDefaultColumnFamilyName) default_cf_ = handles_[i];
    }
    if (absl::Status st = CheckPartitionCount(); !st.ok()) return st;

    for (size_t i = 0; i < names.size(); ++i) {
      if (filters[i] == nullptr) continue;
      const std::string view = names[i].substr(sizeof(kViewCfPrefix) - 1);
      View v{handles_[i], nullptr, filters[i]};
      std::string meta;
      s = db_->Get(rocksdb::ReadOptions(), default_cf_, kViewMetaPrefix + view, &meta);
      if (s.ok()) {
        absl::StatusOr<ViewSchema> schema = DecodeViewMeta(view, meta);
        if (!schema.ok()) return schema.status();
        v.filter->set_ttl_seconds(schema->ttl.count());
        v.schema = std::make_shared<const ViewSchema>(*std::move(schema));
      } else if (!s.IsNotFound()) {
        return FromRocks(s, "reading metadata of view " + view);
      }
      views_[view] = v;
    }
    return absl::OkStatus();
  }

  absl::Status CheckPartitionCount() {
    std::string stored;
    const std::string want = std::to_string(options_.num_partitions);
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), default_cf_, kPartitionsKey, &stored);
    if (s.IsNotFound()) {
      rocksdb::WriteOptions wo;
      wo.sync = true;
      return FromRocks(db_->Put(wo, default_cf_, kPartitionsKey, want), "writing store metadata");
    }
    if (!s.ok()) return FromRocks(s, "reading store metadata");
    if (stored != want) {
      return absl::InvalidArgumentError(absl::StrCat("store at ", options_.path, " was created with ",
                                                     stored, " partitions, options say ", want));
    }
    return absl::OkStatus();
  }

  absl::Status EnsureView(const ViewSchema& schema) {
    if (absl::Status st = CheckSchema(schema); !st.ok()) return st;
    std::lock_guard<std::mutex> ensure(ensure_mu_);
    View v;
    {
      std::shared_lock lock(mu_);
      if (auto it = views_.find(schema.name); it != views_.end()) v = it->second;
    }
    if (v.cf == nullptr) {
      rocksdb::ColumnFamilyHandle* handle = nullptr;
      rocksdb::ColumnFamilyOptions cf = ViewCfOptions(&v.filter);
      rocksdb::Status s = db_->CreateColumnFamily(cf, kViewCfPrefix + schema.name, &handle);
      if (!s.ok()) return FromRocks(s, "creating column family of view " + schema.name);
      v.cf = handle;
      std::unique_lock lock(mu_);
      handles_.push_back(handle);
      views_[schema.name] = v;
    }
    if (v.schema != nullptr && v.schema->schema_version > schema.schema_version) {
      // A caller holding an older registry: never move the view backwards.
      return absl::OkStatus();
    }
    if (v.schema != nullptr && v.schema->schema_version == schema.schema_version) {
      // Stored rows carry only the version: other types under the same version
      // would decode as corruption.
      if (v.schema->feature_types != schema.feature_types) {
        return absl::InvalidArgumentError(absl::StrCat("view ", schema.name,
                                                       " changed its feature types but kept "
                                                       "schema version ", schema.schema_version));
      }
      if (v.schema->ttl == schema.ttl) return absl::OkStatus();
    }
    rocksdb::WriteOptions wo;
    wo.sync = true;
    rocksdb::Status s = db_->Put(wo, default_cf_, kViewMetaPrefix + schema.name,
                                 EncodeViewMeta(schema));
    if (!s.ok()) return FromRocks(s, "recording schema of view " + schema.name);
    v.filter->set_ttl_seconds(schema.ttl.count());
    v.schema = std::make_shared<const ViewSchema>(schema);
    std::unique_lock lock(mu_);
    views_[schema.name] = v;
    return absl::OkStatus();
  }

  absl::StatusOr<View> Lookup(std::string_view view) const {
    std::shared_lock lock(mu_);
    auto it = views_.find(view);
    if (it == views_.end() || it->second.schema == nullptr) {
      return absl::NotFoundError(absl::StrCat("unknown feature view ", std::string(view)));
    }
    return it->second;
  }

  // The view's schema, checked against the version a caller validated its
  // request with (0: any).
  static absl::Status CheckVersion(const ViewSchema& schema, uint32_t expected) {
    if (expected == 0 || expected == schema.schema_version) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat("view ", schema.name, " is at schema version ",
                                               schema.schema_version, ", request expects ",
                                               expected, " (registry change in progress)"));
  }

  absl::Status Write(std::string_view view, std::span<const RowWrite> rows,
                     uint32_t expected_schema_version) {
    absl::StatusOr<View> v = Lookup(view);
    if (!v.ok()) return v.status();
    const ViewSchema& schema = *v->schema;
    if (absl::Status st = CheckVersion(schema, expected_schema_version); !st.ok()) return st;
    // Check everything first: a bad row rejects the whole batch.
    if (absl::Status st = CheckRows(schema, rows, 0); !st.ok()) return st;
    if (rows.empty()) return absl::OkStatus();
    ResumeIfStopped();
    // One key and one value buffer for the whole batch; the batch itself is
    // sized from the first row, so a large batch does not regrow much.
    std::string key;
    std::string value;
    EncodeRow(rows[0], schema, options_.num_partitions, &key, &value);
    rocksdb::WriteBatch batch(rows.size() * (value.size() + key.size() + 16));
    for (const RowWrite& row : rows) {
      EncodeRow(row, schema, options_.num_partitions, &key, &value);
      rocksdb::Status s = batch.Merge(v->cf, key, value);
      if (!s.ok()) return FromRocks(s, "building write batch");
    }
    return FromRocks(db_->Write(rocksdb::WriteOptions(), &batch),
                     absl::StrCat("writing to view ", std::string(view)));
  }

  // Called per key by ReadRows: the row's header (zeros when not found) and,
  // for kPresent, the requested cells.
  using RowFn = absl::FunctionRef<void(size_t index, RowStatus status, const RowHeader& header,
                                       std::span<const std::string_view> cells)>;

  // The view a read may use: known, at the expected schema version, and
  // holding every requested feature index.
  absl::StatusOr<View> ReadableView(std::string_view view, std::span<const int> feature_indices,
                                    uint32_t expected_schema_version) const {
    absl::StatusOr<View> v = Lookup(view);
    if (!v.ok()) return v.status();
    const ViewSchema& schema = *v->schema;
    if (absl::Status st = CheckVersion(schema, expected_schema_version); !st.ok()) return st;
    const int num_features = static_cast<int>(schema.feature_types.size());
    for (int idx : feature_indices) {
      if (idx < 0 || idx >= num_features) {
        return absl::InvalidArgumentError(absl::StrCat("feature index ", idx, " out of range for ",
                                                       num_features, " features of view ",
                                                       schema.name));
      }
    }
    return v;
  }

  // The lookup behind MultiGet and MultiGetCells (row_store.h), on a view
  // that ReadableView accepted with the same `feature_indices`.
  absl::Status ReadRows(const View& v, std::span<const std::string_view> entity_keys,
                        std::span<const int> feature_indices, RowFn fn) {
    const ViewSchema& schema = *v.schema;
    const int num_features = static_cast<int>(schema.feature_types.size());
    const size_t n = entity_keys.size();
    if (n == 0) return absl::OkStatus();
    // All row keys back to back in one buffer, sized first so it never moves.
    size_t key_bytes = 0;
    for (std::string_view k : entity_keys) key_bytes += 4 + k.size();
    std::string keys;
    keys.reserve(key_bytes);
    for (std::string_view k : entity_keys) AppendRowKey(k, options_.num_partitions, &keys);
    std::vector<rocksdb::Slice> slices(n);
    for (size_t i = 0, pos = 0; i < n; ++i) {
      slices[i] = rocksdb::Slice(keys.data() + pos, 4 + entity_keys[i].size());
      pos += slices[i].size();
    }
    std::vector<rocksdb::PinnableSlice> values(n);
    std::vector<rocksdb::Status> statuses(n);
    db_->MultiGet(rocksdb::ReadOptions(), v.cf, n, slices.data(), values.data(),
                  statuses.data());
    const int64_t now = options_.clock();
    const RowHeader absent;
    std::vector<std::string_view> cells(feature_indices.size());
    for (size_t i = 0; i < n; ++i) {
      if (statuses[i].IsNotFound()) {
        fn(i, RowStatus::kNotFound, absent, {});
        continue;
      }
      if (!statuses[i].ok()) return FromRocks(statuses[i], "reading view " + schema.name);
      const std::string_view row = values[i].ToStringView();
      const std::optional<RowHeader> h = ParseRowHeader(row);
      if (!h.has_value()) {
        return absl::DataLossError(absl::StrCat("corrupt row in view ", schema.name));
      }
      if (h->schema_version != schema.schema_version) {
        fn(i, RowStatus::kNotFound, absent, {});
        continue;
      }
      if (h->num_values != num_features) {
        return absl::DataLossError(absl::StrCat("row in view ", schema.name, " has ", h->num_values,
                                                " values, schema has ", num_features));
      }
      if (IsExpired(h->event_ts_us, schema.ttl.count(), now)) {
        fn(i, RowStatus::kOutsideMaxAge, *h, {});
        continue;
      }
      for (size_t j = 0; j < feature_indices.size(); ++j) {
        const int idx = feature_indices[j];
        cells[j] = RowCell(row, *h, idx);
        if (absl::Status st = CheckCell(cells[j], idx, schema.feature_types[idx]); !st.ok()) {
          return absl::DataLossError(absl::StrCat("view ", schema.name, ": ", st.message()));
        }
      }
      fn(i, RowStatus::kPresent, *h, cells);
    }
    return absl::OkStatus();
  }

  absl::Status MultiGetCells(std::string_view view, std::span<const std::string_view> entity_keys,
                             std::span<const int> feature_indices,
                             uint32_t expected_schema_version, RowVisitor visit) {
    absl::StatusOr<View> v = ReadableView(view, feature_indices, expected_schema_version);
    if (!v.ok()) return v.status();
    return ReadRows(*v, entity_keys, feature_indices,
                    [&](size_t i, RowStatus status, const RowHeader& h,
                        std::span<const std::string_view> cells) {
                      visit(i, status, h.event_ts_us, cells);
                    });
  }

  absl::StatusOr<std::vector<RowRead>> MultiGet(std::string_view view,
                                                std::span<const std::string> entity_keys,
                                                std::span<const int> feature_indices,
                                                uint32_t expected_schema_version) {
    absl::StatusOr<View> v = ReadableView(view, feature_indices, expected_schema_version);
    if (!v.ok()) return v.status();
    const std::vector<ValueType>& types = v->schema->feature_types;
    const std::vector<std::string_view> keys(entity_keys.begin(), entity_keys.end());
    std::vector<RowRead> out(keys.size());
    absl::Status decode_error;
    absl::Status st = ReadRows(
        *v, keys, feature_indices,
        [&](size_t i, RowStatus status, const RowHeader& h,
            std::span<const std::string_view> cells) {
          RowRead& r = out[i];
          r.status = status;
          r.event_ts_us = h.event_ts_us;
          r.created_ts_us = h.created_ts_us;
          if (status != RowStatus::kPresent || !decode_error.ok()) return;
          r.values.reserve(cells.size());
          for (size_t j = 0; j < cells.size(); ++j) {
            const ValueType type = types[feature_indices[j]];
            if (cells[j][0] == 0) {
              r.values.push_back(Value::Null(type));
              continue;
            }
            absl::StatusOr<Value> value = DecodePayload(type, cells[j].substr(1));
            if (!value.ok()) {
              decode_error = absl::DataLossError(
                  absl::StrCat("view ", v->schema->name, ": ", value.status().message()));
              return;
            }
            r.values.push_back(*std::move(value));
          }
        });
    if (!st.ok()) return st;
    if (!decode_error.ok()) return decode_error;
    return out;
  }

  absl::StatusOr<IngestTarget> BeginIngest(std::string_view view,
                                           uint32_t expected_schema_version) {
    absl::StatusOr<View> v = Lookup(view);
    if (!v.ok()) return v.status();
    if (absl::Status st = CheckVersion(*v->schema, expected_schema_version); !st.ok()) return st;
    IngestTarget t;
    t.schema = v->schema;
    t.num_partitions = options_.num_partitions;
    t.cf = v->cf;
    t.options = db_->GetOptions(v->cf);
    t.dir = absl::StrCat(scratch_dir_, "/", next_ingest_.fetch_add(1));
    std::error_code ec;
    std::filesystem::create_directories(t.dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("creating ", t.dir, ": ", ec.message()));
    t.ingest = [this, name = std::string(view), version = v->schema->schema_version](
                   const std::vector<std::string>& files) {
      return IngestFiles(name, version, files);
    };
    return t;
  }

  // One IngestExternalFile call for a session's files (row_store.h, Commit).
  absl::Status IngestFiles(const std::string& view, uint32_t schema_version,
                           const std::vector<std::string>& files) {
    // EnsureView changes a schema only under ensure_mu_: the version checked
    // here holds until the files are in.
    std::lock_guard<std::mutex> ensure(ensure_mu_);
    absl::StatusOr<View> v = Lookup(view);
    if (!v.ok()) return v.status();
    if (absl::Status st = CheckVersion(*v->schema, schema_version); !st.ok()) return st;
    rocksdb::IngestExternalFileOptions o;
    o.move_files = true;            // hard links: the scratch dir is beside the DB
    o.allow_global_seqno = true;    // files overlapping stored rows go above them
    o.allow_blocking_flush = true;  // flush a memtable holding overlapping rows first
    o.write_global_seqno = false;   // the seqno lives in the MANIFEST; files stay unmodified
    ResumeIfStopped();
    return FromRocks(db_->IngestExternalFile(v->cf, files, o), "ingesting into view " + view);
  }

  absl::StatusOr<uint64_t> CountRows(std::string_view view) {
    absl::StatusOr<View> v = Lookup(view);
    if (!v.ok()) return v.status();
    const int64_t ttl = v->schema->ttl.count();
    const int64_t now = options_.clock();
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, v->cf));
    uint64_t count = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::optional<RowHeader> h = ParseRowHeader(it->value().ToStringView());
      if (!h.has_value()) {
        return absl::DataLossError(absl::StrCat("corrupt row in view ", std::string(view)));
      }
      if (!IsExpired(h->event_ts_us, ttl, now)) ++count;
    }
    if (absl::Status st = FromRocks(it->status(), "scanning view " + std::string(view)); !st.ok()) {
      return st;
    }
    return count;
  }

  absl::StatusOr<RawScan> ScanRaw(std::string_view view, uint32_t partition_begin,
                                  uint32_t partition_end, std::string_view after,
                                  size_t max_bytes) {
    absl::StatusOr<View> v = Lookup(view);
    if (!v.ok()) return v.status();
    if (partition_begin >= partition_end || partition_end > options_.num_partitions) {
      return absl::InvalidArgumentError(absl::StrCat("partition range [", partition_begin, ", ",
                                                     partition_end, ") of ",
                                                     options_.num_partitions));
    }
    const std::string begin = PartitionPrefix(partition_begin);
    // The end bound: the first key of partition_end (exclusive); for the
    // last partition, no bound.
    const std::string end =
        partition_end < options_.num_partitions ? PartitionPrefix(partition_end) : std::string();
    rocksdb::Slice upper(end);
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;       // a bulk copy would evict the lookups' blocks
    if (!end.empty()) ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, v->cf));
    if (after.empty() || after < std::string_view(begin)) {
      it->Seek(begin);
    } else {
      it->Seek(rocksdb::Slice(after.data(), after.size()));
      if (it->Valid() && it->key().ToStringView() == after) it->Next();
    }
    RawScan page;
    size_t bytes = 0;
    for (; it->Valid(); it->Next()) {
      if (!page.rows.empty() && bytes >= max_bytes) break;
      page.rows.push_back({it->key().ToString(), it->value().ToString()});
      bytes += it->key().size() + it->value().size();
    }
    if (absl::Status st = FromRocks(it->status(), "scanning view " + std::string(view)); !st.ok()) {
      return st;
    }
    page.done = !it->Valid();
    return page;
  }

  absl::Status MergeRaw(std::string_view view, std::span<const RawRow> rows) {
    absl::StatusOr<View> v = Lookup(view);
    if (!v.ok()) return v.status();
    std::string expected_key;
    for (size_t i = 0; i < rows.size(); ++i) {
      auto bad = [&](std::string_view what) {
        return absl::InvalidArgumentError(
            absl::StrCat("row ", i, " of view ", std::string(view), ": ", std::string(what)));
      };
      const std::string_view entity_key = RowStore::EntityKeyOfRowKey(rows[i].key);
      if (entity_key.empty() || entity_key.size() > kMaxEntityKeyBytes) return bad("bad row key");
      expected_key.clear();
      AppendRowKey(entity_key, options_.num_partitions, &expected_key);
      if (expected_key != rows[i].key) return bad("row key of another partition count");
      if (!ParseRowHeader(rows[i].value).has_value()) return bad("malformed row");
    }
    ResumeIfStopped();
    rocksdb::WriteBatch batch;
    for (const RawRow& row : rows) {
      rocksdb::Status s = batch.Merge(v->cf, row.key, row.value);
      if (!s.ok()) return FromRocks(s, "building repair batch");
    }
    return FromRocks(db_->Write(rocksdb::WriteOptions(), &batch),
                     absl::StrCat("merging into view ", std::string(view)));
  }

  absl::Status CompactView(std::string_view view) {
    absl::StatusOr<View> v = Lookup(view);
    if (!v.ok()) return v.status();
    rocksdb::CompactRangeOptions opts;
    // Rewrite the bottommost files too, so every row passes the TTL filter.
    opts.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    return FromRocks(db_->CompactRange(opts, v->cf, nullptr, nullptr),
                     "compacting view " + std::string(view));
  }

  std::vector<std::string> ViewNames() const {
    std::shared_lock lock(mu_);
    std::vector<std::string> names;
    for (const auto& [name, v] : views_) {
      if (v.schema != nullptr) names.push_back(name);
    }
    return names;
  }

  rocksdb::DB* db() const { return db_.get(); }

  std::vector<rocksdb::ColumnFamilyHandle*> ViewFamilies() const {
    std::shared_lock lock(mu_);
    std::vector<rocksdb::ColumnFamilyHandle*> families;
    for (const auto& [name, v] : views_) {
      if (v.cf != nullptr) families.push_back(v.cf);
    }
    return families;
  }
  const RowStoreOptions& options() const { return options_; }

 private:
  // Writes stopped for lack of space (NoSpaceListener): try to resume them.
  void ResumeIfStopped() {
    if (!no_space_->stopped()) return;
    const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
    int64_t last = last_resume_.load();
    if (now - last < std::chrono::steady_clock::duration(kResumeEvery).count() ||
        !last_resume_.compare_exchange_strong(last, now)) {
      return;  // tried lately, or another writer is trying
    }
    rocksdb::Status s = db_->Resume();
    if (s.ok()) {
      no_space_->Resumed();
      spdlog::info("RowStore: writes resumed after running out of disk space");
    } else {
      spdlog::warn("RowStore: writes still stopped: {}", s.ToString());
    }
  }

  RowStoreOptions options_;
  const std::string scratch_dir_;  // bulk-load files, options_.path + ".ingest"
  std::atomic<uint64_t> next_ingest_{0};  // names each session's scratch subdirectory
  std::shared_ptr<rocksdb::MergeOperator> merge_op_;
  std::shared_ptr<rocksdb::TableFactory> table_factory_;
  rocksdb::CompressionType compression_ = rocksdb::kNoCompression;
  std::unique_ptr<rocksdb::Env> env_;  // wraps the io_uring FileSystem; outlives db_
  std::vector<std::unique_ptr<TtlCompactionFilter>> filters_;  // outlive db_
  std::shared_ptr<NoSpaceListener> no_space_ = std::make_shared<NoSpaceListener>();
  std::atomic<int64_t> last_resume_{0};  // steady_clock ticks of the last Resume()
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // guarded by mu_ after Open
  rocksdb::ColumnFamilyHandle* default_cf_ = nullptr;
  std::mutex ensure_mu_;  // serializes EnsureView
  mutable std::shared_mutex mu_;
  std::map<std::string, View, std::less<>> views_;  // guarded by mu_
};

absl::StatusOr<std::unique_ptr<RowStore>> RowStore::Open(RowStoreOptions options) {
  if (options.path.empty()) return absl::InvalidArgumentError("RowStore path is empty");
  if (Log2PartitionCount(options.num_partitions) < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_partitions ", options.num_partitions, " is not a power of two"));
  }
  if (!options.clock) return absl::InvalidArgumentError("RowStore clock is empty");
  auto impl = std::make_unique<Impl>(std::move(options));
  if (absl::Status st = impl->Open(); !st.ok()) return st;
  return std::unique_ptr<RowStore>(new RowStore(std::move(impl)));
}

RowStore::RowStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RowStore::~RowStore() = default;

absl::Status RowStore::EnsureView(const ViewSchema& schema) { return impl_->EnsureView(schema); }

absl::Status RowStore::Write(std::string_view view, std::span<const RowWrite> rows,
                             uint32_t expected_schema_version) {
  return impl_->Write(view, rows, expected_schema_version);
}

absl::StatusOr<std::vector<RowRead>> RowStore::MultiGet(std::string_view view,
                                                        std::span<const std::string> entity_keys,
                                                        std::span<const int> feature_indices,
                                                        uint32_t expected_schema_version) {
  return impl_->MultiGet(view, entity_keys, feature_indices, expected_schema_version);
}

absl::Status RowStore::MultiGetCells(std::string_view view,
                                     std::span<const std::string_view> entity_keys,
                                     std::span<const int> feature_indices,
                                     uint32_t expected_schema_version, RowVisitor visit) {
  return impl_->MultiGetCells(view, entity_keys, feature_indices, expected_schema_version, visit);
}

absl::StatusOr<std::unique_ptr<IngestSession>> RowStore::BeginIngest(
    std::string_view view, uint32_t expected_schema_version) {
  absl::StatusOr<IngestTarget> t = impl_->BeginIngest(view, expected_schema_version);
  if (!t.ok()) return t.status();
  return std::unique_ptr<IngestSession>(
      new IngestSession(std::make_unique<IngestSession::Impl>(*std::move(t))));
}

std::string RowStore::RowKey(std::string_view entity_key, uint32_t num_partitions) {
  std::string key;
  key.reserve(4 + entity_key.size());
  AppendRowKey(entity_key, num_partitions, &key);
  return key;
}

std::string_view RowStore::EntityKeyOfRowKey(std::string_view row_key) {
  return row_key.size() > 4 ? row_key.substr(4) : std::string_view();
}

IngestSession::IngestSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
IngestSession::~IngestSession() = default;

absl::Status IngestSession::Append(std::span<const RowWrite> rows) { return impl_->Append(rows); }

uint64_t IngestSession::rows_appended() const { return impl_->rows_appended(); }

absl::Status IngestSession::Commit() { return impl_->Commit(); }

absl::StatusOr<uint64_t> RowStore::CountRows(std::string_view view) {
  return impl_->CountRows(view);
}

absl::StatusOr<RawScan> RowStore::ScanRaw(std::string_view view, uint32_t partition_begin,
                                          uint32_t partition_end, std::string_view after,
                                          size_t max_bytes) {
  return impl_->ScanRaw(view, partition_begin, partition_end, after, max_bytes);
}

absl::Status RowStore::MergeRaw(std::string_view view, std::span<const RawRow> rows) {
  return impl_->MergeRaw(view, rows);
}

absl::Status RowStore::CompactView(std::string_view view) { return impl_->CompactView(view); }

std::vector<std::string> RowStore::ViewNames() const { return impl_->ViewNames(); }

rocksdb::DB* RowStore::rocks() const { return impl_->db(); }

std::vector<rocksdb::ColumnFamilyHandle*> RowStore::ViewFamilies() const {
  return impl_->ViewFamilies();
}

const RowStoreOptions& RowStore::options() const { return impl_->options(); }

}  // namespace quiver::storage
