// Historical retrieval: the point-in-time join that builds training sets
// (Feast's get_historical_features; ../shared/research/feast-compat.md §3),
// run by DuckDB over the Parquet offline store.
//
// Rule (Feast's), per entity row and feature view: among the source rows with
// the same join keys and
//   feature_ts <= entity_ts, and feature_ts >= entity_ts - ttl when ttl != 0
// (both bounds inclusive), take the one with the greatest event timestamp,
// then the greatest created timestamp (a null created timestamp counts as 0,
// as materialization stores it), then, on an exact tie, the row the online
// store's last-writer-wins order keeps (the greater encoded row,
// row_codec.h), so that offline and online agree even then. No such row:
// every feature of the view is null.
//
// Plan (docs/architecture.md, "Historical retrieval"): the entity file is
// loaded once (row order kept); per view, one ASOF join of the entity rows
// with the source on the join keys and the event timestamp (when no key has
// two rows at one event time) or the packed (event, created) version (when
// some do), the TTL as a filter; exact ties (rare) are settled in C++ with
// the online store's codec; one COPY writes every view's matches in input
// order. DuckDB spills to `temp_directory` beyond `memory_limit`.
//
// Thread-safety: a HistoricalStore holds one DuckDB database; Retrieve may be
// called from several threads (each call has its own connection).
#ifndef QUIVER_STORAGE_HISTORICAL_H_
#define QUIVER_STORAGE_HISTORICAL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quiver/storage/offline_store.h"

namespace quiver::storage {

// One feature view of a request, as the registry defines it.
struct HistoricalView {
  std::string name;
  // The source's path: a Parquet file, a glob, or a directory (every
  // *.parquet below it), as OfflineStore::ExpandPath reads it.
  std::string source_path;
  std::string timestamp_field;
  std::string created_timestamp_column;  // empty: none (every row's is 0)
  // The view's join keys: columns of both the source and the entity file.
  std::vector<NamedType> join_keys;
  // Every feature of the view in schema order (the tie rule encodes whole
  // rows, as the online store stores them).
  std::vector<NamedType> schema;
  uint32_t schema_version = 0;
  int64_t ttl_seconds = 0;  // 0: no lower bound (Feast: "lives forever")
};

// One output column after the entity columns.
struct HistoricalFeature {
  size_t view = 0;     // index into HistoricalRequest::views
  size_t feature = 0;  // index into that view's schema
  std::string column;  // output column name ("feature" or "view__feature")
  // >= 0: the column is HistoricalRequest::on_demand[on_demand] instead
  // (view and feature unused).
  int on_demand = -1;
};

// A value an on-demand feature reads: a feature of a request view (as the
// join gives it: null where no row matched), or, when `request_field` is
// set, the entity file's column of that name cast to `type`.
struct HistoricalInput {
  size_t view = 0;
  size_t feature = 0;
  std::string request_field;
  ValueType type = ValueType::kInvalid;  // INT32, INT64, FLOAT, DOUBLE, BOOL or STRING
};

// An on-demand feature (Feast's on-demand feature view, issue 12): computed
// per output row by `evaluate`, the evaluator the client runs online
// (quiver::expr::OnDemandView::Evaluate), from one Value per input.
struct HistoricalOnDemand {
  ValueType type = ValueType::kInvalid;  // INT64, DOUBLE, BOOL or STRING
  std::vector<HistoricalInput> inputs;
  // Called from DuckDB's worker threads, concurrently: must be thread-safe,
  // and must return a Value of `type` (or null).
  std::function<Value(std::span<const Value>)> evaluate;
};

enum class HistoricalFormat { kCsv, kParquet };

struct HistoricalRequest {
  // A CSV file (header line; every join key of `views` and an
  // `event_timestamp` column: RFC 3339 / ISO 8601 text, no zone means UTC)
  // or a Parquet file (event_timestamp a TIMESTAMP or TIMESTAMP WITH TIME
  // ZONE), told apart by their contents (Parquet's magic bytes), not their
  // names. Other columns are carried through unchanged.
  std::string entities_path;
  std::vector<HistoricalView> views;
  std::vector<HistoricalFeature> features;  // output order
  std::vector<HistoricalOnDemand> on_demand;
  // Where the result goes: a file, or "/dev/stdout".
  std::string output_path;
  HistoricalFormat format = HistoricalFormat::kCsv;
};

struct HistoricalStats {
  uint64_t entity_rows = 0;  // = output rows
  uint64_t features = 0;     // feature columns after the entity columns
  uint64_t exact_ties = 0;   // (entity row, view) pairs settled by the codec
};

struct HistoricalOptions {
  int threads = 0;                 // 0: DuckDB's choice (one per core)
  std::string memory_limit;        // DuckDB's setting ("2GB"); empty: its default (80% of RAM)
  std::string temp_directory;      // where joins spill; empty: no spilling
};

class HistoricalStore {
 public:
  // Opens an in-memory DuckDB with `options`. Errors: kInternal if DuckDB
  // cannot start or the temp directory cannot be made.
  static absl::StatusOr<std::unique_ptr<HistoricalStore>> Open(HistoricalOptions options = {});
  ~HistoricalStore();

  // Writes the training set of `request`: every entity column unchanged, in
  // input order and with the input's row count, then `request.features` in
  // order (Parquet: registry types; CSV: their text, nulls empty). Rows
  // (entity rows) × (entity columns + features).
  // Errors (none retryable; nothing is written on an error found before the
  // join, a partial file may remain after a DuckDB failure):
  //   kInvalidArgument: the entity file is neither CSV nor Parquet or does not
  //     parse; it lacks a join key or `event_timestamp`; a timestamp or a join
  //     key value does not parse as its type (naming the column and the first
  //     bad value); an output column name is not unique (entity columns
  //     included); a source file's column has another type than the
  //     registry's (OfflineStore::Validate's message).
  //   kNotFound: the entity file or a source file is missing.
  //   kResourceExhausted: DuckDB ran out of memory even spilling.
  //   kInternal: other DuckDB failures.
  absl::StatusOr<HistoricalStats> Retrieve(const HistoricalRequest& request);

 private:
  class Impl;
  explicit HistoricalStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quiver::storage

#endif  // QUIVER_STORAGE_HISTORICAL_H_
