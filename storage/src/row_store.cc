#include "quiver/storage/row_store.h"

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "quiver/keys/entity_key.h"
#include "rocksdb/cache.h"
#include "rocksdb/compaction_filter.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/merge_operator.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "row_codec.h"

namespace quiver::storage {
namespace {

using internal::DecodeRowValue;
using internal::EncodeRow;
using internal::IsExpired;
using internal::ParseRowHeader;
using internal::RowHeader;
using internal::RowWins;

constexpr char kViewCfPrefix[] = "fv:";
// Metadata lives in the default column family, which holds nothing else.
constexpr char kViewMetaPrefix[] = "quiver/view/";
constexpr char kPartitionsKey[] = "quiver/num_partitions";
constexpr char kViewMetaMagic[] = "QVS1";
constexpr size_t kMaxFeatures = 65535;  // u16 count in the row format

absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string msg = absl::StrCat(std::string(what), ": ", s.ToString());
  if (s.IsNoSpace() || s.IsMemoryLimit()) return absl::ResourceExhaustedError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) return absl::UnavailableError(msg);
  return absl::InternalError(msg);
}

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

std::string RowKey(std::string_view entity_key, uint32_t num_partitions) {
  const uint32_t p = PartitionOf(entity_key, num_partitions);
  std::string key;
  key.reserve(4 + entity_key.size());
  for (int shift = 24; shift >= 0; shift -= 8) key.push_back(static_cast<char>((p >> shift) & 0xff));
  key.append(entity_key);
  return key;
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

}  // namespace

int64_t SystemNowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class RowStore::Impl {
 public:
  struct View {
    rocksdb::ColumnFamilyHandle* cf = nullptr;
    std::shared_ptr<const ViewSchema> schema;  // null: column family without metadata yet
    TtlCompactionFilter* filter = nullptr;
  };

  explicit Impl(RowStoreOptions options) : options_(std::move(options)) {
    merge_op_ = std::make_shared<LwwMergeOperator>();
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = rocksdb::NewLRUCache(options_.block_cache_bytes);
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    table.cache_index_and_filter_blocks = true;
    table.pin_l0_filter_and_index_blocks_in_cache = true;
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
    auto it = views_.find(std::string(view));
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
    for (size_t i = 0; i < rows.size(); ++i) {
      if (absl::Status st = CheckRow(schema, rows[i], i); !st.ok()) return st;
    }
    if (rows.empty()) return absl::OkStatus();
    rocksdb::WriteBatch batch;
    for (const RowWrite& row : rows) {
      const std::string value =
          EncodeRow(row.event_ts_us, row.created_ts_us, schema.schema_version, row.values);
      rocksdb::Status s =
          batch.Merge(v->cf, RowKey(row.entity_key, options_.num_partitions), value);
      if (!s.ok()) return FromRocks(s, "building write batch");
    }
    return FromRocks(db_->Write(rocksdb::WriteOptions(), &batch),
                     absl::StrCat("writing to view ", std::string(view)));
  }

  absl::StatusOr<std::vector<RowRead>> MultiGet(std::string_view view,
                                                std::span<const std::string> entity_keys,
                                                std::span<const int> feature_indices,
                                                uint32_t expected_schema_version) {
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
    const size_t n = entity_keys.size();
    std::vector<std::string> keys(n);
    std::vector<rocksdb::Slice> slices(n);
    for (size_t i = 0; i < n; ++i) {
      keys[i] = RowKey(entity_keys[i], options_.num_partitions);
      slices[i] = keys[i];
    }
    std::vector<rocksdb::PinnableSlice> values(n);
    std::vector<rocksdb::Status> statuses(n);
    if (n > 0) {
      db_->MultiGet(rocksdb::ReadOptions(), v->cf, n, slices.data(), values.data(),
                    statuses.data());
    }
    const int64_t now = options_.clock();
    std::vector<RowRead> out(n);
    for (size_t i = 0; i < n; ++i) {
      if (statuses[i].IsNotFound()) continue;
      if (!statuses[i].ok()) return FromRocks(statuses[i], "reading view " + schema.name);
      const std::string_view row = values[i].ToStringView();
      const std::optional<RowHeader> h = ParseRowHeader(row);
      if (!h.has_value()) {
        return absl::DataLossError(absl::StrCat("corrupt row in view ", schema.name));
      }
      if (h->schema_version != schema.schema_version) continue;
      if (h->num_values != num_features) {
        return absl::DataLossError(absl::StrCat("row in view ", schema.name, " has ", h->num_values,
                                                " values, schema has ", num_features));
      }
      RowRead& r = out[i];
      r.event_ts_us = h->event_ts_us;
      r.created_ts_us = h->created_ts_us;
      if (IsExpired(h->event_ts_us, schema.ttl.count(), now)) {
        r.status = RowStatus::kOutsideMaxAge;
        continue;
      }
      r.status = RowStatus::kPresent;
      r.values.reserve(feature_indices.size());
      for (int idx : feature_indices) {
        absl::StatusOr<Value> value = DecodeRowValue(row, *h, idx, schema.feature_types[idx]);
        if (!value.ok()) {
          return absl::DataLossError(
              absl::StrCat("view ", schema.name, ": ", value.status().message()));
        }
        r.values.push_back(*std::move(value));
      }
    }
    return out;
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

  absl::Status CompactView(std::string_view view) {
    absl::StatusOr<View> v = Lookup(view);
    if (!v.ok()) return v.status();
    rocksdb::CompactRangeOptions opts;
    // Rewrite the bottommost files too, so every row passes the TTL filter.
    opts.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    return FromRocks(db_->CompactRange(opts, v->cf, nullptr, nullptr),
                     "compacting view " + std::string(view));
  }

 private:
  RowStoreOptions options_;
  std::shared_ptr<rocksdb::MergeOperator> merge_op_;
  std::shared_ptr<rocksdb::TableFactory> table_factory_;
  std::vector<std::unique_ptr<TtlCompactionFilter>> filters_;  // outlive db_
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // guarded by mu_ after Open
  rocksdb::ColumnFamilyHandle* default_cf_ = nullptr;
  std::mutex ensure_mu_;  // serializes EnsureView
  mutable std::shared_mutex mu_;
  std::map<std::string, View> views_;  // guarded by mu_
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

absl::StatusOr<uint64_t> RowStore::CountRows(std::string_view view) {
  return impl_->CountRows(view);
}

absl::Status RowStore::CompactView(std::string_view view) { return impl_->CompactView(view); }

}  // namespace quiver::storage
