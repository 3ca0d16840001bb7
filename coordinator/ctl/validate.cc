#include "ctl/validate.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace quiver::ctl {
namespace {

absl::Status Prefixed(const std::string& view, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat("feature view ", view, ": ", s.message()));
}

}  // namespace

absl::Status ValidateSources(const quiver::v1::Registry& registry,
                             storage::OfflineStore& store) {
  std::map<std::string, const quiver::v1::Entity*> entities;
  for (const auto& e : registry.entities()) entities[e.name()] = &e;
  std::map<std::string, const quiver::v1::DataSource*> sources;
  for (const auto& s : registry.sources()) sources[s.name()] = &s;

  for (const auto& view : registry.feature_views()) {
    if (!view.online()) continue;
    auto src = sources.find(view.source());
    if (src == sources.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("feature view ", view.name(), ": unknown source '", view.source(), "'"));
    }
    std::vector<storage::NamedType> columns;
    for (const auto& name : view.entities()) {
      auto e = entities.find(name);
      if (e == entities.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("feature view ", view.name(), ": unknown entity '", name, "'"));
      }
      columns.push_back({e->second->join_key(), static_cast<ValueType>(e->second->value_type())});
    }
    for (const auto& f : view.features()) {
      columns.push_back({f.name(), static_cast<ValueType>(f.type())});
    }
    auto files = store.ExpandPath(src->second->path());
    if (!files.ok()) return Prefixed(view.name(), files.status());
    if (auto s = store.Validate(*files, src->second->timestamp_field(),
                                src->second->created_timestamp_column(), columns);
        !s.ok()) {
      return Prefixed(view.name(), s);
    }
  }
  return absl::OkStatus();
}

}  // namespace quiver::ctl
