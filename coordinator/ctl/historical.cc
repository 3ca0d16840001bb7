// quiverctl get-historical: a training set by a point-in-time join of the
// offline store (quiver/storage/historical.h), for the registry's views.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ctl/operations.h"
#include "ctl/session.h"
#include "quiver/client/registry_index.h"
#include "quiver/storage/historical.h"

namespace quiver::ctl {
namespace {

using Stub = quiver::v1::CoordinatorService::Stub;

const quiver::v1::DataSource* FindSource(const quiver::v1::Registry& registry,
                                         const std::string& name) {
  for (const auto& s : registry.sources()) {
    if (s.name() == name) return &s;
  }
  return nullptr;
}

// The request for `features` (resolved, in request order): each view once,
// in order of first use (a view an on-demand feature reads included).
absl::StatusOr<storage::HistoricalRequest> BuildRequest(
    const client::RegistryIndex& index, const std::vector<client::ResolvedFeature>& features,
    bool full_names) {
  storage::HistoricalRequest request;
  std::map<std::string, size_t> view_index;
  auto view_of = [&](const std::string& name) -> absl::StatusOr<size_t> {
    auto it = view_index.find(name);
    if (it != view_index.end()) return it->second;
    const client::ViewInfo* info = index.FindView(name);
    if (info == nullptr) return absl::NotFoundError(absl::StrCat("unknown feature view ", name));
    const quiver::v1::FeatureView& fv = *info->view;
    const quiver::v1::DataSource* source = FindSource(index.registry(), fv.source());
    if (source == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("feature view ", fv.name(), " names unknown source ", fv.source()));
    }
    storage::HistoricalView view;
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
    view_index.emplace(name, request.views.size());
    request.views.push_back(std::move(view));
    return request.views.size() - 1;
  };
  for (const client::ResolvedFeature& f : features) {
    const std::string column = full_names ? absl::StrCat(f.view, "__", f.feature) : f.feature;
    if (f.on_demand == nullptr) {
      absl::StatusOr<size_t> v = view_of(f.view);
      if (!v.ok()) return v.status();
      request.features.push_back({*v, static_cast<size_t>(f.index), column});
      continue;
    }
    // On-demand: the same evaluator as the client's, on the joined row.
    const expr::OnDemandView& odfv = *f.on_demand;
    const std::vector<int> used = odfv.used_inputs(static_cast<size_t>(f.index));
    storage::HistoricalOnDemand od;
    od.type = f.type;
    for (int i : used) {
      const expr::Input& in = odfv.inputs()[static_cast<size_t>(i)];
      storage::HistoricalInput input;
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
    request.features.push_back(
        {0, 0, column, static_cast<int>(request.on_demand.size())});
    request.on_demand.push_back(std::move(od));
  }
  return request;
}

// Copies `path` to `out`. Errors: kDataLoss (read error).
absl::Status CopyToOut(const std::string& path, std::FILE* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::DataLossError(absl::StrCat("cannot read ", path));
  std::string buffer(1 << 16, '\0');
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    if (n > 0 && std::fwrite(buffer.data(), 1, static_cast<size_t>(n), out) != static_cast<size_t>(n)) {
      return absl::DataLossError("cannot write the result");
    }
  }
  std::fflush(out);
  return absl::OkStatus();
}

}  // namespace

absl::Status RunGetHistorical(const CommandLine& cl, std::FILE* out, std::FILE* err) {
  auto selection = ParseFeatureSelection(cl);
  if (!selection.ok()) return selection.status();
  const std::vector<std::string>& refs = selection->refs;
  const std::string& service = selection->service;
  const bool full_names = cl.flags.count("full-feature-names") > 0;

  Coordinator coord(cl);
  quiver::v1::Registry registry;
  if (auto s = coord.Call("GetRegistry", &Stub::GetRegistry, quiver::v1::GetRegistryRequest(),
                          &registry);
      !s.ok()) {
    return s;
  }
  auto index = client::RegistryIndex::Build(registry);
  if (!index.ok()) return index.status();
  auto resolved = service.empty() ? (*index)->Resolve(refs) : (*index)->ResolveService(service);
  if (!resolved.ok()) return resolved.status();
  auto request = BuildRequest(**index, *resolved, full_names);
  if (!request.ok()) return request.status();
  request->entities_path = cl.flags.at("entities");

  // Spills go to a folder of this process's own, removed at the end.
  const std::filesystem::path scratch =
      cl.offline_temp_dir.empty()
          ? std::filesystem::temp_directory_path() / absl::StrCat("quiverctl-historical-", getpid())
          : std::filesystem::path(cl.offline_temp_dir) / absl::StrCat("historical-", getpid());
  struct Cleanup {
    std::filesystem::path dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{scratch};
  storage::HistoricalOptions options;
  if (cl.offline_memory_mb > 0) options.memory_limit = absl::StrCat(cl.offline_memory_mb, "MB");
  options.temp_directory = (scratch / "spill").string();
  auto store = storage::HistoricalStore::Open(options);
  if (!store.ok()) return store.status();

  std::string output;
  if (auto it = cl.flags.find("output"); it != cl.flags.end()) {
    output = it->second;
  } else {
    output = (scratch / "result.csv").string();
  }
  request->output_path = output;
  request->format = absl::EndsWith(output, ".parquet") ? storage::HistoricalFormat::kParquet
                                                       : storage::HistoricalFormat::kCsv;
  auto stats = (*store)->Retrieve(*request);
  if (!stats.ok()) return stats.status();
  if (!cl.flags.count("output")) {
    if (absl::Status s = CopyToOut(output, out); !s.ok()) return s;
  } else {
    Print(err, absl::StrCat("get-historical: wrote ", stats->entity_rows, " rows x ",
                            request->features.size(), " features to ", output, "\n"));
  }
  return absl::OkStatus();
}

}  // namespace quiver::ctl
