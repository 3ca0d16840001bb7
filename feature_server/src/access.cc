// Access (access.h): the feature server's requests as security::CallGuard
// decisions, and the resources each request touches.
#include "access.h"

#include <set>

#include "absl/strings/str_cat.h"

namespace quiver::feature_server {

absl::StatusOr<std::optional<auth::Identity>> Access::Authenticate(std::string_view authorization,
                                                                   Denial* denial) const {
  auto identity = guard_->Authenticate(authorization);
  if (!identity.ok()) {
    denial->unauthenticated = true;
    denial->message = std::string(identity.status().message());
  }
  return identity;
}

std::optional<Denial> Access::Authorize(const std::optional<auth::Identity>& identity,
                                        const client::RegistryIndex& registry, const Wanted& wanted) {
  absl::Status s = guard_->Authorize(identity, registry.registry(), wanted);
  if (s.ok()) return std::nullopt;
  return Denial{false, std::string(s.message())};
}

Wanted ReadResources(const client::RegistryIndex& registry, const client::OnlineRequest& request) {
  Wanted out;
  if (!request.feature_service.empty()) {
    out.emplace_back(auth::FeatureServiceResource(request.feature_service), quiver::v1::ACTION_READ_ONLINE);
    return out;
  }
  std::set<std::string> seen;
  for (const std::string& ref : request.features) {
    const std::string view = ref.substr(0, ref.find(':'));
    if (seen.insert(view).second) {
      out.emplace_back(auth::FeatureViewResource(registry.registry(), view), quiver::v1::ACTION_READ_ONLINE);
    }
  }
  return out;
}

Wanted WriteResources(const client::RegistryIndex& registry, const std::vector<std::string>& views) {
  Wanted out;
  for (const std::string& view : views) {
    out.emplace_back(auth::FeatureViewResource(registry.registry(), view), quiver::v1::ACTION_WRITE_ONLINE);
  }
  return out;
}

}  // namespace quiver::feature_server
