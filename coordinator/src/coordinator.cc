#include "quiver/coordinator/coordinator.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "planner.h"
#include "quiver/coordinator/partition_map.h"
#include "quiver/coordinator/repo.h"
#include "quiver/storage/offline_store.h"
#include "registry_lookup.h"
#include "state_file.h"

namespace quiver::coordinator {
namespace {

using quiver::v1::Job;

constexpr char kPending[] = "pending";
constexpr char kLeased[] = "leased";
constexpr char kDone[] = "done";
constexpr char kFailed[] = "failed";

int64_t SystemNowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const quiver::v1::FeatureView* FindView(const quiver::v1::Registry& r, const std::string& name) {
  return ByName(r.feature_views(), name);
}

// Whether rows stored under view `a` of registry `ra` are rows of view `b` of
// registry `rb`: the same features (names, types, order) and the same entity
// key (entities, their join keys and types). Anything else changes the schema
// version.
bool SameRowLayout(const quiver::v1::Registry& ra, const quiver::v1::FeatureView& a,
                   const quiver::v1::Registry& rb, const quiver::v1::FeatureView& b) {
  if (a.features_size() != b.features_size() || a.entities_size() != b.entities_size()) {
    return false;
  }
  for (int i = 0; i < a.features_size(); ++i) {
    if (a.features(i).name() != b.features(i).name() ||
        a.features(i).type() != b.features(i).type()) {
      return false;
    }
  }
  for (int i = 0; i < a.entities_size(); ++i) {
    const auto* ea = ByName(ra.entities(), a.entities(i));
    const auto* eb = ByName(rb.entities(), b.entities(i));
    if (a.entities(i) != b.entities(i) || ea == nullptr || eb == nullptr ||
        ea->join_key() != eb->join_key() || ea->value_type() != eb->value_type()) {
      return false;
    }
  }
  return true;
}

// Whether view `a`'s source in `ra` is the same data source as `b`'s in `rb`.
bool SameSource(const quiver::v1::Registry& ra, const quiver::v1::FeatureView& a,
                const quiver::v1::Registry& rb, const quiver::v1::FeatureView& b) {
  const auto* sa = ByName(ra.sources(), a.source());
  const auto* sb = ByName(rb.sources(), b.source());
  return sa != nullptr && sb != nullptr && sa->path() == sb->path() &&
         sa->timestamp_field() == sb->timestamp_field() &&
         sa->created_timestamp_column() == sb->created_timestamp_column();
}

// Adds [start, end) to `view`'s intervals, merging overlapping and adjacent ones.
void MergeInterval(quiver::v1::CoordinatorState* state, const std::string& view, int64_t start,
                   int64_t end) {
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

}  // namespace

Coordinator::Coordinator(CoordinatorOptions options, std::unique_ptr<storage::OfflineStore> offline)
    : options_(std::move(options)), offline_(std::move(offline)) {}

Coordinator::~Coordinator() {
  if (lock_fd_ >= 0) close(lock_fd_);
}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Open(CoordinatorOptions options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("a data dir is required");
  const uint32_t q = options.num_partitions;
  if (q == 0 || (q & (q - 1)) != 0 || q > (1u << 24)) {
    return absl::InvalidArgumentError(
        absl::StrCat("partitions must be a power of two up to 2^24, got ", q));
  }
  if (options.replication_factor == 0) {
    return absl::InvalidArgumentError("replication factor must be at least 1");
  }
  if (options.heartbeat_timeout_us <= 0 || options.lease_us <= 0) {
    return absl::InvalidArgumentError("heartbeat timeout and lease must be positive");
  }
  if (options.max_task_attempts == 0) options.max_task_attempts = 1;
  if (options.max_task_rows == 0) options.max_task_rows = 1;
  if (!options.clock) options.clock = SystemNowUs;
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create data dir ", options.data_dir, ": ", ec.message()));
  }
  // Two coordinators over one state.pb would overwrite each other's state.
  const std::string lock_path = options.data_dir + "/LOCK";
  const int lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    if (lock_fd >= 0) close(lock_fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "data dir ", options.data_dir, " is in use by another coordinator (", lock_path, ")"));
  }
  auto loaded = ReadStateFile(options.data_dir + "/state.pb");
  if (!loaded.ok()) {
    close(lock_fd);
    return loaded.status();
  }
  auto offline = storage::OfflineStore::Open(2);
  if (!offline.ok()) {
    close(lock_fd);
    return offline.status();
  }

  std::unique_ptr<Coordinator> c(new Coordinator(std::move(options), std::move(*offline)));
  c->lock_fd_ = lock_fd;
  absl::MutexLock lock(&c->mu_);
  auto& state = c->state_;
  if (loaded->has_value()) {
    state = std::move(**loaded);
    if (state.map().num_partitions() != c->options_.num_partitions ||
        state.map().replication_factor() != c->options_.replication_factor) {
      spdlog::warn("state holds {} partitions and replication factor {}; keeping them (flags "
                   "apply to new clusters only)",
                   state.map().num_partitions(), state.map().replication_factor());
    }
    const int64_t now = c->Now();
    for (auto& node : *state.mutable_map()->mutable_nodes()) {
      if (node.state() != quiver::v1::DOWN) node.set_last_heartbeat_us(now);
    }
    spdlog::info("loaded state: registry version {}, {} nodes, epoch {}, {} jobs",
                 state.registry().version(), state.map().nodes_size(), state.map().epoch(),
                 state.jobs_size());
  } else {
    state.mutable_map()->set_num_partitions(c->options_.num_partitions);
    state.mutable_map()->set_replication_factor(c->options_.replication_factor);
    state.set_next_node_id(1);
    state.set_next_job_id(1);
  }
  return c;
}

absl::Status Coordinator::Persist() {
  PruneJobs();
  absl::Status s = WriteStateFile(options_.data_dir + "/state.pb", state_);
  if (!s.ok()) spdlog::error("persisting state failed: {}", s.ToString());
  return s;
}

quiver::v1::NodeInfo* Coordinator::FindNode(uint32_t id) {
  for (auto& n : *state_.mutable_map()->mutable_nodes()) {
    if (n.id() == id) return &n;
  }
  return nullptr;
}

Job* Coordinator::FindJob(uint64_t id) {
  for (auto& j : *state_.mutable_jobs()) {
    if (j.id() == id) return &j;
  }
  return nullptr;
}

void Coordinator::RecomputeMap() {
  auto* map = state_.mutable_map();
  Assignment current;
  for (const auto& p : map->partitions()) current.emplace_back(p.node_ids().begin(), p.node_ids().end());
  std::vector<uint32_t> ids;
  for (const auto& n : map->nodes()) ids.push_back(n.id());
  Assignment next = AssignPartitions(current, map->num_partitions(), ids, map->replication_factor());
  if (next == current) return;
  const bool has_data =
      std::any_of(state_.jobs().begin(), state_.jobs().end(),
                  [](const Job& j) { return j.state() == quiver::v1::JOB_SUCCEEDED; }) ||
      state_.intervals_size() > 0;
  if (has_data) {
    spdlog::warn("partition map changed while the cluster holds materialized data; moved "
                 "partitions are empty on their new replicas until re-materialized");
  }
  map->clear_partitions();
  for (const auto& replicas : next) {
    map->add_partitions()->mutable_node_ids()->Assign(replicas.begin(), replicas.end());
  }
}

absl::StatusOr<quiver::v1::RegisterResponse> Coordinator::Register(
    const quiver::v1::RegisterRequest& req) {
  if (req.address().empty()) return absl::InvalidArgumentError("register: address is empty");
  absl::MutexLock lock(&mu_);
  quiver::v1::NodeInfo* node = req.node_id() ? FindNode(req.node_id()) : nullptr;
  const bool is_new = node == nullptr;
  if (is_new) {
    // An unknown non-zero id is accepted as is (e.g. a node outliving a lost
    // coordinator state); ids are never reused.
    const uint32_t id = req.node_id() ? req.node_id() : std::max<uint32_t>(state_.next_node_id(), 1);
    state_.set_next_node_id(std::max(state_.next_node_id(), id + 1));
    node = state_.mutable_map()->add_nodes();
    node->set_id(id);
  }
  const bool changed = is_new || node->address() != req.address() ||
                       node->metrics_address() != req.metrics_address() ||
                       node->lookup_address() != req.lookup_address() ||
                       node->state() != quiver::v1::UP;
  node->set_address(req.address());
  node->set_metrics_address(req.metrics_address());
  node->set_lookup_address(req.lookup_address());
  node->set_last_heartbeat_us(Now());
  const uint32_t id = node->id();
  if (is_new) {
    node->set_state(quiver::v1::UP);
    RecomputeMap();
  } else {
    Return(node);  // restarted: it may have missed writes meanwhile
  }
  if (changed) {
    state_.mutable_map()->set_epoch(state_.map().epoch() + 1);
    spdlog::info("node {} registered at {} ({}), epoch {}", id, req.address(),
                 is_new ? "new" : "known", state_.map().epoch());
    if (absl::Status s = Persist(); !s.ok()) return s;
  }
  quiver::v1::RegisterResponse resp;
  resp.set_node_id(id);
  *resp.mutable_map() = state_.map();
  return resp;
}

absl::StatusOr<quiver::v1::HeartbeatResponse> Coordinator::Heartbeat(
    const quiver::v1::HeartbeatRequest& req) {
  absl::MutexLock lock(&mu_);
  quiver::v1::NodeInfo* node = FindNode(req.node_id());
  if (!node) {
    return absl::NotFoundError(absl::StrCat("unknown node ", req.node_id(), "; register first"));
  }
  node->set_last_heartbeat_us(Now());
  bool changed = false;
  if (node->state() == quiver::v1::DOWN) {
    Return(node);
    changed = true;
  } else if (node->state() == quiver::v1::RECOVERING && req.repaired_recovery() != 0 &&
             req.repaired_recovery() == node->recovery()) {
    node->set_state(quiver::v1::UP);
    changed = true;
  }
  if (changed) {
    state_.mutable_map()->set_epoch(state_.map().epoch() + 1);
    spdlog::info("node {} is {} (recovery {}), epoch {}", node->id(),
                 quiver::v1::NodeState_Name(node->state()), node->recovery(),
                 state_.map().epoch());
    if (absl::Status s = Persist(); !s.ok()) return s;
  }
  quiver::v1::HeartbeatResponse resp;
  resp.set_epoch(state_.map().epoch());
  resp.set_registry_version(state_.registry().version());
  resp.set_state(node->state());
  resp.set_recovery(node->recovery());
  return resp;
}

void Coordinator::Return(quiver::v1::NodeInfo* node) {
  // RECOVERING only when another replica shares one of its partitions:
  // otherwise there is nothing to copy from and nothing newer anywhere.
  bool has_peer = false;
  for (const auto& p : state_.map().partitions()) {
    if (p.node_ids_size() < 2) continue;
    for (uint32_t id : p.node_ids()) has_peer = has_peer || id == node->id();
    if (has_peer) break;
  }
  if (!has_peer) {
    node->set_state(quiver::v1::UP);
    return;
  }
  node->set_state(quiver::v1::RECOVERING);
  node->set_recovery(node->recovery() + 1);
}

absl::Status Coordinator::Tick() {
  absl::MutexLock lock(&mu_);
  const int64_t now = Now();
  bool changed = false;
  for (auto& node : *state_.mutable_map()->mutable_nodes()) {
    if (node.state() != quiver::v1::DOWN &&
        now - node.last_heartbeat_us() > options_.heartbeat_timeout_us) {
      node.set_state(quiver::v1::DOWN);
      changed = true;
      spdlog::warn("node {} ({}) missed heartbeats for {} ms: DOWN", node.id(), node.address(),
                   (now - node.last_heartbeat_us()) / 1000);
    }
  }
  if (!changed) return absl::OkStatus();
  state_.mutable_map()->set_epoch(state_.map().epoch() + 1);
  return Persist();
}

quiver::v1::ClusterMap Coordinator::GetClusterMap() const {
  absl::MutexLock lock(&mu_);
  return state_.map();
}

quiver::v1::ListNodesResponse Coordinator::ListNodes() const {
  absl::MutexLock lock(&mu_);
  quiver::v1::ListNodesResponse resp;
  resp.set_epoch(state_.map().epoch());
  std::map<uint32_t, std::pair<uint32_t, uint32_t>> counts;  // id -> held, preferred
  for (const auto& p : state_.map().partitions()) {
    for (int i = 0; i < p.node_ids_size(); ++i) {
      auto& c = counts[p.node_ids(i)];
      ++c.first;
      if (i == 0) ++c.second;
    }
  }
  for (const auto& n : state_.map().nodes()) {
    auto* s = resp.add_nodes();
    *s->mutable_node() = n;
    s->set_partitions_held(counts[n.id()].first);
    s->set_partitions_preferred(counts[n.id()].second);
  }
  return resp;
}

absl::StatusOr<quiver::v1::ApplyRegistryResponse> Coordinator::ApplyRegistry(
    const quiver::v1::ApplyRegistryRequest& req) {
  if (absl::Status s = ValidateRegistry(req.registry()); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  const quiver::v1::Registry& current = state_.registry();
  if (current.version() > 0 && current.project() != req.registry().project()) {
    return absl::FailedPreconditionError(
        absl::StrCat("this cluster serves project '", current.project(), "', not '",
                     req.registry().project(), "'"));
  }
  quiver::v1::ApplyRegistryResponse resp;
  resp.set_version(current.version());
  for (auto& c : DiffRegistry(current, req.registry())) *resp.add_changes() = std::move(c);
  const bool changed =
      current.version() == 0 ||
      std::any_of(resp.changes().begin(), resp.changes().end(),
                  [](const quiver::v1::ObjectChange& c) { return c.action() != "unchanged"; });
  if (req.dry_run() || !changed) return resp;

  quiver::v1::Registry next = req.registry();
  next.set_version(current.version() + 1);
  next.set_updated_at_us(Now());
  for (auto& view : *next.mutable_feature_views()) {
    const auto* old = FindView(current, view.name());
    if (!old) {
      view.set_schema_version(1);
    } else {
      view.set_schema_version(SameRowLayout(current, *old, next, view)
                                  ? old->schema_version()
                                  : old->schema_version() + 1);
    }
  }
  // Intervals of deleted views, of views whose schema changed, or whose source
  // now points elsewhere no longer describe what the online store can serve.
  std::set<std::string> keep;
  for (const auto& view : next.feature_views()) {
    const auto* old = FindView(current, view.name());
    if (old && old->schema_version() == view.schema_version() &&
        SameSource(current, *old, next, view)) {
      keep.insert(view.name());
    }
  }
  auto* intervals = state_.mutable_intervals();
  intervals->erase(std::remove_if(intervals->begin(), intervals->end(),
                                  [&](const auto& vi) { return !keep.count(vi.view()); }),
                   intervals->end());
  state_.mutable_registry()->Swap(&next);
  resp.set_version(state_.registry().version());
  spdlog::info("registry version {} applied", state_.registry().version());
  if (absl::Status s = Persist(); !s.ok()) return s;
  return resp;
}

quiver::v1::Registry Coordinator::GetRegistry() const {
  absl::MutexLock lock(&mu_);
  return state_.registry();
}

absl::StatusOr<quiver::v1::ReportMissedWritesResponse> Coordinator::ReportMissedWrites(
    const quiver::v1::ReportMissedWritesRequest& req) {
  absl::MutexLock lock(&mu_);
  quiver::v1::NodeInfo* node = FindNode(req.node_id());
  if (!node) return absl::NotFoundError(absl::StrCat("unknown node ", req.node_id()));
  if (node->state() != quiver::v1::DOWN) {
    Return(node);
    state_.mutable_map()->set_epoch(state_.map().epoch() + 1);
    spdlog::warn("node {} missed writes ({}): {} (recovery {}), epoch {}", node->id(), req.reason(),
                 quiver::v1::NodeState_Name(node->state()), node->recovery(), state_.map().epoch());
    if (absl::Status s = Persist(); !s.ok()) return s;
  }
  quiver::v1::ReportMissedWritesResponse resp;
  resp.set_state(node->state());
  return resp;
}

quiver::v1::GetIntervalsResponse Coordinator::GetIntervals() const {
  absl::MutexLock lock(&mu_);
  quiver::v1::GetIntervalsResponse resp;
  resp.mutable_views()->CopyFrom(state_.intervals());
  return resp;
}

absl::StatusOr<quiver::v1::RestoreResponse> Coordinator::Restore(
    const quiver::v1::RestoreRequest& req) {
  if (absl::Status s = ValidateRegistry(req.registry()); !s.ok()) return s;
  for (const auto& vi : req.intervals()) {
    if (!FindView(req.registry(), vi.view())) {
      return absl::InvalidArgumentError(
          absl::StrCat("restore: intervals of view '", vi.view(), "', not in the registry"));
    }
    for (const auto& i : vi.intervals()) {
      if (i.start_us() >= i.end_us()) {
        return absl::InvalidArgumentError(
            absl::StrCat("restore: an empty interval of view '", vi.view(), "'"));
      }
    }
  }
  absl::MutexLock lock(&mu_);
  if (state_.registry().version() > 0 || state_.jobs_size() > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "restore needs a fresh cluster: this one already has registry version ",
        state_.registry().version(), " (project '", state_.registry().project(), "') and ",
        state_.jobs_size(), " jobs"));
  }
  quiver::v1::Registry next = req.registry();
  next.set_version(std::max<uint64_t>(next.version(), 1));
  next.set_updated_at_us(Now());
  for (auto& view : *next.mutable_feature_views()) {
    view.set_schema_version(std::max<uint32_t>(view.schema_version(), 1));
  }
  state_.mutable_registry()->Swap(&next);
  state_.mutable_intervals()->CopyFrom(req.intervals());
  spdlog::info("restored registry version {} (project '{}') with intervals of {} views",
               state_.registry().version(), state_.registry().project(),
               state_.intervals_size());
  if (absl::Status s = Persist(); !s.ok()) return s;
  quiver::v1::RestoreResponse resp;
  resp.set_registry_version(state_.registry().version());
  return resp;
}

absl::StatusOr<Job> Coordinator::StartMaterialization(const quiver::v1::MaterializeRequest& req) {
  quiver::v1::Registry registry;
  std::vector<quiver::v1::ViewWindow> windows;
  const int64_t now = Now();
  {
    absl::MutexLock lock(&mu_);
    registry = state_.registry();
    if (registry.version() == 0) {
      return absl::FailedPreconditionError("no registry applied yet");
    }
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
      int64_t start = req.start_us();
      if (req.incremental()) {
        const auto* view = FindView(registry, name);
        start = view->ttl_seconds() > 0 ? now - view->ttl_seconds() * 1'000'000 : 0;
        for (const auto& vi : state_.intervals()) {
          if (vi.view() != name || vi.intervals().empty()) continue;
          start = vi.intervals(vi.intervals_size() - 1).end_us();
        }
        if (start >= req.end_us()) continue;  // already materialized up to end
      }
      auto& w = windows.emplace_back();
      w.set_view(name);
      w.set_start_us(start);
      w.set_end_us(req.end_us());
      w.set_schema_version(FindView(registry, name)->schema_version());
    }
  }
  // Reading Parquet metadata may take a while: no lock held.
  auto tasks = PlanTasks(*offline_, registry, windows, options_.max_task_rows, options_.task_split);
  if (!tasks.ok()) return tasks.status();

  absl::MutexLock lock(&mu_);
  Job* job = state_.add_jobs();
  const uint64_t id = std::max<uint64_t>(state_.next_job_id(), 1);
  state_.set_next_job_id(id + 1);
  job->set_id(id);
  job->set_state(quiver::v1::JOB_RUNNING);
  job->set_created_us(Now());
  for (const auto& w : windows) *job->add_windows() = w;
  for (size_t i = 0; i < tasks->size(); ++i) {
    auto& t = (*tasks)[i];
    t.set_job_id(id);
    t.set_task_id(static_cast<uint32_t>(i));
    t.set_registry_version(registry.version());
    auto* st = job->add_tasks();
    st->set_task_id(t.task_id());
    st->set_view(t.view());
    st->set_file(t.file());
    st->set_state(kPending);
    *state_.add_pending_tasks() = std::move(t);
  }
  spdlog::info("materialization job {}: {} views, {} tasks", id, windows.size(), tasks->size());
  if (tasks->empty()) FinishJob(job, true, "");
  Job result = *job;
  if (absl::Status s = Persist(); !s.ok()) return s;
  return result;
}

absl::StatusOr<Job> Coordinator::GetJob(uint64_t job_id) const {
  absl::MutexLock lock(&mu_);
  for (const auto& j : state_.jobs()) {
    if (j.id() == job_id) return j;
  }
  return absl::NotFoundError(absl::StrCat("unknown job ", job_id));
}

void Coordinator::FinishJob(Job* job, bool ok, const std::string& error) {
  job->set_state(ok ? quiver::v1::JOB_SUCCEEDED : quiver::v1::JOB_FAILED);
  job->set_finished_us(Now());
  job->set_error(error);
  const uint64_t id = job->id();
  auto* pending = state_.mutable_pending_tasks();
  pending->erase(std::remove_if(pending->begin(), pending->end(),
                                [id](const auto& t) { return t.job_id() == id; }),
                 pending->end());
  if (ok) {
    for (const auto& w : job->windows()) {
      // An apply since the job was planned may have changed the view: its
      // rows then no longer count as materialized.
      const auto* view = FindView(state_.registry(), w.view());
      if (view == nullptr || view->schema_version() != w.schema_version()) continue;
      if (w.start_us() < w.end_us()) MergeInterval(&state_, w.view(), w.start_us(), w.end_us());
    }
    spdlog::info("job {} succeeded: {} rows", id, job->rows_written());
  } else {
    spdlog::error("job {} failed: {}", id, error);
  }
}

void Coordinator::PruneJobs() {
  int64_t finished = 0;
  for (const auto& j : state_.jobs()) finished += j.state() != quiver::v1::JOB_RUNNING;
  int64_t excess = finished - static_cast<int64_t>(options_.max_finished_jobs);
  if (excess <= 0) return;
  auto* jobs = state_.mutable_jobs();
  jobs->erase(std::remove_if(jobs->begin(), jobs->end(),
                             [&excess](const Job& j) {
                               if (excess <= 0 || j.state() == quiver::v1::JOB_RUNNING) return false;
                               --excess;  // jobs are in creation order: the oldest go first
                               return true;
                             }),
              jobs->end());
}

absl::StatusOr<quiver::v1::LeaseTaskResponse> Coordinator::LeaseTask(
    const quiver::v1::LeaseTaskRequest& req) {
  absl::MutexLock lock(&mu_);
  quiver::v1::LeaseTaskResponse resp;
  const quiver::v1::NodeInfo* node = FindNode(req.node_id());
  if (!node || node->state() != quiver::v1::UP) return resp;
  const int64_t now = Now();
  // Jobs whose task's lease expired once too often fail first.
  std::vector<std::pair<uint64_t, std::string>> to_fail;
  for (const auto& t : state_.pending_tasks()) {
    Job* job = FindJob(t.job_id());
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
    if (Job* job = FindJob(id); job && job->state() == quiver::v1::JOB_RUNNING) {
      FinishJob(job, false, error);
    }
  }
  for (auto& t : *state_.mutable_pending_tasks()) {
    Job* job = FindJob(t.job_id());
    if (!job || job->state() != quiver::v1::JOB_RUNNING) continue;
    auto* st = job->mutable_tasks(static_cast<int>(t.task_id()));
    const bool expired = st->state() == kLeased && t.lease_expires_us() <= now;
    if (st->state() != kPending && !expired) continue;
    if (expired) {
      spdlog::warn("job {} task {}: lease of node {} expired, re-leasing", t.job_id(), t.task_id(),
                   st->node_id());
    }
    t.set_attempt(t.attempt() + 1);
    t.set_lease_expires_us(now + options_.lease_us);
    st->set_state(kLeased);
    st->set_node_id(req.node_id());
    st->set_attempts(t.attempt());
    *resp.mutable_task() = t;
    break;
  }
  if (resp.has_task() || !to_fail.empty()) {
    if (absl::Status s = Persist(); !s.ok()) return s;
  }
  return resp;
}

absl::Status Coordinator::CompleteTask(const quiver::v1::CompleteTaskRequest& req) {
  absl::MutexLock lock(&mu_);
  Job* job = FindJob(req.job_id());
  if (!job) return absl::NotFoundError(absl::StrCat("unknown job ", req.job_id()));
  if (req.task_id() >= static_cast<uint32_t>(job->tasks_size())) {
    return absl::NotFoundError(absl::StrCat("job ", req.job_id(), " has no task ", req.task_id()));
  }
  auto* pending = state_.mutable_pending_tasks();
  auto it = std::find_if(pending->begin(), pending->end(), [&](const auto& t) {
    return t.job_id() == req.job_id() && t.task_id() == req.task_id();
  });
  auto* st = job->mutable_tasks(static_cast<int>(req.task_id()));
  if (job->state() != quiver::v1::JOB_RUNNING || it == pending->end() || st->state() != kLeased ||
      it->attempt() != req.attempt() || st->node_id() != req.node_id()) {
    spdlog::info("job {} task {}: ignoring stale completion from node {} (attempt {})",
                 req.job_id(), req.task_id(), req.node_id(), req.attempt());
    return absl::OkStatus();
  }
  if (req.ok()) {
    st->set_state(kDone);
    st->set_rows_written(req.rows_written());
    st->clear_error();
    job->set_rows_written(job->rows_written() + req.rows_written());
    pending->erase(it);
    const bool all_done = std::all_of(job->tasks().begin(), job->tasks().end(),
                                      [](const auto& t) { return t.state() == kDone; });
    if (all_done) FinishJob(job, true, "");
  } else if (req.retryable() && it->attempt() < options_.max_task_attempts) {
    spdlog::warn("job {} task {} failed on node {} (attempt {}), will retry: {}", req.job_id(),
                 req.task_id(), req.node_id(), req.attempt(), req.error());
    st->set_state(kPending);
    st->set_error(req.error());
    it->set_lease_expires_us(0);
  } else {
    st->set_state(kFailed);
    st->set_error(req.error());
    FinishJob(job, false,
              absl::StrCat("task ", req.task_id(), " (", st->file(), ") failed after ",
                           it->attempt(), " attempts: ", req.error()));
  }
  return Persist();
}

CoordinatorStats Coordinator::Stats() const {
  absl::MutexLock lock(&mu_);
  CoordinatorStats s;
  for (const auto& n : state_.map().nodes()) {
    (n.state() == quiver::v1::UP ? s.nodes_up : s.nodes_down)++;
  }
  s.epoch = state_.map().epoch();
  s.registry_version = state_.registry().version();
  for (const auto& j : state_.jobs()) s.jobs_running += j.state() == quiver::v1::JOB_RUNNING;
  s.tasks_pending = state_.pending_tasks_size();
  return s;
}

quiver::v1::CoordinatorState Coordinator::State() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

}  // namespace quiver::coordinator
