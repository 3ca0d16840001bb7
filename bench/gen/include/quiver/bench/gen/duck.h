// Minimal RAII over DuckDB's C API for the benchmark tools (bench/): an
// in-memory database, connections, statements run for their effect, and
// streaming queries read chunk by chunk.
//
// Errors from DuckDB become kInvalidArgument (the statement or the files it
// names are at fault) or kInternal (DuckDB could not start), with DuckDB's
// message.
//
// Thread-safety: a DuckDb may be shared by threads; a DuckConnection and the
// DuckStreams it started belong to one thread at a time.
#ifndef QUIVER_BENCH_GEN_DUCK_H_
#define QUIVER_BENCH_GEN_DUCK_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "duckdb.h"

namespace quiver::bench {

// 'text' as an SQL string literal (single quotes doubled), so no input can
// break out of it.
std::string SqlLiteral(std::string_view text);

class DuckDb {
 public:
  // Opens an in-memory database. `threads` 0 lets DuckDB choose (one per
  // core). Extensions are never downloaded. Errors: kInternal.
  static absl::StatusOr<std::unique_ptr<DuckDb>> Open(int threads = 0);
  ~DuckDb();
  DuckDb(const DuckDb&) = delete;
  DuckDb& operator=(const DuckDb&) = delete;
  duckdb_database get() const { return db_; }

 private:
  DuckDb() = default;
  duckdb_database db_ = nullptr;
};

class DuckConnection {
 public:
  // Errors: kInternal.
  static absl::StatusOr<std::unique_ptr<DuckConnection>> Open(const DuckDb& db);
  ~DuckConnection();
  DuckConnection(const DuckConnection&) = delete;
  DuckConnection& operator=(const DuckConnection&) = delete;
  duckdb_connection get() const { return conn_; }

  // Runs `sql` (one or more statements) and discards any result.
  // Errors: kInvalidArgument with DuckDB's message.
  absl::Status Exec(const std::string& sql);

 private:
  DuckConnection() = default;
  duckdb_connection conn_ = nullptr;
};

// One streaming query; chunks are computed as they are fetched.
class DuckStream {
 public:
  DuckStream() = default;
  ~DuckStream();
  DuckStream(const DuckStream&) = delete;
  DuckStream& operator=(const DuckStream&) = delete;

  // Errors: kInvalidArgument with DuckDB's message.
  absl::Status Start(const DuckConnection& conn, const std::string& sql);
  duckdb_result* result() { return &result_; }
  // The next chunk, owned by the caller (duckdb_destroy_data_chunk), or
  // nullptr at the end. Errors: kInvalidArgument if the query failed while
  // running.
  absl::StatusOr<duckdb_data_chunk> Next();

 private:
  duckdb_prepared_statement stmt_ = nullptr;
  duckdb_pending_result pending_ = nullptr;
  duckdb_result result_{};
  bool has_result_ = false;
};

// Destroys a data chunk when it goes out of scope.
class ChunkHolder {
 public:
  explicit ChunkHolder(duckdb_data_chunk chunk) : chunk_(chunk) {}
  ~ChunkHolder() {
    if (chunk_ != nullptr) duckdb_destroy_data_chunk(&chunk_);
  }
  ChunkHolder(const ChunkHolder&) = delete;
  ChunkHolder& operator=(const ChunkHolder&) = delete;
  duckdb_data_chunk get() const { return chunk_; }

 private:
  duckdb_data_chunk chunk_;
};

}  // namespace quiver::bench

#endif  // QUIVER_BENCH_GEN_DUCK_H_
