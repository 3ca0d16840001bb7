// The registry's consistency rules (ValidateRegistry: names, references,
// types, on-demand expressions) and the change list of an apply
// (DiffRegistry). Split from repo.cc, which reads the YAML.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/message_differencer.h"
#include "quiver/auth/auth.h"
#include "quiver/coordinator/repo.h"
#include "quiver/expr/on_demand.h"
#include "quiver/keys/value.h"
#include "registry_lookup.h"

namespace quiver::coordinator {
namespace {

using quiver::v1::DataSource;
using quiver::v1::Entity;
using quiver::v1::FeatureView;
using quiver::v1::OnDemandFeatureView;

absl::Status Invalid(const std::string& kind, const std::string& name, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(kind, " '", name, "': ", why));
}

// As client::RegistryIndex::Build judges types (a registry the coordinator
// accepts must be one every client accepts): the proto enum is open, so a
// value past 255 must not wrap into a valid ValueType.
bool ValidType(quiver::v1::ValueType t) {
  const int v = static_cast<int>(t);
  return v >= 0 && v <= 255 && IsValidType(static_cast<ValueType>(v));
}

template <typename T>
absl::Status CheckNames(const google::protobuf::RepeatedPtrField<T>& objects,
                        const std::string& kind) {
  std::set<std::string> seen;
  for (const auto& o : objects) {
    if (o.name().empty()) return absl::InvalidArgumentError(absl::StrCat(kind, " without a name"));
    if (!seen.insert(o.name()).second) return Invalid(kind, o.name(), "defined more than once");
  }
  return absl::OkStatus();
}

// Pushes one change per name of `current` ∪ `next`, in name order.
template <typename T, typename Equal>
void DiffKind(const google::protobuf::RepeatedPtrField<T>& current,
              const google::protobuf::RepeatedPtrField<T>& next, const std::string& kind,
              Equal&& equal, std::vector<quiver::v1::ObjectChange>* out) {
  std::map<std::string, std::pair<const T*, const T*>> by_name;
  for (const auto& o : current) by_name[o.name()].first = &o;
  for (const auto& o : next) by_name[o.name()].second = &o;
  for (const auto& [name, pair] : by_name) {
    quiver::v1::ObjectChange c;
    c.set_kind(kind);
    c.set_name(name);
    if (!pair.first) {
      c.set_action("created");
    } else if (!pair.second) {
      c.set_action("deleted");
    } else {
      c.set_action(equal(*pair.first, *pair.second) ? "unchanged" : "updated");
    }
    out->push_back(std::move(c));
  }
}

// Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF).
bool IsUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = cp << 6 | (cc & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
      return false;
    }
    i += len;
  }
  return true;
}

// Every `string` field of `m` (recursively; `path` names `m`) holds UTF-8.
// Protobuf refuses to parse a proto3 string that does not, so a registry
// loaded from YAML (which carries any bytes, and "\ud800" escapes) with one
// would be stored and then fail every Apply and every client's registry
// fetch (tests/fuzz: repo_yaml found `project: \xff`).
absl::Status CheckUtf8(const google::protobuf::Message& m, const std::string& path) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Descriptor* d = m.GetDescriptor();
  const google::protobuf::Reflection* r = m.GetReflection();
  auto bad = [](const std::string& where, const std::string& value) {
    return absl::InvalidArgumentError(absl::StrCat(where, " is not valid UTF-8: \"",
                                                   absl::CHexEscape(value), "\""));
  };
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string name = path.empty() ? f->name() : absl::StrCat(path, ".", f->name());
    if (f->type() == FieldDescriptor::TYPE_STRING) {
      if (f->is_repeated()) {
        for (int j = 0; j < r->FieldSize(m, f); ++j) {
          const std::string v = r->GetRepeatedString(m, f, j);
          if (!IsUtf8(v)) return bad(absl::StrCat(name, "[", j, "]"), v);
        }
      } else if (const std::string v = r->GetString(m, f); !IsUtf8(v)) {
        return bad(name, v);
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int j = 0; j < r->FieldSize(m, f); ++j) {
          if (absl::Status s = CheckUtf8(r->GetRepeatedMessage(m, f, j), absl::StrCat(name, "[", j, "]"));
              !s.ok()) {
            return s;
          }
        }
      } else if (r->HasField(m, f)) {
        if (absl::Status s = CheckUtf8(r->GetMessage(m, f), name); !s.ok()) return s;
      }
    }
  }
  return absl::OkStatus();
}

// Whether `have` is the view `want` (StoredOnDemandView's), schema version
// aside (the coordinator assigns it).
bool StoresOnDemandView(FeatureView have, const FeatureView& want) {
  have.set_schema_version(want.schema_version());
  return google::protobuf::util::MessageDifferencer::Equals(have, want);
}

}  // namespace

absl::StatusOr<FeatureView> StoredOnDemandView(const quiver::v1::Registry& registry,
                                               const OnDemandFeatureView& odfv) {
  if (odfv.sources_size() != 1 || odfv.request_schema_size() != 0) {
    return Invalid("on-demand feature view", odfv.name(),
                   "has write_to_online_store: it needs exactly one source view and no "
                   "request_schema (materialization transforms that view's rows; it has no "
                   "request data)");
  }
  const FeatureView* source = ByName(registry.feature_views(), odfv.sources(0));
  if (source == nullptr || !source->on_demand_source_view().empty()) {
    return Invalid("on-demand feature view", odfv.name(),
                   absl::StrCat("has write_to_online_store: its source '", odfv.sources(0),
                                "' must be a feature view read from a data source"));
  }
  FeatureView view;
  view.set_name(odfv.name());
  *view.mutable_entities() = source->entities();
  for (const auto& f : odfv.features()) {
    auto* spec = view.add_features();
    spec->set_name(f.name());
    spec->set_type(f.type());
  }
  view.set_ttl_seconds(source->ttl_seconds());
  view.set_source(source->source());
  view.set_online(true);
  view.set_description(odfv.description());
  view.set_lateness_seconds(source->lateness_seconds());
  view.set_on_demand_source_view(source->name());
  return view;
}

absl::Status ValidateRegistry(const quiver::v1::Registry& registry) {
  if (absl::Status s = CheckUtf8(registry, "registry"); !s.ok()) return s;
  if (registry.project().empty()) {
    return absl::InvalidArgumentError("registry has no project name");
  }
  for (auto s : {CheckNames(registry.entities(), "entity"),
                 CheckNames(registry.sources(), "data source"),
                 CheckNames(registry.feature_views(), "feature view"),
                 CheckNames(registry.feature_services(), "feature service"),
                 CheckNames(registry.on_demand_feature_views(), "on-demand feature view"),
                 CheckNames(registry.push_sources(), "push source"),
                 CheckNames(registry.permissions(), "permission")}) {
    if (!s.ok()) return s;
  }
  // On-demand views: names apart from the feature views' (references name
  // either kind) but for the view that stores one (write_to_online_store),
  // expressions compiled and type-checked here, at apply.
  for (const auto& odfv : registry.on_demand_feature_views()) {
    const FeatureView* same_name = ByName(registry.feature_views(), odfv.name());
    if (odfv.write_to_online_store()) {
      absl::StatusOr<FeatureView> want = StoredOnDemandView(registry, odfv);
      if (!want.ok()) return want.status();
      if (same_name == nullptr || !StoresOnDemandView(*same_name, *want)) {
        return Invalid("on-demand feature view", odfv.name(),
                       "has write_to_online_store but the registry lacks the feature view that "
                       "stores it (load the repository with quiverctl apply)");
      }
    } else if (same_name != nullptr) {
      return Invalid("on-demand feature view", odfv.name(), "has the name of a feature view");
    }
    if (auto compiled = expr::OnDemandView::Compile(registry, odfv); !compiled.ok()) {
      return compiled.status();
    }
  }
  for (const auto& v : registry.feature_views()) {
    if (v.on_demand_source_view().empty()) continue;
    const OnDemandFeatureView* odfv = ByName(registry.on_demand_feature_views(), v.name());
    if (odfv == nullptr || !odfv->write_to_online_store()) {
      return Invalid("feature view", v.name(),
                     "stores an on-demand feature view that the registry lacks (or that has no "
                     "write_to_online_store)");
    }
  }
  std::map<std::string, const Entity*> entities;
  for (const auto& e : registry.entities()) {
    if (e.join_key().empty()) return Invalid("entity", e.name(), "has no join key");
    if (!ValidType(e.value_type()) || IsList(static_cast<ValueType>(static_cast<int>(e.value_type())))) {
      return Invalid("entity", e.name(), "has an invalid value type (a join key is a scalar type)");
    }
    entities[e.name()] = &e;
  }
  std::map<std::string, const DataSource*> sources;
  for (const auto& s : registry.sources()) {
    if (s.path().empty()) return Invalid("data source", s.name(), "has no path");
    if (s.timestamp_field().empty()) return Invalid("data source", s.name(), "has no timestamp_field");
    sources[s.name()] = &s;
  }
  std::map<std::string, std::set<std::string>> view_features;
  for (const auto& v : registry.feature_views()) {
    if (v.entities().empty()) return Invalid("feature view", v.name(), "names no entity");
    std::set<std::string> reserved;  // join keys and timestamp columns
    for (const auto& name : v.entities()) {
      auto it = entities.find(name);
      if (it == entities.end()) return Invalid("feature view", v.name(), absl::StrCat("unknown entity '", name, "'"));
      if (!reserved.insert(it->second->join_key()).second) {
        return Invalid("feature view", v.name(),
                       absl::StrCat("join key '", it->second->join_key(), "' appears twice"));
      }
    }
    auto src = sources.find(v.source());
    if (src == sources.end()) {
      return Invalid("feature view", v.name(), absl::StrCat("unknown source '", v.source(), "'"));
    }
    reserved.insert(src->second->timestamp_field());
    if (!src->second->created_timestamp_column().empty()) {
      reserved.insert(src->second->created_timestamp_column());
    }
    if (v.ttl_seconds() < 0) return Invalid("feature view", v.name(), "has a negative ttl");
    if (v.lateness_seconds() < 0) {
      return Invalid("feature view", v.name(), "has a negative lateness");
    }
    if (v.features().empty()) return Invalid("feature view", v.name(), "has no feature");
    auto& names = view_features[v.name()];
    for (const auto& f : v.features()) {
      if (f.name().empty()) return Invalid("feature view", v.name(), "has a feature without a name");
      if (!ValidType(f.type())) {
        return Invalid("feature view", v.name(), absl::StrCat("feature '", f.name(), "' has an invalid type"));
      }
      if (reserved.count(f.name())) {
        return Invalid("feature view", v.name(),
                       absl::StrCat("feature '", f.name(), "' is named like a join key or timestamp column"));
      }
      if (!names.insert(f.name()).second) {
        return Invalid("feature view", v.name(), absl::StrCat("feature '", f.name(), "' defined twice"));
      }
    }
  }
  // A push source feeds feature views read from a data source (a view that
  // stores an on-demand view is written by materialization only).
  for (const auto& push : registry.push_sources()) {
    if (push.feature_views().empty()) return Invalid("push source", push.name(), "feeds no feature view");
    for (const auto& name : push.feature_views()) {
      const FeatureView* v = ByName(registry.feature_views(), name);
      if (v == nullptr || !v->on_demand_source_view().empty()) {
        return Invalid("push source", push.name(),
                       absl::StrCat("names '", name, "', not a feature view read from a data source"));
      }
    }
  }
  // Permissions: every name pattern a valid RE2 expression.
  if (auto authorizer = auth::Authorizer::Build(registry); !authorizer.ok()) return authorizer.status();
  // Services may name on-demand views' features too.
  for (const auto& odfv : registry.on_demand_feature_views()) {
    auto& names = view_features[odfv.name()];
    for (const auto& f : odfv.features()) names.insert(f.name());
  }
  for (const auto& svc : registry.feature_services()) {
    if (svc.features().empty()) return Invalid("feature service", svc.name(), "lists no feature");
    for (const auto& ref : svc.features()) {
      std::vector<std::string> parts = absl::StrSplit(ref, absl::MaxSplits(':', 1));
      auto view = view_features.find(parts[0]);
      if (view == view_features.end()) {
        return Invalid("feature service", svc.name(),
                       absl::StrCat("reference '", ref, "' names an unknown feature view"));
      }
      if (parts.size() == 2 && !view->second.count(parts[1])) {
        return Invalid("feature service", svc.name(),
                       absl::StrCat("reference '", ref, "' names an unknown feature"));
      }
    }
  }
  return absl::OkStatus();
}

std::vector<quiver::v1::ObjectChange> DiffRegistry(const quiver::v1::Registry& current,
                                                   const quiver::v1::Registry& next) {
  using google::protobuf::util::MessageDifferencer;
  auto equal = [](const auto& a, const auto& b) { return MessageDifferencer::Equals(a, b); };
  std::vector<quiver::v1::ObjectChange> out;
  DiffKind(current.entities(), next.entities(), "entity", equal, &out);
  DiffKind(current.sources(), next.sources(), "data_source", equal, &out);
  DiffKind(current.feature_views(), next.feature_views(), "feature_view",
           [](const FeatureView& a, const FeatureView& b) {
             FeatureView x = a, y = b;
             x.clear_schema_version();
             y.clear_schema_version();
             return MessageDifferencer::Equals(x, y);
           },
           &out);
  DiffKind(current.feature_services(), next.feature_services(), "feature_service", equal, &out);
  DiffKind(current.on_demand_feature_views(), next.on_demand_feature_views(),
           "on_demand_feature_view", equal, &out);
  DiffKind(current.push_sources(), next.push_sources(), "push_source", equal, &out);
  DiffKind(current.permissions(), next.permissions(), "permission", equal, &out);
  return out;
}

}  // namespace quiver::coordinator
