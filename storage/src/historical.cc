// HistoricalStore: the point-in-time join (historical.h) as DuckDB SQL, and
// the online store's tie rule for exact (event, created) ties.
#include "quiver/storage/historical.h"

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "duckdb_util.h"
#include "row_codec.h"

namespace quiver::storage {
namespace {

using internal::Connection;
using internal::QuoteIdent;
using internal::QuoteLiteral;

constexpr char kEventTimestamp[] = "event_timestamp";

// The DuckDB type of each scalar Quiver type, by name (for casts) and by id
// (for the on-demand functions' signatures).
struct DuckScalar {
  ValueType type;
  const char* name;
  duckdb_type id;
};
constexpr DuckScalar kDuckScalars[] = {
    {ValueType::kInt32, "INTEGER", DUCKDB_TYPE_INTEGER},
    {ValueType::kInt64, "BIGINT", DUCKDB_TYPE_BIGINT},
    {ValueType::kFloat, "FLOAT", DUCKDB_TYPE_FLOAT},
    {ValueType::kDouble, "DOUBLE", DUCKDB_TYPE_DOUBLE},
    {ValueType::kBool, "BOOLEAN", DUCKDB_TYPE_BOOLEAN},
    {ValueType::kString, "VARCHAR", DUCKDB_TYPE_VARCHAR},
    {ValueType::kBytes, "BLOB", DUCKDB_TYPE_BLOB},
    {ValueType::kUnixTimestamp, "TIMESTAMP", DUCKDB_TYPE_TIMESTAMP},
};

// Errors: kInvalidArgument for a non-scalar type (a join key or request
// field never has one: the registry checks them).
absl::StatusOr<DuckScalar> DuckTypeOf(ValueType t) {
  for (const DuckScalar& d : kDuckScalars) {
    if (d.type == t) return d;
  }
  return absl::InvalidArgumentError("a join key or request field must have a scalar type");
}

// Parquet files start and end with "PAR1".
bool IsParquet(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::memcmp(magic, "PAR1", 4) == 0;
}

std::string FileList(const std::vector<std::string>& files) {
  std::vector<std::string> quoted;
  quoted.reserve(files.size());
  for (const std::string& f : files) quoted.push_back(QuoteLiteral(f));
  return absl::StrCat("[", absl::StrJoin(quoted, ", "), "]");
}

absl::Status Exec(Connection& conn, const std::string& sql) {
  absl::StatusOr<std::vector<std::vector<std::optional<std::string>>>> r = conn.QueryText(sql);
  return r.status();
}

// The first cell of the first row, or nullopt (no row, or NULL).
absl::StatusOr<std::optional<std::string>> Scalar(Connection& conn, const std::string& sql) {
  auto rows = conn.QueryText(sql);
  if (!rows.ok()) return rows.status();
  if (rows->empty() || (*rows)[0].empty()) return std::optional<std::string>();
  return (*rows)[0][0];
}

// TRY_CAST(<prefix>"column" AS <t's DuckDB type>): NULL where a value does
// not cast. `t` is a scalar type (DuckTypeOf).
std::string CastExpression(const std::string& column, ValueType t, const char* prefix = "") {
  absl::StatusOr<DuckScalar> d = DuckTypeOf(t);
  return absl::StrCat("TRY_CAST(", prefix, QuoteIdent(column), " AS ", d.ok() ? d->name : "VARCHAR",
                      ")");
}

duckdb_type DuckTypeId(ValueType t) {
  absl::StatusOr<DuckScalar> d = DuckTypeOf(t);
  return d.ok() ? d->id : DUCKDB_TYPE_VARCHAR;
}

// An on-demand feature as a DuckDB scalar function: DuckDB owns this copy
// (deleted with the function) and calls Call from its worker threads.
struct OnDemandUdf {
  std::function<Value(std::span<const Value>)> evaluate;
  std::vector<ValueType> inputs;
  ValueType type = ValueType::kInvalid;

  static void Call(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
    const auto* udf = static_cast<const OnDemandUdf*>(duckdb_scalar_function_get_extra_info(info));
    const idx_t n = duckdb_data_chunk_get_size(input);
    duckdb_vector_ensure_validity_writable(output);
    uint64_t* validity = duckdb_vector_get_validity(output);
    std::vector<Value> values(udf->inputs.size());
    try {
      for (idx_t r = 0; r < n; ++r) {
        for (size_t i = 0; i < udf->inputs.size(); ++i) {
          absl::StatusOr<Value> v = internal::ReadValue(duckdb_data_chunk_get_vector(input, i), r,
                                                        udf->inputs[i], "on-demand input");
          if (!v.ok()) {
            duckdb_scalar_function_set_error(info, std::string(v.status().message()).c_str());
            return;
          }
          values[i] = *std::move(v);
        }
        const Value out = udf->evaluate(values);
        if (out.is_null()) {
          duckdb_validity_set_row_invalid(validity, r);
          continue;
        }
        void* data = duckdb_vector_get_data(output);
        switch (udf->type) {
          case ValueType::kInt64: static_cast<int64_t*>(data)[r] = std::get<int64_t>(out.data); break;
          case ValueType::kDouble: static_cast<double*>(data)[r] = std::get<double>(out.data); break;
          case ValueType::kBool: static_cast<bool*>(data)[r] = std::get<bool>(out.data); break;
          default: {
            const std::string& s = std::get<std::string>(out.data);
            duckdb_vector_assign_string_element_len(output, r, s.data(), s.size());
          }
        }
      }
    } catch (const std::exception& e) {
      duckdb_scalar_function_set_error(info, absl::StrCat("on-demand feature: ", e.what()).c_str());
    }
  }
};

// Registers `spec` as the scalar function `name` on `conn`.
absl::Status RegisterOnDemand(Connection& conn, const std::string& name,
                              const HistoricalOnDemand& spec) {
  duckdb_scalar_function f = duckdb_create_scalar_function();
  duckdb_scalar_function_set_name(f, name.c_str());
  auto* udf = new OnDemandUdf{spec.evaluate, {}, spec.type};
  for (const HistoricalInput& in : spec.inputs) {
    udf->inputs.push_back(in.type);
    duckdb_logical_type t = duckdb_create_logical_type(DuckTypeId(in.type));
    duckdb_scalar_function_add_parameter(f, t);
    duckdb_destroy_logical_type(&t);
  }
  duckdb_logical_type ret = duckdb_create_logical_type(DuckTypeId(spec.type));
  duckdb_scalar_function_set_return_type(f, ret);
  duckdb_destroy_logical_type(&ret);
  // Nulls reach the evaluator (coalesce, if, and/or decide on them).
  duckdb_scalar_function_set_special_handling(f);
  duckdb_scalar_function_set_function(f, &OnDemandUdf::Call);
  duckdb_scalar_function_set_extra_info(f, udf, [](void* p) { delete static_cast<OnDemandUdf*>(p); });
  const duckdb_state state = duckdb_register_scalar_function(conn.get(), f);
  duckdb_destroy_scalar_function(&f);
  if (state == DuckDBError) return absl::InternalError(absl::StrCat("DuckDB: cannot register ", name));
  return absl::OkStatus();
}

std::atomic<uint64_t> next_request{1};

}  // namespace

class HistoricalStore::Impl {
 public:
  ~Impl() {
    if (db_ != nullptr) duckdb_close(&db_);
  }

  absl::Status Open(const HistoricalOptions& options) {
    // Input order is the output order: the entity table keeps it (rowid).
    absl::StatusOr<duckdb_database> db = internal::OpenDatabase(
        {.threads = options.threads, .memory_limit = options.memory_limit,
         .temp_directory = options.temp_directory, .preserve_insertion_order = true});
    if (!db.ok()) return db.status();
    db_ = *db;
    absl::StatusOr<std::unique_ptr<OfflineStore>> offline = OfflineStore::Open(1);
    if (!offline.ok()) return offline.status();
    offline_ = *std::move(offline);
    return absl::OkStatus();
  }

  absl::StatusOr<HistoricalStats> Retrieve(const HistoricalRequest& request) {
    absl::StatusOr<Connection> opened = Connection::Open(db_);
    if (!opened.ok()) return opened.status();
    Connection& conn = *opened;
    (void)conn.QueryText("SET TimeZone = 'UTC'");  // absent without ICU: UTC anyway
    std::vector<std::vector<std::string>> files;
    for (const HistoricalView& v : request.views) {
      absl::StatusOr<std::vector<std::string>> expanded = offline_->ExpandPath(v.source_path);
      if (!expanded.ok()) return expanded.status();
      if (absl::Status s = offline_->Validate(*expanded, v.timestamp_field,
                                              v.created_timestamp_column, Columns(v));
          !s.ok()) {
        return s;
      }
      files.push_back(*std::move(expanded));
    }
    absl::StatusOr<std::vector<std::string>> columns = LoadEntities(conn, request);
    if (!columns.ok()) return columns.status();
    HistoricalStats stats;
    auto count = Scalar(conn, "SELECT count(*) FROM __entities");
    if (!count.ok()) return count.status();
    stats.entity_rows = std::stoull(count->value_or("0"));
    stats.features = request.features.size();
    for (size_t v = 0; v < request.views.size(); ++v) {
      absl::StatusOr<uint64_t> ties = JoinView(conn, request.views[v], files[v], v);
      if (!ties.ok()) return ties.status();
      stats.exact_ties += *ties;
    }
    if (absl::Status s = Write(conn, request, *columns); !s.ok()) return s;
    return stats;
  }

 private:
  static std::vector<NamedType> Columns(const HistoricalView& v) {
    std::vector<NamedType> all = v.join_keys;
    all.insert(all.end(), v.schema.begin(), v.schema.end());
    return all;
  }

  // Loads the entity file into __entities (its columns, unchanged) and
  // __e (__row, each join key cast to its type, __ets in µs). Returns the
  // entity file's column names in order.
  absl::StatusOr<std::vector<std::string>> LoadEntities(Connection& conn,
                                                        const HistoricalRequest& request) {
    const std::string& path = request.entities_path;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      return absl::NotFoundError(absl::StrCat("entity file ", path, " not found"));
    }
    const bool parquet = IsParquet(path);
    const std::string reader =
        parquet ? absl::StrCat("read_parquet(", QuoteLiteral(path), ")")
                : absl::StrCat("read_csv(", QuoteLiteral(path),
                               ", header = true, all_varchar = true)");
    if (absl::Status s = Exec(conn, absl::StrCat("CREATE OR REPLACE TEMP TABLE __entities AS "
                                                 "SELECT * FROM ", reader));
        !s.ok()) {
      // DuckDB's first line says what is wrong; the rest lists its options.
      const std::string message(s.message());
      return absl::InvalidArgumentError(absl::StrCat(
          "entity file ", path, " is not a readable ", parquet ? "Parquet" : "CSV",
          " file: ", message.substr(0, message.find('\n'))));
    }
    auto described = conn.QueryText("DESCRIBE __entities");
    if (!described.ok()) return described.status();
    std::vector<std::string> names;
    std::map<std::string, std::string> types;
    for (const auto& row : *described) {
      names.push_back(row[0].value_or(""));
      types[names.back()] = row[1].value_or("");
    }
    // Join keys of every view, each once, with its type.
    std::map<std::string, ValueType> keys;
    for (const HistoricalView& v : request.views) {
      for (const NamedType& k : v.join_keys) keys.emplace(k.name, k.type);
    }
    // Every join key, and every request field of an on-demand feature, is a
    // column whose values all cast to its type.
    auto castable = [&](const std::string& column, ValueType type,
                        const char* what) -> absl::StatusOr<std::string> {
      if (!types.contains(column)) {
        return absl::InvalidArgumentError(
            absl::StrCat("entity file ", path, " has no column ", column, " (a ", what, ")"));
      }
      absl::StatusOr<DuckScalar> duck = DuckTypeOf(type);
      if (!duck.ok()) return duck.status();
      const std::string cast = CastExpression(column, type);
      auto bad = conn.QueryText(absl::StrCat("SELECT rowid, CAST(", QuoteIdent(column),
                                             " AS VARCHAR) FROM __entities WHERE ",
                                             QuoteIdent(column), " IS NOT NULL AND ", cast,
                                             " IS NULL ORDER BY rowid LIMIT 1"));
      if (!bad.ok()) return bad.status();
      if (!bad->empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "entity file ", path, ", row ", std::stoull((*bad)[0][0].value_or("0")) + 1, ": ",
            what, " ", column, " value '", (*bad)[0][1].value_or(""), "' is not a ", duck->name));
      }
      return cast;
    };
    std::vector<std::string> select = {"rowid AS __row"};
    for (const auto& [key, type] : keys) {
      absl::StatusOr<std::string> cast = castable(key, type, "join key");
      if (!cast.ok()) return cast.status();
      select.push_back(absl::StrCat(*cast, " AS ", QuoteIdent(key)));
    }
    for (const HistoricalOnDemand& od : request.on_demand) {
      for (const HistoricalInput& in : od.inputs) {
        if (in.request_field.empty()) continue;
        if (auto cast = castable(in.request_field, in.type, "request field"); !cast.ok()) {
          return cast.status();
        }
      }
    }
    if (!types.contains(kEventTimestamp)) {
      return absl::InvalidArgumentError(
          absl::StrCat("entity file ", path, " has no column ", kEventTimestamp));
    }
    const std::string& ts_type = types[kEventTimestamp];
    std::string ts;
    if (ts_type == "VARCHAR") {
      ts = absl::StrCat("epoch_us(TRY_CAST(", QuoteIdent(kEventTimestamp), " AS TIMESTAMPTZ))");
    } else if (ts_type == "TIMESTAMP" || ts_type == "TIMESTAMP WITH TIME ZONE") {
      ts = absl::StrCat("epoch_us(", QuoteIdent(kEventTimestamp), ")");
    } else {
      return absl::InvalidArgumentError(absl::StrCat("entity file ", path, ": column ",
                                                     kEventTimestamp, " is ", ts_type,
                                                     ", not a TIMESTAMP"));
    }
    auto bad = conn.QueryText(absl::StrCat(
        "SELECT rowid, CAST(", QuoteIdent(kEventTimestamp), " AS VARCHAR) FROM __entities WHERE ",
        ts, " IS NULL ORDER BY rowid LIMIT 1"));
    if (!bad.ok()) return bad.status();
    if (!bad->empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "entity file ", path, ", row ", std::stoull((*bad)[0][0].value_or("0")) + 1, ": ",
          kEventTimestamp, " '", (*bad)[0][1].value_or("null"),
          "' is not an RFC 3339 / ISO 8601 timestamp"));
    }
    select.push_back(absl::StrCat(ts, " AS __ets"));
    if (absl::Status s = Exec(conn, absl::StrCat("CREATE OR REPLACE TEMP TABLE __e AS SELECT ",
                                                 absl::StrJoin(select, ", "),
                                                 " FROM __entities"));
        !s.ok()) {
      return s;
    }
    // Output names: entity columns and features, each once.
    std::set<std::string> seen(names.begin(), names.end());
    for (const HistoricalFeature& f : request.features) {
      if (!seen.insert(f.column).second) {
        return absl::InvalidArgumentError(absl::StrCat(
            "output column ", f.column,
            " appears twice (an entity column or another view's feature of the same name; "
            "use full feature names)"));
      }
    }
    return names;
  }

  // Joins view `v` (index `index`): leaves __c<index> with one row per
  // matched entity row (__row and the view's features). Returns the exact
  // ties it settled.
  absl::StatusOr<uint64_t> JoinView(Connection& conn, const HistoricalView& v,
                                    const std::vector<std::string>& files, size_t index) {
    const std::string src = absl::StrCat("__s", index), cand = absl::StrCat("__c", index);
    std::vector<std::string> keys;
    for (const NamedType& k : v.join_keys) keys.push_back(QuoteIdent(k.name));
    std::vector<std::string> cols = keys;
    cols.push_back(absl::StrCat("epoch_us(", QuoteIdent(v.timestamp_field), ") AS __ts"));
    cols.push_back(v.created_timestamp_column.empty()
                       ? std::string("0::BIGINT AS __cr")
                       : absl::StrCat("coalesce(epoch_us(", QuoteIdent(v.created_timestamp_column),
                                      "), 0) AS __cr"));
    for (size_t i = 0; i < v.schema.size(); ++i) {
      cols.push_back(absl::StrCat(QuoteIdent(v.schema[i].name), " AS __f", i));
    }
    if (absl::Status s = Exec(conn, absl::StrCat("CREATE OR REPLACE TEMP VIEW ", src, " AS SELECT ",
                                                 absl::StrJoin(cols, ", "), " FROM read_parquet(",
                                                 FileList(files), ")"));
        !s.ok()) {
      return s;
    }
    std::vector<std::string> on, same_key;
    for (const NamedType& k : v.join_keys) {
      on.push_back(absl::StrCat("e.", QuoteIdent(k.name), " = s.", QuoteIdent(k.name)));
      same_key.push_back(absl::StrCat("t.", QuoteIdent(k.name), " = e.", QuoteIdent(k.name)));
    }
    // Most sources have one row per (keys, event ts): then one ASOF join on
    // the event timestamp finds the row, as a hand-written query would.
    // Checked by counting distinct hashes (a collision only sends the view
    // down the exact path below, never the other way).
    auto dup = Scalar(conn, absl::StrCat("SELECT count(*) - count(DISTINCT hash(",
                                         absl::StrJoin(keys, ", "), ", __ts)) FROM ", src));
    if (!dup.ok()) return dup.status();
    const bool unique_versions = dup->value_or("0") == "0";
    // Otherwise the ASOF join orders by (event ts, created ts) packed into a
    // HUGEINT (ts · 2^64 + created: |created| < 2^63 keeps the order), so the
    // latest event wins and then the latest created; the entity side takes
    // the greatest version at its timestamp.
    const std::string version =
        unique_versions ? "__ts" : "__ts::HUGEINT * 18446744073709551616 + __cr";
    on.push_back(unique_versions
                     ? "e.__ets >= s.__v"
                     : "e.__ets::HUGEINT * 18446744073709551616 + 9223372036854775807 >= s.__v");
    // The TTL filters what matched.
    std::string ttl;
    if (v.ttl_seconds > 0) {
      ttl = absl::StrCat(" WHERE s.__ts >= e.__ets - ", v.ttl_seconds, "::BIGINT * 1000000");
    }
    std::vector<std::string> features;
    for (size_t i = 0; i < v.schema.size(); ++i) features.push_back(absl::StrCat("s.__f", i));
    const std::string feature_list = features.empty() ? "" : ", " + absl::StrJoin(features, ", ");
    // Exact ties (the same keys, event and created timestamps on several
    // source rows) are rare: the ASOF join keeps one of them at random. The
    // versions that have them, found by one aggregate over the source's
    // keys and timestamps; the entity rows that matched one get every tied
    // row, and the online store's order picks (SettleTies).
    const std::string ties = absl::StrCat("__t", index), tied = absl::StrCat("__x", index);
    bool has_ties = false;
    if (!unique_versions) {
      if (absl::Status s = Exec(conn, absl::StrCat("CREATE OR REPLACE TEMP TABLE ", ties,
                                                   " AS SELECT ", absl::StrJoin(keys, ", "),
                                                   ", __ts, __cr FROM ", src,
                                                   " GROUP BY ALL HAVING count(*) > 1"));
          !s.ok()) {
        return s;
      }
      auto any = Scalar(conn, absl::StrCat("SELECT count(*) FROM ", ties));
      if (!any.ok()) return any.status();
      has_ties = any->value_or("0") != "0";
    }
    // Without ties the matches stay a view: the final COPY streams them, as
    // a hand-written query would (materializing 1M rows × features per view
    // was most of get-historical's extra time: bench/README.md).
    if (absl::Status s = Exec(
            conn, absl::StrCat("CREATE OR REPLACE TEMP ", has_ties ? "TABLE " : "VIEW ", cand,
                               " AS SELECT e.__row, s.__ts, s.__cr", feature_list,
                               " FROM __e e ASOF JOIN (SELECT *, ", version, " AS __v FROM ", src,
                               ") s ON ", absl::StrJoin(on, " AND "), ttl));
        !s.ok()) {
      return s;
    }
    if (!has_ties) return uint64_t{0};
    std::vector<std::string> tie_on = same_key, src_on;
    tie_on.push_back("t.__ts = c.__ts");
    tie_on.push_back("t.__cr = c.__cr");
    for (const NamedType& k : v.join_keys) {
      src_on.push_back(absl::StrCat("s.", QuoteIdent(k.name), " = t.", QuoteIdent(k.name)));
    }
    src_on.push_back("s.__ts = t.__ts");
    src_on.push_back("s.__cr = t.__cr");
    if (absl::Status s = Exec(
            conn, absl::StrCat("CREATE OR REPLACE TEMP TABLE ", tied,
                               " AS SELECT *, count(*) OVER (PARTITION BY __row) AS __n, "
                               "row_number() OVER () AS __cid FROM (SELECT c.__row, s.__ts, s.__cr",
                               feature_list, " FROM ", cand, " c JOIN __e e ON e.__row = c.__row JOIN ",
                               ties, " t ON ", absl::StrJoin(tie_on, " AND "), " JOIN ", src, " s ON ",
                               absl::StrJoin(src_on, " AND "), ")"));
        !s.ok()) {
      return s;
    }
    absl::StatusOr<uint64_t> settled = SettleTies(conn, v, tied);
    if (!settled.ok()) return settled;
    std::vector<std::string> plain;
    for (size_t i = 0; i < v.schema.size(); ++i) plain.push_back(absl::StrCat("__f", i));
    const std::string plain_list = plain.empty() ? "" : ", " + absl::StrJoin(plain, ", ");
    if (absl::Status s = Exec(conn, absl::StrCat("DELETE FROM ", cand, " WHERE __row IN (SELECT __row FROM ",
                                                 tied, ")"));
        !s.ok()) {
      return s;
    }
    if (absl::Status s = Exec(conn, absl::StrCat("INSERT INTO ", cand, " SELECT __row, __ts, __cr",
                                                 plain_list, " FROM ", tied));
        !s.ok()) {
      return s;
    }
    return settled;
  }

  // Keeps, of each entity row's tied candidates in `cand`, the row the online
  // store keeps (RowWins over the encoded rows); deletes the others.
  absl::StatusOr<uint64_t> SettleTies(Connection& conn, const HistoricalView& v,
                                      const std::string& cand) {
    std::vector<std::string> features;
    for (size_t i = 0; i < v.schema.size(); ++i) features.push_back(absl::StrCat("__f", i));
    internal::StreamingQuery query;
    if (absl::Status s = query.Start(
            conn,
            absl::StrCat("SELECT __row, __cid, __ts, __cr", features.empty() ? "" : ", ",
                         absl::StrJoin(features, ", "), " FROM ", cand,
                         " WHERE __n > 1 ORDER BY __row, __cid"),
            absl::StatusCode::kInternal);
        !s.ok()) {
      return s;
    }
    for (size_t i = 0; i < v.schema.size(); ++i) {
      if (absl::Status s = internal::CheckColumnType(query.result(), 4 + i, v.schema[i].type,
                                                     v.schema[i].name);
          !s.ok()) {
        return s;
      }
    }
    std::vector<int64_t> losers;
    uint64_t ties = 0;
    int64_t current_row = -1, best_cid = -1;
    std::string best, encoded;
    std::vector<Value> values(v.schema.size());
    for (;;) {
      absl::StatusOr<duckdb_data_chunk> chunk = query.Next(absl::StatusCode::kInternal);
      if (!chunk.ok()) return chunk.status();
      if (*chunk == nullptr) break;
      internal::ChunkDeleter deleter{*chunk};
      const idx_t n = duckdb_data_chunk_get_size(*chunk);
      auto* rows = static_cast<int64_t*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(*chunk, 0)));
      auto* cids = static_cast<int64_t*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(*chunk, 1)));
      auto* ts = static_cast<int64_t*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(*chunk, 2)));
      auto* cr = static_cast<int64_t*>(duckdb_vector_get_data(duckdb_data_chunk_get_vector(*chunk, 3)));
      for (idx_t r = 0; r < n; ++r) {
        for (size_t i = 0; i < v.schema.size(); ++i) {
          absl::StatusOr<Value> value = internal::ReadValue(
              duckdb_data_chunk_get_vector(*chunk, 4 + i), r, v.schema[i].type, v.schema[i].name);
          if (!value.ok()) return value.status();
          values[i] = *std::move(value);
        }
        encoded.clear();
        internal::AppendRow(ts[r], cr[r], v.schema_version, values, &encoded);
        if (rows[r] != current_row) {
          current_row = rows[r];
          ++ties;
          best = encoded;
          best_cid = cids[r];
        } else if (internal::RowWins(encoded, best)) {
          losers.push_back(best_cid);
          best = encoded;
          best_cid = cids[r];
        } else {
          losers.push_back(cids[r]);
        }
      }
    }
    for (size_t i = 0; i < losers.size(); i += 1000) {
      std::vector<std::string> ids;
      for (size_t j = i; j < losers.size() && j < i + 1000; ++j) ids.push_back(std::to_string(losers[j]));
      if (absl::Status s = Exec(conn, absl::StrCat("DELETE FROM ", cand, " WHERE __cid IN (",
                                                   absl::StrJoin(ids, ","), ")"));
          !s.ok()) {
        return s;
      }
    }
    return ties;
  }

  absl::Status Write(Connection& conn, const HistoricalRequest& request,
                     const std::vector<std::string>& entity_columns) {
    std::vector<std::string> select;
    for (const std::string& c : entity_columns) select.push_back(absl::StrCat("en.", QuoteIdent(c)));
    std::set<size_t> used;
    const uint64_t id = next_request.fetch_add(1);
    for (const HistoricalFeature& f : request.features) {
      if (f.on_demand < 0) {
        used.insert(f.view);
        select.push_back(absl::StrCat("c", f.view, ".__f", f.feature, " AS ", QuoteIdent(f.column)));
        continue;
      }
      const HistoricalOnDemand& od = request.on_demand[static_cast<size_t>(f.on_demand)];
      const std::string fn = absl::StrCat("__quiver_on_demand_", id, "_", f.on_demand);
      if (absl::Status s = RegisterOnDemand(conn, fn, od); !s.ok()) return s;
      std::vector<std::string> args;
      for (const HistoricalInput& in : od.inputs) {
        if (in.request_field.empty()) {
          used.insert(in.view);
          args.push_back(absl::StrCat("c", in.view, ".__f", in.feature));
        } else {
          args.push_back(CastExpression(in.request_field, in.type, "en."));
        }
      }
      select.push_back(absl::StrCat(fn, "(", absl::StrJoin(args, ", "), ") AS ", QuoteIdent(f.column)));
    }
    std::string from = "__entities en";
    for (size_t v : used) {
      absl::StrAppend(&from, " LEFT JOIN __c", v, " c", v, " ON c", v, ".__row = en.rowid");
    }
    const std::string format = request.format == HistoricalFormat::kParquet
                                   ? "FORMAT PARQUET"
                                   : "FORMAT CSV, HEADER true";
    return Exec(conn, absl::StrCat("COPY (SELECT ", absl::StrJoin(select, ", "), " FROM ", from,
                                   " ORDER BY en.rowid) TO ", QuoteLiteral(request.output_path),
                                   " (", format, ")"));
  }

  duckdb_database db_ = nullptr;
  std::unique_ptr<OfflineStore> offline_;  // Validate
};

absl::StatusOr<std::unique_ptr<HistoricalStore>> HistoricalStore::Open(HistoricalOptions options) {
  auto impl = std::make_unique<Impl>();
  if (absl::Status s = impl->Open(options); !s.ok()) return s;
  return std::unique_ptr<HistoricalStore>(new HistoricalStore(std::move(impl)));
}

HistoricalStore::HistoricalStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HistoricalStore::~HistoricalStore() = default;

absl::StatusOr<HistoricalStats> HistoricalStore::Retrieve(const HistoricalRequest& request) {
  return impl_->Retrieve(request);
}

}  // namespace quiver::storage
