// Tokens and Feast's permission decision (quiver/auth/auth.h).
#include "quiver/auth/auth.h"

#include <jwt.h>
#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <filesystem>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace quiver::auth {

using quiver::v1::AuthzAction;
using quiver::v1::ResourceType;

namespace {

struct TypeName {
  ResourceType type;
  const char* name;
};
constexpr TypeName kTypes[] = {
    {quiver::v1::RESOURCE_FEATURE_VIEW, "FEATURE_VIEW"},
    {quiver::v1::RESOURCE_ON_DEMAND_FEATURE_VIEW, "ON_DEMAND_FEATURE_VIEW"},
    {quiver::v1::RESOURCE_FEATURE_SERVICE, "FEATURE_SERVICE"},
    {quiver::v1::RESOURCE_ENTITY, "ENTITY"},
    {quiver::v1::RESOURCE_DATA_SOURCE, "DATA_SOURCE"},
    {quiver::v1::RESOURCE_PROJECT, "PROJECT"},
};
struct ActionNameOf {
  AuthzAction action;
  const char* name;
};
constexpr ActionNameOf kActions[] = {
    {quiver::v1::ACTION_CREATE, "CREATE"},
    {quiver::v1::ACTION_DESCRIBE, "DESCRIBE"},
    {quiver::v1::ACTION_UPDATE, "UPDATE"},
    {quiver::v1::ACTION_DELETE, "DELETE"},
    {quiver::v1::ACTION_READ_ONLINE, "READ_ONLINE"},
    {quiver::v1::ACTION_READ_OFFLINE, "READ_OFFLINE"},
    {quiver::v1::ACTION_WRITE_ONLINE, "WRITE_ONLINE"},
    {quiver::v1::ACTION_WRITE_OFFLINE, "WRITE_OFFLINE"},
};

}  // namespace

const char* ResourceTypeName(ResourceType type) {
  for (const TypeName& t : kTypes) {
    if (t.type == type) return t.name;
  }
  return "UNSPECIFIED";
}

const char* ActionName(AuthzAction action) {
  for (const ActionNameOf& a : kActions) {
    if (a.action == action) return a.name;
  }
  return "UNSPECIFIED";
}

absl::StatusOr<ResourceType> ParseResourceType(std::string_view name) {
  std::vector<std::string> names;
  for (const TypeName& t : kTypes) {
    if (name == t.name) return t.type;
    names.push_back(t.name);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown resource type '", std::string(name), "' (expected ", absl::StrJoin(names, ", "), ")"));
}

absl::StatusOr<AuthzAction> ParseAction(std::string_view name) {
  std::vector<std::string> names;
  for (const ActionNameOf& a : kActions) {
    if (name == a.name) return a.action;
    names.push_back(a.name);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown action '", std::string(name), "' (expected ", absl::StrJoin(names, ", "), ")"));
}

absl::StatusOr<std::shared_ptr<const TokenStore>> TokenStore::Load(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("token file ", path, " not found"));
  }
  auto store = std::make_shared<TokenStore>();
  try {
    const YAML::Node root = YAML::LoadFile(path);
    const YAML::Node tokens = root.IsMap() ? root["tokens"] : YAML::Node();
    if (!tokens || !tokens.IsSequence()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": expected 'tokens:' with a list of {token, user, roles}"));
    }
    for (size_t i = 0; i < tokens.size(); ++i) {
      const YAML::Node t = tokens[i];
      const std::string where = absl::StrCat(path, ": tokens[", i, "]");
      if (!t.IsMap() || !t["token"] || !t["token"].IsScalar() || !t["user"] || !t["user"].IsScalar()) {
        return absl::InvalidArgumentError(absl::StrCat(where, " needs a token and a user"));
      }
      for (const auto& kv : t) {
        const std::string key = kv.first.as<std::string>();
        if (key != "token" && key != "user" && key != "roles") {
          return absl::InvalidArgumentError(absl::StrCat(where, ": unknown key '", key, "'"));
        }
      }
      Identity identity;
      identity.user = t["user"].as<std::string>();
      if (t["roles"]) {
        if (!t["roles"].IsSequence()) return absl::InvalidArgumentError(absl::StrCat(where, ": roles must be a list"));
        for (const auto& r : t["roles"]) {
          if (!r.IsScalar()) return absl::InvalidArgumentError(absl::StrCat(where, ": a role must be a name"));
          identity.roles.push_back(r.as<std::string>());
        }
      }
      const std::string token = t["token"].as<std::string>();
      if (token.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": empty token"));
      if (!store->tokens_.emplace(token, std::move(identity)).second) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": the same token is listed twice"));
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
  return std::shared_ptr<const TokenStore>(std::move(store));
}

std::string_view BearerToken(std::string_view authorization) {
  constexpr std::string_view kBearer = "bearer ";
  if (authorization.size() <= kBearer.size() ||
      !absl::EqualsIgnoreCase(absl::string_view(authorization.data(), kBearer.size()),
                              absl::string_view(kBearer.data(), kBearer.size()))) {
    return {};
  }
  const std::string_view rest = authorization.substr(kBearer.size());
  const absl::string_view token = absl::StripAsciiWhitespace(absl::string_view(rest.data(), rest.size()));
  return std::string_view(token.data(), token.size());
}

const Identity* TokenStore::Authenticate(std::string_view authorization) const {
  const std::string_view token = BearerToken(authorization);
  if (token.empty()) return nullptr;
  auto it = tokens_.find(token);
  return it == tokens_.end() ? nullptr : &it->second;
}

absl::StatusOr<std::shared_ptr<const JwtVerifier>> JwtVerifier::Load(const std::string& key_path,
                                                                     const std::string& algorithm) {
  auto verifier = std::make_shared<JwtVerifier>();
  if (algorithm == "HS256") {
    verifier->algorithm_ = JWT_ALG_HS256;
  } else if (algorithm == "RS256") {
    verifier->algorithm_ = JWT_ALG_RS256;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--jwt-algorithm must be HS256 or RS256, not '", algorithm, "'"));
  }
  std::ifstream in(key_path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the JWT key ", key_path));
  verifier->key_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (verifier->key_.empty()) return absl::InvalidArgumentError(absl::StrCat("the JWT key ", key_path, " is empty"));
  return std::shared_ptr<const JwtVerifier>(std::move(verifier));
}

std::optional<Identity> JwtVerifier::Verify(std::string_view token, int64_t now_s) const {
  // A compact JWS: three base64url parts; anything else is not ours to parse.
  if (token.empty() || token.size() > 16384 || std::count(token.begin(), token.end(), '.') != 2) {
    return std::nullopt;
  }
  const std::string text(token);
  jwt_t* jwt = nullptr;
  if (jwt_decode(&jwt, text.c_str(), reinterpret_cast<const unsigned char*>(key_.data()),
                 static_cast<int>(key_.size())) != 0 ||
      jwt == nullptr) {
    return std::nullopt;
  }
  std::unique_ptr<jwt_t, void (*)(jwt_t*)> owned(jwt, jwt_free);
  if (jwt_get_alg(jwt) != static_cast<jwt_alg_t>(algorithm_)) return std::nullopt;
  if (now_s == 0) now_s = static_cast<int64_t>(std::time(nullptr));
  errno = 0;
  const long exp = jwt_get_grant_int(jwt, "exp");
  if (errno == 0 && exp <= now_s) return std::nullopt;
  errno = 0;
  const long nbf = jwt_get_grant_int(jwt, "nbf");
  if (errno == 0 && nbf > now_s) return std::nullopt;
  Identity identity;
  const char* sub = jwt_get_grant(jwt, "sub");
  if (sub == nullptr) sub = jwt_get_grant(jwt, "preferred_username");
  if (sub == nullptr || *sub == '\0') return std::nullopt;
  identity.user = sub;
  if (char* roles = jwt_get_grants_json(jwt, "roles")) {
    try {
      YAML::Node list = YAML::Load(roles);  // JSON is YAML
      if (list.IsSequence()) {
        for (const auto& role : list) {
          if (role.IsScalar()) identity.roles.push_back(role.as<std::string>());
        }
      }
    } catch (const YAML::Exception&) {
    }
    free(roles);
  }
  return identity;
}

struct Authorizer::Compiled {
  const quiver::v1::Permission* permission = nullptr;
  std::vector<std::unique_ptr<re2::RE2>> patterns;
};

Authorizer::~Authorizer() = default;

absl::StatusOr<std::shared_ptr<const Authorizer>> Authorizer::Build(const quiver::v1::Registry& registry) {
  std::shared_ptr<Authorizer> out(new Authorizer());
  out->registry_ = registry;
  for (const auto& p : out->registry_.permissions()) {
    Compiled c;
    c.permission = &p;
    for (const std::string& pattern : p.name_patterns()) {
      auto re = std::make_unique<re2::RE2>(pattern, re2::RE2::Quiet);
      if (!re->ok()) {
        return absl::InvalidArgumentError(absl::StrCat("permission '", p.name(), "': name pattern '", pattern,
                                                       "' is not a regular expression: ", re->error()));
      }
      c.patterns.push_back(std::move(re));
    }
    out->permissions_.push_back(std::move(c));
  }
  return std::shared_ptr<const Authorizer>(std::move(out));
}

bool Authorizer::Allowed(const Identity& identity, const Resource& resource, AuthzAction action,
                         std::string* why) const {
  if (permissions_.empty()) return true;  // Feast: no permissions, authenticated users allowed
  bool matched = false;
  for (const Compiled& c : permissions_) {
    const quiver::v1::Permission& p = *c.permission;
    if (p.types_size() > 0 &&
        std::find(p.types().begin(), p.types().end(), resource.type) == p.types().end()) {
      continue;
    }
    if (!c.patterns.empty() &&
        std::none_of(c.patterns.begin(), c.patterns.end(),
                     [&](const auto& re) { return re2::RE2::FullMatch(resource.name, *re); })) {
      continue;
    }
    bool tags_ok = true;
    for (const auto& [key, value] : p.required_tags()) {
      auto it = resource.tags.find(key);
      if (it == resource.tags.end() || it->second != value) tags_ok = false;
    }
    if (!tags_ok) continue;
    if (p.actions_size() > 0 && std::find(p.actions().begin(), p.actions().end(), action) == p.actions().end()) {
      continue;
    }
    matched = true;
    for (const std::string& role : p.roles()) {
      if (std::find(identity.roles.begin(), identity.roles.end(), role) != identity.roles.end()) return true;
    }
  }
  if (why != nullptr) {
    *why = matched ? absl::StrCat("no permission grants ", ActionName(action), " on ",
                                  ResourceTypeName(resource.type), " ", resource.name, " to a role of ",
                                  identity.user)
                   : absl::StrCat("no permission is defined for ", ActionName(action), " on ",
                                  ResourceTypeName(resource.type), " ", resource.name);
  }
  return false;
}

Resource FeatureViewResource(const quiver::v1::Registry& registry, const std::string& name) {
  Resource r;
  r.name = name;
  for (const auto& v : registry.feature_views()) {
    if (v.name() != name) continue;
    // A view storing an on-demand view is the on-demand view to permissions.
    r.type = v.on_demand_source_view().empty() ? quiver::v1::RESOURCE_FEATURE_VIEW
                                               : quiver::v1::RESOURCE_ON_DEMAND_FEATURE_VIEW;
    r.tags.insert(v.tags().begin(), v.tags().end());
    return r;
  }
  r.type = quiver::v1::RESOURCE_ON_DEMAND_FEATURE_VIEW;
  return r;
}

Resource FeatureServiceResource(const std::string& name) {
  return Resource{quiver::v1::RESOURCE_FEATURE_SERVICE, name, {}};
}

Resource ProjectResource(const quiver::v1::Registry& registry) {
  return Resource{quiver::v1::RESOURCE_PROJECT, registry.project(), {}};
}

}  // namespace quiver::auth
