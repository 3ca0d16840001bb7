#include "quiver/coordinator/repo.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "common/temp_dir.h"

namespace quiver::coordinator {
namespace {

using ::testing::HasSubstr;

constexpr char kGood[] = R"(project: flights
entities:
  - {name: origin, join_key: origin, value_type: STRING, description: "departure airport"}
  - {name: destination, value_type: STRING}
sources:
  - {name: flights, path: data/flights.parquet, timestamp_field: date, created_timestamp_column: created}
)";

constexpr char kViews[] = R"(feature_views:
  - name: origin_delay_stats
    entities: [origin]
    ttl: 2d
    source: flights
    schema:
      - {name: avg_delay_1h, type: DOUBLE}
      - {name: flights_1h, type: INT64}
      - {name: recent, type: "LIST<FLOAT>"}
    tags: {team: ops}
    description: delay statistics per origin
    owner: ops@example.com
  - name: route_stats
    entities: [origin, destination]
    ttl: 0
    source: flights
    online: false
    schema:
      - {name: distance, type: INT64}
feature_services:
  - {name: delay_model_v1, features: ["origin_delay_stats:avg_delay_1h", "route_stats"]}
)";

class RepoTest : public ::testing::Test {
 protected:
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_.File(name)) << text;
  }
  // Loads a repo of the good files plus `extra` as z.yaml; returns the error.
  absl::Status LoadWith(const std::string& extra) {
    Write("a.yaml", kGood);
    Write("b.yml", kViews);
    Write("z.yaml", extra);
    return LoadRepository(dir_.path()).status();
  }
  quiver::testing::TempDir dir_;
};

TEST(ParseDurationTest, ParsesUnitsAndRejectsGarbage) {
  EXPECT_EQ(*ParseDuration("30s"), 30);
  EXPECT_EQ(*ParseDuration("5m"), 300);
  EXPECT_EQ(*ParseDuration("2h"), 7200);
  EXPECT_EQ(*ParseDuration("7d"), 7 * 86400);
  EXPECT_EQ(*ParseDuration("0"), 0);
  EXPECT_EQ(*ParseDuration("36500d"), int64_t{36500} * 86400);  // the 100-year cap
  for (const char* bad : {"", "s", "10", "-5s", "1.5h", "3w", "h2", "99999999999999999999d", "36501d",
                          "9223372036854775807s"}) {
    EXPECT_EQ(ParseDuration(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST_F(RepoTest, LoadsAndMergesFiles) {
  Write("a.yaml", kGood);
  Write("b.yml", kViews);
  Write("notes.txt", "not: yaml: at all: [");
  auto r = LoadRepository(dir_.path());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->project(), "flights");
  ASSERT_EQ(r->entities_size(), 2);
  EXPECT_EQ(r->entities(0).join_key(), "origin");
  EXPECT_EQ(r->entities(0).description(), "departure airport");
  EXPECT_EQ(r->entities(1).join_key(), "destination");  // defaults to the name
  EXPECT_EQ(r->entities(1).value_type(), v1::STRING);
  ASSERT_EQ(r->sources_size(), 1);
  EXPECT_EQ(r->sources(0).path(), dir_.path() + "/data/flights.parquet");
  EXPECT_EQ(r->sources(0).created_timestamp_column(), "created");
  ASSERT_EQ(r->feature_views_size(), 2);
  const auto& v = r->feature_views(0);
  EXPECT_EQ(v.name(), "origin_delay_stats");
  EXPECT_EQ(v.ttl_seconds(), 2 * 86400);
  EXPECT_TRUE(v.online());
  ASSERT_EQ(v.features_size(), 3);
  EXPECT_EQ(v.features(0).type(), v1::DOUBLE);
  EXPECT_EQ(v.features(1).type(), v1::INT64);
  EXPECT_EQ(v.features(2).type(), v1::FLOAT_LIST);
  EXPECT_EQ(v.tags().at("team"), "ops");
  EXPECT_EQ(v.owner(), "ops@example.com");
  EXPECT_FALSE(r->feature_views(1).online());
  EXPECT_EQ(r->feature_views(1).ttl_seconds(), 0);
  EXPECT_EQ(r->feature_views(1).entities_size(), 2);
  ASSERT_EQ(r->feature_services_size(), 1);
  EXPECT_EQ(r->feature_services(0).features(1), "route_stats");
  EXPECT_TRUE(ValidateRegistry(*r).ok());
}

TEST_F(RepoTest, KeepsGlobsAndAbsolutePaths) {
  Write("a.yaml", R"(project: p
sources:
  - {name: s1, path: "data/*.parquet", timestamp_field: ts}
  - {name: s2, path: /abs/dir, timestamp_field: ts}
  - {name: s3, path: ../other/x.parquet, timestamp_field: ts}
)");
  auto r = LoadRepository(dir_.path());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->sources(0).path(), dir_.path() + "/data/*.parquet");
  EXPECT_EQ(r->sources(1).path(), "/abs/dir");
  EXPECT_EQ(r->sources(2).path(),
            std::filesystem::path(dir_.path()).parent_path().string() + "/other/x.parquet");
}

TEST_F(RepoTest, MissingFolderOrNoYamlIsNotFound) {
  EXPECT_EQ(LoadRepository(dir_.File("nope")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(LoadRepository(dir_.path()).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RepoTest, MalformedYamlNamesFileAndLine) {
  Write("bad.yaml", "project: p\nentities:\n  - {name: x, value_type: STRING\n  - oops: [\n");
  auto s = LoadRepository(dir_.path()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("bad.yaml:"));
}

struct BadCase {
  const char* name;
  const char* yaml;
  const char* message;  // expected in the error
};

TEST_F(RepoTest, RejectsBadInputWithClearErrors) {
  const BadCase cases[] = {
      {"unknown top key", "colour: red\n", "z.yaml:1:1: unknown key 'colour'"},
      {"unknown entity key", "entities:\n  - {name: e, value_type: INT64, colour: red}\n",
       "z.yaml:2:34: unknown key 'colour' in entity"},
      {"bad entity type", "entities:\n  - {name: e, value_type: INT65}\n",
       "z.yaml:2:27: unknown type 'INT65'"},
      {"bad feature type",
       "feature_views:\n  - {name: w, entities: [origin], source: flights, schema: [{name: f, type: "
       "LIST<DATE>}]}\n",
       "unknown type 'LIST<DATE>'"},
      {"bad ttl",
       "feature_views:\n  - {name: w, entities: [origin], source: flights, ttl: 3w, schema: [{name: "
       "f, type: INT64}]}\n",
       "z.yaml:2:57: bad duration '3w'"},
      {"entities not a list", "entities: {name: e}\n", "'entities' must be a list"},
      {"schema entry not a map",
       "feature_views:\n  - {name: w, entities: [origin], source: flights, schema: [f]}\n",
       "schema entry must be a mapping"},
      {"online not bool",
       "feature_views:\n  - {name: w, entities: [origin], source: flights, online: maybe, schema: "
       "[{name: f, type: INT64}]}\n",
       "'online' must be true or false"},
      {"missing required key", "sources:\n  - {name: s, path: x.parquet}\n",
       "source needs 'timestamp_field'"},
      {"two projects", "project: other\n", "project 'other' differs"},
      {"unknown entity in view",
       "feature_views:\n  - {name: w, entities: [plane], source: flights, schema: [{name: f, type: "
       "INT64}]}\n",
       "feature view 'w': unknown entity 'plane'"},
      {"unknown source in view",
       "feature_views:\n  - {name: w, entities: [origin], source: trains, schema: [{name: f, type: "
       "INT64}]}\n",
       "feature view 'w': unknown source 'trains'"},
      {"feature named like join key",
       "feature_views:\n  - {name: w, entities: [origin], source: flights, schema: [{name: origin, "
       "type: INT64}]}\n",
       "named like a join key"},
      {"unknown feature in service",
       "feature_services:\n  - {name: s, features: [\"origin_delay_stats:nope\"]}\n",
       "feature service 's': reference 'origin_delay_stats:nope' names an unknown feature"},
      {"unknown view in service", "feature_services:\n  - {name: s, features: [ghost]}\n",
       "names an unknown feature view"},
      {"duplicate entity", "entities:\n  - {name: origin, value_type: STRING}\n",
       "entity 'origin': defined more than once"},
      {"duplicate view",
       "feature_views:\n  - {name: route_stats, entities: [origin], source: flights, schema: [{name: "
       "f, type: INT64}]}\n",
       "feature view 'route_stats': defined more than once"},
      {"duplicate feature",
       "feature_views:\n  - {name: w, entities: [origin], source: flights, schema: [{name: f, type: "
       "INT64}, {name: f, type: DOUBLE}]}\n",
       "feature 'f' defined twice"},
      {"not a mapping", "- just\n- a list\n", "must be a YAML mapping"},
  };
  for (const auto& c : cases) {
    absl::Status s = LoadWith(c.yaml);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message)) << c.name;
  }
}

TEST_F(RepoTest, OnDemandViewsAreTypeCheckedAtApply) {
  auto load = [&](const std::string& odfv) {
    Write("a.yaml", kGood);
    Write("b.yml", kViews);
    Write("z.yaml", "on_demand_feature_views:\n" + odfv);
    return LoadRepository(dir_.path());
  };
  auto good = load(
      "  - name: derived\n    sources: [origin_delay_stats, route_stats]\n"
      "    request_schema: [{name: slack, type: DOUBLE}]\n    write_to_online_store: false\n"
      "    schema:\n      - {name: hours, type: DOUBLE, expression: \"avg_delay_1h / 60\"}\n"
      "      - {name: busy, type: BOOL, expression: \"flights_1h > 10 and slack < 5\"}\n"
      "      - {name: far, type: DOUBLE, expression: \"distance * 2\"}\n");
  ASSERT_TRUE(good.ok()) << good.status();
  ASSERT_EQ(good->on_demand_feature_views_size(), 1);
  EXPECT_EQ(good->on_demand_feature_views(0).features(2).expression(), "distance * 2");
  EXPECT_TRUE(ValidateRegistry(*good).ok()) << ValidateRegistry(*good);
  struct Case {
    std::string odfv, message;
  };
  const std::vector<Case> cases = {
      {"  - {name: d, sources: [nope], schema: [{name: x, type: INT64, expression: \"1\"}]}\n",
       "on-demand feature view 'd': unknown source feature view 'nope'"},
      {"  - {name: d, sources: [route_stats], schema: [{name: x, type: INT64, expression: \"distance +\"}]}\n",
       "on-demand feature view 'd': feature 'x': at position 11: unexpected end"},
      {"  - {name: d, sources: [route_stats], schema: [{name: x, type: BOOL, expression: \"distance\"}]}\n",
       "feature 'x' is declared BOOL but its expression is INT64"},
      {"  - {name: d, sources: [route_stats], schema: [{name: x, type: BYTES, expression: \"'a'\"}]}\n",
       "must be INT64, DOUBLE, BOOL or STRING"},
      {"  - {name: route_stats, sources: [route_stats], schema: [{name: x, type: INT64, expression: \"1\"}]}\n",
       "has the name of a feature view"},
      {"  - {name: d, sources: [route_stats, origin_delay_stats], write_to_online_store: true, schema: [{name: x, type: INT64, expression: \"1\"}]}\n",
       "needs exactly one source view and no request_schema"},
      {"  - {name: d, sources: [route_stats], write_to_online_store: true, request_schema: [{name: r, type: INT64}], schema: [{name: x, type: INT64, expression: \"r\"}]}\n",
       "needs exactly one source view and no request_schema"},
      {"  - {name: route_stats, sources: [route_stats], write_to_online_store: true, schema: [{name: x, type: INT64, expression: \"1\"}]}\n",
       "defined more than once"},
  };
  for (const Case& c : cases) {
    auto r = load(c.odfv);  // loading validates too
    const absl::Status s = r.ok() ? ValidateRegistry(*r) : r.status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.odfv;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message));
  }
  // Malformed YAML is the parser's.
  auto bad = load("  - {name: d, sources: route_stats, schema: []}\n");
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("'sources' must be a list"));
}

TEST_F(RepoTest, AnOnDemandViewWrittenToTheOnlineStoreGetsTheFeatureViewThatStoresIt) {
  Write("a.yaml", kGood);
  Write("b.yml", kViews);
  Write("z.yaml",
        "on_demand_feature_views:\n  - name: far\n    sources: [route_stats]\n"
        "    write_to_online_store: true\n"
        "    schema: [{name: km, type: DOUBLE, expression: \"distance * 1.609\"}]\n");
  auto r = LoadRepository(dir_.path());
  ASSERT_TRUE(r.ok()) << r.status();
  const v1::FeatureView* route = nullptr;
  const v1::FeatureView* stored = nullptr;
  for (const auto& v : r->feature_views()) {
    if (v.name() == "route_stats") route = &v;
    if (v.name() == "far") stored = &v;
  }
  ASSERT_NE(route, nullptr);
  ASSERT_NE(stored, nullptr);
  // Keyed, sourced and expiring as its source view; features as its schema.
  EXPECT_EQ(stored->on_demand_source_view(), "route_stats");
  EXPECT_EQ(stored->source(), route->source());
  EXPECT_EQ(stored->ttl_seconds(), route->ttl_seconds());
  EXPECT_THAT(std::vector<std::string>(stored->entities().begin(), stored->entities().end()),
              ::testing::ElementsAreArray(route->entities()));
  ASSERT_EQ(stored->features_size(), 1);
  EXPECT_EQ(stored->features(0).name(), "km");
  EXPECT_EQ(stored->features(0).type(), v1::DOUBLE);
  EXPECT_TRUE(stored->online());
  // A registry sent without it (or with it changed) is refused.
  v1::Registry without = *r;
  without.mutable_feature_views()->RemoveLast();
  EXPECT_THAT(std::string(ValidateRegistry(without).message()),
              HasSubstr("lacks the feature view that stores it"));
  v1::Registry changed = *r;
  changed.mutable_feature_views(changed.feature_views_size() - 1)->set_ttl_seconds(1);
  EXPECT_FALSE(ValidateRegistry(changed).ok());
  v1::Registry orphan = *r;
  orphan.mutable_on_demand_feature_views()->Clear();
  EXPECT_THAT(std::string(ValidateRegistry(orphan).message()),
              HasSubstr("stores an on-demand feature view that the registry lacks"));
}

TEST_F(RepoTest, PushSourcesFeedKnownFeatureViews) {
  Write("a.yaml", kGood);
  Write("b.yml", kViews);
  Write("p.yaml", "push_sources:\n  - {name: live, feature_views: [route_stats], description: d}\n");
  auto r = LoadRepository(dir_.path());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->push_sources_size(), 1);
  EXPECT_EQ(r->push_sources(0).feature_views(0), "route_stats");
  Write("p.yaml", "push_sources:\n  - {name: live, feature_views: [nope]}\n");
  EXPECT_THAT(std::string(LoadRepository(dir_.path()).status().message()),
              HasSubstr("push source 'live': names 'nope'"));
  Write("p.yaml", "push_sources:\n  - {name: live, feature_views: route_stats}\n");
  EXPECT_THAT(std::string(LoadRepository(dir_.path()).status().message()),
              HasSubstr("'feature_views' must be a list"));
}

TEST_F(RepoTest, ProjectIsRequired) {
  Write("a.yaml", "entities:\n  - {name: e, value_type: INT64}\n");
  auto s = LoadRepository(dir_.path()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("project"));
}

TEST_F(RepoTest, DiffReportsEveryObjectInKindAndNameOrder) {
  Write("a.yaml", kGood);
  Write("b.yml", kViews);
  auto current = LoadRepository(dir_.path());
  ASSERT_TRUE(current.ok()) << current.status();
  v1::Registry next = *current;
  next.mutable_feature_views(0)->mutable_features(0)->set_type(v1::FLOAT);  // updated
  next.mutable_feature_views(1)->set_schema_version(7);  // not compared: unchanged
  next.mutable_entities()->RemoveLast();  // destination deleted
  next.mutable_feature_views(1)->mutable_entities()->RemoveLast();
  auto* e = next.add_entities();  // created
  e->set_name("airline");
  std::vector<std::string> got;
  for (const auto& c : DiffRegistry(*current, next)) {
    got.push_back(c.kind() + "/" + c.name() + "/" + c.action());
  }
  EXPECT_THAT(got, ::testing::ElementsAre(
                       "entity/airline/created", "entity/destination/deleted",
                       "entity/origin/unchanged", "data_source/flights/unchanged",
                       "feature_view/origin_delay_stats/updated", "feature_view/route_stats/updated",
                       "feature_service/delay_model_v1/unchanged"));
  // Against an empty registry everything is created.
  for (const auto& c : DiffRegistry(v1::Registry(), *current)) EXPECT_EQ(c.action(), "created");
}

}  // namespace
}  // namespace quiver::coordinator
