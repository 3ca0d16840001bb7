// The benchmark dataset (shared contract of bench/gen, bench/feast_redis and
// the lookup driver; /work/shared or the lead's DATASET brief): 25 feature
// views x 10 features keyed by one INT64 entity, modelled on Feast's own
// benchmark (feast-benchmarks: 250 features, 1M entities).
//
// GenerateDataset writes, with DuckDB, DIR/fv_00.parquet ... fv_24.parquet and
// DIR/feature_repo.yaml (project `bench`). Columns of each file: entity_id
// BIGINT, event_timestamp TIMESTAMP, created TIMESTAMP, f0..f9 with types by
// index INT64, DOUBLE, FLOAT, STRING, INT64, DOUBLE, FLOAT, STRING, INT64,
// DOUBLE, except fv_00.f9, a FLOAT[] embedding of kEmbeddingDim floats.
//
// Rows: each entity 1..N has one row per view; ~10% also have one older row.
// Event timestamps are whole seconds within the 7 days before `now_us`
// (Feast's Redis store keeps seconds only, so whole seconds compare exactly);
// created = event + 1..5 s. ~5% of values are NULL (a whole embedding may be
// NULL, never one of its elements). Values derive from DuckDB's hash() of
// (seed, view, entity, row, column): the same seed and DuckDB version give the
// same rows (in the same file order).
//
// Thread-safety: functions are reentrant; GenerateDataset writes files.
#ifndef QUIVER_BENCH_GEN_DATASET_H_
#define QUIVER_BENCH_GEN_DATASET_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quiver/keys/value.h"

namespace quiver::bench {

inline constexpr int kViews = 25;
inline constexpr int kFeaturesPerView = 10;
inline constexpr int kEmbeddingDim = 32;
inline constexpr char kProject[] = "bench";
inline constexpr char kJoinKey[] = "entity_id";

struct FeatureSpec {
  std::string name;  // "f0" .. "f9"
  ValueType type = ValueType::kInvalid;
};

struct ViewSpec {
  std::string name;                   // "fv_00" .. "fv_24"
  std::vector<FeatureSpec> features;  // kFeaturesPerView, in column order
};

// The 25 views in order, with their features and Quiver types.
const std::vector<ViewSpec>& BenchViews();

// "fv_07" for 7.
std::string ViewName(int view);

// The features of service `bench_50` (every feature of fv_00..fv_04) or
// `bench_250` (every view), as (view index, feature index) in view then
// feature order; `views` is 5 or 25.
std::vector<std::pair<int, int>> ServiceFeatures(int views);

struct GenOptions {
  int64_t entities = 0;  // N >= 1
  std::string out_dir;   // created if missing
  uint64_t seed = 1;
  std::optional<int64_t> now_us;  // unit: µs since the epoch; default: now
  int parallel_views = 2;         // views written at once, each by its own connection
};

struct GenResult {
  int64_t rows = 0;    // source rows over all files
  double seconds = 0;  // wall time of the whole generation
  std::string dir;     // absolute output folder
};

// Writes the dataset. Errors: kInvalidArgument (entities < 1, empty out_dir,
// DuckDB failures such as an unwritable folder), kInternal (DuckDB could not
// start).
absl::StatusOr<GenResult> GenerateDataset(const GenOptions& options);

// The Quiver repository YAML for files in `abs_dir` (absolute paths).
std::string FeatureRepoYaml(const std::string& abs_dir);

}  // namespace quiver::bench

#endif  // QUIVER_BENCH_GEN_DATASET_H_
