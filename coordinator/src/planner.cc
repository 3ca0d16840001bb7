#include "planner.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "quiver/coordinator/repo.h"
#include "registry_lookup.h"

namespace quiver::coordinator {
absl::StatusOr<std::vector<quiver::v1::MaterializationTask>> PlanTasks(
    storage::OfflineStore& offline, const quiver::v1::Registry& registry,
    const std::vector<quiver::v1::ViewWindow>& windows, uint64_t max_task_rows) {
  std::vector<quiver::v1::MaterializationTask> tasks;
  for (const auto& window : windows) {
    const auto* view = ByName(registry.feature_views(), window.view());
    if (!view) return absl::InvalidArgumentError(absl::StrCat("unknown feature view '", window.view(), "'"));
    auto files = ValidateViewSource(registry, *view, offline);
    if (!files.ok()) return files.status();
    const auto* source = ByName(registry.sources(), view->source());
    for (const auto& file : *files) {
      auto groups = offline.RowGroups(file, source->timestamp_field());
      if (!groups.ok()) return groups.status();
      int64_t open = -1;  // index of the task still accepting row groups
      for (const auto& g : *groups) {
        const bool outside =
            g.has_stats && (g.ts_max_us < window.start_us() || g.ts_min_us >= window.end_us());
        if (outside || g.row_end <= g.row_begin) {
          open = -1;  // only adjacent row groups merge
          continue;
        }
        if (open >= 0 && tasks[open].row_end() == g.row_begin &&
            g.row_end - tasks[open].row_begin() <= max_task_rows) {
          tasks[open].set_row_end(g.row_end);
          continue;
        }
        auto& t = tasks.emplace_back();
        t.set_view(view->name());
        t.set_file(file);
        t.set_row_begin(g.row_begin);
        t.set_row_end(g.row_end);
        t.set_start_us(window.start_us());
        t.set_end_us(window.end_us());
        open = static_cast<int64_t>(tasks.size()) - 1;
      }
    }
  }
  return tasks;
}

}  // namespace quiver::coordinator
