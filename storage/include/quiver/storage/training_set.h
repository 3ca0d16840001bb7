// Training sets from the registry, in-process: the C++ API behind
// `quiverctl get-historical`, for services that build training sets without
// the CLI (Feast's FeatureStore.get_historical_features;
// ../shared/research/feast-compat.md §3). It turns feature references or a
// feature service into a HistoricalRequest (historical.h) and runs it.
//
// Thread-safety: the functions are pure or use only their arguments;
// GetHistoricalFeatures may run concurrently on one HistoricalStore.
#ifndef QUIVER_STORAGE_TRAINING_SET_H_
#define QUIVER_STORAGE_TRAINING_SET_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quiver/client/registry_index.h"
#include "quiver/storage/historical.h"

namespace quiver::storage {

// What a training set holds and where it goes.
struct TrainingSetSpec {
  // Feature references ("view:feature", "view", "odfv:feature"), or, when
  // empty, the features of `feature_service`.
  std::vector<std::string> features;
  std::string feature_service;
  // Output columns "view__feature" instead of "feature".
  bool full_feature_names = false;
  // A CSV or Parquet file of entity rows (HistoricalRequest::entities_path).
  std::string entities_path;
  // A file; Parquet when the name ends in ".parquet", CSV otherwise.
  std::string output_path;
};

// The request for `features` (resolved by `index`, in request order): each
// feature view once, in order of first use, a view an on-demand feature
// reads included; on-demand features evaluated by the client's evaluator
// (quiver::expr::OnDemandView). Errors: kNotFound for a view or source the
// registry lacks (a registry the coordinator accepted never fails). Not
// retryable.
absl::StatusOr<HistoricalRequest> BuildHistoricalRequest(
    const client::RegistryIndex& index, const std::vector<client::ResolvedFeature>& features,
    bool full_feature_names);

// Resolves `spec` against `index` and writes the training set (rows = entity
// rows, columns = entity columns + features). Errors: those of
// RegistryIndex::Resolve / ResolveService (kNotFound, kInvalidArgument: an
// unknown or malformed reference), kInvalidArgument if both or neither of
// `features` and `feature_service` are given, and those of
// HistoricalStore::Retrieve. None is retryable.
absl::StatusOr<HistoricalStats> GetHistoricalFeatures(HistoricalStore& store,
                                                      const client::RegistryIndex& index,
                                                      const TrainingSetSpec& spec);

}  // namespace quiver::storage

#endif  // QUIVER_STORAGE_TRAINING_SET_H_
