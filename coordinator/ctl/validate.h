// Local checks quiverctl runs before it sends a repository to the coordinator,
// so that a bad repository is reported without a round trip and before
// anything changes.
//
// Thread-safety: not thread-safe (uses one OfflineStore).
#ifndef QUIVER_COORDINATOR_CTL_VALIDATE_H_
#define QUIVER_COORDINATOR_CTL_VALIDATE_H_

#include "absl/status/status.h"
#include "quiver.pb.h"
#include "quiver/storage/offline_store.h"

namespace quiver::ctl {

// Checks every online feature view's source against its Parquet files, as the
// coordinator does on apply: the path expands to at least one file, and each
// file holds the timestamp field (and created column) as TIMESTAMP and every
// join key of the view's entities and every feature with exactly its type.
// Errors: kInvalidArgument / kNotFound from OfflineStore, prefixed with the
// feature view's name.
absl::Status ValidateSources(const quiver::v1::Registry& registry,
                             storage::OfflineStore& store);

}  // namespace quiver::ctl

#endif  // QUIVER_COORDINATOR_CTL_VALIDATE_H_
