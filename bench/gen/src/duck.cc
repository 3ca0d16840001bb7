#include "quiver/bench/gen/duck.h"

#include "absl/strings/str_cat.h"

namespace quiver::bench {
namespace {

absl::Status DuckError(const char* message, const char* fallback) {
  return absl::InvalidArgumentError(
      absl::StrCat("DuckDB: ", message != nullptr ? message : fallback));
}

}  // namespace

std::string SqlLiteral(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

absl::StatusOr<std::unique_ptr<DuckDb>> DuckDb::Open(int threads) {
  duckdb_config config = nullptr;
  if (duckdb_create_config(&config) == DuckDBError) {
    return absl::InternalError("DuckDB: cannot create a config");
  }
  const std::string threads_text = std::to_string(threads);
  bool ok = duckdb_set_config(config, "autoinstall_known_extensions", "false") == DuckDBSuccess &&
            duckdb_set_config(config, "autoload_known_extensions", "false") == DuckDBSuccess;
  if (ok && threads > 0)
    ok = duckdb_set_config(config, "threads", threads_text.c_str()) == DuckDBSuccess;
  std::unique_ptr<DuckDb> db(new DuckDb());
  char* error = nullptr;
  if (ok && duckdb_open_ext(nullptr, &db->db_, config, &error) == DuckDBError) ok = false;
  duckdb_destroy_config(&config);
  if (!ok) {
    absl::Status st = absl::InternalError(
        absl::StrCat("DuckDB: cannot open a database: ", error != nullptr ? error : "config"));
    if (error != nullptr) duckdb_free(error);
    return st;
  }
  return db;
}

DuckDb::~DuckDb() {
  if (db_ != nullptr) duckdb_close(&db_);
}

absl::StatusOr<std::unique_ptr<DuckConnection>> DuckConnection::Open(const DuckDb& db) {
  std::unique_ptr<DuckConnection> conn(new DuckConnection());
  if (duckdb_connect(db.get(), &conn->conn_) == DuckDBError) {
    return absl::InternalError("DuckDB: cannot open a connection");
  }
  return conn;
}

DuckConnection::~DuckConnection() {
  if (conn_ != nullptr) duckdb_disconnect(&conn_);
}

absl::Status DuckConnection::Exec(const std::string& sql) {
  duckdb_result result;
  absl::Status st;
  if (duckdb_query(conn_, sql.c_str(), &result) == DuckDBError) {
    st = DuckError(duckdb_result_error(&result), "query failed");
  }
  duckdb_destroy_result(&result);
  return st;
}

DuckStream::~DuckStream() {
  if (has_result_) duckdb_destroy_result(&result_);
  if (pending_ != nullptr) duckdb_destroy_pending(&pending_);
  if (stmt_ != nullptr) duckdb_destroy_prepare(&stmt_);
}

absl::Status DuckStream::Start(const DuckConnection& conn, const std::string& sql) {
  if (duckdb_prepare(conn.get(), sql.c_str(), &stmt_) == DuckDBError) {
    return DuckError(duckdb_prepare_error(stmt_), "prepare failed");
  }
  if (duckdb_pending_prepared_streaming(stmt_, &pending_) == DuckDBError) {
    return DuckError(duckdb_pending_error(pending_), "execution failed");
  }
  has_result_ = true;
  if (duckdb_execute_pending(pending_, &result_) == DuckDBError) {
    return DuckError(duckdb_result_error(&result_), "execution failed");
  }
  return absl::OkStatus();
}

absl::StatusOr<duckdb_data_chunk> DuckStream::Next() {
  duckdb_data_chunk chunk = duckdb_fetch_chunk(result_);
  if (chunk == nullptr) {
    const char* err = duckdb_result_error(&result_);
    if (err != nullptr) return DuckError(err, "fetch failed");
  }
  return chunk;
}

}  // namespace quiver::bench
