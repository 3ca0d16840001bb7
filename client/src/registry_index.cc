#include "quiver/client/registry_index.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace quiver::client {
namespace {

absl::StatusOr<ValueType> CheckedType(quiver::v1::ValueType t) {
  const auto type = static_cast<ValueType>(static_cast<int>(t));
  if (static_cast<int>(t) < 0 || static_cast<int>(t) > 255 || !IsValidType(type)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid value type ", static_cast<int>(t)));
  }
  return type;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const RegistryIndex>> RegistryIndex::Build(
    quiver::v1::Registry registry) {
  std::shared_ptr<RegistryIndex> index(new RegistryIndex());
  index->registry_ = std::move(registry);
  const quiver::v1::Registry& r = index->registry_;
  for (const auto& e : r.entities()) {
    if (!index->entities_.emplace(e.name(), &e).second) {
      return absl::InvalidArgumentError(absl::StrCat("registry: entity '", e.name(), "' defined twice"));
    }
    const auto type = CheckedType(e.value_type());
    if (!type.ok() || IsList(*type)) {
      return absl::InvalidArgumentError(
          absl::StrCat("registry: entity '", e.name(), "' has an invalid join key type"));
    }
  }
  for (const auto& v : r.feature_views()) {
    ViewInfo info;
    info.view = &v;
    for (const std::string& entity_name : v.entities()) {
      auto it = index->entities_.find(entity_name);
      if (it == index->entities_.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("registry: view '", v.name(), "' names unknown entity '", entity_name, "'"));
      }
      info.join_keys.push_back(
          {it->second->join_key(), *CheckedType(it->second->value_type())});
    }
    std::sort(info.join_keys.begin(), info.join_keys.end(),
              [](const JoinKeySpec& a, const JoinKeySpec& b) { return a.join_key < b.join_key; });
    for (int i = 0; i < v.features_size(); ++i) {
      const auto& f = v.features(i);
      const auto type = CheckedType(f.type());
      if (!type.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("registry: feature '", v.name(), ":",
                                                       f.name(), "' has an invalid type"));
      }
      if (!info.feature_index.emplace(f.name(), i).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("registry: feature '", v.name(), ":", f.name(), "' defined twice"));
      }
      info.feature_types.push_back(*type);
    }
    if (!index->views_.emplace(v.name(), std::move(info)).second) {
      return absl::InvalidArgumentError(absl::StrCat("registry: view '", v.name(), "' defined twice"));
    }
  }
  for (const auto& odfv : r.on_demand_feature_views()) {
    absl::StatusOr<expr::OnDemandView> compiled = expr::OnDemandView::Compile(r, odfv);
    if (!compiled.ok()) return compiled.status();
    index->on_demand_.emplace(odfv.name(), *std::move(compiled));
  }
  // Services resolve once per registry, not once per lookup.
  for (const auto& fs : r.feature_services()) {
    index->services_.emplace(
        fs.name(), index->Resolve(std::vector<std::string>(fs.features().begin(), fs.features().end())));
  }
  return std::shared_ptr<const RegistryIndex>(std::move(index));
}

const absl::StatusOr<std::vector<ResolvedFeature>>* RegistryIndex::FindService(
    const std::string& service) const {
  auto it = services_.find(service);
  return it == services_.end() ? nullptr : &it->second;
}

const ViewInfo* RegistryIndex::FindView(const std::string& name) const {
  auto it = views_.find(name);
  return it == views_.end() ? nullptr : &it->second;
}

const expr::OnDemandView* RegistryIndex::FindOnDemandView(const std::string& name) const {
  auto it = on_demand_.find(name);
  return it == on_demand_.end() ? nullptr : &it->second;
}

const quiver::v1::Entity* RegistryIndex::FindEntity(const std::string& name) const {
  auto it = entities_.find(name);
  return it == entities_.end() ? nullptr : it->second;
}

absl::StatusOr<std::vector<ResolvedFeature>> RegistryIndex::Resolve(
    const std::vector<std::string>& refs) const {
  std::vector<ResolvedFeature> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& view_name, const ViewInfo& info,
                 int index) -> absl::Status {
    ResolvedFeature f;
    f.view = view_name;
    f.feature = info.view->features(index).name();
    f.ref = absl::StrCat(view_name, ":", f.feature);
    f.index = index;
    f.type = info.feature_types[index];
    if (!seen.insert(f.ref).second) {
      return absl::InvalidArgumentError(absl::StrCat("feature reference '", f.ref, "' requested twice"));
    }
    out.push_back(std::move(f));
    return absl::OkStatus();
  };
  for (const std::string& ref : refs) {
    const size_t colon = ref.find(':');
    const std::string view_name = ref.substr(0, colon);
    if (view_name.empty() ||
        (colon != std::string::npos &&
         (colon + 1 == ref.size() || ref.find(':', colon + 1) != std::string::npos))) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed feature reference '", ref, "' (want view:feature or view)"));
    }
    // An on-demand view stored online (write_to_online_store) is read as the
    // feature view of its name.
    const expr::OnDemandView* odfv = FindView(view_name) == nullptr ? FindOnDemandView(view_name) : nullptr;
    if (odfv != nullptr) {
      auto add_on_demand = [&](size_t i) -> absl::Status {
        ResolvedFeature f;
        f.view = view_name;
        f.feature = odfv->feature_names()[i];
        f.ref = absl::StrCat(view_name, ":", f.feature);
        f.index = static_cast<int>(i);
        f.type = odfv->feature_types()[i];
        f.on_demand = odfv;
        if (!seen.insert(f.ref).second) {
          return absl::InvalidArgumentError(absl::StrCat("feature reference '", f.ref, "' requested twice"));
        }
        out.push_back(std::move(f));
        return absl::OkStatus();
      };
      const std::string feature = colon == std::string::npos ? "" : ref.substr(colon + 1);
      bool found = false;
      for (size_t i = 0; i < odfv->feature_names().size(); ++i) {
        if (!feature.empty() && odfv->feature_names()[i] != feature) continue;
        found = true;
        if (auto s = add_on_demand(i); !s.ok()) return s;
      }
      if (!found) return absl::NotFoundError(absl::StrCat("unknown feature '", ref, "'"));
      continue;
    }
    const ViewInfo* info = FindView(view_name);
    if (info == nullptr) {
      return absl::NotFoundError(absl::StrCat("unknown feature view '", view_name, "' in '", ref, "'"));
    }
    if (colon == std::string::npos) {
      for (int i = 0; i < info->view->features_size(); ++i) {
        if (auto s = add(view_name, *info, i); !s.ok()) return s;
      }
      continue;
    }
    const std::string feature = ref.substr(colon + 1);
    auto it = info->feature_index.find(feature);
    if (it == info->feature_index.end()) {
      return absl::NotFoundError(absl::StrCat("unknown feature '", ref, "'"));
    }
    if (auto s = add(view_name, *info, it->second); !s.ok()) return s;
  }
  return out;
}

absl::StatusOr<std::vector<ResolvedFeature>> RegistryIndex::ResolveService(
    const std::string& service) const {
  if (const auto* resolved = FindService(service)) return *resolved;
  return absl::NotFoundError(absl::StrCat("unknown feature service '", service, "'"));
}

absl::StatusOr<std::string> RegistryIndex::EntityKeyFor(
    const ViewInfo& view, const std::map<std::string, Value>& row) const {
  std::vector<KeyPart> parts;
  parts.reserve(view.join_keys.size());
  for (const JoinKeySpec& spec : view.join_keys) {
    auto it = row.find(spec.join_key);
    if (it == row.end()) {
      return absl::InvalidArgumentError(absl::StrCat("entity row lacks join key '", spec.join_key,
                                                     "' of view '", view.view->name(), "'"));
    }
    const Value& v = it->second;
    if (v.type != spec.type) {
      return absl::InvalidArgumentError(absl::StrCat("join key '", spec.join_key, "' is ",
                                                     TypeName(v.type), ", declared ",
                                                     TypeName(spec.type)));
    }
    if (v.is_null()) {
      return absl::InvalidArgumentError(absl::StrCat("join key '", spec.join_key, "' is null"));
    }
    if (absl::Status s = CheckValue(v); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("join key '", spec.join_key, "': ", s.message()));
    }
    parts.push_back({spec.join_key, v});
  }
  return EncodeEntityKey(std::move(parts));
}

}  // namespace quiver::client
