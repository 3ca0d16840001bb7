// Writes the binary seed inputs of tests/fuzz/corpus/ (the text ones are
// written by hand): lean lookup frames, packed rows and values, entity keys,
// serialized registries. Built by the normal build only:
//   build/bin/fuzz_make_seeds tests/fuzz/corpus [examples/flights]
// Existing files of the same name are overwritten; others are left alone
// (crash reproducers added to the corpus stay).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "fuzz_registry.h"
#include "fuzz_util.h"
#include "quiver/client/convert.h"
#include "quiver/client/packed_rows.h"
#include "quiver/coordinator/repo.h"
#include "quiver/keys/entity_key.h"
#include "quiver/keys/packed_values.h"

namespace quiver::fuzz {
namespace {

namespace fs = std::filesystem;

fs::path g_root;

void Put(const std::string& target, const std::string& name, const std::string& bytes) {
  const fs::path dir = g_root / target;
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out << bytes;
  FUZZ_CHECK(out.good(), "write %s", (dir / name).c_str());
}

std::string UserKey(int64_t u) { return EncodeEntityKey({{"user_id", Value::Int64(u)}}).value(); }
std::string RouteKey(const char* from, const char* to) {
  return EncodeEntityKey({{"origin", Value::String(from)}, {"destination", Value::String(to)}}).value();
}

quiver::v1::GetRequest Request(const std::string& view, const std::vector<std::string>& keys,
                               const std::vector<std::string>& features, bool packed) {
  quiver::v1::GetRequest r;
  r.set_packed(packed);
  auto* l = r.add_lookups();
  l->set_view(view);
  for (const auto& k : keys) l->add_entity_keys(k);
  for (const auto& f : features) l->add_features(f);
  return r;
}

void LookupServerSeeds() {
  const std::string t = "lookup_server";
  auto get = [](uint32_t id, const quiver::v1::GetRequest& r) {
    return LeanFrame(id, 1, r.SerializeAsString());
  };
  const auto users = Request("user_stats", {UserKey(0), UserKey(1), UserKey(42)}, {}, false);
  const auto users_packed = Request("user_stats", {UserKey(0), UserKey(1), UserKey(42)}, {}, true);
  Put(t, "get_unpacked.bin", get(1, users));
  Put(t, "get_packed.bin", get(2, users_packed));
  Put(t, "get_features.bin",
      get(3, Request("user_stats", {UserKey(2), UserKey(4)}, {"tags", "clicks", "seen"}, true)));
  Put(t, "get_routes.bin",
      get(4, Request("route_stats", {RouteKey("LAX", "SFO"), RouteKey("JFK", "BOS"), RouteKey("X", "Y")},
                     {}, false)));
  quiver::v1::GetRequest two = users_packed;
  *two.add_lookups() = Request("route_stats", {RouteKey("LAX", "SFO")}, {"delay"}, true).lookups(0);
  Put(t, "get_two_lookups.bin", get(5, two));
  Put(t, "pipelined.bin", get(0xdeadbeef, users) + get(6, Request("no_such_view", {UserKey(1)}, {}, false)) +
                              get(1u << 31, users_packed));
  Put(t, "unknown_feature.bin", get(7, Request("user_stats", {UserKey(2)}, {"nope"}, false)));
  Put(t, "empty_key.bin", get(8, Request("user_stats", {""}, {}, true)));
  Put(t, "empty_body.bin", LeanFrame(9, 1, ""));
  Put(t, "bad_body.bin", LeanFrame(10, 1, "\xff\xff\xff\xff\x0f\x12\x80garbage"));
  Put(t, "unknown_kind.bin", LeanFrame(11, 3, "x") + get(12, users));
  Put(t, "auth_kind.bin", LeanFrame(13, 2, "token") + get(14, users));
  std::string oversize = LeanFrame(15, 1, "");
  oversize[3] = 0x7f;  // length 0x7f000000
  Put(t, "oversize_length.bin", oversize);
  Put(t, "truncated_body.bin", get(16, users).substr(0, 20));
  Put(t, "truncated_header.bin", get(17, users).substr(0, 5));
}

void PackedRowsSeeds() {
  const std::string t = "packed_rows";
  // Types prefix: count, then type bytes (index into kValidTypes, mod 16).
  // 1 = INT64, 3 = DOUBLE, 5 = STRING, 13 = LIST<STRING>, 4 = BOOL, 2 = FLOAT.
  const std::string prefix("\x05\x01\x03\x05\x0d\x04", 6);
  const std::vector<ValueType> types = {ValueType::kInt64, ValueType::kDouble, ValueType::kString,
                                        ValueType::kStringList, ValueType::kBool};
  const std::vector<Value> values = {Value::Int64(-5), Value::Double(2.5), Value::String("hi"),
                                     Value{ValueType::kStringList, std::vector<std::string>{"a", ""}},
                                     Value::Bool(true)};
  std::vector<std::string> cells;
  for (const Value& v : values) {
    std::string c(1, static_cast<char>(v.type));
    AppendPayload(v, &c);
    cells.push_back(c);
  }
  const std::vector<std::string_view> views(cells.begin(), cells.end());
  std::string rows;
  client::PackedRowWriter w(&rows);
  w.Present(1'700'000'000'000'000, views);
  w.NotFound();
  w.OutsideMaxAge(42);
  const std::string null_cell(1, '\0');
  const std::vector<std::string_view> nulls(5, null_cell);
  w.Present(-1, nulls);
  Put(t, "present_missing_old_nulls.bin", prefix + rows);
  Put(t, "truncated.bin", prefix + rows.substr(0, rows.size() / 2));
  Put(t, "bad_status.bin", prefix + std::string("\x07", 1) + rows);
  Put(t, "wrong_tag.bin", std::string("\x01\x00", 2) + rows);  // declared INT32
  // One FLOAT and one LIST<INT32>.
  std::string f;
  client::PackedRowWriter wf(&f);
  std::string fc(1, static_cast<char>(ValueType::kFloat)), lc(1, static_cast<char>(ValueType::kInt32List));
  AppendPayload(Value::Float(0.5f), &fc);
  AppendPayload(Value{ValueType::kInt32List, std::vector<int64_t>{1, -2, 3}}, &lc);
  const std::vector<std::string_view> fl = {fc, lc};
  wf.Present(0, fl);
  Put(t, "float_int_list.bin", std::string("\x02\x02\x08", 3) + f);
  Put(t, "no_types.bin", std::string("\x00", 1) + std::string("\x02\x02\x03\x00\x00\x00\x00\x00\x00\x00\x00", 11));
}

void PackedValuesSeeds() {
  const std::string t = "packed_values";
  const std::vector<Value> values = {
      Value::Int32(7), Value::Int64(-1), Value::Float(1.5f), Value::Double(-0.0), Value::Bool(false),
      Value::String("s"), Value::Bytes(std::string("\0\1", 2)), Value::UnixTimestamp(123)};
  std::string packed;
  AppendPackedValues(values, &packed);
  Put(t, "all_scalars.bin", std::string("\x08\x00\x01\x02\x03\x04\x05\x06\x07", 9) + packed);
  std::string lists;
  const std::vector<Value> list_values = {
      Value{ValueType::kInt64List, std::vector<int64_t>{1, 2}},
      Value{ValueType::kBoolList, std::vector<int64_t>{0, 1, 1}},
      Value{ValueType::kBytesList, std::vector<std::string>{"", "xy"}},
      Value::Null(ValueType::kDoubleList)};
  AppendPackedValues(list_values, &lists);
  Put(t, "lists_and_null.bin", std::string("\x04\x09\x0c\x0e\x0b", 5) + lists);
  Put(t, "trailing.bin", std::string("\x01\x01", 2) + packed.substr(5, 9) + "zz");
  std::string rows;
  AppendWriteRow(UserKey(3), 10, 11, packed, &rows);
  AppendWriteRow(RouteKey("A", "B"), -1, 0, "", &rows);
  Put(t, "write_rows.bin", std::string("\x00", 1) + rows);
  Put(t, "string_list_payload.bin", std::string("\x01\x0d", 2) +
                                        std::string("\x02\x00\x00\x00\x01\x00\x00\x00x\x00\x00\x00\x00", 13));
  Put(t, "bool_payload_2.bin", std::string("\x01\x04\x02", 3));
}

void EntityKeySeeds() {
  const std::string t = "entity_key";
  Put(t, "int64.bin", UserKey(42));
  Put(t, "two_strings.bin", RouteKey("LAX", "SFO"));
  Put(t, "all_scalars.bin",
      EncodeEntityKey({{"a", Value::Int32(-1)}, {"b", Value::Float(2.5f)}, {"c", Value::Double(1e300)},
                       {"d", Value::Bool(true)}, {"e", Value::Bytes(std::string("\0", 1))},
                       {"f", Value::UnixTimestamp(-5)}, {"g", Value::String("")}})
          .value());
  std::string unsorted = RouteKey("LAX", "SFO");
  Put(t, "truncated.bin", unsorted.substr(0, unsorted.size() - 1));
  Put(t, "trailing.bin", UserKey(1) + "x");
  Put(t, "list_type.bin", std::string("\x01\x01\x00x\x12\x04\x00\x00\x00\x00\x00\x00\x00", 13));
}

void RegistrySeeds(const fs::path& flights) {
  const std::string t = "registry_proto";
  Put(t, "fuzz_registry.bin", FuzzRegistry().SerializeAsString());
  if (!flights.empty()) {
    auto r = coordinator::LoadRepository(flights.string());
    FUZZ_CHECK(r.ok(), "load %s: %s", flights.c_str(), r.status().ToString().c_str());
    Put(t, "flights.bin", r->SerializeAsString());
  }
  quiver::v1::Registry bad = FuzzRegistry();
  bad.mutable_feature_views(0)->add_entities("nobody");
  Put(t, "unknown_entity.bin", bad.SerializeAsString());
  quiver::v1::Registry stored = FuzzRegistry();
  auto* odfv = stored.add_on_demand_feature_views();
  odfv->set_name("route_scaled");
  odfv->add_sources("route_stats");
  odfv->set_write_to_online_store(true);
  auto* f = odfv->add_features();
  f->set_name("delay2");
  f->set_type(quiver::v1::DOUBLE);
  f->set_expression("delay * 2");
  auto view = coordinator::StoredOnDemandView(stored, *odfv);
  FUZZ_CHECK(view.ok(), "%s", view.status().ToString().c_str());
  *stored.add_feature_views() = *view;
  Put(t, "stored_on_demand.bin", stored.SerializeAsString());
  // Found by the registry_proto target: the coordinator accepted what every
  // client's RegistryIndex refuses (a LIST join key type; a type past 255,
  // which wrapped into a valid one).
  quiver::v1::Registry list_key = FuzzRegistry();
  list_key.mutable_entities(1)->set_value_type(
      static_cast<quiver::v1::ValueType>(static_cast<int>(ValueType::kStringList)));
  Put(t, "crash_list_join_key.bin", list_key.SerializeAsString());
  quiver::v1::Registry type_257 = FuzzRegistry();
  type_257.mutable_feature_views(0)->mutable_features(0)->set_type(static_cast<quiver::v1::ValueType>(257));
  Put(t, "crash_feature_type_257.bin", type_257.SerializeAsString());
  auto* p = stored.add_permissions();
  p->set_name("readers");
  p->add_name_patterns("user_.*");
  p->add_roles("reader");
  Put(t, "permission.bin", stored.SerializeAsString());
}

}  // namespace
}  // namespace quiver::fuzz

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [FLIGHTS_REPO_DIR]\n", argv[0]);
    return 2;
  }
  quiver::fuzz::g_root = argv[1];
  quiver::fuzz::LookupServerSeeds();
  quiver::fuzz::PackedRowsSeeds();
  quiver::fuzz::PackedValuesSeeds();
  quiver::fuzz::EntityKeySeeds();
  quiver::fuzz::RegistrySeeds(argc > 2 ? argv[2] : "");
  std::printf("seeds written under %s\n", argv[1]);
  return 0;
}
