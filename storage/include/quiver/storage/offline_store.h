// OfflineStore: reads the Parquet offline store with DuckDB (the engine the
// design names for Parquet and point-in-time joins).
//
// Type mapping (exact, never a silent cast; docs/architecture.md):
//   INTEGER→INT32, BIGINT→INT64, FLOAT→FLOAT, DOUBLE→DOUBLE, BOOLEAN→BOOL,
//   VARCHAR→STRING, BLOB→BYTES, TIMESTAMP / TIMESTAMP WITH TIME ZONE →
//   UNIX_TIMESTAMP (µs), T[] → LIST<T>. Anything else has no Quiver type.
//
// Timestamps are read as UTC microseconds (TIMESTAMP as if UTC; the session
// time zone is UTC). Extensions are never downloaded (autoinstall off).
//
// Thread-safety: an OfflineStore holds one DuckDB database; each call opens
// its own connection, so calls may run concurrently.
#ifndef QUIVER_STORAGE_OFFLINE_STORE_H_
#define QUIVER_STORAGE_OFFLINE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quiver/keys/value.h"

namespace quiver::storage {

struct ParquetColumn {
  std::string name;
  std::string duckdb_type;  // as DuckDB names it, e.g. "BIGINT", "FLOAT[]"
  std::optional<ValueType> type;  // the Quiver type, if one maps exactly
};

struct NamedType {
  std::string name;
  ValueType type = ValueType::kInvalid;
};

// A row group of one Parquet file, with its event-time statistics.
struct RowGroupInfo {
  std::string file;
  uint64_t row_begin = 0;  // file row numbers [row_begin, row_end)
  uint64_t row_end = 0;
  bool has_stats = false;  // false: min/max unknown, never pruned
  int64_t ts_min_us = 0;
  int64_t ts_max_us = 0;
};

// One query: the latest row per entity key of one file's row range within
// [start_us, end_us), ties on event time broken by the created column (greater
// wins, null created loses); on an exact (event, created) tie every tied row
// is returned (see ScanLatest).
struct LatestQuery {
  std::string file;
  uint64_t row_begin = 0;
  uint64_t row_end = UINT64_MAX;
  int64_t start_us = 0;  // inclusive
  int64_t end_us = 0;  // exclusive
  // Late data: when set, also the rows created at or after this (µs), with
  // event time < end_us, whatever their event time: the window is
  // [start_us, end_us) ∪ {created >= created_after_us, event < end_us}. The
  // latest row per key is taken over that union (an older late row then
  // loses to the stored one under last-writer-wins). Needs a created column.
  std::optional<int64_t> created_after_us;
  std::vector<NamedType> join_keys;
  std::string timestamp_field;
  std::string created_timestamp_column;  // empty: none (created_ts = 0)
  std::vector<NamedType> features;
  // buckets > 1: only rows whose join keys hash (DuckDB's hash(), the same
  // on every node of one build) to `bucket` modulo `buckets`.
  uint32_t bucket = 0;
  uint32_t buckets = 0;
  // Optional. When set, the result comes sorted by the bytes this returns for
  // each row's join key values (one Value per join key, of the declared
  // types, never null), compared as unsigned bytes (memcmp, shorter prefix
  // first); rows with equal order keys (exact ties of one entity) come in no
  // particular order. It is called once per returned row (after the latest
  // row per key is chosen), from DuckDB's worker threads, CONCURRENTLY: it
  // must be thread-safe, and it must stay valid until ScanLatest returns.
  // An error (or an exception) fails the scan with that status. Unset: rows
  // come in no particular order and OfflineRow::order_key is empty.
  std::function<absl::StatusOr<std::string>(std::span<const Value> join_key_values)> order_key;
  // When set, each row's features come packed (OfflineRow::packed_values)
  // straight from DuckDB's vectors, without a Value per feature; and when
  // `order_key` is set too, join_key_values stay empty (the order key
  // carries the entity key). The materializer's fast path.
  bool pack_values = false;
};

struct OfflineRow {
  std::vector<Value> join_key_values;  // one per LatestQuery::join_keys
  int64_t event_ts_us = 0;
  int64_t created_ts_us = 0;
  std::vector<Value> values;  // one per LatestQuery::features; empty if pack_values
  // With LatestQuery::pack_values: every feature as WriteRow.packed_values
  // (quiver/keys/packed_values.h). Empty otherwise.
  std::string packed_values;
  std::string order_key;  // LatestQuery::order_key(join_key_values); empty if unset
};

class OfflineStore {
 public:
  // Opens an in-memory DuckDB. `threads` 0 lets DuckDB choose; `memory_limit`
  // is DuckDB's setting ("1GB"); empty keeps its default. `temp_directory`
  // (created if missing) is where DuckDB spills a sort or window that
  // outgrows `memory_limit`, so a large scan stays within the limit instead
  // of failing; empty: no spilling, DuckDB fails with kResourceExhausted.
  // Result order is never relied on (preserve_insertion_order = false).
  // Errors: kInternal if DuckDB cannot start.
  static absl::StatusOr<std::unique_ptr<OfflineStore>> Open(int threads = 0,
                                                            std::string memory_limit = "",
                                                            std::string temp_directory = "");
  ~OfflineStore();

  // Expands a source path (file, glob, or directory: every *.parquet below it,
  // recursively) into a sorted list of files.
  // Errors: kNotFound when nothing matches (message names the path).
  absl::StatusOr<std::vector<std::string>> ExpandPath(const std::string& path);

  // The columns of a Parquet file. Errors: kNotFound (missing file),
  // kInvalidArgument (not a readable Parquet file; DuckDB's message attached).
  absl::StatusOr<std::vector<ParquetColumn>> Describe(const std::string& file);

  // Checks that every file has the timestamp field as a TIMESTAMP, the created
  // column (if named) as a TIMESTAMP, and each join key and feature with
  // exactly its declared type. Errors: kInvalidArgument naming the file, the
  // column, the expected and the found type; kNotFound as ExpandPath/Describe.
  absl::Status Validate(const std::vector<std::string>& files, const std::string& timestamp_field,
                        const std::string& created_timestamp_column,
                        std::span<const NamedType> columns);

  // The row groups of `file`, in file order, with min/max of `timestamp_field`
  // from the Parquet statistics (has_stats false when the file has none for
  // that column). Reads only the footer. Errors: as Describe.
  absl::StatusOr<std::vector<RowGroupInfo>> RowGroups(const std::string& file,
                                                      const std::string& timestamp_field);

  // Runs `query` and hands the result to `sink` in batches of at most
  // `batch_rows` rows (0 means 1024; Quiver's memory stays bounded by the
  // batch, DuckDB streams its result). A sink error stops the scan and is
  // returned. Per entity key the sink gets the row with the greatest (event
  // timestamp, created timestamp), Feast's rule; on an exact tie it gets
  // every tied row, and the online store's last-writer-wins order (greatest
  // encoded bytes, row_store.h) picks one, so the winner does not depend on
  // how the rows were split into tasks. Rows with a null join key are
  // skipped; a null created column reads as created_ts_us 0. The file is
  // type-checked first (Validate).
  // With query.order_key set, rows arrive sorted by it (ascending bytes);
  // DuckDB sorts the latest rows, spilling to temp_directory beyond
  // memory_limit.
  // Plan: a hash aggregate of the latest (event ts, created ts) per key and a
  // semi join back to the rows; when those outgrow memory_limit (they hold
  // every key of the range and cannot spill) before any row reached the sink,
  // the scan reruns as a window over every row, which spills (slower; counted
  // in sort_fallbacks()).
  // Errors: as Validate; kInvalidArgument for an unreadable file or a list
  // with a null element (no Quiver value holds one); an order_key error with
  // its own code, the message prefixed "scanning <file>: order_key: ";
  // kResourceExhausted when even the window cannot fit; kInternal for other
  // DuckDB failures. Blocks until the sink has had every row.
  absl::Status ScanLatest(const LatestQuery& query, size_t batch_rows,
                          const std::function<absl::Status(std::vector<OfflineRow>&)>& sink);

  // The greatest value of TIMESTAMP column `column` over `files`, in µs
  // since the epoch; nullopt when no row has one. Reads that one column.
  // Errors: as Describe for a missing or unreadable file; kInvalidArgument
  // when the column is missing or not a timestamp (DuckDB's message).
  absl::StatusOr<std::optional<int64_t>> MaxTimestamp(const std::vector<std::string>& files,
                                                      const std::string& column);

  // Runs arbitrary SQL and returns the first column of the first row as text
  // ("" when there is no row or the value is NULL); for scripts and tests.
  // Errors: kInvalidArgument with DuckDB's message.
  absl::StatusOr<std::string> QueryScalar(const std::string& sql);

  // Scans that fell back from the hash join to the spilling window (see
  // ScanLatest) since Open. Thread-safe.
  uint64_t sort_fallbacks() const;

 private:
  class Impl;
  explicit OfflineStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quiver::storage

#endif  // QUIVER_STORAGE_OFFLINE_STORE_H_
