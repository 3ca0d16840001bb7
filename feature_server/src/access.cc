// Access (access.h): tokens, Feast's permission decision, the audit log.
#include "access.h"

#include <prometheus/counter.h>
#include <spdlog/spdlog.h>

#include <set>

#include "absl/strings/str_cat.h"

namespace quiver::feature_server {

absl::StatusOr<std::optional<auth::Identity>> Access::Authenticate(std::string_view authorization,
                                                                   Denial* denial) const {
  if (tokens_ == nullptr) return std::optional<auth::Identity>();
  const auth::Identity* identity = tokens_->Authenticate(authorization);
  if (identity == nullptr) {
    denial->unauthenticated = true;
    // Feast's messages (permissions/server/rest.py).
    denial->message = authorization.empty() ? "Missing authentication token"
                                            : "Invalid or expired access token";
    if (denials_ != nullptr) denials_->Increment();
    spdlog::info("audit user=- action=AUTHENTICATE resource=- allowed=false reason=\"{}\"", denial->message);
    return absl::UnauthenticatedError(denial->message);
  }
  return std::optional<auth::Identity>(*identity);
}

std::shared_ptr<const auth::Authorizer> Access::AuthorizerFor(const client::RegistryIndex& registry) {
  std::lock_guard<std::mutex> lock(mu_);
  if (authorizer_ == nullptr || version_ != registry.version()) {
    auto built = auth::Authorizer::Build(registry.registry());
    // A registry the coordinator accepted always compiles; if not, deny all.
    authorizer_ = built.ok() ? *built : nullptr;
    version_ = registry.version();
  }
  return authorizer_;
}

std::optional<Denial> Access::Authorize(
    const std::optional<auth::Identity>& identity, const client::RegistryIndex& registry,
    const Wanted& wanted) {
  if (!identity.has_value()) return std::nullopt;  // authentication off
  std::shared_ptr<const auth::Authorizer> authorizer = AuthorizerFor(registry);
  for (const auto& [resource, action] : wanted) {
    std::string why;
    const bool allowed = authorizer != nullptr && authorizer->Allowed(*identity, resource, action, &why);
    spdlog::info("audit user={} action={} resource={}:{} allowed={}", identity->user,
                 auth::ActionName(action), auth::ResourceTypeName(resource.type), resource.name, allowed);
    if (!allowed) {
      if (denials_ != nullptr) denials_->Increment();
      return Denial{false, absl::StrCat("Permission error:\n", identity->user, ": ",
                                        why.empty() ? "the registry's permissions do not compile" : why)};
    }
  }
  return std::nullopt;
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
