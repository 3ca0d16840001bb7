// Feature repositories: loading the YAML files of a repository into a registry
// (quiver.v1.Registry), validating it, and diffing two registries.
//
// Format (README "Feature repository"): one or more *.yaml files in a folder,
// each with any of the keys project, entities, sources, feature_views,
// feature_services; objects of one kind from several files are merged, a name
// defined twice is an error. TTLs are "<n>s|m|h|d" or 0 (never expires).
// Source paths are relative to the repository folder and stored absolute.
//
// Thread-safety: pure functions (they read files).
#ifndef QUIVER_COORDINATOR_REPO_H_
#define QUIVER_COORDINATOR_REPO_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quiver.pb.h"
#include "quiver/storage/offline_store.h"

namespace quiver::coordinator {

// Parses every *.yaml / *.yml file of `repo_dir` (not recursive).
// Errors: kNotFound (no such folder, or no YAML file in it),
// kInvalidArgument (malformed YAML, with file and line; unknown key; wrong
// type; bad TTL; then everything ValidateRegistry rejects).
absl::StatusOr<quiver::v1::Registry> LoadRepository(const std::string& repo_dir);

// Checks references and names: non-empty project; unique names per kind;
// valid types; each view names known entities (at least one) and a known
// source, has at least one feature, no feature named like a join key or the
// timestamp columns; services reference known views/features. Errors:
// kInvalidArgument naming the object.
absl::Status ValidateRegistry(const quiver::v1::Registry& registry);

// The feature view that stores an on-demand feature view with
// write_to_online_store (Feast's transform-on-write): named as it, keyed by
// its one source view's entities, with that view's data source, TTL and
// lateness, the on-demand view's features (schema order) and
// on_demand_source_view set. LoadRepository adds it; ValidateRegistry checks
// it is there and unchanged. Errors: kInvalidArgument if `odfv` has more
// than one source, request fields, or a source that is not a feature view
// read from a data source. Not retryable.
absl::StatusOr<quiver::v1::FeatureView> StoredOnDemandView(
    const quiver::v1::Registry& registry, const quiver::v1::OnDemandFeatureView& odfv);

// Checks `view`'s source against its Parquet files: the path expands to at
// least one file, and each holds the timestamp field (and created column) as
// TIMESTAMP, every join key of the view's entities and every feature with
// exactly its declared type. Returns the files. Used by quiverctl before apply
// and by the coordinator before planning a materialization.
// Errors: kInvalidArgument (unknown source or entity, column type mismatch,
// unreadable file) and kNotFound (nothing matches the path), each prefixed
// with "feature view '<name>': ".
absl::StatusOr<std::vector<std::string>> ValidateViewSource(const quiver::v1::Registry& registry,
                                                            const quiver::v1::FeatureView& view,
                                                            storage::OfflineStore& offline);

// ValidateViewSource for every online feature view; the first error.
absl::Status ValidateSources(const quiver::v1::Registry& registry,
                             storage::OfflineStore& offline);

// Parses "30s", "5m", "2h", "7d", "0". unit: seconds. At most 100 years.
// Errors: kInvalidArgument.
absl::StatusOr<int64_t> ParseDuration(const std::string& text);

// The changes that applying `next` over `current` makes, in kind then name
// order (unchanged objects included). Feature views' schema_version is not
// compared.
std::vector<quiver::v1::ObjectChange> DiffRegistry(const quiver::v1::Registry& current,
                                                   const quiver::v1::Registry& next);

}  // namespace quiver::coordinator

#endif  // QUIVER_COORDINATOR_REPO_H_
