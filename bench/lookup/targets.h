// The systems the lookup benchmark compares, behind one interface: Quiver
// through its C++ client, and Feast's Redis layout read the way Feast's Go
// feature server reads it (bench/feast_redis).
//
// A result table is rows × features of quiver::Value (entity order, feature
// order); a feature that is missing, null or outside its TTL is a null of the
// declared type, so both systems' answers compare with ==.
//
// Thread-safety: a Target is used by one worker thread at a time; each worker
// owns its own (Quiver targets share one thread-safe client).
#ifndef QUIVER_BENCH_LOOKUP_TARGETS_H_
#define QUIVER_BENCH_LOOKUP_TARGETS_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quiver/client/client.h"
#include "quiver/client/registry_index.h"
#include "quiver/keys/value.h"

namespace quiver::bench {

using Table = std::vector<std::vector<Value>>;

// What one call asks for: a feature service, resolved to its features.
struct Workload {
  std::string name;         // "100x50"
  int rows = 1;             // entity rows per call
  std::string service;      // feature service
  std::vector<client::ResolvedFeature> features;
};

class Target {
 public:
  virtual ~Target() = default;
  // Looks up `entity_ids` (join key entity_id) for the workload's features.
  // `out` may be null (the timed path skips building a table where the
  // system allows). Errors: whatever the system reports for the call.
  virtual absl::Status Lookup(const Workload& w, std::span<const int64_t> entity_ids,
                              Table* out) = 0;
};

// Quiver: GetOnlineFeatures with the workload's feature service.
std::unique_ptr<Target> NewQuiverTarget(client::Client* client, std::chrono::milliseconds deadline);

// Feast on Redis; each target holds its own connection.
// Errors: kUnavailable when Redis cannot be reached.
absl::StatusOr<std::unique_ptr<Target>> NewRedisTarget(const std::string& host, int port,
                                                       const std::string& project,
                                                       const std::vector<Workload>& workloads);

}  // namespace quiver::bench

#endif  // QUIVER_BENCH_LOOKUP_TARGETS_H_
