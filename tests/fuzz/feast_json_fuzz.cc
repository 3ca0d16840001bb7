// Fuzz target: the feature server's HTTP request bodies
// (feature_server/src/feast_json.cc), through the same pure entry points the
// HTTP routes call: ParseGetOnlineFeatures, ParseWriteToOnlineStore,
// ParsePush, ParseMaterialize (full and incremental). Every input goes to
// all five, against fuzz_util.h's registry.
//
// Properties: no crash or sanitizer report; a refusal always sets an HTTP
// error status (4xx) and a body that is valid JSON; an accepted lookup has
// rows of equal length, within max_rows, typed as the registry declares; the
// response writer (GetOnlineFeaturesJson) accepts what the parser produced and
// writes exactly what nlohmann's dump() of its document would.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz_registry.h"
#include "fuzz_util.h"
#include "nlohmann/json.hpp"
#include "quiver/client/client.h"
#include "quiver/client/registry_index.h"
#include "quiver/feature_server/feast_json.h"

namespace quiver::fuzz {
namespace {

constexpr size_t kMaxRows = 64;

const client::RegistryIndex& Registry() {
  static const auto* index = [] {
    auto built = client::RegistryIndex::Build(FuzzRegistry());
    FUZZ_CHECK(built.ok(), "registry: %s", built.status().ToString().c_str());
    return new std::shared_ptr<const client::RegistryIndex>(*std::move(built));
  }();
  return **index;
}

void CheckRefusal(const absl::Status& status, const feature_server::HttpError& error,
                  const char* what) {
  FUZZ_CHECK(!status.ok(), "%s", what);
  FUZZ_CHECK(error.status >= 400 && error.status < 500, "%s: HTTP status %d for %s", what,
             error.status, status.ToString().c_str());
  FUZZ_CHECK(nlohmann::json::accept(error.body), "%s: error body is not JSON: %s", what,
             error.body.c_str());
}

void CheckValueType(const Value& v, const char* what) {
  FUZZ_CHECK(IsValidType(v.type), "%s: value of invalid type %d", what, static_cast<int>(v.type));
  const absl::Status s = CheckValue(v);
  FUZZ_CHECK(s.ok(), "%s: ill-formed value: %s", what, s.ToString().c_str());
}

void GetOnlineFeatures(std::string_view body) {
  feature_server::HttpError error;
  auto parsed = feature_server::ParseGetOnlineFeatures(body, Registry(), kMaxRows, &error);
  FUZZ_LOG("get-online-features: %s\n", parsed.ok() ? "OK" : error.body.c_str());
  if (!parsed.ok()) {
    CheckRefusal(parsed.status(), error, "get-online-features");
    return;
  }
  const client::OnlineRequest& req = parsed->request;
  FUZZ_CHECK(!req.entity_rows.empty() && req.entity_rows.size() <= kMaxRows, "%zu rows",
             req.entity_rows.size());
  FUZZ_CHECK(!req.features.empty() || !req.feature_service.empty(), "no features");
  FUZZ_CHECK(parsed->join_keys.size() == parsed->join_key_values.size(), "join key columns");
  for (const auto& column : parsed->join_key_values) {
    FUZZ_CHECK(column.size() == req.entity_rows.size(), "join key column of %zu rows, %zu rows",
               column.size(), req.entity_rows.size());
    for (const Value& v : column) CheckValueType(v, "join key");
  }
  for (const auto& row : req.entity_rows) {
    for (const auto& [name, v] : row) CheckValueType(v, name.c_str());
  }
  // Integer join keys hold exactly the JSON numbers (nlohmann read
  // independently): an integer beyond the type's range must be refused, not
  // wrapped.
  const nlohmann::json root = nlohmann::json::parse(body, nullptr, false);
  size_t k = 0;
  for (const char* where : {"entities", "request_context"}) {
    auto object = root.find(where);
    if (object == root.end() || !object->is_object()) continue;
    for (const auto& [name, list] : object->items()) {
      if (k >= parsed->join_keys.size() || parsed->join_keys[k] != name) continue;
      const std::vector<Value>& values = parsed->join_key_values[k++];
      for (size_t r = 0; r < values.size() && r < list.size(); ++r) {
        const Value& v = values[r];
        if (v.is_null() || !list[r].is_number_integer() ||
            (v.type != ValueType::kInt64 && v.type != ValueType::kInt32)) {
          continue;
        }
        const bool fits = !list[r].is_number_unsigned() ||
                          list[r].get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX);
        FUZZ_CHECK(fits && std::get<int64_t>(v.data) == list[r].get<int64_t>(),
                   "join key %s row %zu: JSON %s accepted as %lld", name.c_str(), r,
                   list[r].dump().c_str(), static_cast<long long>(std::get<int64_t>(v.data)));
      }
    }
  }
  // The response writer on an answer of nulls for every requested ref.
  client::OnlineResponse response;
  for (const std::string& ref : req.features) {
    if (ref.find(':') != std::string::npos) response.feature_refs.push_back(ref);
  }
  response.rows.resize(req.entity_rows.size());
  for (auto& row : response.rows) {
    row.resize(response.feature_refs.size(),
               client::FeatureValue{Value::Null(ValueType::kInt64), client::FeatureStatus::kNotFound, 0});
  }
  const std::string json = feature_server::GetOnlineFeaturesJson(*parsed, response);
  FUZZ_CHECK(nlohmann::json::accept(json), "response is not JSON: %s", json.c_str());
  // The writer appends text directly: it must be exactly nlohmann's dump of
  // the same document (key order, separators, number forms, escapes).
  const std::string canonical = nlohmann::ordered_json::parse(json).dump();
  FUZZ_CHECK(canonical == json, "response is not in canonical form:\n%s\n%s", json.c_str(),
             canonical.c_str());
}

void CheckWrite(const absl::StatusOr<feature_server::ParsedWrite>& parsed,
                const feature_server::HttpError& error, const char* what) {
  FUZZ_LOG("%s: %s\n", what, parsed.ok() ? "OK" : error.body.c_str());
  if (!parsed.ok()) {
    if (parsed.status().code() == absl::StatusCode::kNotFound) {
      FUZZ_CHECK(error.status == 404 || error.status == 422, "%s: HTTP %d for not found", what,
                 error.status);
      return;
    }
    CheckRefusal(parsed.status(), error, what);
    return;
  }
  FUZZ_CHECK(parsed->views.size() == parsed->rows.size(), "%s: views and row lists", what);
  for (size_t v = 0; v < parsed->views.size(); ++v) {
    const client::ViewInfo* view = Registry().FindView(parsed->views[v]);
    FUZZ_CHECK(view != nullptr, "%s: unknown view %s accepted", what, parsed->views[v].c_str());
    for (const client::WriteRowInput& row : parsed->rows[v]) {
      FUZZ_CHECK(row.values.size() == static_cast<size_t>(view->view->features_size()),
                 "%s: %zu values for %d features", what, row.values.size(),
                 view->view->features_size());
      for (size_t f = 0; f < row.values.size(); ++f) {
        CheckValueType(row.values[f], what);
        FUZZ_CHECK(row.values[f].type == view->feature_types[f], "%s: feature %zu typed %d, declared %d",
                   what, f, static_cast<int>(row.values[f].type),
                   static_cast<int>(view->feature_types[f]));
      }
      FUZZ_CHECK(row.entity.size() == view->join_keys.size(), "%s: %zu join keys", what,
                 row.entity.size());
      for (const auto& [name, v] : row.entity) {
        CheckValueType(v, what);
        FUZZ_CHECK(!v.is_null(), "%s: null join key %s", what, name.c_str());
      }
    }
  }
}

}  // namespace
}  // namespace quiver::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quiver::fuzz;
  namespace fs = quiver::feature_server;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  GetOnlineFeatures(body);
  {
    fs::HttpError error;
    CheckWrite(fs::ParseWriteToOnlineStore(body, Registry(), &error), error, "write-to-online-store");
  }
  {
    fs::HttpError error;
    CheckWrite(fs::ParsePush(body, Registry(), &error), error, "push");
  }
  for (bool incremental : {false, true}) {
    fs::HttpError error;
    auto parsed = fs::ParseMaterialize(body, incremental, &error);
    FUZZ_LOG("materialize%s: %s\n", incremental ? "-incremental" : "", parsed.ok() ? "OK" : error.body.c_str());
    if (!parsed.ok()) {
      CheckRefusal(parsed.status(), error, "materialize");
      continue;
    }
    if (!incremental) {
      FUZZ_CHECK(parsed->start_us < parsed->end_us, "materialize: start %lld not before end %lld",
                 static_cast<long long>(parsed->start_us), static_cast<long long>(parsed->end_us));
    }
  }
  return 0;
}
