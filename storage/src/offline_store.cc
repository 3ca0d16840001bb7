#include "quiver/storage/offline_store.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <exception>
#include <limits>
#include <map>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "duckdb_util.h"
#include "spdlog/spdlog.h"

namespace quiver::storage {
namespace {

using internal::Connection;
using internal::QuoteIdent;
using internal::QuoteLiteral;

constexpr char kTimestampType[] = "TIMESTAMP";
constexpr char kTimestampTzType[] = "TIMESTAMP WITH TIME ZONE";

std::optional<ValueType> ScalarTypeOf(std::string_view duckdb_type) {
  static const auto* kMap = new std::map<std::string, ValueType, std::less<>>{
      {"INTEGER", ValueType::kInt32},       {"BIGINT", ValueType::kInt64},
      {"FLOAT", ValueType::kFloat},         {"DOUBLE", ValueType::kDouble},
      {"BOOLEAN", ValueType::kBool},        {"VARCHAR", ValueType::kString},
      {"BLOB", ValueType::kBytes},          {kTimestampType, ValueType::kUnixTimestamp},
      {kTimestampTzType, ValueType::kUnixTimestamp},
  };
  auto it = kMap->find(duckdb_type);
  if (it == kMap->end()) return std::nullopt;
  return it->second;
}

std::optional<ValueType> QuiverTypeOf(std::string_view duckdb_type) {
  if (duckdb_type.ends_with("[]")) {
    std::optional<ValueType> e = ScalarTypeOf(duckdb_type.substr(0, duckdb_type.size() - 2));
    if (!e.has_value()) return std::nullopt;
    return ListOf(*e);
  }
  return ScalarTypeOf(duckdb_type);
}

bool IsTimestampType(std::string_view duckdb_type) {
  return duckdb_type == kTimestampType || duckdb_type == kTimestampTzType;
}

bool HasGlobChars(std::string_view path) {
  return path.find_first_of("*?[") != std::string_view::npos;
}

const ParquetColumn* FindColumn(const std::vector<ParquetColumn>& columns, std::string_view name) {
  for (const ParquetColumn& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

absl::Status MissingColumn(const std::string& file, std::string_view name,
                           const std::vector<ParquetColumn>& columns) {
  std::vector<std::string> names;
  for (const ParquetColumn& c : columns) names.push_back(c.name);
  return absl::InvalidArgumentError(absl::StrCat("column '", std::string(name), "' not found in ",
                                                 file, " (columns: ", absl::StrJoin(names, ", "),
                                                 ")"));
}

// A TIMESTAMP literal for `us`, cast to the column's own type so the filter is
// pushed into the Parquet reader (row-group pruning by statistics). The
// session time zone is UTC, so the TIMESTAMPTZ cast keeps the instant.
std::string TimestampLiteral(int64_t us, std::string_view column_type) {
  std::string lit = absl::StrCat("make_timestamp(CAST(", us, " AS BIGINT))");
  if (column_type == kTimestampTzType) lit = absl::StrCat("CAST(", lit, " AS TIMESTAMPTZ)");
  return lit;
}

// DuckDB registers a scalar function in its system catalog, shared by every
// connection of the database and never dropped, so ScanLatest's order key is
// one function per database, quiver_order_key(scan_id UBIGINT, keys ANY...),
// whose constant first argument picks the running scan in OrderKeyRegistry.
constexpr char kOrderKeyFunction[] = "quiver_order_key";

// One ordered scan, as the order key function sees it.
class OrderKeyScan {
 public:
  explicit OrderKeyScan(const LatestQuery& q) : order_key_(&q.order_key), keys_(q.join_keys) {}

  // Sets output row r to order_key(the key values of input row r); input
  // columns 1.. are the join keys. Runs on DuckDB worker threads.
  absl::Status Fill(duckdb_data_chunk input, duckdb_vector output) const {
    if (duckdb_data_chunk_get_column_count(input) != keys_.size() + 1) {
      return absl::InternalError(absl::StrCat(kOrderKeyFunction, " got ",
                                              duckdb_data_chunk_get_column_count(input) - 1,
                                              " keys, expected ", keys_.size()));
    }
    std::vector<duckdb_vector> vecs;
    for (size_t i = 0; i < keys_.size(); ++i) {
      vecs.push_back(duckdb_data_chunk_get_vector(input, i + 1));
      absl::Status st = internal::CheckVectorType(vecs.back(), keys_[i].type, keys_[i].name);
      if (!st.ok()) return st;
    }
    std::vector<Value> values(keys_.size());
    const idx_t n = duckdb_data_chunk_get_size(input);
    for (idx_t r = 0; r < n; ++r) {
      for (size_t i = 0; i < keys_.size(); ++i) {
        absl::StatusOr<Value> v = internal::ReadValue(vecs[i], r, keys_[i].type, keys_[i].name);
        if (!v.ok()) return v.status();
        values[i] = *std::move(v);
      }
      absl::StatusOr<std::string> key = (*order_key_)(values);
      if (!key.ok()) return key.status();
      duckdb_vector_assign_string_element_len(output, r, key->data(), key->size());
    }
    return absl::OkStatus();
  }

  // Keeps the first error, the one the scan reports.
  void RecordError(const absl::Status& st) {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.ok()) error_ = st;
  }
  absl::Status error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }

 private:
  const std::function<absl::StatusOr<std::string>(std::span<const Value>)>* order_key_;
  std::vector<NamedType> keys_;
  mutable std::mutex mu_;
  absl::Status error_;
};

// The ordered scans running on one database, by id. Thread-safe.
class OrderKeyRegistry {
 public:
  // Registers kOrderKeyFunction on the database of `conn`, calling back into
  // this registry (which must outlive the database). Errors: kInternal.
  absl::Status Install(const Connection& conn) {
    duckdb_scalar_function f = duckdb_create_scalar_function();
    duckdb_scalar_function_set_name(f, kOrderKeyFunction);
    duckdb_logical_type id_type = duckdb_create_logical_type(DUCKDB_TYPE_UBIGINT);
    duckdb_logical_type any_type = duckdb_create_logical_type(DUCKDB_TYPE_ANY);
    duckdb_logical_type blob_type = duckdb_create_logical_type(DUCKDB_TYPE_BLOB);
    duckdb_scalar_function_add_parameter(f, id_type);
    duckdb_scalar_function_set_varargs(f, any_type);
    duckdb_scalar_function_set_return_type(f, blob_type);
    duckdb_scalar_function_set_function(f, &OrderKeyRegistry::Evaluate);
    duckdb_scalar_function_set_extra_info(f, this, nullptr);
    const duckdb_state state = duckdb_register_scalar_function(conn.get(), f);
    duckdb_destroy_logical_type(&id_type);
    duckdb_destroy_logical_type(&any_type);
    duckdb_destroy_logical_type(&blob_type);
    duckdb_destroy_scalar_function(&f);
    if (state == DuckDBError) {
      return absl::InternalError(absl::StrCat("DuckDB: cannot register ", kOrderKeyFunction));
    }
    return absl::OkStatus();
  }

  // Removes the scan from the registry when destroyed.
  class Registration {
   public:
    Registration(OrderKeyRegistry* registry, uint64_t id) : registry_(registry), id_(id) {}
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    ~Registration() {
      std::lock_guard<std::mutex> lock(registry_->mu_);
      registry_->scans_.erase(id_);
    }
    uint64_t id() const { return id_; }

   private:
    OrderKeyRegistry* registry_;
    uint64_t id_;
  };

  std::unique_ptr<Registration> Add(std::shared_ptr<OrderKeyScan> scan) {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t id = next_id_++;
    scans_.emplace(id, std::move(scan));
    return std::make_unique<Registration>(this, id);
  }

 private:
  std::shared_ptr<OrderKeyScan> Find(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = scans_.find(id);
    return it == scans_.end() ? nullptr : it->second;
  }

  // The scalar function: one call per chunk, from any DuckDB thread. Never
  // throws into DuckDB; an error (the order key's own, or an exception) is
  // kept for the scan and raised in DuckDB, which fails the query.
  static void Evaluate(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
    auto* self = static_cast<OrderKeyRegistry*>(duckdb_scalar_function_get_extra_info(info));
    std::shared_ptr<OrderKeyScan> scan;
    absl::Status st;
    try {
      if (duckdb_data_chunk_get_size(input) == 0) return;
      // DuckDB flattens the arguments before the call; the id is constant.
      duckdb_vector ids = duckdb_data_chunk_get_vector(input, 0);
      uint64_t* validity = duckdb_vector_get_validity(ids);
      if (validity == nullptr || duckdb_validity_row_is_valid(validity, 0)) {
        scan = self->Find(static_cast<uint64_t*>(duckdb_vector_get_data(ids))[0]);
      }
      st = scan == nullptr ? absl::InvalidArgumentError(absl::StrCat(
                                 kOrderKeyFunction, " is internal to ScanLatest"))
                           : scan->Fill(input, output);
    } catch (const std::exception& e) {
      st = absl::InternalError(absl::StrCat("order_key threw: ", e.what()));
    } catch (...) {
      st = absl::InternalError("order_key threw a non-standard exception");
    }
    if (st.ok()) return;
    if (scan != nullptr) scan->RecordError(st);
    duckdb_scalar_function_set_error(info, std::string(st.message()).c_str());
  }

  std::mutex mu_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::shared_ptr<OrderKeyScan>> scans_;
};

}  // namespace

class OfflineStore::Impl {
 public:
  ~Impl() {
    if (db_ != nullptr) duckdb_close(&db_);
  }

  absl::Status Open(int threads, const std::string& memory_limit,
                    const std::string& temp_directory) {
    // Result order is never relied on: ScanLatest sorts when it must.
    absl::StatusOr<duckdb_database> db = internal::OpenDatabase(
        {.threads = threads, .memory_limit = memory_limit, .temp_directory = temp_directory,
         .preserve_insertion_order = false});
    if (!db.ok()) return db.status();
    db_ = *db;
    absl::StatusOr<Connection> conn = Connection::Open(db_);
    if (!conn.ok()) return conn.status();
    return order_keys_.Install(*conn);
  }

  absl::StatusOr<Connection> Connect() {
    absl::StatusOr<Connection> conn = Connection::Open(db_);
    if (!conn.ok()) return conn.status();
    // Timestamps are UTC everywhere in Quiver (TIMESTAMPTZ casts, statistics
    // parsing). Without ICU the setting does not exist, and DuckDB's casts are
    // UTC anyway, so a failure here is harmless.
    (void)conn->QueryText("SET TimeZone = 'UTC'");
    return conn;
  }

  absl::StatusOr<std::vector<std::string>> ExpandPath(const std::string& path) {
    std::vector<std::string> files;
    std::error_code ec;
    if (HasGlobChars(path)) {
      absl::StatusOr<Connection> conn = Connect();
      if (!conn.ok()) return conn.status();
      auto rows = conn->QueryText(absl::StrCat("SELECT file FROM glob(", QuoteLiteral(path), ")"));
      if (!rows.ok()) return rows.status();
      for (const auto& row : *rows) {
        if (row[0].has_value()) files.push_back(*row[0]);
      }
    } else if (std::filesystem::is_directory(path, ec)) {
      for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
           !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec) && it->path().extension() == ".parquet") {
          files.push_back(it->path().string());
        }
      }
      if (ec) return absl::InternalError(absl::StrCat("listing ", path, ": ", ec.message()));
    } else if (std::filesystem::is_regular_file(path, ec)) {
      files.push_back(path);
    }
    if (files.empty()) return absl::NotFoundError(absl::StrCat("no Parquet file matches ", path));
    std::sort(files.begin(), files.end());
    return files;
  }

  absl::StatusOr<std::vector<ParquetColumn>> Describe(const std::string& file) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) {
      return absl::NotFoundError(absl::StrCat("Parquet file ", file, " does not exist"));
    }
    absl::StatusOr<Connection> conn = Connect();
    if (!conn.ok()) return conn.status();
    auto rows = conn->QueryText(
        absl::StrCat("DESCRIBE SELECT * FROM read_parquet(", QuoteLiteral(file), ")"));
    if (!rows.ok()) {
      return absl::Status(rows.status().code(),
                          absl::StrCat("reading ", file, ": ", rows.status().message()));
    }
    std::vector<ParquetColumn> columns;
    for (const auto& row : *rows) {
      if (row.size() < 2 || !row[0].has_value() || !row[1].has_value()) continue;
      columns.push_back(ParquetColumn{*row[0], *row[1], QuiverTypeOf(*row[1])});
    }
    return columns;
  }

  absl::Status Validate(const std::vector<std::string>& files, const std::string& timestamp_field,
                        const std::string& created_timestamp_column,
                        std::span<const NamedType> columns) {
    for (const std::string& file : files) {
      absl::StatusOr<std::vector<ParquetColumn>> found = Describe(file);
      if (!found.ok()) return found.status();
      absl::Status st =
          CheckColumns(file, *found, timestamp_field, created_timestamp_column, columns);
      if (!st.ok()) return st;
    }
    return absl::OkStatus();
  }

  // Validate for one file whose columns are known.
  static absl::Status CheckColumns(const std::string& file, const std::vector<ParquetColumn>& found,
                                   const std::string& timestamp_field,
                                   const std::string& created_timestamp_column,
                                   std::span<const NamedType> columns) {
    auto check_ts = [&](const std::string& name, const char* role) -> absl::Status {
      const ParquetColumn* c = FindColumn(found, name);
      if (c == nullptr) return MissingColumn(file, name, found);
      if (!IsTimestampType(c->duckdb_type)) {
        return absl::InvalidArgumentError(absl::StrCat(role, " '", name, "' of ", file, " is ",
                                                       c->duckdb_type, " but must be TIMESTAMP"));
      }
      return absl::OkStatus();
    };
    if (absl::Status st = check_ts(timestamp_field, "timestamp field"); !st.ok()) return st;
    if (!created_timestamp_column.empty()) {
      absl::Status st = check_ts(created_timestamp_column, "created timestamp column");
      if (!st.ok()) return st;
    }
    for (const NamedType& want : columns) {
      const ParquetColumn* c = FindColumn(found, want.name);
      if (c == nullptr) return MissingColumn(file, want.name, found);
      if (c->type != want.type) {
        return absl::InvalidArgumentError(absl::StrCat("column '", want.name, "' of ", file,
                                                       " is ", c->duckdb_type,
                                                       " but feature view schema says ",
                                                       TypeName(want.type)));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<RowGroupInfo>> RowGroups(const std::string& file,
                                                      const std::string& timestamp_field) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) {
      return absl::NotFoundError(absl::StrCat("Parquet file ", file, " does not exist"));
    }
    absl::StatusOr<Connection> conn = Connect();
    if (!conn.ok()) return conn.status();
    // Statistics are text in parquet_metadata; DuckDB itself parses them back
    // (the newer *_value columns first, the legacy min/max otherwise).
    auto ts_stat = [&](const char* which) {
      return absl::StrCat("max(CASE WHEN path_in_schema = ", QuoteLiteral(timestamp_field),
                          " THEN epoch_us(TRY_CAST(coalesce(stats_", which, "_value, stats_", which,
                          ") AS TIMESTAMPTZ)) END)");
    };
    const std::string sql = absl::StrCat(
        "SELECT row_group_id, max(row_group_num_rows), ", ts_stat("min"), ", ", ts_stat("max"),
        " FROM parquet_metadata(", QuoteLiteral(file), ") GROUP BY row_group_id ORDER BY row_group_id");
    auto rows = conn->QueryText(sql);
    if (!rows.ok()) {
      return absl::Status(rows.status().code(),
                          absl::StrCat("reading metadata of ", file, ": ", rows.status().message()));
    }
    std::vector<RowGroupInfo> groups;
    uint64_t begin = 0;
    for (const auto& row : *rows) {
      RowGroupInfo g;
      g.file = file;
      const uint64_t n = row[1].has_value() ? std::stoull(*row[1]) : 0;
      g.row_begin = begin;
      g.row_end = begin + n;
      begin = g.row_end;
      if (row[2].has_value() && row[3].has_value()) {
        g.has_stats = true;
        g.ts_min_us = std::stoll(*row[2]);
        g.ts_max_us = std::stoll(*row[3]);
      }
      groups.push_back(std::move(g));
    }
    return groups;
  }

  absl::Status ScanLatest(const LatestQuery& q, size_t batch_rows,
                          const std::function<absl::Status(std::vector<OfflineRow>&)>& sink) {
    if (q.join_keys.empty()) return absl::InvalidArgumentError("ScanLatest needs join keys");
    if (batch_rows == 0) batch_rows = 1024;
    absl::StatusOr<std::vector<ParquetColumn>> described = Describe(q.file);
    if (!described.ok()) return described.status();
    std::vector<NamedType> typed(q.join_keys.begin(), q.join_keys.end());
    typed.insert(typed.end(), q.features.begin(), q.features.end());
    if (absl::Status st = CheckColumns(q.file, *described, q.timestamp_field,
                                       q.created_timestamp_column, typed);
        !st.ok()) {
      return st;
    }
    const std::string ts_type = FindColumn(*described, q.timestamp_field)->duckdb_type;
    const bool has_created = !q.created_timestamp_column.empty();

    // Latest rows by a hash aggregate and a semi join, or by a window when
    // those outgrow DuckDB's memory cap (see latest_sql): the window sorts
    // every source row, the aggregate keeps one small entry per entity key
    // (at 10M source rows 2.3× faster, measured in bench/README.md).
    // `version` packs (event ts µs, created ts µs) into one HUGEINT, ordered
    // like the pair; a null created timestamp counts as 0, as in storage's
    // last-writer-wins order (RowWins), so every row tied with the latest in
    // storage's terms is returned and storage picks one.
    std::vector<std::string> select, key_cols, inner_keys;
    for (const NamedType& k : q.join_keys) key_cols.push_back(QuoteIdent(k.name));
    select = key_cols;
    select.push_back(QuoteIdent(q.timestamp_field));
    if (has_created) select.push_back(QuoteIdent(q.created_timestamp_column));
    for (const NamedType& f : q.features) select.push_back(QuoteIdent(f.name));
    std::vector<std::string> where;
    where.push_back(absl::StrCat("file_row_number >= ", q.row_begin));
    if (q.row_end <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      where.push_back(absl::StrCat("file_row_number < ", q.row_end));
    }
    std::string in_window = absl::StrCat(QuoteIdent(q.timestamp_field), " >= ",
                                         TimestampLiteral(q.start_us, ts_type));
    if (q.created_after_us.has_value()) {
      if (!has_created) {
        return absl::InvalidArgumentError(
            absl::StrCat("scanning ", q.file, ": late rows need a created timestamp column"));
      }
      const std::string& created_type =
          FindColumn(*described, q.created_timestamp_column)->duckdb_type;
      in_window = absl::StrCat("(", in_window, " OR ", QuoteIdent(q.created_timestamp_column),
                               " >= ", TimestampLiteral(*q.created_after_us, created_type), ")");
    }
    where.push_back(in_window);
    where.push_back(absl::StrCat(QuoteIdent(q.timestamp_field),
                                 " < ", TimestampLiteral(q.end_us, ts_type)));
    for (const std::string& k : key_cols) where.push_back(k + " IS NOT NULL");
    if (q.buckets > 1) {
      where.push_back(absl::StrCat("hash(", absl::StrJoin(key_cols, ", "), ") % ", q.buckets,
                                   " = ", q.bucket));
    }
    // Columns get names of their own, so no reference can be ambiguous (a
    // feature named like a key).
    std::vector<std::string> inner = select, outer;
    for (size_t i = 0; i < inner.size(); ++i) {
      absl::StrAppend(&inner[i], " AS __quiver_c", i);
      outer.push_back(absl::StrCat("s.__quiver_c", i));
      if (i < key_cols.size()) inner_keys.push_back(absl::StrCat("__quiver_c", i));
    }
    std::string version = absl::StrCat("epoch_us(", QuoteIdent(q.timestamp_field), ")::HUGEINT");
    if (has_created) {
      version = absl::StrCat(version, " * 18446744073709551616 + coalesce(epoch_us(",
                             QuoteIdent(q.created_timestamp_column), "), 0)");
    }
    const std::string source = absl::StrCat(
        "FROM read_parquet(", QuoteLiteral(q.file), ", file_row_number = true) WHERE ",
        absl::StrJoin(where, " AND "));
    const std::string keys = absl::StrJoin(inner_keys, ", ");
    const std::string inner_sql = absl::StrCat("SELECT ", absl::StrJoin(inner, ", "), ", ",
                                               version, " AS __quiver_v ", source);
    // The semi join's hash tables hold every entity key of the task and
    // cannot spill (DuckDB 1.4), so a task with more keys than the memory cap
    // holds fails with kResourceExhausted; the window sorts every source row
    // (slower) but spills. Both keep the rows of rank 1 by `version`.
    // The aggregate's scan reads just the key and timestamp columns.
    auto latest_sql = [&](bool window) {
      if (window) {
        return absl::StrCat("SELECT ", absl::StrJoin(outer, ", "), " FROM (", inner_sql,
                            ") s QUALIFY rank() OVER (PARTITION BY ", keys,
                            " ORDER BY __quiver_v DESC) = 1");
      }
      return absl::StrCat(
          "SELECT ", absl::StrJoin(outer, ", "), " FROM (", inner_sql, ") s SEMI JOIN (SELECT ",
          keys, ", max(__quiver_v) AS __quiver_v FROM (SELECT ",
          absl::StrJoin(std::vector<std::string>(inner.begin(), inner.begin() + key_cols.size()),
                        ", "),
          ", ", version, " AS __quiver_v ", source, ") GROUP BY ", keys, ") latest USING (",
          keys, ", __quiver_v)");
    };
    const bool ordered = static_cast<bool>(q.order_key);
    std::shared_ptr<OrderKeyScan> order_scan;
    std::unique_ptr<OrderKeyRegistry::Registration> registration;  // outlives the query
    std::string order_args;
    if (ordered) {
      order_scan = std::make_shared<OrderKeyScan>(q);
      registration = order_keys_.Add(order_scan);
      order_args = absl::StrCat(registration->id(), "::UBIGINT, ", keys);
    }
    // Computed and sorted only for the rows the query keeps.
    auto with_order = [&](std::string sql) {
      if (!ordered) return sql;
      return absl::StrCat("SELECT *, ", kOrderKeyFunction, "(", order_args, ") FROM (", sql,
                          ") ORDER BY ", select.size() + 1);
    };
    // A failed query: the order key's own error if it raised one.
    auto failed = [&](const absl::Status& st) {
      if (order_scan != nullptr) {
        if (absl::Status err = order_scan->error(); !err.ok()) {
          return absl::Status(err.code(), absl::StrCat("scanning ", q.file,
                                                       ": order_key: ", err.message()));
        }
      }
      return absl::Status(st.code(), absl::StrCat("scanning ", q.file, ": ", st.message()));
    };

    auto run = [&](const std::string& sql, uint64_t* emitted) -> absl::Status {
      absl::StatusOr<Connection> conn = Connect();
      if (!conn.ok()) return conn.status();
      internal::StreamingQuery stream;
      if (absl::Status st = stream.Start(*conn, sql, absl::StatusCode::kInternal); !st.ok()) {
        return failed(st);
      }
      // Column layout: keys, ts, [created], features.
      const idx_t ts_col = q.join_keys.size();
      const idx_t first_feature = ts_col + 1 + (has_created ? 1 : 0);
      for (idx_t i = 0; i < q.join_keys.size(); ++i) {
        absl::Status st = internal::CheckColumnType(stream.result(), i, q.join_keys[i].type,
                                                    q.join_keys[i].name);
        if (!st.ok()) return st;
      }
      for (idx_t c = ts_col; c < first_feature; ++c) {
        absl::Status st = internal::CheckColumnType(stream.result(), c, ValueType::kUnixTimestamp,
                                                    c == ts_col ? q.timestamp_field
                                                                : q.created_timestamp_column);
        if (!st.ok()) return st;
      }
      for (idx_t i = 0; i < q.features.size(); ++i) {
        absl::Status st = internal::CheckColumnType(stream.result(), first_feature + i,
                                                    q.features[i].type, q.features[i].name);
        if (!st.ok()) return st;
      }
      const idx_t order_col = first_feature + q.features.size();
      if (ordered) {
        absl::Status st = internal::CheckColumnType(stream.result(), order_col, ValueType::kBytes,
                                                    kOrderKeyFunction);
        if (!st.ok()) return st;
      }

      // With packed values and an order key the key values are not needed.
      const size_t key_values = q.pack_values && ordered ? 0 : q.join_keys.size();
      std::vector<OfflineRow> batch;
      batch.reserve(std::min<size_t>(batch_rows, 4096));
      while (true) {
        absl::StatusOr<duckdb_data_chunk> chunk = stream.Next(absl::StatusCode::kInternal);
        if (!chunk.ok()) return failed(chunk.status());
        if (*chunk == nullptr) break;
        internal::ChunkDeleter deleter{*chunk};
        const idx_t n = duckdb_data_chunk_get_size(*chunk);
        std::vector<duckdb_vector> vecs;
        for (idx_t c = 0; c < order_col + (ordered ? 1 : 0); ++c) {
          vecs.push_back(duckdb_data_chunk_get_vector(*chunk, c));
        }
        for (idx_t r = 0; r < n; ++r) {
          OfflineRow row;
          for (idx_t i = 0; i < key_values; ++i) {
            absl::StatusOr<Value> v =
                internal::ReadValue(vecs[i], r, q.join_keys[i].type, q.join_keys[i].name);
            if (!v.ok()) return v.status();
            row.join_key_values.push_back(*std::move(v));
          }
          row.event_ts_us = internal::ReadTimestamp(vecs[ts_col], r).value_or(0);
          if (has_created) row.created_ts_us = internal::ReadTimestamp(vecs[ts_col + 1], r).value_or(0);
          for (idx_t i = 0; i < q.features.size(); ++i) {
            if (q.pack_values) {
              absl::Status st = internal::AppendPackedCell(vecs[first_feature + i], r,
                                                           q.features[i].type, q.features[i].name,
                                                           &row.packed_values);
              if (!st.ok()) return st;
              continue;
            }
            absl::StatusOr<Value> v = internal::ReadValue(vecs[first_feature + i], r,
                                                          q.features[i].type, q.features[i].name);
            if (!v.ok()) return v.status();
            row.values.push_back(*std::move(v));
          }
          if (ordered) {
            absl::StatusOr<Value> v =
                internal::ReadValue(vecs[order_col], r, ValueType::kBytes, kOrderKeyFunction);
            if (!v.ok()) return v.status();
            if (auto* bytes = std::get_if<std::string>(&v->data)) row.order_key = std::move(*bytes);
          }
          batch.push_back(std::move(row));
          if (batch.size() >= batch_rows) {
            *emitted += batch.size();
            if (absl::Status st = sink(batch); !st.ok()) return st;
            batch.clear();
          }
        }
      }
      if (!batch.empty()) {
        *emitted += batch.size();
        return sink(batch);
      }
      return absl::OkStatus();
    };
    uint64_t emitted = 0;
    absl::Status st = run(with_order(latest_sql(false)), &emitted);
    if (st.code() == absl::StatusCode::kResourceExhausted && emitted == 0) {
      spdlog::info("{}: the latest-row hash join outgrew DuckDB's memory cap; sorting instead",
                   q.file);
      ++sort_fallbacks_;
      st = run(with_order(latest_sql(true)), &emitted);
    }
    return st;
  }

  uint64_t sort_fallbacks() const { return sort_fallbacks_.load(); }

  absl::StatusOr<std::string> QueryScalar(const std::string& sql) {
    absl::StatusOr<Connection> conn = Connect();
    if (!conn.ok()) return conn.status();
    auto rows = conn->QueryText(sql);
    if (!rows.ok()) return absl::InvalidArgumentError(rows.status().message());
    if (rows->empty() || (*rows)[0].empty() || !(*rows)[0][0].has_value()) return std::string();
    return *(*rows)[0][0];
  }

 private:
  std::atomic<uint64_t> sort_fallbacks_{0};
  // Outlives the database whose function calls into it (closed in ~Impl).
  OrderKeyRegistry order_keys_;
  duckdb_database db_ = nullptr;
};

absl::StatusOr<std::unique_ptr<OfflineStore>> OfflineStore::Open(int threads,
                                                                 std::string memory_limit,
                                                                 std::string temp_directory) {
  auto impl = std::make_unique<Impl>();
  if (absl::Status st = impl->Open(threads, memory_limit, temp_directory); !st.ok()) return st;
  return std::unique_ptr<OfflineStore>(new OfflineStore(std::move(impl)));
}

OfflineStore::OfflineStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OfflineStore::~OfflineStore() = default;

absl::StatusOr<std::vector<std::string>> OfflineStore::ExpandPath(const std::string& path) {
  return impl_->ExpandPath(path);
}
absl::StatusOr<std::vector<ParquetColumn>> OfflineStore::Describe(const std::string& file) {
  return impl_->Describe(file);
}
absl::Status OfflineStore::Validate(const std::vector<std::string>& files,
                                    const std::string& timestamp_field,
                                    const std::string& created_timestamp_column,
                                    std::span<const NamedType> columns) {
  return impl_->Validate(files, timestamp_field, created_timestamp_column, columns);
}
absl::StatusOr<std::vector<RowGroupInfo>> OfflineStore::RowGroups(
    const std::string& file, const std::string& timestamp_field) {
  return impl_->RowGroups(file, timestamp_field);
}
absl::Status OfflineStore::ScanLatest(
    const LatestQuery& query, size_t batch_rows,
    const std::function<absl::Status(std::vector<OfflineRow>&)>& sink) {
  return impl_->ScanLatest(query, batch_rows, sink);
}
uint64_t OfflineStore::sort_fallbacks() const { return impl_->sort_fallbacks(); }
absl::StatusOr<std::string> OfflineStore::QueryScalar(const std::string& sql) {
  return impl_->QueryScalar(sql);
}

absl::StatusOr<std::optional<int64_t>> OfflineStore::MaxTimestamp(
    const std::vector<std::string>& files, const std::string& column) {
  if (files.empty()) return std::optional<int64_t>();
  std::vector<std::string> quoted;
  for (const std::string& f : files) quoted.push_back(QuoteLiteral(f));
  absl::StatusOr<std::string> max = impl_->QueryScalar(
      absl::StrCat("SELECT max(epoch_us(", QuoteIdent(column), ")) FROM read_parquet([",
                   absl::StrJoin(quoted, ", "), "])"));
  if (!max.ok()) return max.status();
  if (max->empty()) return std::optional<int64_t>();
  int64_t us = 0;
  if (!absl::SimpleAtoi(*max, &us)) {
    return absl::InternalError(absl::StrCat("max(", column, ") is not a timestamp: '", *max, "'"));
  }
  return us;
}

}  // namespace quiver::storage
