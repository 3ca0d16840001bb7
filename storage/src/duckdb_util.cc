#include "duckdb_util.h"

#include <bit>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "quiver/keys/packed_values.h"

namespace quiver::storage::internal {

absl::StatusOr<duckdb_database> OpenDatabase(const DatabaseOptions& options) {
  duckdb_config config = nullptr;
  if (duckdb_create_config(&config) == DuckDBError) {
    return absl::InternalError("DuckDB: cannot create a configuration");
  }
  auto set = [&](const char* name, const std::string& value) {
    return duckdb_set_config(config, name, value.c_str()) == DuckDBSuccess;
  };
  bool ok = true;
  if (options.threads > 0) ok = ok && set("threads", std::to_string(options.threads));
  if (!options.memory_limit.empty()) ok = ok && set("memory_limit", options.memory_limit);
  if (!options.temp_directory.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options.temp_directory, ec);
    if (ec) {
      duckdb_destroy_config(&config);
      return absl::InternalError(absl::StrCat("DuckDB: cannot create temp directory ",
                                              options.temp_directory, ": ", ec.message()));
    }
    ok = ok && set("temp_directory", options.temp_directory);
  }
  ok = ok && set("preserve_insertion_order", options.preserve_insertion_order ? "true" : "false");
  // Never fetch extensions over the network; the ones built in still load.
  ok = ok && set("autoinstall_known_extensions", "false");
  duckdb_database db = nullptr;
  char* error = nullptr;
  if (ok && duckdb_open_ext(nullptr, &db, config, &error) == DuckDBError) ok = false;
  duckdb_destroy_config(&config);
  if (!ok) {
    absl::Status st = absl::InternalError(
        absl::StrCat("DuckDB: cannot start: ", error == nullptr ? "bad setting" : error));
    if (error != nullptr) duckdb_free(error);
    return st;
  }
  return db;
}
namespace {

static_assert(std::endian::native == std::endian::little,
              "AppendPackedCell copies vector memory as little-endian payloads");

std::string Quote(std::string_view s, char q) {
  std::string out(1, q);
  for (char c : s) {
    if (c == q) out.push_back(q);
    out.push_back(c);
  }
  out.push_back(q);
  return out;
}

bool IsValid(duckdb_vector vec, idx_t row) {
  uint64_t* validity = duckdb_vector_get_validity(vec);
  return validity == nullptr || duckdb_validity_row_is_valid(validity, row);
}

// Reads a non-null scalar element of type `e` at `row`.
Value ReadScalar(duckdb_vector vec, idx_t row, ValueType e) {
  void* data = duckdb_vector_get_data(vec);
  switch (e) {
    case ValueType::kInt32:
      return Value::Int32(static_cast<int32_t*>(data)[row]);
    case ValueType::kInt64:
      return Value::Int64(static_cast<int64_t*>(data)[row]);
    case ValueType::kUnixTimestamp:
      return Value::UnixTimestamp(static_cast<duckdb_timestamp*>(data)[row].micros);
    case ValueType::kFloat:
      return Value::Float(static_cast<float*>(data)[row]);
    case ValueType::kDouble:
      return Value::Double(static_cast<double*>(data)[row]);
    case ValueType::kBool:
      return Value::Bool(static_cast<bool*>(data)[row]);
    case ValueType::kString:
    case ValueType::kBytes: {
      duckdb_string_t* s = &static_cast<duckdb_string_t*>(data)[row];
      std::string bytes(duckdb_string_t_data(s), duckdb_string_t_length(*s));
      return e == ValueType::kString ? Value::String(std::move(bytes))
                                     : Value::Bytes(std::move(bytes));
    }
    default:
      return Value::Null(e);
  }
}

}  // namespace

std::string QuoteIdent(std::string_view name) { return Quote(name, '"'); }
std::string QuoteLiteral(std::string_view text) { return Quote(text, '\''); }

absl::Status DuckError(duckdb_error_type type, std::string_view message,
                       absl::StatusCode fallback) {
  const std::string msg = absl::StrCat("DuckDB: ", std::string(message));
  switch (type) {
    case DUCKDB_ERROR_OUT_OF_MEMORY:
      return absl::ResourceExhaustedError(msg);
    case DUCKDB_ERROR_INTERRUPT:
      return absl::CancelledError(msg);
    case DUCKDB_ERROR_INTERNAL:
    case DUCKDB_ERROR_FATAL:
      return absl::InternalError(msg);
    case DUCKDB_ERROR_INVALID_INPUT:
    case DUCKDB_ERROR_CONVERSION:
    case DUCKDB_ERROR_PARSER:
    case DUCKDB_ERROR_BINDER:
      return absl::InvalidArgumentError(msg);
    default:
      return absl::Status(fallback, msg);
  }
}

absl::StatusOr<Connection> Connection::Open(duckdb_database db) {
  duckdb_connection conn = nullptr;
  if (duckdb_connect(db, &conn) == DuckDBError) {
    return absl::InternalError("DuckDB: cannot open a connection");
  }
  return Connection(conn);
}

Connection::~Connection() {
  if (conn_ != nullptr) duckdb_disconnect(&conn_);
}

absl::StatusOr<std::vector<std::vector<std::optional<std::string>>>> Connection::QueryText(
    const std::string& sql) {
  duckdb_result result;
  if (duckdb_query(conn_, sql.c_str(), &result) == DuckDBError) {
    absl::Status st = DuckError(duckdb_result_error_type(&result), duckdb_result_error(&result),
                                absl::StatusCode::kInvalidArgument);
    duckdb_destroy_result(&result);
    return st;
  }
  std::vector<std::vector<std::optional<std::string>>> rows(duckdb_row_count(&result));
  const idx_t cols = duckdb_column_count(&result);
  for (idx_t r = 0; r < rows.size(); ++r) {
    for (idx_t c = 0; c < cols; ++c) {
      if (duckdb_value_is_null(&result, c, r)) {
        rows[r].push_back(std::nullopt);
        continue;
      }
      char* text = duckdb_value_varchar(&result, c, r);
      rows[r].push_back(text == nullptr ? std::optional<std::string>() : std::string(text));
      duckdb_free(text);
    }
  }
  duckdb_destroy_result(&result);
  return rows;
}

StreamingQuery::~StreamingQuery() {
  if (has_result_) duckdb_destroy_result(&result_);
  if (pending_ != nullptr) duckdb_destroy_pending(&pending_);
  if (stmt_ != nullptr) duckdb_destroy_prepare(&stmt_);
}

absl::Status StreamingQuery::Start(const Connection& conn, const std::string& sql,
                                   absl::StatusCode fallback) {
  if (duckdb_prepare(conn.get(), sql.c_str(), &stmt_) == DuckDBError) {
    const char* err = duckdb_prepare_error(stmt_);
    // Prepare errors are about the statement and the files it names.
    return DuckError(DUCKDB_ERROR_INVALID_INPUT, err == nullptr ? "prepare failed" : err, fallback);
  }
  if (duckdb_pending_prepared_streaming(stmt_, &pending_) == DuckDBError) {
    const char* err = duckdb_pending_error(pending_);
    return DuckError(DUCKDB_ERROR_INVALID_INPUT, err == nullptr ? "execution failed" : err,
                     fallback);
  }
  has_result_ = true;
  if (duckdb_execute_pending(pending_, &result_) == DuckDBError) {
    return DuckError(duckdb_result_error_type(&result_), duckdb_result_error(&result_), fallback);
  }
  return absl::OkStatus();
}

absl::StatusOr<duckdb_data_chunk> StreamingQuery::Next(absl::StatusCode fallback) {
  duckdb_data_chunk chunk = duckdb_fetch_chunk(result_);
  if (chunk == nullptr) {
    const char* err = duckdb_result_error(&result_);
    if (err != nullptr) return DuckError(duckdb_result_error_type(&result_), err, fallback);
  }
  return chunk;
}

bool TypeIdHolds(duckdb_type id, ValueType scalar) {
  switch (scalar) {
    case ValueType::kInt32:
      return id == DUCKDB_TYPE_INTEGER;
    case ValueType::kInt64:
      return id == DUCKDB_TYPE_BIGINT;
    case ValueType::kFloat:
      return id == DUCKDB_TYPE_FLOAT;
    case ValueType::kDouble:
      return id == DUCKDB_TYPE_DOUBLE;
    case ValueType::kBool:
      return id == DUCKDB_TYPE_BOOLEAN;
    case ValueType::kString:
      return id == DUCKDB_TYPE_VARCHAR;
    case ValueType::kBytes:
      return id == DUCKDB_TYPE_BLOB;
    case ValueType::kUnixTimestamp:
      return id == DUCKDB_TYPE_TIMESTAMP || id == DUCKDB_TYPE_TIMESTAMP_TZ;
    default:
      return false;
  }
}

bool LogicalTypeHolds(duckdb_logical_type type, ValueType t) {
  const duckdb_type id = duckdb_get_type_id(type);
  if (!IsList(t)) return TypeIdHolds(id, t);
  if (id != DUCKDB_TYPE_LIST) return false;
  duckdb_logical_type child = duckdb_list_type_child_type(type);
  const bool ok = TypeIdHolds(duckdb_get_type_id(child), ElementType(t));
  duckdb_destroy_logical_type(&child);
  return ok;
}

namespace {

// Takes ownership of `type`.
absl::Status CheckLayout(duckdb_logical_type type, ValueType t, std::string_view column_name) {
  const bool ok = LogicalTypeHolds(type, t);
  duckdb_destroy_logical_type(&type);
  if (!ok) {
    return absl::InternalError(absl::StrCat("DuckDB returned column '", std::string(column_name),
                                            "' with a layout other than ", TypeName(t)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckColumnType(duckdb_result* result, idx_t col, ValueType t,
                             std::string_view column_name) {
  return CheckLayout(duckdb_column_logical_type(result, col), t, column_name);
}

absl::Status CheckVectorType(duckdb_vector vec, ValueType t, std::string_view column_name) {
  return CheckLayout(duckdb_vector_get_column_type(vec), t, column_name);
}

absl::StatusOr<Value> ReadValue(duckdb_vector vec, idx_t row, ValueType t,
                                std::string_view column_name) {
  if (!IsValid(vec, row)) return Value::Null(t);
  if (!IsList(t)) return ReadScalar(vec, row, t);
  const duckdb_list_entry entry = static_cast<duckdb_list_entry*>(duckdb_vector_get_data(vec))[row];
  duckdb_vector child = duckdb_list_vector_get_child(vec);
  const ValueType e = ElementType(t);
  std::vector<int64_t> ints;
  std::vector<double> doubles;
  std::vector<std::string> strings;
  for (idx_t i = entry.offset; i < entry.offset + entry.length; ++i) {
    if (!IsValid(child, i)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "column '", std::string(column_name), "' holds a list with a null element, which ",
          TypeName(t), " cannot represent"));
    }
    Value v = ReadScalar(child, i, e);
    if (auto* x = std::get_if<int64_t>(&v.data)) ints.push_back(*x);
    if (auto* x = std::get_if<bool>(&v.data)) ints.push_back(*x ? 1 : 0);
    if (auto* x = std::get_if<double>(&v.data)) doubles.push_back(*x);
    if (auto* x = std::get_if<std::string>(&v.data)) strings.push_back(std::move(*x));
  }
  switch (e) {
    case ValueType::kFloat:
    case ValueType::kDouble:
      return Value{t, std::move(doubles)};
    case ValueType::kString:
    case ValueType::kBytes:
      return Value{t, std::move(strings)};
    default:
      return Value{t, std::move(ints)};
  }
}

absl::Status AppendPackedCell(duckdb_vector vec, idx_t row, ValueType t,
                              std::string_view column_name, std::string* out) {
  if (!IsValid(vec, row)) {
    AppendPackedNull(out);
    return absl::OkStatus();
  }
  const char* data = static_cast<const char*>(duckdb_vector_get_data(vec));
  // Payloads are the declared width, little-endian (AppendPayload), which is
  // how the vector holds them on the little-endian hosts Quiver runs on.
  auto fixed = [&](size_t width) {
    AppendPackedPayload(t, std::string_view(data + row * width, width), out);
    return absl::OkStatus();
  };
  switch (t) {
    case ValueType::kInt32:
    case ValueType::kFloat:
      return fixed(4);
    case ValueType::kInt64:
    case ValueType::kDouble:
    case ValueType::kUnixTimestamp:  // duckdb_timestamp: int64 micros
      return fixed(8);
    case ValueType::kBool: {
      const char b = reinterpret_cast<const bool*>(data)[row] ? 1 : 0;
      AppendPackedPayload(t, std::string_view(&b, 1), out);
      return absl::OkStatus();
    }
    case ValueType::kString:
    case ValueType::kBytes: {
      duckdb_string_t* s = &reinterpret_cast<duckdb_string_t*>(const_cast<char*>(data))[row];
      AppendPackedPayload(t, std::string_view(duckdb_string_t_data(s), duckdb_string_t_length(*s)),
                          out);
      return absl::OkStatus();
    }
    default: {
      absl::StatusOr<Value> v = ReadValue(vec, row, t, column_name);
      if (!v.ok()) return v.status();
      AppendPackedValues(std::span<const Value>(&*v, 1), out);
      return absl::OkStatus();
    }
  }
}

std::optional<int64_t> ReadTimestamp(duckdb_vector vec, idx_t row) {
  if (!IsValid(vec, row)) return std::nullopt;
  return static_cast<duckdb_timestamp*>(duckdb_vector_get_data(vec))[row].micros;
}

}  // namespace quiver::storage::internal
