// Checks shared by the read (request_handler.cc) and write
// (request_handler_write.cc) paths of RequestHandler. Private to node/.
#ifndef QUIVER_NODE_SRC_REQUEST_HANDLER_INTERNAL_H_
#define QUIVER_NODE_SRC_REQUEST_HANDLER_INTERNAL_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "quiver/keys/entity_key.h"

namespace quiver::node {

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
