// Loads the benchmark dataset (quiver/bench/gen/dataset.h) into Redis in
// Feast's online layout (feast_layout.h), as `feast materialize` would leave
// it: for each view, the latest row per entity (greatest event_timestamp, ties
// broken by the greatest created; computed by DuckDB in SQL) becomes one
// HSET <key> _ts:<view> <Timestamp> <mmh3(view:f0)> <Value> ... per entity.
//
// Differences from Feast's writer that do not change what is stored: Feast
// first reads each key's _ts field (HMGET) to skip older rows; here every row
// is already the latest and Redis is expected to be empty (or hold an earlier
// load of the same data), so the loader only writes. Commands are pipelined
// over one hiredis connection in batches (Feast's redis-py pipeline sends one
// batch per view chunk).
//
// Thread-safety: LoadFeastRedis is reentrant; it blocks until done.
#ifndef QUIVER_BENCH_FEAST_REDIS_LOADER_H_
#define QUIVER_BENCH_FEAST_REDIS_LOADER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace quiver::bench::feast {

struct LoadOptions {
  std::string data_dir;  // the folder quiver-bench-gen wrote (fv_XX.parquet)
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string project = "bench";
  int batch_commands = 1000;  // HSETs per pipelined batch; two batches in flight
  int duckdb_threads = 0;     // 0: DuckDB's default (one per core)
  int timeout_ms = 60000;     // connect and per-reply timeout
};

struct LoadResult {
  int64_t entities = 0;  // distinct entities of the largest view
  int views = 0;
  int64_t commands = 0;       // HSETs sent
  double seconds = 0;         // wall time of the whole load
  double used_memory_mb = 0;  // Redis INFO memory used_memory after the load; unit: MiB
};

// Errors: kInvalidArgument (missing or mistyped Parquet files, bad options),
// kUnavailable (Redis unreachable or the connection lost), kInternal (Redis
// answered an HSET with an error).
absl::StatusOr<LoadResult> LoadFeastRedis(const LoadOptions& options);

// Redis's INFO memory used_memory. unit: MiB.
// Errors: kUnavailable (cannot connect or no used_memory field).
absl::StatusOr<double> RedisUsedMemoryMb(const std::string& host, int port);

}  // namespace quiver::bench::feast

#endif  // QUIVER_BENCH_FEAST_REDIS_LOADER_H_
