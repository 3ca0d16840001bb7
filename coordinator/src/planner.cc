#include "planner.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "quiver/coordinator/repo.h"
#include "registry_lookup.h"

namespace quiver::coordinator {

using storage::RowGroupInfo;

absl::StatusOr<std::vector<quiver::v1::MaterializationTask>> PlanTasks(
    storage::OfflineStore& offline, const quiver::v1::Registry& registry,
    const std::vector<quiver::v1::ViewWindow>& windows, uint64_t max_task_rows, TaskSplit split) {
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
      // Late data: a row group outside the event window still counts when it
      // may hold rows created at or after created_after_us (its created
      // statistics say so, or it has none).
      std::vector<RowGroupInfo> created;
      if (window.has_created_after_us()) {
        auto stats = offline.RowGroups(file, source->created_timestamp_column());
        if (!stats.ok()) return stats.status();
        created = *std::move(stats);
      }
      auto may_hold_late_rows = [&](size_t i) {
        if (!window.has_created_after_us()) return false;
        if (i >= created.size() || !created[i].has_stats) return true;
        return created[i].ts_max_us >= window.created_after_us();
      };
      // Adjacent row groups inside the window form one range; a range of more
      // than max_task_rows rows becomes ceil(rows / max_task_rows) tasks over
      // the same rows, split by entity-key hash (MaterializationTask.bucket):
      // each entity is still reduced to its latest row by exactly one task,
      // and each task's memory stays bounded.
      std::vector<std::pair<uint64_t, uint64_t>> ranges;
      bool open = false;
      for (size_t i = 0; i < groups->size(); ++i) {
        const RowGroupInfo& g = (*groups)[i];
        const bool before = g.has_stats && g.ts_max_us < window.start_us() && !may_hold_late_rows(i);
        const bool outside = before || (g.has_stats && g.ts_min_us >= window.end_us());
        if (outside || g.row_end <= g.row_begin) {
          open = false;
          continue;
        }
        if (open && ranges.back().second == g.row_begin) {
          ranges.back().second = g.row_end;
        } else {
          ranges.emplace_back(g.row_begin, g.row_end);
          open = true;
        }
      }
      auto add = [&](uint64_t begin, uint64_t end, uint64_t bucket, uint64_t buckets) {
        auto& t = tasks.emplace_back();
        t.set_view(view->name());
        t.set_file(file);
        t.set_row_begin(begin);
        t.set_row_end(end);
        t.set_start_us(window.start_us());
        t.set_end_us(window.end_us());
        if (window.has_created_after_us()) t.set_created_after_us(window.created_after_us());
        if (buckets > 1) {
          t.set_bucket(static_cast<uint32_t>(bucket));
          t.set_buckets(static_cast<uint32_t>(buckets));
        }
      };
      for (const auto& [begin, end] : ranges) {
        if (split == TaskSplit::kEntityHash) {
          const uint64_t buckets = std::clamp<uint64_t>((end - begin + max_task_rows - 1) / max_task_rows,
                                                        1, kMaxBuckets);
          for (uint64_t b = 0; b < buckets; ++b) add(begin, end, b, buckets);
          continue;
        }
        // Row ranges: adjacent row groups up to max_task_rows (a larger row
        // group stays one task).
        uint64_t task_begin = begin, task_end = begin;
        for (const auto& g : *groups) {
          if (g.row_begin < begin || g.row_end > end) continue;
          if (task_end > task_begin && g.row_end - task_begin > max_task_rows) {
            add(task_begin, task_end, 0, 0);
            task_begin = g.row_begin;
          }
          task_end = g.row_end;
        }
        if (task_end > task_begin) add(task_begin, task_end, 0, 0);
      }
    }
  }
  return tasks;
}

}  // namespace quiver::coordinator
