// Small RAII and conversion helpers over DuckDB's C API. Private to storage/.
//
// Thread-safety: a Connection and the results it produced belong to one
// thread at a time; the database may be shared.
#ifndef QUIVER_STORAGE_SRC_DUCKDB_UTIL_H_
#define QUIVER_STORAGE_SRC_DUCKDB_UTIL_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "duckdb.h"
#include "quiver/keys/value.h"

namespace quiver::storage::internal {

// SQL quoting: identifiers in double quotes, literals in single quotes, each
// with its quote character doubled, so no input can break out of it.
std::string QuoteIdent(std::string_view name);
std::string QuoteLiteral(std::string_view text);

// Maps a DuckDB error (by its error type) to a status code; `fallback` is used
// for the types that do not say whether the input or DuckDB is at fault.
absl::Status DuckError(duckdb_error_type type, std::string_view message,
                       absl::StatusCode fallback);

struct DatabaseOptions {
  int threads = 0;              // 0: DuckDB's choice
  std::string memory_limit;     // DuckDB's setting ("1GB"); empty: its default
  std::string temp_directory;   // created if missing; empty: no spilling
  bool preserve_insertion_order = false;
};

// Opens an in-memory DuckDB with `options`; extensions are never fetched
// over the network (autoinstall off; the built-in ones still load). The
// caller closes it (duckdb_close). Errors: kInternal naming the setting or
// DuckDB's message.
absl::StatusOr<duckdb_database> OpenDatabase(const DatabaseOptions& options);

class Connection {
 public:
  static absl::StatusOr<Connection> Open(duckdb_database db);
  Connection(Connection&& other) noexcept : conn_(other.conn_) { other.conn_ = nullptr; }
  Connection& operator=(Connection&&) = delete;
  Connection(const Connection&) = delete;
  ~Connection();
  duckdb_connection get() const { return conn_; }

  // Runs `sql` and returns every row as text (nullopt for NULL). For small
  // metadata results only: the whole result is materialized.
  // Errors: DuckError(..., kInvalidArgument).
  absl::StatusOr<std::vector<std::vector<std::optional<std::string>>>> QueryText(
      const std::string& sql);

 private:
  explicit Connection(duckdb_connection conn) : conn_(conn) {}
  duckdb_connection conn_ = nullptr;
};

// A streaming query: chunks are produced as they are fetched.
class StreamingQuery {
 public:
  StreamingQuery() = default;
  StreamingQuery(const StreamingQuery&) = delete;
  StreamingQuery& operator=(const StreamingQuery&) = delete;
  ~StreamingQuery();

  // Errors: DuckError(..., fallback).
  absl::Status Start(const Connection& conn, const std::string& sql, absl::StatusCode fallback);
  duckdb_result* result() { return &result_; }
  // The next chunk (caller destroys it), nullptr at the end; error if the
  // query failed while running.
  absl::StatusOr<duckdb_data_chunk> Next(absl::StatusCode fallback);

 private:
  duckdb_prepared_statement stmt_ = nullptr;
  duckdb_pending_result pending_ = nullptr;
  duckdb_result result_{};
  bool has_result_ = false;
};

// Destroys a data chunk on scope exit.
struct ChunkDeleter {
  duckdb_data_chunk chunk;
  ~ChunkDeleter() {
    if (chunk != nullptr) duckdb_destroy_data_chunk(&chunk);
  }
};

// The DuckDB type id(s) that hold Quiver scalar type `t` (TIMESTAMP and
// TIMESTAMP_TZ both hold UNIX_TIMESTAMP as int64 microseconds).
bool TypeIdHolds(duckdb_type id, ValueType scalar);

// Whether a column of DuckDB type `type` has the physical layout of Quiver
// type `t` (scalar or list), so the vector reads below interpret memory
// correctly.
bool LogicalTypeHolds(duckdb_logical_type type, ValueType t);

// Checks that result column `col` has the physical layout of `t`.
// Errors: kInternal naming the column.
absl::Status CheckColumnType(duckdb_result* result, idx_t col, ValueType t,
                             std::string_view column_name);

// Checks that vector `vec` (e.g. a scalar function's argument) has the
// physical layout of `t`. Errors: kInternal naming the column.
absl::Status CheckVectorType(duckdb_vector vec, ValueType t, std::string_view column_name);

// Reads row `row` of `vec`, a vector whose layout CheckColumnType accepted.
// A null inside a list has no Quiver value: kInvalidArgument naming the column.
absl::StatusOr<Value> ReadValue(duckdb_vector vec, idx_t row, ValueType t,
                                std::string_view column_name);

// Appends row `row` of `vec` (layout accepted as for ReadValue) to `*out` as
// one WriteRow.packed_values cell (quiver/keys/packed_values.h): scalars are
// copied from the vector's memory, lists go through ReadValue. Produces the
// same bytes as AppendPackedValues of ReadValue's result.
// Errors: as ReadValue.
absl::Status AppendPackedCell(duckdb_vector vec, idx_t row, ValueType t,
                              std::string_view column_name, std::string* out);

// The int64 microseconds of a TIMESTAMP / TIMESTAMP_TZ cell; nullopt if null.
std::optional<int64_t> ReadTimestamp(duckdb_vector vec, idx_t row);

}  // namespace quiver::storage::internal

#endif  // QUIVER_STORAGE_SRC_DUCKDB_UTIL_H_
