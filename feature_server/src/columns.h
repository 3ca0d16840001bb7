// Which request columns a lookup reads, shared by the HTTP and gRPC
// handlers: the registry's join keys and on-demand request fields, each with
// its declared type. Any other column is ignored, as Feast does.
#ifndef QUIVER_FEATURE_SERVER_COLUMNS_H_
#define QUIVER_FEATURE_SERVER_COLUMNS_H_

#include <map>
#include <string>

#include "quiver/client/registry_index.h"

namespace quiver::feature_server {

struct ColumnTypes {
  std::map<std::string, ValueType> join_keys;
  std::map<std::string, ValueType> request_fields;

  // The declared type of `column`, and whether it is a join key; kInvalid
  // for a column the lookup ignores.
  ValueType TypeOf(const std::string& column, bool* is_join_key) const {
    if (auto it = join_keys.find(column); it != join_keys.end()) {
      *is_join_key = true;
      return it->second;
    }
    *is_join_key = false;
    auto it = request_fields.find(column);
    return it == request_fields.end() ? ValueType::kInvalid : it->second;
  }
};

inline ColumnTypes ColumnTypesOf(const client::RegistryIndex& registry) {
  ColumnTypes out;
  for (const auto& e : registry.registry().entities()) {
    out.join_keys.emplace(e.join_key(), static_cast<ValueType>(e.value_type()));
  }
  for (const auto& odfv : registry.registry().on_demand_feature_views()) {
    for (const auto& f : odfv.request_schema()) {
      out.request_fields.emplace(f.name(), static_cast<ValueType>(f.type()));
    }
  }
  return out;
}

}  // namespace quiver::feature_server

#endif  // QUIVER_FEATURE_SERVER_COLUMNS_H_
