// Training sets from the registry (training_set.h): registry views and
// on-demand features → HistoricalRequest.
#include "quiver/storage/training_set.h"

#include <map>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace quiver::storage {
namespace {

const quiver::v1::DataSource* FindSource(const quiver::v1::Registry& registry,
                                         const std::string& name) {
  for (const auto& s : registry.sources()) {
    if (s.name() == name) return &s;
  }
  return nullptr;
}

// The request's view for a registry view.
absl::StatusOr<HistoricalView> ViewFor(const client::RegistryIndex& index, const std::string& name) {
  const client::ViewInfo* info = index.FindView(name);
  if (info == nullptr) return absl::NotFoundError(absl::StrCat("unknown feature view ", name));
  const quiver::v1::FeatureView& fv = *info->view;
  const quiver::v1::DataSource* source = FindSource(index.registry(), fv.source());
  if (source == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("feature view ", fv.name(), " names unknown source ", fv.source()));
  }
  HistoricalView view;
  view.name = fv.name();
  view.source_path = source->path();
  view.timestamp_field = source->timestamp_field();
  view.created_timestamp_column = source->created_timestamp_column();
  for (const client::JoinKeySpec& k : info->join_keys) view.join_keys.push_back({k.join_key, k.type});
  for (const auto& spec : fv.features()) {
    view.schema.push_back({spec.name(), static_cast<ValueType>(spec.type())});
  }
  view.schema_version = fv.schema_version();
  view.ttl_seconds = fv.ttl_seconds();
  return view;
}

}  // namespace

absl::StatusOr<HistoricalRequest> BuildHistoricalRequest(
    const client::RegistryIndex& index, const std::vector<client::ResolvedFeature>& features,
    bool full_feature_names) {
  HistoricalRequest request;
  std::map<std::string, size_t> view_index;
  auto view_of = [&](const std::string& name) -> absl::StatusOr<size_t> {
    auto it = view_index.find(name);
    if (it != view_index.end()) return it->second;
    absl::StatusOr<HistoricalView> view = ViewFor(index, name);
    if (!view.ok()) return view.status();
    view_index.emplace(name, request.views.size());
    request.views.push_back(*std::move(view));
    return request.views.size() - 1;
  };
  for (client::ResolvedFeature f : features) {
    // An on-demand view stored online is recomputed offline, as Feast does
    // (feast-compat.md §4.3): from the joined source row, by the evaluator
    // materialization ran.
    if (f.on_demand == nullptr) {
      const client::ViewInfo* info = index.FindView(f.view);
      if (info != nullptr && !info->view->on_demand_source_view().empty()) {
        f.on_demand = index.FindOnDemandView(f.view);
        if (f.on_demand == nullptr) {
          return absl::NotFoundError(absl::StrCat("feature view ", f.view, " stores an unknown on-demand view"));
        }
      }
    }
    const std::string column = full_feature_names ? absl::StrCat(f.view, "__", f.feature) : f.feature;
    if (f.on_demand == nullptr) {
      absl::StatusOr<size_t> v = view_of(f.view);
      if (!v.ok()) return v.status();
      request.features.push_back({*v, static_cast<size_t>(f.index), column});
      continue;
    }
    // On-demand: the same evaluator as the client's, on the joined row.
    const expr::OnDemandView& odfv = *f.on_demand;
    const std::vector<int> used = odfv.used_inputs(static_cast<size_t>(f.index));
    HistoricalOnDemand od;
    od.type = f.type;
    for (int i : used) {
      const expr::Input& in = odfv.inputs()[static_cast<size_t>(i)];
      HistoricalInput input;
      input.type = in.type;
      if (in.view.empty()) {
        input.request_field = in.name;
      } else {
        absl::StatusOr<size_t> v = view_of(in.view);
        if (!v.ok()) return v.status();
        input.view = *v;
        const auto& schema = request.views[*v].schema;
        for (size_t j = 0; j < schema.size(); ++j) {
          if (schema[j].name == in.name) input.feature = j;
        }
      }
      od.inputs.push_back(std::move(input));
    }
    const size_t size = odfv.inputs().size(), feature = static_cast<size_t>(f.index);
    od.evaluate = [odfv, used, size, feature](std::span<const Value> values) {
      std::vector<Value> all(size, Value::Null(ValueType::kInvalid));
      for (size_t k = 0; k < used.size(); ++k) all[static_cast<size_t>(used[k])] = values[k];
      return odfv.Evaluate(feature, all);
    };
    request.features.push_back({0, 0, column, static_cast<int>(request.on_demand.size())});
    request.on_demand.push_back(std::move(od));
  }
  return request;
}

absl::StatusOr<HistoricalStats> GetHistoricalFeatures(HistoricalStore& store,
                                                      const client::RegistryIndex& index,
                                                      const TrainingSetSpec& spec) {
  if (spec.features.empty() == spec.feature_service.empty()) {
    return absl::InvalidArgumentError(
        "a training set names either feature references or a feature service (exactly one)");
  }
  auto resolved = spec.features.empty() ? index.ResolveService(spec.feature_service)
                                        : index.Resolve(spec.features);
  if (!resolved.ok()) return resolved.status();
  auto request = BuildHistoricalRequest(index, *resolved, spec.full_feature_names);
  if (!request.ok()) return request.status();
  request->entities_path = spec.entities_path;
  request->output_path = spec.output_path;
  request->format = absl::EndsWith(spec.output_path, ".parquet") ? HistoricalFormat::kParquet
                                                                  : HistoricalFormat::kCsv;
  return store.Retrieve(*request);
}

}  // namespace quiver::storage
