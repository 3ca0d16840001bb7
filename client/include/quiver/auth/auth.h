// Authentication and Feast's permission model, shared by every process that
// enforces them (the feature server today; nodes and the coordinator next).
//
// Identities come from a token file (`--auth-tokens FILE`, YAML, exact):
//   tokens: [{token: "...", user: "...", roles: [a, b]}]
// and travel as `Authorization: Bearer <token>` (HTTP) or the gRPC metadata
// `authorization: Bearer <token>`. Signed JWTs are a second, optional
// source (JwtVerifier). Without a token file or a JWT key authentication is
// off, as Feast's `no_auth`.
//
// The decision is Feast's (../shared/research/feast-compat.md §5.1,
// feast/permissions/enforcer.py and matcher.py): for a resource and an
// action, the permissions that match the resource (type, a name pattern
// that fully matches, required tags) and the action; one of them whose
// policy roles the identity holds grants; none matching denies; a registry
// without permissions allows every authenticated identity.
//
// Thread-safety: TokenStore and Authorizer are immutable after
// construction; share them.
#ifndef QUIVER_AUTH_AUTH_H_
#define QUIVER_AUTH_AUTH_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "quiver.pb.h"

namespace re2 {
class RE2;
}

namespace quiver::auth {

struct Identity {
  std::string user;
  std::vector<std::string> roles;
};

class TokenStore {
 public:
  // Reads the token file. Errors: kNotFound (no such file),
  // kInvalidArgument (malformed YAML, a missing token or user, a token
  // listed twice; the message names the entry, never the token). Not
  // retryable.
  static absl::StatusOr<std::shared_ptr<const TokenStore>> Load(const std::string& path);

  // The identity of an Authorization value ("Bearer <token>"; the scheme
  // case-insensitive); nullptr when the value is missing, malformed or the
  // token unknown.
  const Identity* Authenticate(std::string_view authorization) const;

 private:
  std::map<std::string, Identity, std::less<>> tokens_;
};

// The token of an Authorization value ("Bearer <token>", the scheme
// case-insensitive, surrounding blanks trimmed); empty when malformed.
std::string_view BearerToken(std::string_view authorization);

// JSON Web Tokens as a second source of identities (`--jwt-key FILE`,
// `--jwt-algorithm HS256|RS256`), verified with libjwt (Debian's). A token
// is accepted when its signature verifies with the key under exactly the
// configured algorithm (never "none", never the other one: no algorithm
// confusion), its `exp` (if any) is in the future and its `nbf` (if any)
// in the past. The identity: `sub` (else `preferred_username`) as the user,
// the `roles` claim (an array of strings) as the roles.
//
// Thread-safety: immutable after Load; Verify is reentrant.
class JwtVerifier {
 public:
  // `algorithm`: "HS256" (the file is the shared secret, bytes as they are)
  // or "RS256" (the file is the PEM public key). Errors: kNotFound (no
  // file), kInvalidArgument (empty file, another algorithm). Not retryable.
  static absl::StatusOr<std::shared_ptr<const JwtVerifier>> Load(const std::string& key_path,
                                                                 const std::string& algorithm);
  // The identity of a compact JWT; nullopt when it does not verify, has
  // expired, or has no user. `now_s`: seconds since the epoch (0: now).
  std::optional<Identity> Verify(std::string_view token, int64_t now_s = 0) const;

 private:
  std::string key_;
  int algorithm_ = 0;  // jwt_alg_t
};

// The names Feast uses ("FEATURE_VIEW", "READ_ONLINE", ...) and back.
const char* ResourceTypeName(quiver::v1::ResourceType type);
const char* ActionName(quiver::v1::AuthzAction action);
// Errors: kInvalidArgument naming the accepted names.
absl::StatusOr<quiver::v1::ResourceType> ParseResourceType(std::string_view name);
absl::StatusOr<quiver::v1::AuthzAction> ParseAction(std::string_view name);

struct Resource {
  quiver::v1::ResourceType type = quiver::v1::RESOURCE_TYPE_UNSPECIFIED;
  std::string name;
  std::map<std::string, std::string> tags;
};

// The resource of a feature view or on-demand view of `registry` (with its
// tags; a view that stores an on-demand view is that on-demand view), of a
// feature service, or of the project.
Resource FeatureViewResource(const quiver::v1::Registry& registry, const std::string& name);
Resource FeatureServiceResource(const std::string& name);
Resource ProjectResource(const quiver::v1::Registry& registry);

class Authorizer {
 public:
  // Compiles the registry's permissions. Errors: kInvalidArgument naming the
  // permission whose name pattern is not a valid RE2 expression (apply
  // refuses such a registry, so a served registry never fails).
  static absl::StatusOr<std::shared_ptr<const Authorizer>> Build(const quiver::v1::Registry& registry);
  ~Authorizer();

  // Feast's decision for `identity` doing `action` on `resource`. `why`
  // (optional) gets the reason of a denial.
  bool Allowed(const Identity& identity, const Resource& resource, quiver::v1::AuthzAction action,
               std::string* why = nullptr) const;

 private:
  Authorizer() = default;
  struct Compiled;
  std::vector<Compiled> permissions_;
  quiver::v1::Registry registry_;
};

}  // namespace quiver::auth

#endif  // QUIVER_AUTH_AUTH_H_
