// Coordinator: materialization jobs and their leased tasks
// (docs/architecture.md, "Writes and materialization").
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "planner.h"
#include "quiver/coordinator/coordinator.h"
#include "quiver/coordinator/repo.h"
#include "quiver/storage/offline_store.h"
#include "registry_lookup.h"

namespace quiver::coordinator {
namespace {

using quiver::v1::CoordinatorState;
using quiver::v1::Job;

constexpr char kPending[] = "pending";
constexpr char kLeased[] = "leased";
constexpr char kDone[] = "done";
constexpr char kFailed[] = "failed";

const quiver::v1::FeatureView* FindView(const quiver::v1::Registry& r, const std::string& name) {
  return ByName(r.feature_views(), name);
}

// Raises `view`'s late-data watermark to `us` (never lowers it).
void RaiseWatermark(CoordinatorState* state, const std::string& view, int64_t us) {
  for (auto& x : *state->mutable_intervals()) {
    if (x.view() != view) continue;
    x.set_created_watermark_us(std::max(x.created_watermark_us(), us));
    return;
  }
  auto* vi = state->add_intervals();
  vi->set_view(view);
  vi->set_created_watermark_us(us);
}

// Adds [start, end) to `view`'s intervals, merging overlapping and adjacent ones.
void MergeInterval(CoordinatorState* state, const std::string& view, int64_t start, int64_t end) {
  quiver::v1::ViewIntervals* vi = nullptr;
  for (auto& x : *state->mutable_intervals()) {
    if (x.view() == view) vi = &x;
  }
  if (!vi) {
    vi = state->add_intervals();
    vi->set_view(view);
  }
  std::vector<std::pair<int64_t, int64_t>> all{{start, end}};
  for (const auto& i : vi->intervals()) all.emplace_back(i.start_us(), i.end_us());
  std::sort(all.begin(), all.end());
  vi->clear_intervals();
  for (const auto& [s, e] : all) {
    const int n = vi->intervals_size();
    if (n > 0 && s <= vi->intervals(n - 1).end_us()) {
      auto* last = vi->mutable_intervals(n - 1);
      last->set_end_us(std::max(last->end_us(), e));
    } else {
      auto* i = vi->add_intervals();
      i->set_start_us(s);
      i->set_end_us(e);
    }
  }
}

// The greatest created timestamp in `view`'s source (µs; 0 when the source
// has no created column or no row has one): the view's late-data watermark
// once a job planned now succeeds. Taken before the tasks' files are listed,
// so a file that arrives meanwhile is read by the next run. Validates the
// source first, for the same clear errors as the planner's. Errors: the
// offline store's.
absl::StatusOr<int64_t> CreatedWatermark(storage::OfflineStore& offline,
                                         const quiver::v1::Registry& registry,
                                         const quiver::v1::FeatureView& view) {
  const auto* source = ByName(registry.sources(), view.source());
  if (source == nullptr || source->created_timestamp_column().empty()) return 0;
  auto files = ValidateViewSource(registry, view, offline);
  if (!files.ok()) return files.status();
  auto max = offline.MaxTimestamp(*files, source->created_timestamp_column());
  if (!max.ok()) return max.status();
  return max->value_or(0);
}

}  // namespace

uint32_t Coordinator::AttemptLimit(const std::string& error) const {
  // A node refused the task's rows or commit because the map changed under
  // it (a move or a recovery fenced its partitions): not the task's fault,
  // and the next attempt routes with the new map. Still bounded.
  const bool stale_map = error.find("stale map") != std::string::npos;
  return stale_map ? options_.max_task_attempts * 4 : options_.max_task_attempts;
}

absl::StatusOr<Job> Coordinator::StartMaterialization(const quiver::v1::MaterializeRequest& req) {
  std::vector<quiver::v1::ViewWindow> windows;
  const int64_t now = Now();
  const CoordinatorState snapshot = Snapshot();
  const quiver::v1::Registry& registry = snapshot.registry();
  if (registry.version() == 0) return absl::FailedPreconditionError("no registry applied yet");
  std::vector<std::string> names;
  if (req.views().empty()) {
    for (const auto& v : registry.feature_views()) {
      if (v.online()) names.push_back(v.name());
    }
    if (names.empty()) return absl::InvalidArgumentError("the registry has no online feature view");
  } else {
    for (const auto& name : req.views()) {
      const auto* v = FindView(registry, name);
      if (!v) return absl::InvalidArgumentError(absl::StrCat("unknown feature view '", name, "'"));
      if (!v->online()) {
        return absl::InvalidArgumentError(absl::StrCat("feature view '", name, "' is not online"));
      }
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
  }
  if (!req.incremental() && req.start_us() >= req.end_us()) {
    return absl::InvalidArgumentError(
        absl::StrCat("start (", req.start_us(), ") must be before end (", req.end_us(), ")"));
  }
  for (const auto& name : names) {
    const auto* view = FindView(registry, name);
    int64_t start = req.start_us();
    std::optional<int64_t> created_after;
    if (req.incremental()) {
      start = view->ttl_seconds() > 0 ? now - view->ttl_seconds() * 1'000'000 : 0;
      for (const auto& vi : snapshot.intervals()) {
        if (vi.view() != name) continue;
        if (!vi.intervals().empty()) {
          // Late events (issue 12): re-read `lateness` before the last end,
          // and take every row created since the last watermark.
          start = std::max<int64_t>(0, vi.intervals(vi.intervals_size() - 1).end_us() -
                                           view->lateness_seconds() * 1'000'000);
        }
        if (vi.created_watermark_us() > 0) created_after = vi.created_watermark_us();
      }
      if (start >= req.end_us() && !created_after.has_value()) continue;  // nothing to read
    }
    auto watermark = CreatedWatermark(*offline_, registry, *view);
    if (!watermark.ok()) return watermark.status();
    auto& w = windows.emplace_back();
    w.set_view(name);
    w.set_start_us(std::min(start, req.end_us()));
    w.set_end_us(req.end_us());
    w.set_schema_version(view->schema_version());
    if (created_after.has_value()) w.set_created_after_us(*created_after);
    w.set_created_watermark_us(*watermark);
  }
  // Reading Parquet metadata may take a while: no lock held.
  auto tasks = PlanTasks(*offline_, registry, windows, options_.max_task_rows, options_.task_split);
  if (!tasks.ok()) return tasks.status();

  Job result;
  absl::Status s = Mutate([&](CoordinatorState& state) -> absl::StatusOr<bool> {
    Job* job = state.add_jobs();
    const uint64_t id = std::max<uint64_t>(state.next_job_id(), 1);
    state.set_next_job_id(id + 1);
    job->set_id(id);
    job->set_state(quiver::v1::JOB_RUNNING);
    job->set_created_us(Now());
    for (const auto& w : windows) *job->add_windows() = w;
    for (size_t i = 0; i < tasks->size(); ++i) {
      quiver::v1::MaterializationTask t = (*tasks)[i];
      t.set_job_id(id);
      t.set_task_id(static_cast<uint32_t>(i));
      t.set_registry_version(registry.version());
      auto* st = job->add_tasks();
      st->set_task_id(t.task_id());
      st->set_view(t.view());
      st->set_file(t.file());
      st->set_state(kPending);
      *state.add_pending_tasks() = std::move(t);
    }
    spdlog::info("materialization job {}: {} views, {} tasks", id, windows.size(), tasks->size());
    if (tasks->empty()) FinishJob(state, job, true, "");
    result = *job;
    return true;
  });
  if (!s.ok()) return s;
  return result;
}

absl::StatusOr<Job> Coordinator::GetJob(uint64_t job_id) const {
  absl::MutexLock lock(&mu_);
  for (const auto& j : state_.jobs()) {
    if (j.id() == job_id) return j;
  }
  return absl::NotFoundError(absl::StrCat("unknown job ", job_id));
}

const Job* Coordinator::FindJob(const CoordinatorState& s, uint64_t id) {
  for (const auto& j : s.jobs()) {
    if (j.id() == id) return &j;
  }
  return nullptr;
}

Job* Coordinator::FindJob(CoordinatorState& s, uint64_t id) {
  return const_cast<Job*>(FindJob(static_cast<const CoordinatorState&>(s), id));
}

void Coordinator::FinishJob(CoordinatorState& s, Job* job, bool ok, const std::string& error) {
  job->set_state(ok ? quiver::v1::JOB_SUCCEEDED : quiver::v1::JOB_FAILED);
  job->set_finished_us(Now());
  job->set_error(error);
  const uint64_t id = job->id();
  auto* pending = s.mutable_pending_tasks();
  pending->erase(std::remove_if(pending->begin(), pending->end(),
                                [id](const auto& t) { return t.job_id() == id; }),
                 pending->end());
  if (ok) {
    for (const auto& w : job->windows()) {
      // An apply since the job was planned may have changed the view: its
      // rows then no longer count as materialized.
      const auto* view = FindView(s.registry(), w.view());
      if (view == nullptr || view->schema_version() != w.schema_version()) continue;
      if (w.start_us() < w.end_us()) MergeInterval(&s, w.view(), w.start_us(), w.end_us());
      if (w.created_watermark_us() > 0) RaiseWatermark(&s, w.view(), w.created_watermark_us());
    }
    spdlog::info("job {} succeeded: {} rows", id, job->rows_written());
  } else {
    spdlog::error("job {} failed: {}", id, error);
  }
}

void Coordinator::PruneJobs(CoordinatorState& s) {
  int64_t finished = 0;
  for (const auto& j : s.jobs()) finished += j.state() != quiver::v1::JOB_RUNNING;
  int64_t excess = finished - static_cast<int64_t>(options_.max_finished_jobs);
  if (excess <= 0) return;
  auto* jobs = s.mutable_jobs();
  jobs->erase(std::remove_if(jobs->begin(), jobs->end(),
                             [&excess](const Job& j) {
                               if (excess <= 0 || j.state() == quiver::v1::JOB_RUNNING) return false;
                               --excess;  // jobs are in creation order: the oldest go first
                               return true;
                             }),
              jobs->end());
}

std::vector<int> Coordinator::LeasesToRenew(
    const quiver::v1::CoordinatorState& s, uint32_t node_id,
    const google::protobuf::RepeatedPtrField<quiver::v1::RunningTask>& running, int64_t now) const {
  std::vector<int> due;
  if (running.empty()) return due;
  for (int i = 0; i < s.pending_tasks_size(); ++i) {
    const quiver::v1::MaterializationTask& t = s.pending_tasks(i);
    if (t.lease_expires_us() - now >= options_.lease_us / 2) continue;
    const bool reported = std::any_of(running.begin(), running.end(), [&](const auto& r) {
      return r.job_id() == t.job_id() && r.task_id() == t.task_id() && r.attempt() == t.attempt();
    });
    if (!reported) continue;
    // Still this node's lease: not re-leased, failed or finished meanwhile.
    const quiver::v1::Job* job = FindJob(s, t.job_id());
    if (job == nullptr || job->state() != quiver::v1::JOB_RUNNING ||
        t.task_id() >= static_cast<uint32_t>(job->tasks_size())) {
      continue;
    }
    const auto& st = job->tasks(static_cast<int>(t.task_id()));
    if (st.state() == kLeased && st.node_id() == node_id) due.push_back(i);
  }
  return due;
}

absl::StatusOr<quiver::v1::LeaseTaskResponse> Coordinator::LeaseTask(
    const quiver::v1::LeaseTaskRequest& req) {
  quiver::v1::LeaseTaskResponse resp;
  {
    // Most polls find nothing: answer them from a read.
    absl::MutexLock lock(&mu_);
    if (state_.pending_tasks_size() == 0) return resp;
  }
  absl::Status s = Mutate([&](CoordinatorState& state) -> absl::StatusOr<bool> {
    resp.Clear();
    const quiver::v1::NodeInfo* node = FindNode(state, req.node_id());
    // Healthy nodes run tasks (a task writes through the client to every
    // replica, whatever the leasing node holds itself).
    if (!node || (node->state() != quiver::v1::UP && node->state() != quiver::v1::JOINING &&
                  node->state() != quiver::v1::LEAVING)) {
      return false;
    }
    const int64_t now = Now();
    // Jobs whose task's lease expired once too often fail first.
    std::vector<std::pair<uint64_t, std::string>> to_fail;
    for (const auto& t : state.pending_tasks()) {
      Job* job = FindJob(state, t.job_id());
      if (!job) continue;
      auto* st = job->mutable_tasks(static_cast<int>(t.task_id()));
      if (st->state() == kLeased && t.lease_expires_us() <= now &&
          t.attempt() >= options_.max_task_attempts) {
        st->set_state(kFailed);
        st->set_error("lease expired");
        to_fail.emplace_back(job->id(), absl::StrCat("task ", t.task_id(), " (", t.file(),
                                                     ") lease expired after ", t.attempt(),
                                                     " attempts"));
      }
    }
    for (const auto& [id, error] : to_fail) {
      if (Job* job = FindJob(state, id); job && job->state() == quiver::v1::JOB_RUNNING) {
        FinishJob(state, job, false, error);
      }
    }
    for (auto& t : *state.mutable_pending_tasks()) {
      Job* job = FindJob(state, t.job_id());
      if (!job || job->state() != quiver::v1::JOB_RUNNING) continue;
      auto* st = job->mutable_tasks(static_cast<int>(t.task_id()));
      const bool expired = st->state() == kLeased && t.lease_expires_us() <= now;
      if (st->state() != kPending && !expired) continue;
      if (expired) {
        spdlog::warn("job {} task {}: lease of node {} expired, re-leasing", t.job_id(),
                     t.task_id(), st->node_id());
      }
      t.set_attempt(t.attempt() + 1);
      t.set_lease_expires_us(now + options_.lease_us);
      st->set_state(kLeased);
      st->set_node_id(req.node_id());
      st->set_attempts(t.attempt());
      *resp.mutable_task() = t;
      break;
    }
    return resp.has_task() || !to_fail.empty();
  });
  if (!s.ok()) return s;
  return resp;
}

absl::Status Coordinator::CompleteTask(const quiver::v1::CompleteTaskRequest& req) {
  return Mutate([&](CoordinatorState& state) -> absl::StatusOr<bool> {
    Job* job = FindJob(state, req.job_id());
    if (!job) return absl::NotFoundError(absl::StrCat("unknown job ", req.job_id()));
    if (req.task_id() >= static_cast<uint32_t>(job->tasks_size())) {
      return absl::NotFoundError(absl::StrCat("job ", req.job_id(), " has no task ", req.task_id()));
    }
    auto* pending = state.mutable_pending_tasks();
    auto it = std::find_if(pending->begin(), pending->end(), [&](const auto& t) {
      return t.job_id() == req.job_id() && t.task_id() == req.task_id();
    });
    auto* st = job->mutable_tasks(static_cast<int>(req.task_id()));
    if (job->state() != quiver::v1::JOB_RUNNING || it == pending->end() ||
        st->state() != kLeased || it->attempt() != req.attempt() || st->node_id() != req.node_id()) {
      spdlog::info("job {} task {}: ignoring stale completion from node {} (attempt {})",
                   req.job_id(), req.task_id(), req.node_id(), req.attempt());
      return false;
    }
    if (req.ok()) {
      st->set_state(kDone);
      st->set_rows_written(req.rows_written());
      st->clear_error();
      job->set_rows_written(job->rows_written() + req.rows_written());
      pending->erase(it);
      const bool all_done = std::all_of(job->tasks().begin(), job->tasks().end(),
                                        [](const auto& t) { return t.state() == kDone; });
      if (all_done) FinishJob(state, job, true, "");
    } else if (req.retryable() && it->attempt() < AttemptLimit(req.error())) {
      spdlog::warn("job {} task {} failed on node {} (attempt {}), will retry: {}", req.job_id(),
                   req.task_id(), req.node_id(), req.attempt(), req.error());
      st->set_state(kPending);
      st->set_error(req.error());
      it->set_lease_expires_us(0);
    } else {
      st->set_state(kFailed);
      st->set_error(req.error());
      FinishJob(state, job, false,
                absl::StrCat("task ", req.task_id(), " (", st->file(), ") failed after ",
                             it->attempt(), " attempts: ", req.error()));
    }
    return true;
  });
}

}  // namespace quiver::coordinator
