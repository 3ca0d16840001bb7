// RocksDB statuses as absl::Status, for the storage library's own files.
#ifndef QUIVER_STORAGE_SRC_ROCKS_STATUS_H_
#define QUIVER_STORAGE_SRC_ROCKS_STATUS_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/status.h"

namespace quiver::storage::internal {

// `what` names the operation; RocksDB's own text follows it. Disk full (and
// memory limits) map to kResourceExhausted, corruption to kDataLoss,
// transient conditions to kUnavailable, anything else to kInternal.
inline absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string msg = absl::StrCat(std::string(what), ": ", s.ToString());
  if (s.IsNoSpace() || s.IsMemoryLimit()) return absl::ResourceExhaustedError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) return absl::UnavailableError(msg);
  return absl::InternalError(msg);
}

}  // namespace quiver::storage::internal

#endif  // QUIVER_STORAGE_SRC_ROCKS_STATUS_H_
