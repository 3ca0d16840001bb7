#include "quiver/client/registry_index.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_cluster.h"
#include "quiver/keys/entity_key.h"

namespace quiver::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::shared_ptr<const RegistryIndex> Index() {
  return RegistryIndex::Build(quiver::testing::SampleRegistry()).value();
}

std::vector<std::string> Refs(const std::vector<ResolvedFeature>& fs) {
  std::vector<std::string> out;
  for (const auto& f : fs) out.push_back(f.ref);
  return out;
}

TEST(RegistryIndexTest, IndexesViewsWithSortedJoinKeys) {
  auto index = Index();
  EXPECT_EQ(index->version(), 7u);
  const ViewInfo* route = index->FindView("route_stats");
  ASSERT_NE(route, nullptr);
  ASSERT_EQ(route->join_keys.size(), 2u);
  EXPECT_EQ(route->join_keys[0].join_key, "destination");  // declared second
  EXPECT_EQ(route->join_keys[1].join_key, "origin");
  EXPECT_EQ(route->join_keys[0].type, ValueType::kString);
  EXPECT_EQ(route->feature_index.at("carriers"), 2);
  EXPECT_THAT(route->feature_types,
              ElementsAre(ValueType::kDouble, ValueType::kInt64, ValueType::kStringList));
  EXPECT_EQ(index->FindView("nope"), nullptr);
  ASSERT_NE(index->FindEntity("user"), nullptr);
  EXPECT_EQ(index->FindEntity("user")->join_key(), "user_id");
  EXPECT_EQ(index->FindEntity("user_id"), nullptr);
}

TEST(RegistryIndexTest, ResolvesFeaturesAndWholeViewsInOrder) {
  auto resolved = Index()->Resolve({"user_stats:active", "route_stats"});
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_THAT(Refs(*resolved), ElementsAre("user_stats:active", "route_stats:avg_delay",
                                           "route_stats:flights", "route_stats:carriers"));
  EXPECT_EQ((*resolved)[0].view, "user_stats");
  EXPECT_EQ((*resolved)[0].feature, "active");
  EXPECT_EQ((*resolved)[0].index, 1);
  EXPECT_EQ((*resolved)[0].type, ValueType::kBool);
  EXPECT_EQ((*resolved)[3].index, 2);
}

TEST(RegistryIndexTest, ResolveErrorsNameTheReference) {
  auto index = Index();
  auto s = index->Resolve({"ghost_view:x"}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("ghost_view"));
  s = index->Resolve({"route_stats:ghost"}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("route_stats:ghost"));
  for (const char* bad : {"", ":avg_delay", "route_stats:", "route_stats:a:b"}) {
    s = index->Resolve({bad}).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  s = index->Resolve({"route_stats:flights", "route_stats"}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("route_stats:flights"));
}

TEST(RegistryIndexTest, ResolvesServices) {
  auto index = Index();
  auto resolved = index->ResolveService("delay_model_v1");
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_THAT(Refs(*resolved), ElementsAre("route_stats:avg_delay", "user_stats:score",
                                           "user_stats:active", "user_stats:last_seen"));
  auto s = index->ResolveService("ghost_service").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("ghost_service"));
}

TEST(RegistryIndexTest, EntityKeyUsesTheViewsJoinKeysOnly) {
  auto index = Index();
  const ViewInfo& route = *index->FindView("route_stats");
  std::map<std::string, Value> row = {{"origin", Value::String("LAX")},
                                      {"destination", Value::String("SFO")},
                                      {"user_id", Value::Int64(5)}};
  auto key = index->EntityKeyFor(route, row);
  ASSERT_TRUE(key.ok()) << key.status();
  auto parts = DecodeEntityKey(*key).value();
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].join_key, "destination");
  EXPECT_EQ(parts[0].value, Value::String("SFO"));
  EXPECT_EQ(parts[1].join_key, "origin");
  EXPECT_EQ(parts[1].value, Value::String("LAX"));

  const ViewInfo& user = *index->FindView("user_stats");
  auto user_key = index->EntityKeyFor(user, row);
  ASSERT_TRUE(user_key.ok());
  EXPECT_EQ(DecodeEntityKey(*user_key).value()[0].value, Value::Int64(5));
}

TEST(RegistryIndexTest, EntityKeyRejectsMissingWrongTypedAndNullValues) {
  auto index = Index();
  const ViewInfo& route = *index->FindView("route_stats");
  const ViewInfo& user = *index->FindView("user_stats");
  auto s = index->EntityKeyFor(route, {{"origin", Value::String("LAX")}}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("destination"));
  s = index->EntityKeyFor(user, {{"user_id", Value::Int32(5)}}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  s = index->EntityKeyFor(user, {{"user_id", Value::Null(ValueType::kInt64)}}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  s = index->EntityKeyFor(user, {{"user_id", Value{ValueType::kInt64, std::string("x")}}}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
}

TEST(RegistryIndexTest, BuildRejectsBrokenRegistries) {
  auto r = quiver::testing::SampleRegistry();
  r.mutable_feature_views(0)->add_entities("ghost");
  EXPECT_EQ(RegistryIndex::Build(r).status().code(), absl::StatusCode::kInvalidArgument);
  r = quiver::testing::SampleRegistry();
  r.mutable_feature_views(1)->mutable_features(0)->set_type(static_cast<quiver::v1::ValueType>(9));
  EXPECT_EQ(RegistryIndex::Build(r).status().code(), absl::StatusCode::kInvalidArgument);
  r = quiver::testing::SampleRegistry();
  r.mutable_entities(2)->set_value_type(quiver::v1::INT64_LIST);
  EXPECT_EQ(RegistryIndex::Build(r).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quiver::client
