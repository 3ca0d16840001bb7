#include "quiver/coordinator/repo.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "quiver/auth/auth.h"
#include "quiver/keys/value.h"
#include "registry_lookup.h"

namespace quiver::coordinator {
namespace {

namespace fs = std::filesystem;
using quiver::v1::DataSource;
using quiver::v1::Entity;
using quiver::v1::FeatureService;
using quiver::v1::FeatureView;
using quiver::v1::Registry;

// Parses one YAML file; every error names the file and the (1-based) line.
class FileParser {
 public:
  FileParser(std::string file, fs::path repo_dir)
      : file_(std::move(file)), repo_dir_(std::move(repo_dir)) {}

  // Adds the file's objects to `out`; `project` collects the project name.
  absl::Status Parse(const YAML::Node& root, Registry* out) {
    if (root.IsNull()) return absl::OkStatus();  // an empty file
    if (!root.IsMap()) return Error(root, "the file must be a YAML mapping");
    for (const auto& kv : root) {
      const std::string key = kv.first.Scalar();
      const YAML::Node& value = kv.second;
      absl::Status s;
      if (key == "project") {
        auto name = ScalarOf(value, "project");
        if (!name.ok()) return name.status();
        if (!out->project().empty() && out->project() != *name) {
          return Error(value, absl::StrCat("project '", *name, "' differs from project '",
                                           out->project(), "' named in another file"));
        }
        out->set_project(*name);
        continue;
      }
      if (key == "entities") {
        s = ForEach(value, key, [&](const YAML::Node& n) { return ParseEntity(n, out); });
      } else if (key == "sources") {
        s = ForEach(value, key, [&](const YAML::Node& n) { return ParseSource(n, out); });
      } else if (key == "feature_views") {
        s = ForEach(value, key, [&](const YAML::Node& n) { return ParseView(n, out); });
      } else if (key == "feature_services") {
        s = ForEach(value, key, [&](const YAML::Node& n) { return ParseService(n, out); });
      } else if (key == "on_demand_feature_views") {
        s = ForEach(value, key, [&](const YAML::Node& n) { return ParseOnDemandView(n, out); });
      } else if (key == "push_sources") {
        s = ForEach(value, key, [&](const YAML::Node& n) { return ParsePushSource(n, out); });
      } else if (key == "permissions") {
        s = ForEach(value, key, [&](const YAML::Node& n) { return ParsePermission(n, out); });
      } else {
        return Error(kv.first, absl::StrCat("unknown key '", key,
                                            "' (expected project, entities, sources, "
                                            "feature_views, on_demand_feature_views, "
                                            "push_sources, permissions or feature_services)"));
      }
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Error(const YAML::Node& node, const std::string& message) const {
    const YAML::Mark mark = node.Mark();
    if (mark.is_null()) return absl::InvalidArgumentError(absl::StrCat(file_, ": ", message));
    return absl::InvalidArgumentError(
        absl::StrCat(file_, ":", mark.line + 1, ":", mark.column + 1, ": ", message));
  }

  template <typename Fn>
  absl::Status ForEach(const YAML::Node& list, const std::string& what, Fn&& fn) {
    if (list.IsNull()) return absl::OkStatus();
    if (!list.IsSequence()) return Error(list, absl::StrCat("'", what, "' must be a list"));
    for (const auto& item : list) {
      if (!item.IsMap()) return Error(item, absl::StrCat("each of '", what, "' must be a mapping"));
      if (absl::Status s = fn(item); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> ScalarOf(const YAML::Node& node, const std::string& what) const {
    if (!node.IsScalar()) return Error(node, absl::StrCat("'", what, "' must be a scalar"));
    return node.Scalar();
  }

  // Checks that `object` only has keys of `allowed`, and that `required` ones
  // are present.
  absl::Status CheckKeys(const YAML::Node& object, const std::string& kind,
                         const std::set<std::string>& allowed,
                         const std::vector<std::string>& required) const {
    for (const auto& kv : object) {
      const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
      if (!allowed.count(key)) {
        std::string list;
        for (const auto& a : allowed) absl::StrAppend(&list, list.empty() ? "" : ", ", a);
        return Error(kv.first,
                     absl::StrCat("unknown key '", key, "' in ", kind, " (expected ", list, ")"));
      }
    }
    for (const auto& r : required) {
      if (!object[r]) return Error(object, absl::StrCat(kind, " needs '", r, "'"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<quiver::v1::ValueType> TypeOf(const YAML::Node& node,
                                               const std::string& what) const {
    auto text = ScalarOf(node, what);
    if (!text.ok()) return text.status();
    auto type = ParseTypeName(*text);
    if (!type.ok()) return Error(node, std::string(type.status().message()));
    return static_cast<quiver::v1::ValueType>(static_cast<int>(*type));
  }

  absl::Status ParseEntity(const YAML::Node& n, Registry* out) {
    if (auto s = CheckKeys(n, "entity", {"name", "join_key", "value_type", "description"},
                           {"name", "value_type"});
        !s.ok()) {
      return s;
    }
    Entity e;
    auto name = ScalarOf(n["name"], "name");
    if (!name.ok()) return name.status();
    e.set_name(*name);
    e.set_join_key(*name);  // Feast's default: the join key is named like the entity
    if (n["join_key"]) {
      auto key = ScalarOf(n["join_key"], "join_key");
      if (!key.ok()) return key.status();
      e.set_join_key(*key);
    }
    auto type = TypeOf(n["value_type"], "value_type");
    if (!type.ok()) return type.status();
    e.set_value_type(*type);
    if (n["description"]) {
      auto d = ScalarOf(n["description"], "description");
      if (!d.ok()) return d.status();
      e.set_description(*d);
    }
    *out->add_entities() = std::move(e);
    return absl::OkStatus();
  }

  absl::Status ParseSource(const YAML::Node& n, Registry* out) {
    if (auto s = CheckKeys(n, "source",
                           {"name", "path", "timestamp_field", "created_timestamp_column"},
                           {"name", "path", "timestamp_field"});
        !s.ok()) {
      return s;
    }
    DataSource d;
    for (const char* key : {"name", "path", "timestamp_field", "created_timestamp_column"}) {
      if (!n[key]) continue;
      auto v = ScalarOf(n[key], key);
      if (!v.ok()) return v.status();
      const std::string k = key;
      if (k == "name") d.set_name(*v);
      if (k == "path") {
        fs::path p(*v);
        // Globs survive: lexically_normal only folds "." and ".." components.
        d.set_path((p.is_absolute() ? p : (repo_dir_ / p)).lexically_normal().string());
      }
      if (k == "timestamp_field") d.set_timestamp_field(*v);
      if (k == "created_timestamp_column") d.set_created_timestamp_column(*v);
    }
    *out->add_sources() = std::move(d);
    return absl::OkStatus();
  }

  absl::Status ParseView(const YAML::Node& n, Registry* out) {
    if (auto s = CheckKeys(n, "feature view",
                           {"name", "entities", "ttl", "lateness", "source", "online", "schema",
                            "tags", "description", "owner"},
                           {"name", "entities", "source", "schema"});
        !s.ok()) {
      return s;
    }
    FeatureView v;
    v.set_online(true);
    for (const char* key : {"name", "source", "description", "owner"}) {
      if (!n[key]) continue;
      auto text = ScalarOf(n[key], key);
      if (!text.ok()) return text.status();
      const std::string k = key;
      if (k == "name") v.set_name(*text);
      if (k == "source") v.set_source(*text);
      if (k == "description") v.set_description(*text);
      if (k == "owner") v.set_owner(*text);
    }
    const YAML::Node entities = n["entities"];
    if (!entities.IsSequence()) return Error(entities, "'entities' must be a list of names");
    for (const auto& e : entities) {
      auto name = ScalarOf(e, "entities");
      if (!name.ok()) return name.status();
      v.add_entities(*name);
    }
    if (n["ttl"]) {
      auto text = ScalarOf(n["ttl"], "ttl");
      if (!text.ok()) return text.status();
      auto ttl = ParseDuration(*text);
      if (!ttl.ok()) return Error(n["ttl"], std::string(ttl.status().message()));
      v.set_ttl_seconds(*ttl);
    }
    if (n["lateness"]) {
      auto text = ScalarOf(n["lateness"], "lateness");
      if (!text.ok()) return text.status();
      auto lateness = ParseDuration(*text);
      if (!lateness.ok()) return Error(n["lateness"], std::string(lateness.status().message()));
      v.set_lateness_seconds(*lateness);
    }
    if (n["online"]) {
      const YAML::Node online = n["online"];
      bool value = false;
      if (!online.IsScalar() || !YAML::convert<bool>::decode(online, value)) {
        return Error(online, "'online' must be true or false");
      }
      v.set_online(value);
    }
    const YAML::Node schema = n["schema"];
    if (!schema.IsSequence()) return Error(schema, "'schema' must be a list");
    for (const auto& f : schema) {
      if (!f.IsMap()) return Error(f, "each schema entry must be a mapping {name, type}");
      if (auto s = CheckKeys(f, "schema entry", {"name", "type"}, {"name", "type"}); !s.ok()) {
        return s;
      }
      auto name = ScalarOf(f["name"], "name");
      if (!name.ok()) return name.status();
      auto type = TypeOf(f["type"], "type");
      if (!type.ok()) return type.status();
      auto* spec = v.add_features();
      spec->set_name(*name);
      spec->set_type(*type);
    }
    if (n["tags"]) {
      const YAML::Node tags = n["tags"];
      if (!tags.IsMap()) return Error(tags, "'tags' must be a mapping");
      for (const auto& kv : tags) {
        auto key = ScalarOf(kv.first, "tags");
        if (!key.ok()) return key.status();
        auto value = ScalarOf(kv.second, "tags");
        if (!value.ok()) return value.status();
        (*v.mutable_tags())[*key] = *value;
      }
    }
    *out->add_feature_views() = std::move(v);
    return absl::OkStatus();
  }

  absl::Status ParseService(const YAML::Node& n, Registry* out) {
    if (auto s = CheckKeys(n, "feature service", {"name", "features", "description"},
                           {"name", "features"});
        !s.ok()) {
      return s;
    }
    FeatureService svc;
    auto name = ScalarOf(n["name"], "name");
    if (!name.ok()) return name.status();
    svc.set_name(*name);
    const YAML::Node features = n["features"];
    if (!features.IsSequence()) return Error(features, "'features' must be a list");
    for (const auto& f : features) {
      auto ref = ScalarOf(f, "features");
      if (!ref.ok()) return ref.status();
      svc.add_features(*ref);
    }
    if (n["description"]) {
      auto d = ScalarOf(n["description"], "description");
      if (!d.ok()) return d.status();
      svc.set_description(*d);
    }
    *out->add_feature_services() = std::move(svc);
    return absl::OkStatus();
  }

  // Feast's permission: name, types, name_patterns, required_tags, actions,
  // policy {roles}.
  absl::Status ParsePermission(const YAML::Node& n, Registry* out) {
    if (auto s = CheckKeys(n, "permission",
                           {"name", "types", "name_patterns", "required_tags", "actions", "policy"},
                           {"name", "policy"});
        !s.ok()) {
      return s;
    }
    quiver::v1::Permission p;
    auto name = ScalarOf(n["name"], "name");
    if (!name.ok()) return name.status();
    p.set_name(*name);
    // A list of names (a single name is accepted, as Feast's Python does).
    auto names = [&](const char* key) -> absl::StatusOr<std::vector<std::string>> {
      std::vector<std::string> out;
      const YAML::Node list = n[key];
      if (!list) return out;
      if (list.IsScalar()) {
        out.push_back(list.as<std::string>());
        return out;
      }
      if (!list.IsSequence()) return Error(list, absl::StrCat("'", key, "' must be a list"));
      for (const auto& item : list) {
        auto v = ScalarOf(item, key);
        if (!v.ok()) return v.status();
        out.push_back(*v);
      }
      return out;
    };
    auto types = names("types");
    if (!types.ok()) return types.status();
    for (const std::string& t : *types) {
      auto type = auth::ParseResourceType(t);
      if (!type.ok()) return Error(n["types"], std::string(type.status().message()));
      p.add_types(*type);
    }
    auto patterns = names("name_patterns");
    if (!patterns.ok()) return patterns.status();
    for (const std::string& pattern : *patterns) p.add_name_patterns(pattern);
    if (const YAML::Node tags = n["required_tags"]; tags) {
      if (!tags.IsMap()) return Error(tags, "'required_tags' must be a mapping");
      for (const auto& kv : tags) {
        auto value = ScalarOf(kv.second, "required_tags");
        if (!value.ok()) return value.status();
        (*p.mutable_required_tags())[kv.first.as<std::string>()] = *value;
      }
    }
    auto actions = names("actions");
    if (!actions.ok()) return actions.status();
    for (const std::string& a : *actions) {
      auto action = auth::ParseAction(a);
      if (!action.ok()) return Error(n["actions"], std::string(action.status().message()));
      p.add_actions(*action);
    }
    const YAML::Node policy = n["policy"];
    if (!policy.IsMap() || !policy["roles"] || policy.size() != 1) {
      return Error(policy, "'policy' must be {roles: [...]}");
    }
    const YAML::Node roles = policy["roles"];
    if (!roles.IsSequence()) return Error(roles, "'policy.roles' must be a list");
    for (const auto& r : roles) {
      auto role = ScalarOf(r, "roles");
      if (!role.ok()) return role.status();
      p.add_roles(*role);
    }
    *out->add_permissions() = std::move(p);
    return absl::OkStatus();
  }

  // name, feature_views, description.
  absl::Status ParsePushSource(const YAML::Node& n, Registry* out) {
    if (auto s = CheckKeys(n, "push source", {"name", "feature_views", "description"},
                           {"name", "feature_views"});
        !s.ok()) {
      return s;
    }
    quiver::v1::PushSource source;
    auto name = ScalarOf(n["name"], "name");
    if (!name.ok()) return name.status();
    source.set_name(*name);
    const YAML::Node views = n["feature_views"];
    if (!views.IsSequence()) return Error(views, "'feature_views' must be a list");
    for (const auto& v : views) {
      auto view = ScalarOf(v, "feature_views");
      if (!view.ok()) return view.status();
      source.add_feature_views(*view);
    }
    if (n["description"]) {
      auto d = ScalarOf(n["description"], "description");
      if (!d.ok()) return d.status();
      source.set_description(*d);
    }
    *out->add_push_sources() = std::move(source);
    return absl::OkStatus();
  }

  // name, sources, request_schema [{name, type}], schema [{name, type,
  // expression}], write_to_online_store, description.
  absl::Status ParseOnDemandView(const YAML::Node& n, Registry* out) {
    if (auto s = CheckKeys(n, "on-demand feature view",
                           {"name", "sources", "request_schema", "schema", "write_to_online_store",
                            "description"},
                           {"name", "sources", "schema"});
        !s.ok()) {
      return s;
    }
    quiver::v1::OnDemandFeatureView v;
    auto name = ScalarOf(n["name"], "name");
    if (!name.ok()) return name.status();
    v.set_name(*name);
    if (!n["sources"].IsSequence()) return Error(n["sources"], "'sources' must be a list of feature views");
    for (const auto& src : n["sources"]) {
      auto view = ScalarOf(src, "sources");
      if (!view.ok()) return view.status();
      v.add_sources(*view);
    }
    auto fields = [&](const YAML::Node& list, const char* what, bool expressions) -> absl::Status {
      if (!list.IsSequence()) return Error(list, absl::StrCat("'", what, "' must be a list"));
      for (const auto& f : list) {
        if (!f.IsMap()) return Error(f, absl::StrCat("each '", what, "' entry must be a mapping"));
        const std::set<std::string> keys = expressions
                                               ? std::set<std::string>{"name", "type", "expression"}
                                               : std::set<std::string>{"name", "type"};
        if (auto s = CheckKeys(f, what, keys, std::vector<std::string>(keys.begin(), keys.end()));
            !s.ok()) {
          return s;
        }
        auto fname = ScalarOf(f["name"], "name");
        if (!fname.ok()) return fname.status();
        auto ftype = TypeOf(f["type"], "type");
        if (!ftype.ok()) return ftype.status();
        if (expressions) {
          auto text = ScalarOf(f["expression"], "expression");
          if (!text.ok()) return text.status();
          auto* feature = v.add_features();
          feature->set_name(*fname);
          feature->set_type(*ftype);
          feature->set_expression(*text);
        } else {
          auto* field = v.add_request_schema();
          field->set_name(*fname);
          field->set_type(*ftype);
        }
      }
      return absl::OkStatus();
    };
    if (n["request_schema"]) {
      if (auto s = fields(n["request_schema"], "request_schema", false); !s.ok()) return s;
    }
    if (auto s = fields(n["schema"], "schema", true); !s.ok()) return s;
    if (n["write_to_online_store"]) {
      bool value = false;
      if (!n["write_to_online_store"].IsScalar() ||
          !YAML::convert<bool>::decode(n["write_to_online_store"], value)) {
        return Error(n["write_to_online_store"], "'write_to_online_store' must be true or false");
      }
      v.set_write_to_online_store(value);
    }
    if (n["description"]) {
      auto d = ScalarOf(n["description"], "description");
      if (!d.ok()) return d.status();
      v.set_description(*d);
    }
    *out->add_on_demand_feature_views() = std::move(v);
    return absl::OkStatus();
  }

  std::string file_;
  fs::path repo_dir_;
};

}  // namespace

absl::StatusOr<int64_t> ParseDuration(const std::string& text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad duration '", text, "' (expected <n>s, <n>m, <n>h, <n>d or 0)"));
  };
  if (text == "0") return 0;
  if (text.size() < 2) return bad();
  int64_t unit = 0;
  switch (text.back()) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: return bad();
  }
  const std::string digits = text.substr(0, text.size() - 1);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return bad();
  }
  // At most 100 years: TTLs are added to microsecond timestamps, which must
  // not overflow.
  constexpr int64_t kMaxSeconds = int64_t{100} * 365 * 86400;
  int64_t n = 0;
  if (!absl::SimpleAtoi(digits, &n) || n > kMaxSeconds / unit) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad duration '", text, "' (at most 100 years: 36500d)"));
  }
  return n * unit;
}

absl::StatusOr<quiver::v1::Registry> LoadRepository(const std::string& repo_dir) {
  std::error_code ec;
  if (!fs::is_directory(repo_dir, ec)) {
    return absl::NotFoundError(absl::StrCat("feature repository '", repo_dir, "' is not a folder"));
  }
  const fs::path dir = fs::absolute(repo_dir, ec).lexically_normal();
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const auto ext = entry.path().extension();
    if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml")) files.push_back(entry.path());
  }
  if (ec) return absl::NotFoundError(absl::StrCat("cannot list '", repo_dir, "': ", ec.message()));
  if (files.empty()) {
    return absl::NotFoundError(absl::StrCat("no *.yaml file in feature repository '", repo_dir, "'"));
  }
  std::sort(files.begin(), files.end());
  Registry registry;
  for (const auto& path : files) {
    FileParser parser(path.string(), dir);
    try {
      YAML::Node root = YAML::LoadFile(path.string());
      if (absl::Status s = parser.Parse(root, &registry); !s.ok()) return s;
    } catch (const YAML::Exception& e) {
      if (e.mark.is_null()) {
        return absl::InvalidArgumentError(absl::StrCat(path.string(), ": ", e.msg));
      }
      return absl::InvalidArgumentError(absl::StrCat(path.string(), ":", e.mark.line + 1, ":",
                                                     e.mark.column + 1, ": ", e.msg));
    }
  }
  // Each on-demand view stored online gets the feature view that stores it.
  for (const auto& odfv : registry.on_demand_feature_views()) {
    if (!odfv.write_to_online_store()) continue;
    absl::StatusOr<quiver::v1::FeatureView> stored = StoredOnDemandView(registry, odfv);
    if (!stored.ok()) return stored.status();
    *registry.add_feature_views() = *std::move(stored);
  }
  if (absl::Status s = ValidateRegistry(registry); !s.ok()) return s;
  return registry;
}

absl::StatusOr<std::vector<std::string>> ValidateViewSource(const quiver::v1::Registry& registry,
                                                            const quiver::v1::FeatureView& view,
                                                            storage::OfflineStore& offline) {
  auto prefixed = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat("feature view '", view.name(), "': ", s.message()));
  };
  const quiver::v1::DataSource* source = ByName(registry.sources(), view.source());
  if (source == nullptr) {
    return prefixed(absl::InvalidArgumentError(absl::StrCat("unknown source '", view.source(), "'")));
  }
  std::vector<storage::NamedType> columns;
  for (const auto& name : view.entities()) {
    const quiver::v1::Entity* entity = ByName(registry.entities(), name);
    if (entity == nullptr) {
      return prefixed(absl::InvalidArgumentError(absl::StrCat("unknown entity '", name, "'")));
    }
    columns.push_back({entity->join_key(), static_cast<ValueType>(entity->value_type())});
  }
  // A view storing an on-demand view reads its source view's columns.
  const quiver::v1::FeatureView* read = &view;
  if (!view.on_demand_source_view().empty()) {
    read = ByName(registry.feature_views(), view.on_demand_source_view());
    if (read == nullptr) {
      return prefixed(absl::InvalidArgumentError(
          absl::StrCat("unknown source view '", view.on_demand_source_view(), "'")));
    }
  }
  for (const auto& f : read->features()) {
    columns.push_back({f.name(), static_cast<ValueType>(f.type())});
  }
  auto files = offline.ExpandPath(source->path());
  if (!files.ok()) return prefixed(files.status());
  if (absl::Status s = offline.Validate(*files, source->timestamp_field(),
                                        source->created_timestamp_column(), columns);
      !s.ok()) {
    return prefixed(s);
  }
  return files;
}

absl::Status ValidateSources(const quiver::v1::Registry& registry,
                             storage::OfflineStore& offline) {
  for (const auto& view : registry.feature_views()) {
    if (!view.online()) continue;
    if (auto files = ValidateViewSource(registry, view, offline); !files.ok()) {
      return files.status();
    }
  }
  return absl::OkStatus();
}

}  // namespace quiver::coordinator
