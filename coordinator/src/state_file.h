// Durable storage of the coordinator's state in one file.
#ifndef QUIVER_COORDINATOR_SRC_STATE_FILE_H_
#define QUIVER_COORDINATOR_SRC_STATE_FILE_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quiver.pb.h"

namespace quiver::coordinator {

// nullopt when `path` does not exist. Errors: kDataLoss (unreadable or not a
// CoordinatorState).
absl::StatusOr<std::optional<quiver::v1::CoordinatorState>> ReadStateFile(const std::string& path);

// Replaces `path` atomically: writes path.tmp, fsyncs it, renames it over
// `path`, fsyncs the folder. Errors: kInternal naming the failed step.
absl::Status WriteStateFile(const std::string& path, const quiver::v1::CoordinatorState& state);

}  // namespace quiver::coordinator

#endif  // QUIVER_COORDINATOR_SRC_STATE_FILE_H_
