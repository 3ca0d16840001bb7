// Checks shared by the read (request_handler.cc) and write
// (request_handler_write.cc) paths of RequestHandler. Private to node/.
#ifndef QUIVER_NODE_SRC_REQUEST_HANDLER_INTERNAL_H_
#define QUIVER_NODE_SRC_REQUEST_HANDLER_INTERNAL_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "quiver/keys/entity_key.h"
#include "quiver/node/request_handler.h"
#include "quiver/storage/row_store.h"

namespace quiver::node {

struct RequestHandler::IngestState {
  std::mutex mu;  // serializes the session's requests
  std::unique_ptr<storage::IngestSession> session;
  std::string view;
  uint32_t schema_version = 0;
  bool failed = false;  // an Append failed: the session only waits for its abort
  std::chrono::steady_clock::time_point last_used;
  // Guarded by the handler's ingest_mu_ (a barrier reads them while appends
  // run):
  std::map<uint32_t, uint64_t> min_epoch;  // partition -> oldest request epoch of its rows
  bool closing = false;  // CommitIngest took it: no more appends, no second commit
  bool closed = false;   // committed, aborted or dropped
  bool fenced = false;   // a barrier timed out on it: its commit is refused
};

// The partition of a row key: its first 4 bytes, u32 big-endian. `key` must
// hold at least 4 bytes.
inline uint32_t PartitionOfRowKey(std::string_view key) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(key[0])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(key[1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(key[2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(key[3]));
}

inline absl::Status CheckKey(std::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError("empty entity key");
  if (key.size() > kMaxEntityKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("entity key of ", key.size(),
                                                   " bytes exceeds the limit of ",
                                                   kMaxEntityKeyBytes));
  }
  return absl::OkStatus();
}

inline absl::Status UnknownView(const std::string& view) {
  return absl::NotFoundError(absl::StrCat("unknown feature view '", view, "'"));
}

}  // namespace quiver::node

#endif  // QUIVER_NODE_SRC_REQUEST_HANDLER_INTERNAL_H_
