// quiver::auth: the token file and Feast's permission decision
// (feast/permissions/enforcer.py, matcher.py: fullmatch of name patterns,
// required tags, all requested actions, AFFIRMATIVE policies; no
// permissions allows authenticated users; an unmatched resource is denied).
#include "quiver/auth/auth.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/temp_dir.h"

namespace quiver::auth {
namespace {

quiver::v1::Permission Permission(const std::string& name, std::vector<quiver::v1::ResourceType> types,
                                  std::vector<std::string> patterns, std::map<std::string, std::string> tags,
                                  std::vector<quiver::v1::AuthzAction> actions, std::vector<std::string> roles) {
  quiver::v1::Permission p;
  p.set_name(name);
  for (auto t : types) p.add_types(t);
  for (auto& n : patterns) p.add_name_patterns(n);
  for (auto& [k, v] : tags) (*p.mutable_required_tags())[k] = v;
  for (auto a : actions) p.add_actions(a);
  for (auto& r : roles) p.add_roles(r);
  return p;
}

TEST(Auth, TokenFileAndBearerHeaders) {
  quiver::testing::TempDir dir;
  std::ofstream(dir.File("t.yaml")) << "tokens:\n  - {token: \"abc\", user: alice, roles: [reader]}\n"
                                       "  - {token: \"xyz\", user: bob}\n";
  auto store = TokenStore::Load(dir.File("t.yaml"));
  ASSERT_TRUE(store.ok()) << store.status();
  const Identity* alice = (*store)->Authenticate("Bearer abc");
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->user, "alice");
  EXPECT_EQ(alice->roles, std::vector<std::string>{"reader"});
  EXPECT_NE((*store)->Authenticate("bearer xyz"), nullptr);  // the scheme is case-insensitive
  EXPECT_EQ((*store)->Authenticate("abc"), nullptr);
  EXPECT_EQ((*store)->Authenticate("Bearer "), nullptr);
  EXPECT_EQ((*store)->Authenticate("Bearer abcd"), nullptr);
  EXPECT_EQ((*store)->Authenticate(""), nullptr);
  for (const std::string bad : {"tokens: 3\n", "tokens: [{user: a}]\n", "tokens: [{token: a}]\n",
                                "tokens: [{token: a, user: b}, {token: a, user: c}]\n",
                                "tokens: [{token: a, user: b, role: [x]}]\n", "tokens: [\n"}) {
    std::ofstream(dir.File("bad.yaml")) << bad;
    auto s = TokenStore::Load(dir.File("bad.yaml")).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(std::string(s.message()).find("token: a"), std::string::npos);  // tokens stay secret
  }
  EXPECT_EQ(TokenStore::Load(dir.File("missing.yaml")).status().code(), absl::StatusCode::kNotFound);
}

TEST(Auth, FeastsDecision) {
  using namespace quiver::v1;
  Registry registry;
  auto* pii = registry.add_feature_views();
  pii->set_name("user_pii");
  (*pii->mutable_tags())["pii"] = "true";
  registry.add_feature_views()->set_name("user_stats");
  const Identity reader{"alice", {"reader"}}, pii_reader{"bob", {"pii_reader"}}, nobody{"eve", {}};

  // No permissions: every authenticated identity is allowed.
  auto open = Authorizer::Build(registry);
  ASSERT_TRUE(open.ok());
  EXPECT_TRUE((*open)->Allowed(nobody, FeatureViewResource(registry, "user_pii"), ACTION_READ_ONLINE));

  *registry.add_permissions() = Permission("stats", {RESOURCE_FEATURE_VIEW}, {"user_st.*"}, {},
                                           {ACTION_READ_ONLINE}, {"reader"});
  *registry.add_permissions() = Permission("pii", {RESOURCE_FEATURE_VIEW}, {}, {{"pii", "true"}},
                                           {ACTION_READ_ONLINE, ACTION_READ_OFFLINE}, {"pii_reader"});
  auto authz = Authorizer::Build(registry);
  ASSERT_TRUE(authz.ok()) << authz.status();
  const Resource stats = FeatureViewResource(registry, "user_stats");
  const Resource pii_view = FeatureViewResource(registry, "user_pii");
  EXPECT_TRUE((*authz)->Allowed(reader, stats, ACTION_READ_ONLINE));
  std::string why;
  EXPECT_FALSE((*authz)->Allowed(reader, pii_view, ACTION_READ_ONLINE, &why));  // matched, no role
  EXPECT_NE(why.find("no permission grants READ_ONLINE"), std::string::npos) << why;
  EXPECT_TRUE((*authz)->Allowed(pii_reader, pii_view, ACTION_READ_ONLINE));
  EXPECT_FALSE((*authz)->Allowed(pii_reader, stats, ACTION_READ_ONLINE));
  // An action no permission lists, a resource type none matches: denied.
  EXPECT_FALSE((*authz)->Allowed(reader, stats, ACTION_WRITE_ONLINE, &why));
  EXPECT_NE(why.find("no permission is defined"), std::string::npos) << why;
  EXPECT_FALSE((*authz)->Allowed(reader, FeatureServiceResource("svc"), ACTION_READ_ONLINE));
  // Name patterns match the whole name (re.fullmatch).
  EXPECT_FALSE((*authz)->Allowed(reader, FeatureViewResource(registry, "xuser_stats"), ACTION_READ_ONLINE));
  // Empty types and actions: every type and action.
  *registry.add_permissions() = Permission("admin", {}, {}, {}, {}, {"admin"});
  auto admin = Authorizer::Build(registry);
  ASSERT_TRUE(admin.ok());
  EXPECT_TRUE((*admin)->Allowed(Identity{"root", {"admin"}}, ProjectResource(registry), ACTION_UPDATE));
  // A bad pattern is refused when compiling.
  *registry.add_permissions() = Permission("bad", {}, {"("}, {}, {}, {"x"});
  EXPECT_EQ(Authorizer::Build(registry).status().code(), absl::StatusCode::kInvalidArgument);
  // Names both ways.
  EXPECT_EQ(*ParseAction("READ_ONLINE"), ACTION_READ_ONLINE);
  EXPECT_FALSE(ParseAction("READ").ok());
  EXPECT_EQ(*ParseResourceType("ON_DEMAND_FEATURE_VIEW"), RESOURCE_ON_DEMAND_FEATURE_VIEW);
  EXPECT_STREQ(ResourceTypeName(RESOURCE_PROJECT), "PROJECT");
}

}  // namespace
}  // namespace quiver::auth
