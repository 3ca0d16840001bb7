// Authentication and permission checks of the feature server (quiver/auth):
// who is calling (a bearer token from --auth-tokens) and whether Feast's
// permissions let them do what a request does. Every decision is one audit
// log line (user, action, resource, allowed); denials are counted.
//
// Thread-safety: thread-safe (security::CallGuard caches the authorizer of
// the current registry version under a mutex).
#ifndef QUIVER_FEATURE_SERVER_ACCESS_H_
#define QUIVER_FEATURE_SERVER_ACCESS_H_

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "quiver/auth/auth.h"
#include "quiver/client/client.h"
#include "quiver/client/registry_index.h"
#include "quiver/security/security.h"

namespace prometheus {
class Counter;
}

namespace quiver::feature_server {

struct Denial {
  bool unauthenticated = false;  // true: 401 / UNAUTHENTICATED; false: 403 / PERMISSION_DENIED
  std::string message;
};

class Access {
 public:
  // `guard` disabled: authentication off (Feast's no_auth), everything allowed.
  explicit Access(std::unique_ptr<security::CallGuard> guard) : guard_(std::move(guard)) {}

  bool enabled() const { return guard_->enabled(); }

  // The caller of an Authorization value; a Denial (unauthenticated) when
  // it is missing or unknown. nullopt identity when authentication is off.
  absl::StatusOr<std::optional<auth::Identity>> Authenticate(std::string_view authorization,
                                                             Denial* denial) const;

  // Checks `wanted` (resource, action) for `identity` against `registry`'s
  // permissions; the first denial, or nullopt when all are allowed.
  std::optional<Denial> Authorize(const std::optional<auth::Identity>& identity,
                                  const client::RegistryIndex& registry,
                                  const std::vector<std::pair<auth::Resource, quiver::v1::AuthzAction>>& wanted);

 private:
  // The decision, the audit lines and the denial count (shared with the
  // nodes and the coordinator).
  std::unique_ptr<security::CallGuard> guard_;
};

using Wanted = std::vector<std::pair<auth::Resource, quiver::v1::AuthzAction>>;

// READ_ONLINE on the request's feature service, or on every view its
// references name (Feast: the service alone when one is named).
Wanted ReadResources(const client::RegistryIndex& registry, const client::OnlineRequest& request);
// WRITE_ONLINE on each of `views`.
Wanted WriteResources(const client::RegistryIndex& registry, const std::vector<std::string>& views);

}  // namespace quiver::feature_server

#endif  // QUIVER_FEATURE_SERVER_ACCESS_H_
