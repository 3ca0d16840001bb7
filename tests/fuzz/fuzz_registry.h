// The registry the lookup server, feature server and seed generator share
// (tests/fuzz/README.md).
//
// Thread-safety: FuzzRegistry() returns a fresh object.
#ifndef QUIVER_TESTS_FUZZ_FUZZ_REGISTRY_H_
#define QUIVER_TESTS_FUZZ_FUZZ_REGISTRY_H_

#include <string>

#include "quiver.pb.h"
#include "quiver/keys/value.h"

namespace quiver::fuzz {

// The registry the lookup server and feature server targets serve:
//   user_stats  [user: user_id INT64]  every scalar type and two lists, no TTL
//   route_stats [origin, destination: STRING]  delay DOUBLE, flights INT64, TTL 1 h
//   push source user_push -> user_stats; feature service svc;
//   on-demand user_derived over user_stats with request fields boost DOUBLE,
//   tag STRING, n INT32, flag BOOL.
inline quiver::v1::Registry FuzzRegistry() {
  quiver::v1::Registry r;
  r.set_project("fuzz");
  r.set_version(1);
  auto entity = [&](const char* name, const char* key, quiver::v1::ValueType t) {
    auto* e = r.add_entities();
    e->set_name(name);
    e->set_join_key(key);
    e->set_value_type(t);
  };
  entity("user", "user_id", quiver::v1::INT64);
  entity("origin", "origin", quiver::v1::STRING);
  entity("destination", "destination", quiver::v1::STRING);
  auto source = [&](const char* name, const char* ts, const char* created) {
    auto* s = r.add_sources();
    s->set_name(name);
    s->set_path(std::string("/nonexistent/") + name + ".parquet");
    s->set_timestamp_field(ts);
    s->set_created_timestamp_column(created);
  };
  source("events", "ts", "created");
  source("flights", "departure", "");
  auto feature = [](quiver::v1::FeatureView* v, const char* name, quiver::v1::ValueType t) {
    auto* f = v->add_features();
    f->set_name(name);
    f->set_type(t);
  };
  auto* user = r.add_feature_views();
  user->set_name("user_stats");
  user->add_entities("user");
  user->set_source("events");
  user->set_online(true);
  user->set_schema_version(1);
  feature(user, "clicks", quiver::v1::INT64);
  feature(user, "score", quiver::v1::DOUBLE);
  feature(user, "name", quiver::v1::STRING);
  feature(user, "ratio", quiver::v1::FLOAT);
  feature(user, "active", quiver::v1::BOOL);
  feature(user, "small", quiver::v1::INT32);
  feature(user, "blob", quiver::v1::BYTES);
  feature(user, "seen", quiver::v1::UNIX_TIMESTAMP);
  feature(user, "tags", static_cast<quiver::v1::ValueType>(static_cast<int>(ValueType::kStringList)));
  feature(user, "history", static_cast<quiver::v1::ValueType>(static_cast<int>(ValueType::kDoubleList)));
  auto* route = r.add_feature_views();
  route->set_name("route_stats");
  route->add_entities("origin");
  route->add_entities("destination");
  route->set_source("flights");
  route->set_online(true);
  route->set_schema_version(1);
  route->set_ttl_seconds(3600);
  feature(route, "delay", quiver::v1::DOUBLE);
  feature(route, "flights", quiver::v1::INT64);
  auto* push = r.add_push_sources();
  push->set_name("user_push");
  push->add_feature_views("user_stats");
  auto* svc = r.add_feature_services();
  svc->set_name("svc");
  svc->add_features("user_stats:clicks");
  svc->add_features("route_stats");
  auto* odfv = r.add_on_demand_feature_views();
  odfv->set_name("user_derived");
  odfv->add_sources("user_stats");
  auto field = [&](const char* name, quiver::v1::ValueType t) {
    auto* f = odfv->add_request_schema();
    f->set_name(name);
    f->set_type(t);
  };
  field("boost", quiver::v1::DOUBLE);
  field("tag", quiver::v1::STRING);
  field("n", quiver::v1::INT32);
  field("flag", quiver::v1::BOOL);
  auto odf = [&](const char* name, quiver::v1::ValueType t, const char* expression) {
    auto* f = odfv->add_features();
    f->set_name(name);
    f->set_type(t);
    f->set_expression(expression);
  };
  odf("boosted", quiver::v1::DOUBLE, "score * boost + n");
  odf("label", quiver::v1::STRING, "concat(name, '/', tag, if(flag, 1, 0))");
  return r;
}

}  // namespace quiver::fuzz

#endif  // QUIVER_TESTS_FUZZ_FUZZ_REGISTRY_H_
