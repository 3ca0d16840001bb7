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
#include "moves.h"
#include "quiver/coordinator/partition_map.h"
#include "quiver/coordinator/repo.h"
#include "quiver/storage/offline_store.h"
#include "registry_lookup.h"
#include "state_file.h"

namespace quiver::coordinator {
namespace {

using quiver::v1::Job;

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

// Whether views `a` (in `ra`) and `b` (in `rb`) compute their values alike:
// true for views read from their source as they are; for views storing an
// on-demand view, the same source view layout and the same expressions (a
// change stores other values under the same timestamps: a new schema
// version makes the new rows win and the old unreadable).
bool SameTransform(const quiver::v1::Registry& ra, const quiver::v1::FeatureView& a,
                   const quiver::v1::Registry& rb, const quiver::v1::FeatureView& b) {
  if (a.on_demand_source_view() != b.on_demand_source_view()) return false;
  if (a.on_demand_source_view().empty()) return true;
  const auto* va = ByName(ra.feature_views(), a.on_demand_source_view());
  const auto* vb = ByName(rb.feature_views(), b.on_demand_source_view());
  const auto* oa = ByName(ra.on_demand_feature_views(), a.name());
  const auto* ob = ByName(rb.on_demand_feature_views(), b.name());
  if (va == nullptr || vb == nullptr || oa == nullptr || ob == nullptr ||
      !SameRowLayout(ra, *va, rb, *vb) || oa->features_size() != ob->features_size()) {
    return false;
  }
  for (int i = 0; i < oa->features_size(); ++i) {
    if (oa->features(i).expression() != ob->features(i).expression()) return false;
  }
  return true;
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
    // Nodes that were not DOWN get a fresh grace period.
    const int64_t now = c->Now();
    absl::MutexLock hb(&c->hb_mu_);
    for (const auto& node : state.map().nodes()) {
      c->heartbeats_[node.id()] =
          node.state() != quiver::v1::DOWN ? now : node.last_heartbeat_us();
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



absl::Status Coordinator::Persist(quiver::v1::CoordinatorState& state) {
  PruneJobs(state);
  absl::Status s = fail_persist_.load()
                       ? absl::InternalError("persisting state failed (injected by a test)")
                       : WriteStateFile(options_.data_dir + "/state.pb", state);
  if (!s.ok()) spdlog::error("persisting state failed: {}", s.ToString());
  return s;
}

absl::Status Coordinator::Mutate(const Change& change) {
  absl::MutexLock writer(&write_mu_);
  quiver::v1::CoordinatorState next = Snapshot();
  absl::StatusOr<bool> changed = change(next);
  if (!changed.ok()) return changed.status();
  if (!*changed) return absl::OkStatus();
  // Disk first: readers keep seeing the old state while it is written, and
  // keep it when writing fails.
  if (absl::Status s = Persist(next); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  state_.Swap(&next);
  return absl::OkStatus();
}

quiver::v1::CoordinatorState Coordinator::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

void Coordinator::FailPersistForTesting(bool fail) { fail_persist_.store(fail); }

quiver::v1::NodeInfo* Coordinator::FindNode(quiver::v1::CoordinatorState& s, uint32_t id) {
  for (auto& n : *s.mutable_map()->mutable_nodes()) {
    if (n.id() == id) return &n;
  }
  return nullptr;
}

int64_t Coordinator::LastHeartbeat(uint32_t id) const {
  absl::MutexLock lock(&hb_mu_);
  auto it = heartbeats_.find(id);
  return it == heartbeats_.end() ? 0 : it->second;
}

void Coordinator::Beat(uint32_t id, int64_t now) {
  absl::MutexLock lock(&hb_mu_);
  heartbeats_[id] = now;
}

void Coordinator::FillHeartbeats(quiver::v1::ClusterMap* map) const {
  absl::MutexLock lock(&hb_mu_);
  for (auto& n : *map->mutable_nodes()) {
    if (auto it = heartbeats_.find(n.id()); it != heartbeats_.end()) n.set_last_heartbeat_us(it->second);
  }
}

void Coordinator::RecomputeMap(quiver::v1::CoordinatorState& s) {
  auto* map = s.mutable_map();
  Assignment current;
  for (const auto& p : map->partitions()) current.emplace_back(p.node_ids().begin(), p.node_ids().end());
  std::vector<uint32_t> ids = PlanningNodes(s);
  Assignment next = AssignPartitions(current, map->num_partitions(), ids, map->replication_factor());
  if (next == current) return;
  // Only before any registry: no row can exist yet, so partitions change
  // owners at once instead of through moves.
  const uint64_t epoch = BumpEpoch(&s);
  map->clear_partitions();
  for (uint32_t p = 0; p < next.size(); ++p) {
    auto* part = map->add_partitions();
    part->mutable_node_ids()->Assign(next[p].begin(), next[p].end());
    part->set_fence_epoch(p < current.size() && current[p] == next[p] ? 0 : epoch);
  }
}

absl::StatusOr<quiver::v1::RegisterResponse> Coordinator::Register(
    const quiver::v1::RegisterRequest& req) {
  if (req.address().empty()) return absl::InvalidArgumentError("register: address is empty");
  quiver::v1::RegisterResponse resp;
  absl::Status status = Mutate([&](quiver::v1::CoordinatorState& s) -> absl::StatusOr<bool> {
    quiver::v1::NodeInfo* node = req.node_id() ? FindNode(s, req.node_id()) : nullptr;
    if (node != nullptr && node->removed()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node ", node->id(), " was removed from the cluster (quiverctl nodes remove); wipe its "
          "data directory and start it again to join as a new node"));
    }
    if (node == nullptr && req.node_id() != 0 && req.node_id() < s.next_node_id()) {
      // Ids are never reused: an id this coordinator issued and no longer
      // lists belongs to a node that was removed (quiverctl nodes remove).
      return absl::FailedPreconditionError(absl::StrCat(
          "node ", req.node_id(), " was removed from the cluster (quiverctl nodes remove); wipe "
          "its data directory and start it again to join as a new node"));
    }
    if (node == nullptr && req.node_id() == 0) {
      // No id: a new node, or a known one whose data directory was wiped.
      // One address is one identity: it takes over the old id.
      for (auto& n : *s.mutable_map()->mutable_nodes()) {
        if (n.address() != req.address()) continue;
        if (n.removed()) {
          return absl::FailedPreconditionError(absl::StrCat(
              "address ", req.address(), " belongs to node ", n.id(),
              ", which is being removed (quiverctl nodes remove); start this node once "
              "`quiverctl nodes` no longer lists it"));
        }
        spdlog::warn("a node without an id registers at {}, the address of node {}: it replaces "
                     "node {} (its data directory was wiped) and repairs from its peers",
                     req.address(), n.id(), n.id());
        node = &n;
      }
    }
    const bool is_new = node == nullptr;
    if (is_new) {
      // An unknown non-zero id is accepted as is (e.g. a node outliving a
      // lost coordinator state); ids are never reused.
      const uint32_t id = req.node_id() ? req.node_id() : std::max<uint32_t>(s.next_node_id(), 1);
      s.set_next_node_id(std::max(s.next_node_id(), id + 1));
      node = s.mutable_map()->add_nodes();
      node->set_id(id);
    }
    node->set_address(req.address());
    node->set_metrics_address(req.metrics_address());
    node->set_lookup_address(req.lookup_address());
    const uint32_t id = node->id();
    Beat(id, Now());
    // Rows can exist once a registry is applied and some node owns
    // partitions; before that a new node gets its partitions at once.
    const bool rows_may_exist = s.registry().version() > 0 && s.map().partitions_size() > 0;
    if (is_new && !rows_may_exist) {
      node->set_state(quiver::v1::UP);
      const uint64_t epoch = s.map().epoch();
      RecomputeMap(s);
      if (s.map().epoch() == epoch) BumpEpoch(&s);
    } else if (is_new) {
      // Rows may exist: the node holds nothing until moves make it a replica.
      node->set_state(quiver::v1::JOINING);
      BumpEpoch(&s);
      if (options_.auto_rebalance && s.moves_size() == 0) {
        PlanMoves(&s, Now());
      } else {
        plan_requested_.store(true);
      }
    } else {
      Return(s, node);  // restarted: it may have missed writes meanwhile
    }
    const quiver::v1::NodeInfo* self = FindNode(s, id);
    spdlog::info("node {} registered at {} ({}): {}, epoch {}", id, req.address(),
                 is_new ? "new" : "known", quiver::v1::NodeState_Name(self->state()),
                 s.map().epoch());
    resp.set_node_id(id);
    *resp.mutable_map() = s.map();
    return true;
  });
  if (!status.ok()) return status;
  FillHeartbeats(resp.mutable_map());
  return resp;
}

void Coordinator::Return(quiver::v1::CoordinatorState& s, quiver::v1::NodeInfo* node) {
  // RECOVERING only when another replica shares one of its partitions:
  // otherwise there is nothing to copy from and nothing newer anywhere.
  bool has_peer = false;
  for (const auto& p : s.map().partitions()) {
    if (p.node_ids_size() < 2) continue;
    for (uint32_t id : p.node_ids()) has_peer = has_peer || id == node->id();
    if (has_peer) break;
  }
  const uint64_t epoch = BumpEpoch(&s);
  if (!has_peer) {
    if (node->state() != quiver::v1::JOINING && node->state() != quiver::v1::LEAVING) {
      node->set_state(quiver::v1::UP);
    }
    return;
  }
  node->set_state(quiver::v1::RECOVERING);
  node->set_recovery(node->recovery() + 1);
  node->set_recovery_epoch(epoch);
  // Writers whose map showed the node DOWN skipped it: their writes must be
  // committed on the peers before its repair copies from them, and later
  // ones must reach it. The fences make the barrier wait for the first and
  // refuse stragglers (docs/architecture.md, "Recovery uses the same barrier").
  for (auto& p : *s.mutable_map()->mutable_partitions()) {
    if (Names(p, node->id())) p.set_fence_epoch(epoch);
  }
}

namespace {

// The heartbeat reports the repair of the node's current recovery, whose
// barrier has completed: the node may be UP again.
bool RepairsCurrentRecovery(const quiver::v1::NodeInfo& node,
                            const quiver::v1::HeartbeatRequest& req) {
  return node.state() == quiver::v1::RECOVERING && req.repaired_recovery() != 0 &&
         req.repaired_recovery() == node.recovery() && node.recovery_fenced() == node.recovery();
}

}  // namespace

absl::StatusOr<quiver::v1::HeartbeatResponse> Coordinator::Heartbeat(
    const quiver::v1::HeartbeatRequest& req) {
  const int64_t now = Now();
  bool change = false;
  {
    absl::MutexLock lock(&mu_);
    const quiver::v1::NodeInfo* node = nullptr;
    for (const auto& n : state_.map().nodes()) {
      if (n.id() == req.node_id()) node = &n;
    }
    if (node == nullptr || node->removed()) {
      return absl::NotFoundError(absl::StrCat("unknown node ", req.node_id(), "; register first"));
    }
    change = node->state() == quiver::v1::DOWN || RepairsCurrentRecovery(*node, req);
    for (const auto& r : req.streams()) change = change || r.done();
    change = change || !LeasesToRenew(state_, req.node_id(), req.running_tasks(), now).empty();
  }
  Beat(req.node_id(), now);
  if (change) {
    absl::Status s = Mutate([&](quiver::v1::CoordinatorState& s) -> absl::StatusOr<bool> {
      quiver::v1::NodeInfo* node = FindNode(s, req.node_id());
      if (node == nullptr) return false;
      bool changed = ApplyStreamReports(&s, node->id(), req.streams());
      for (int i : LeasesToRenew(s, node->id(), req.running_tasks(), now)) {
        s.mutable_pending_tasks(i)->set_lease_expires_us(now + options_.lease_us);
        changed = true;
      }
      if (node->state() == quiver::v1::DOWN) {
        Return(s, node);
        changed = true;
      } else if (RepairsCurrentRecovery(*node, req)) {
        node->set_state(quiver::v1::UP);
        BumpEpoch(&s);
        changed = true;
      } else {
        return changed;
      }
      spdlog::info("node {} is {} (recovery {}), epoch {}", node->id(),
                   quiver::v1::NodeState_Name(node->state()), node->recovery(), s.map().epoch());
      return true;
    });
    if (!s.ok()) return s;
  }
  absl::MutexLock lock(&mu_);
  quiver::v1::HeartbeatResponse resp;
  resp.set_epoch(state_.map().epoch());
  resp.set_registry_version(state_.registry().version());
  for (const auto& n : state_.map().nodes()) {
    if (n.id() != req.node_id()) continue;
    resp.set_state(n.state());
    resp.set_recovery(n.recovery());
    resp.set_recovery_fenced(n.recovery_fenced());
  }
  for (auto& t : StreamTasksFor(state_, req.node_id())) *resp.add_streams() = std::move(t);
  return resp;
}

absl::Status Coordinator::Tick() {
  const int64_t now = Now();
  std::vector<uint32_t> late;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& node : state_.map().nodes()) {
      if (node.state() != quiver::v1::DOWN &&
          now - LastHeartbeat(node.id()) > options_.heartbeat_timeout_us) {
        late.push_back(node.id());
      }
    }
  }
  if (late.empty()) return absl::OkStatus();
  return Mutate([&](quiver::v1::CoordinatorState& s) -> absl::StatusOr<bool> {
    bool changed = false;
    for (uint32_t id : late) {
      quiver::v1::NodeInfo* node = FindNode(s, id);
      if (node == nullptr || node->state() == quiver::v1::DOWN) continue;
      const int64_t last = LastHeartbeat(id);
      if (now - last <= options_.heartbeat_timeout_us) continue;  // it beat meanwhile
      node->set_state(quiver::v1::DOWN);
      node->set_last_heartbeat_us(last);
      changed = true;
      spdlog::warn("node {} ({}) missed heartbeats for {} ms: DOWN", id, node->address(),
                   (now - last) / 1000);
    }
    if (changed) BumpEpoch(&s);
    return changed;
  });
}

quiver::v1::ClusterMap Coordinator::GetClusterMap() const {
  quiver::v1::ClusterMap map;
  {
    absl::MutexLock lock(&mu_);
    map = state_.map();
  }
  FillHeartbeats(&map);
  return map;
}

quiver::v1::ListNodesResponse Coordinator::ListNodes() const {
  const quiver::v1::CoordinatorState s = Snapshot();
  quiver::v1::ListNodesResponse resp;
  resp.set_epoch(s.map().epoch());
  std::map<uint32_t, std::pair<uint32_t, uint32_t>> counts;  // id -> held, preferred
  for (const auto& p : s.map().partitions()) {
    for (int i = 0; i < p.node_ids_size(); ++i) {
      auto& c = counts[p.node_ids(i)];
      ++c.first;
      if (i == 0) ++c.second;
    }
  }
  quiver::v1::ClusterMap map = s.map();
  FillHeartbeats(&map);
  for (const auto& n : map.nodes()) {
    auto* summary = resp.add_nodes();
    *summary->mutable_node() = n;
    summary->set_partitions_held(counts[n.id()].first);
    summary->set_partitions_preferred(counts[n.id()].second);
  }
  *resp.mutable_rebalance() = RebalanceStatusOf(s);
  return resp;
}

absl::StatusOr<quiver::v1::ReportMissedWritesResponse> Coordinator::ReportMissedWrites(
    const quiver::v1::ReportMissedWritesRequest& req) {
  quiver::v1::ReportMissedWritesResponse resp;
  absl::Status status = Mutate([&](quiver::v1::CoordinatorState& s) -> absl::StatusOr<bool> {
    quiver::v1::NodeInfo* node = FindNode(s, req.node_id());
    if (!node) return absl::NotFoundError(absl::StrCat("unknown node ", req.node_id()));
    bool changed = RestartStreamsTo(&s, node->id());
    const bool owns = std::any_of(s.map().partitions().begin(), s.map().partitions().end(),
                                  [&](const auto& p) { return Owns(p, node->id()); });
    // A recovery whose barrier has not completed has not started copying:
    // it will see this write (committed before the report).
    const bool repair_pending = node->state() == quiver::v1::RECOVERING &&
                                node->recovery_fenced() < node->recovery();
    if (node->state() != quiver::v1::DOWN && owns && !repair_pending) {
      Return(s, node);
      changed = true;
      spdlog::warn("node {} missed writes ({}): {} (recovery {}), epoch {}", node->id(),
                   req.reason(), quiver::v1::NodeState_Name(node->state()), node->recovery(),
                   s.map().epoch());
    }
    resp.set_state(node->state());
    return changed;
  });
  if (!status.ok()) return status;
  return resp;
}

absl::StatusOr<quiver::v1::ApplyRegistryResponse> Coordinator::ApplyRegistry(
    const quiver::v1::ApplyRegistryRequest& req) {
  if (absl::Status s = ValidateRegistry(req.registry()); !s.ok()) return s;
  quiver::v1::ApplyRegistryResponse resp;
  absl::Status status = Mutate([&](quiver::v1::CoordinatorState& state) -> absl::StatusOr<bool> {
  resp.Clear();
  const quiver::v1::Registry& current = state.registry();
  if (current.version() > 0 && current.project() != req.registry().project()) {
    return absl::FailedPreconditionError(
        absl::StrCat("this cluster serves project '", current.project(), "', not '",
                     req.registry().project(), "'"));
  }
  resp.set_version(current.version());
  for (auto& c : DiffRegistry(current, req.registry())) *resp.add_changes() = std::move(c);
  const bool changed =
      current.version() == 0 ||
      std::any_of(resp.changes().begin(), resp.changes().end(),
                  [](const quiver::v1::ObjectChange& c) { return c.action() != "unchanged"; });
  if (req.dry_run() || !changed) return false;

  quiver::v1::Registry next = req.registry();
  next.set_version(current.version() + 1);
  next.set_updated_at_us(Now());
  for (auto& view : *next.mutable_feature_views()) {
    const auto* old = FindView(current, view.name());
    if (!old) {
      view.set_schema_version(1);
    } else {
      view.set_schema_version(SameRowLayout(current, *old, next, view) &&
                                      SameTransform(current, *old, next, view)
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
  auto* intervals = state.mutable_intervals();
  intervals->erase(std::remove_if(intervals->begin(), intervals->end(),
                                  [&](const auto& vi) { return !keep.count(vi.view()); }),
                   intervals->end());
  state.mutable_registry()->Swap(&next);
  resp.set_version(state.registry().version());
  spdlog::info("registry version {} applied", state.registry().version());
  return true;
  });
  if (!status.ok()) return status;
  return resp;
}


quiver::v1::Registry Coordinator::GetRegistry() const {
  absl::MutexLock lock(&mu_);
  return state_.registry();
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
  quiver::v1::RestoreResponse resp;
  absl::Status status = Mutate([&](quiver::v1::CoordinatorState& state) -> absl::StatusOr<bool> {
  if (state.registry().version() > 0 || state.jobs_size() > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "restore needs a fresh cluster: this one already has registry version ",
        state.registry().version(), " (project '", state.registry().project(), "') and ",
        state.jobs_size(), " jobs"));
  }
  quiver::v1::Registry next = req.registry();
  next.set_version(std::max<uint64_t>(next.version(), 1));
  next.set_updated_at_us(Now());
  for (auto& view : *next.mutable_feature_views()) {
    view.set_schema_version(std::max<uint32_t>(view.schema_version(), 1));
  }
  state.mutable_registry()->Swap(&next);
  state.mutable_intervals()->CopyFrom(req.intervals());
  spdlog::info("restored registry version {} (project '{}') with intervals of {} views",
               state.registry().version(), state.registry().project(),
               state.intervals_size());
  resp.set_registry_version(state.registry().version());
  return true;
  });
  if (!status.ok()) return status;
  return resp;
}


CoordinatorStats Coordinator::Stats() const {
  absl::MutexLock lock(&mu_);
  CoordinatorStats s;
  for (const auto& n : state_.map().nodes()) {
    (n.state() == quiver::v1::DOWN ? s.nodes_down : s.nodes_up)++;
  }
  s.epoch = state_.map().epoch();
  s.registry_version = state_.registry().version();
  for (const auto& j : state_.jobs()) s.jobs_running += j.state() == quiver::v1::JOB_RUNNING;
  s.tasks_pending = state_.pending_tasks_size();
  const quiver::v1::RebalanceStatus r = RebalanceStatusOf(state_);
  s.moves_active = r.moves_active();
  s.moves_pending = state_.moves_size() - r.moves_active();
  s.under_replicated = r.under_replicated();
  s.rows_streamed = r.rows_streamed();
  s.bytes_streamed = r.bytes_streamed();
  return s;
}

quiver::v1::CoordinatorState Coordinator::State() const { return Snapshot(); }

}  // namespace quiver::coordinator
