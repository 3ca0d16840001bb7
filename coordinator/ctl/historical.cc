// quiverctl get-historical: a training set by a point-in-time join of the
// offline store (quiver/storage/historical.h), for the registry's views.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ctl/operations.h"
#include "ctl/session.h"
#include "quiver/client/registry_index.h"
#include "quiver/storage/historical.h"
#include "quiver/storage/training_set.h"

namespace quiver::ctl {
namespace {

using Stub = quiver::v1::CoordinatorService::Stub;

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
  // --offline-memory-mb caps the process: DuckDB's memory_limit covers only
  // its buffer manager, and the rest (allocator slack, the Parquet writer,
  // Quiver's own) came to about 0.5 GB at 10M entity rows (three quarters
  // of a 2,048 MB cap gave a peak RSS of 2,064 MB: bench/README.md,
  // "Historical retrieval"), so DuckDB gets two thirds.
  if (cl.offline_memory_mb > 0) {
    options.memory_limit = absl::StrCat(cl.offline_memory_mb * 2 / 3, "MB");
  }
  options.temp_directory = (scratch / "spill").string();
  auto store = storage::HistoricalStore::Open(options);
  if (!store.ok()) return store.status();

  storage::TrainingSetSpec spec;
  spec.features = refs;
  spec.feature_service = service;
  spec.full_feature_names = full_names;
  spec.entities_path = cl.flags.at("entities");
  if (auto it = cl.flags.find("output"); it != cl.flags.end()) {
    spec.output_path = it->second;
  } else {
    spec.output_path = (scratch / "result.csv").string();
  }
  auto stats = storage::GetHistoricalFeatures(**store, **index, spec);
  if (!stats.ok()) return stats.status();
  if (!cl.flags.count("output")) {
    if (absl::Status s = CopyToOut(spec.output_path, out); !s.ok()) return s;
  } else {
    Print(err, absl::StrCat("get-historical: wrote ", stats->entity_rows, " rows x ",
                            stats->features, " features to ", spec.output_path, "\n"));
  }
  return absl::OkStatus();
}

}  // namespace quiver::ctl
