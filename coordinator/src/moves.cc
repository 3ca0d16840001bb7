#include "moves.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

#include "quiver/coordinator/partition_map.h"

namespace quiver::coordinator {
namespace {

using quiver::v1::CoordinatorState;
using quiver::v1::NodeInfo;
using quiver::v1::PartitionMove;

const NodeInfo* NodeById(const CoordinatorState& s, uint32_t id) {
  for (const auto& n : s.map().nodes()) {
    if (n.id() == id) return &n;
  }
  return nullptr;
}

// Not DOWN, known and not removed: can take part in a move as a target.
bool Live(const CoordinatorState& s, uint32_t id) {
  const NodeInfo* n = NodeById(s, id);
  return n != nullptr && n->state() != quiver::v1::DOWN && !n->removed();
}

// Serves reads: a stream source must hold every acknowledged row it owns.
bool Serves(const CoordinatorState& s, uint32_t id) {
  const NodeInfo* n = NodeById(s, id);
  if (n == nullptr || n->address().empty()) return false;
  return n->state() == quiver::v1::UP || n->state() == quiver::v1::JOINING ||
         n->state() == quiver::v1::LEAVING;
}

bool Has(const google::protobuf::RepeatedField<uint32_t>& v, uint32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

std::vector<uint32_t> Minus(const google::protobuf::RepeatedField<uint32_t>& a,
                            const google::protobuf::RepeatedField<uint32_t>& b) {
  std::vector<uint32_t> out;
  for (uint32_t x : a) {
    if (!Has(b, x)) out.push_back(x);
  }
  return out;
}

std::vector<uint32_t> Targets(const PartitionMove& m) {
  return Minus(m.new_replicas(), m.old_replicas());
}
std::vector<uint32_t> Leaving(const PartitionMove& m) {
  return Minus(m.old_replicas(), m.new_replicas());
}

// The replica to stream from (rebalancing.md rule 5): the one being replaced
// when it serves reads, else another owner that does; 0 when none does.
uint32_t PickSource(const CoordinatorState& s, const PartitionMove& m) {
  for (uint32_t id : Leaving(m)) {
    if (Serves(s, id)) return id;
  }
  for (uint32_t id : m.old_replicas()) {
    if (Has(m.new_replicas(), id) && Serves(s, id)) return id;
  }
  return 0;
}

void SetIds(google::protobuf::RepeatedField<uint32_t>* out, const std::vector<uint32_t>& ids) {
  out->Clear();
  for (uint32_t id : ids) out->Add(id);
}

}  // namespace

uint64_t BumpEpoch(CoordinatorState* state) {
  state->mutable_map()->set_epoch(state->map().epoch() + 1);
  return state->map().epoch();
}

std::vector<uint32_t> PlanningNodes(const CoordinatorState& state) {
  std::vector<uint32_t> ids;
  for (const auto& n : state.map().nodes()) {
    if (n.state() != quiver::v1::LEAVING && !n.removed()) ids.push_back(n.id());
  }
  return ids;
}

uint32_t PlanMoves(CoordinatorState* state, int64_t now_us) {
  auto* map = state->mutable_map();
  const std::vector<uint32_t> nodes = PlanningNodes(*state);
  if (nodes.empty() || map->partitions_size() == 0) return 0;
  Assignment current;
  for (const auto& p : map->partitions()) current.emplace_back(p.node_ids().begin(), p.node_ids().end());
  const Assignment target =
      AssignPartitions(current, map->num_partitions(), nodes, map->replication_factor());
  std::set<uint32_t> moving;
  for (const auto& m : state->moves()) moving.insert(m.partition());
  uint32_t added = 0;
  bool reordered = false;
  for (uint32_t p = 0; p < target.size() && p < current.size(); ++p) {
    if (moving.count(p) || target[p] == current[p]) continue;
    std::vector<uint32_t> a = current[p], b = target[p];
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    if (a == b) {
      // Only the preferred replica changes: no data moves, the write set stays.
      SetIds(map->mutable_partitions(static_cast<int>(p))->mutable_node_ids(), target[p]);
      reordered = true;
      continue;
    }
    PartitionMove* m = state->add_moves();
    const uint64_t id = std::max<uint64_t>(state->next_move_id(), 1);
    state->set_next_move_id(id + 1);
    m->set_id(id);
    m->set_partition(p);
    SetIds(m->mutable_old_replicas(), current[p]);
    SetIds(m->mutable_new_replicas(), target[p]);
    m->set_stage(quiver::v1::MOVE_PREPARE);
    m->set_created_us(now_us);
    ++added;
  }
  if (reordered) BumpEpoch(state);
  if (added > 0) {
    auto* r = state->mutable_rebalance();
    if (!r->active()) {
      *r = quiver::v1::RebalanceStatus();
      r->set_active(true);
      r->set_started_us(now_us);
    }
    r->set_moves_total(r->moves_total() + added);
    spdlog::info("rebalance: planned {} partition moves over {} nodes", added, nodes.size());
  }
  return added;
}

bool AdvanceMoves(CoordinatorState* state, const MoveLimits& limits) {
  auto* map = state->mutable_map();
  uint64_t epoch = 0;
  const auto new_epoch = [&] {
    if (epoch == 0) epoch = BumpEpoch(state);
    return epoch;
  };
  bool changed = false;
  std::map<uint32_t, uint32_t> busy;  // node -> active moves naming it as target or leaving
  for (const auto& m : state->moves()) {
    if (m.stage() == quiver::v1::MOVE_PREPARE) continue;
    for (uint32_t id : Targets(m)) ++busy[id];
    for (uint32_t id : Leaving(m)) ++busy[id];
  }
  std::vector<uint64_t> aborted;
  for (auto& m : *state->mutable_moves()) {
    auto* part = map->mutable_partitions(static_cast<int>(m.partition()));
    const std::vector<uint32_t> targets = Targets(m);
    const bool streaming_stage =
        m.stage() == quiver::v1::MOVE_DOUBLE_WRITE || m.stage() == quiver::v1::MOVE_STREAM;
    if (streaming_stage &&
        std::any_of(targets.begin(), targets.end(), [&](uint32_t t) { return !Live(*state, t); })) {
      // The target is gone: writers must stop waiting on it. Dropping a
      // pending replica needs no barrier (the write set only shrinks by a
      // node that takes no writes).
      std::vector<uint32_t> pending;
      for (uint32_t id : part->pending_ids()) {
        if (std::find(targets.begin(), targets.end(), id) == targets.end()) pending.push_back(id);
      }
      SetIds(part->mutable_pending_ids(), pending);
      part->set_fence_epoch(new_epoch());
      for (uint32_t id : targets) --busy[id];
      for (uint32_t id : Leaving(m)) --busy[id];
      aborted.push_back(m.id());
      spdlog::warn("move {} of partition {} aborted: a target is down", m.id(), m.partition());
      changed = true;
      continue;
    }
    switch (m.stage()) {
      case quiver::v1::MOVE_PREPARE: {
        bool ok = !targets.empty() || !Leaving(m).empty();
        for (uint32_t t : targets) ok = ok && Live(*state, t) && busy[t] < limits.max_moves_per_node;
        for (uint32_t l : Leaving(m)) ok = ok && busy[l] < limits.max_moves_per_node;
        ok = ok && (targets.empty() || PickSource(*state, m) != 0);
        if (!ok) break;
        SetIds(part->mutable_pending_ids(), targets);
        part->set_fence_epoch(new_epoch());
        m.set_stage(quiver::v1::MOVE_DOUBLE_WRITE);
        m.set_barrier_epoch(epoch);
        for (uint32_t t : targets) ++busy[t];
        for (uint32_t l : Leaving(m)) ++busy[l];
        changed = true;
        break;
      }
      case quiver::v1::MOVE_STREAM: {
        if (m.streamed()) {
          // The flip: the new replicas own the partition; the leaving ones
          // still take writes until the next barrier.
          SetIds(part->mutable_node_ids(),
                 std::vector<uint32_t>(m.new_replicas().begin(), m.new_replicas().end()));
          SetIds(part->mutable_pending_ids(), Leaving(m));
          part->set_fence_epoch(new_epoch());
          m.set_stage(quiver::v1::MOVE_READ_NEW);
          m.set_barrier_epoch(epoch);
          changed = true;
        } else if (!targets.empty() && !Serves(*state, m.source())) {
          const uint32_t source = PickSource(*state, m);
          if (source != 0 && source != m.source()) {
            spdlog::info("move {} of partition {}: streaming from node {} instead of {}", m.id(),
                         m.partition(), source, m.source());
            m.set_source(source);
            m.set_stream_attempt(m.stream_attempt() + 1);
            m.clear_streamed_by();
            changed = true;
          }
        }
        break;
      }
      case quiver::v1::MOVE_READ_NEW:
        if (m.barrier_epoch() != 0) break;
        part->clear_pending_ids();
        part->set_fence_epoch(new_epoch());
        m.set_stage(quiver::v1::MOVE_USE_NEW);
        m.set_barrier_epoch(epoch);
        changed = true;
        break;
      default:
        break;
    }
  }
  if (!aborted.empty()) {
    auto* moves = state->mutable_moves();
    moves->erase(std::remove_if(moves->begin(), moves->end(),
                                [&](const PartitionMove& m) {
                                  return std::find(aborted.begin(), aborted.end(), m.id()) !=
                                         aborted.end();
                                }),
                 moves->end());
    auto* r = state->mutable_rebalance();
    r->set_moves_total(r->moves_total() - std::min<uint32_t>(r->moves_total(), aborted.size()));
  }
  return changed;
}

uint64_t PendingBarrier(const CoordinatorState& state) {
  uint64_t e = 0;
  for (const auto& m : state.moves()) e = std::max(e, m.barrier_epoch());
  for (const auto& n : state.map().nodes()) {
    if (n.state() == quiver::v1::DOWN || n.recovery() <= n.recovery_fenced()) continue;
    e = std::max(e, n.recovery_epoch() != 0 ? n.recovery_epoch() : state.map().epoch());
  }
  return e;
}

bool CompleteBarrier(CoordinatorState* state, uint64_t epoch, int64_t now_us) {
  bool changed = false;
  auto* r = state->mutable_rebalance();
  std::vector<uint64_t> done;
  for (auto& m : *state->mutable_moves()) {
    if (m.barrier_epoch() == 0 || m.barrier_epoch() > epoch) continue;
    m.set_barrier_epoch(0);
    changed = true;
    if (m.stage() == quiver::v1::MOVE_DOUBLE_WRITE) {
      m.set_stage(quiver::v1::MOVE_STREAM);
      m.set_stream_attempt(m.stream_attempt() + 1);
      m.set_source(PickSource(*state, m));
      m.clear_streamed_by();
      m.set_streamed(Targets(m).empty());
    } else if (m.stage() == quiver::v1::MOVE_USE_NEW) {
      done.push_back(m.id());
      r->set_moves_done(r->moves_done() + 1);
      r->set_rows_streamed(r->rows_streamed() + m.rows_streamed());
      r->set_bytes_streamed(r->bytes_streamed() + m.bytes_streamed());
    }
  }
  if (!done.empty()) {
    auto* moves = state->mutable_moves();
    moves->erase(std::remove_if(moves->begin(), moves->end(),
                                [&](const PartitionMove& m) {
                                  return std::find(done.begin(), done.end(), m.id()) != done.end();
                                }),
                 moves->end());
  }
  for (auto& n : *state->mutable_map()->mutable_nodes()) {
    if (n.state() == quiver::v1::DOWN || n.recovery() <= n.recovery_fenced()) continue;
    if (n.recovery_epoch() <= epoch) {
      n.set_recovery_fenced(n.recovery());
      spdlog::info("node {}: recovery {} fenced at epoch {}; it may repair", n.id(), n.recovery(),
                   epoch);
      changed = true;
    }
  }
  changed = SettleNodes(state) || changed;
  if (state->moves_size() == 0 && r->active()) {
    r->set_active(false);
    r->set_finished_us(now_us);
    spdlog::info("rebalance: done, {} moves, {} rows streamed", r->moves_done(), r->rows_streamed());
    changed = true;
  }
  return changed;
}

bool SettleNodes(CoordinatorState* state) {
  bool changed = false;
  std::set<uint32_t> targets;
  for (const auto& m : state->moves()) {
    for (uint32_t t : Targets(m)) targets.insert(t);
  }
  bool epoch_changed = false;
  for (auto& n : *state->mutable_map()->mutable_nodes()) {
    if (n.state() == quiver::v1::JOINING && !targets.count(n.id()) &&
        PartitionsNaming(*state, n.id()) > 0) {
      n.set_state(quiver::v1::UP);
      spdlog::info("node {} joined: UP", n.id());
      epoch_changed = true;
    }
  }
  auto* nodes = state->mutable_map()->mutable_nodes();
  const auto forget = std::remove_if(nodes->begin(), nodes->end(), [&](const NodeInfo& n) {
    const bool gone = n.removed() && PartitionsNaming(*state, n.id()) == 0 && !InAnyMove(*state, n.id());
    if (gone) spdlog::info("node {} ({}) forgotten", n.id(), n.address());
    return gone;
  });
  if (forget != nodes->end()) {
    nodes->erase(forget, nodes->end());
    epoch_changed = true;
  }
  if (epoch_changed) {
    BumpEpoch(state);
    changed = true;
  }
  return changed;
}

std::vector<quiver::v1::StreamTask> StreamTasksFor(const CoordinatorState& state, uint32_t node) {
  std::vector<quiver::v1::StreamTask> tasks;
  for (const auto& m : state.moves()) {
    if (m.stage() != quiver::v1::MOVE_STREAM || m.streamed() || m.source() == 0) continue;
    const std::vector<uint32_t> targets = Targets(m);
    if (std::find(targets.begin(), targets.end(), node) == targets.end()) continue;
    if (Has(m.streamed_by(), node)) continue;
    const NodeInfo* source = NodeById(state, m.source());
    if (source == nullptr) continue;
    quiver::v1::StreamTask& t = tasks.emplace_back();
    t.set_move_id(m.id());
    t.set_partition(m.partition());
    t.set_source(m.source());
    t.set_source_address(source->address());
    t.set_attempt(m.stream_attempt());
  }
  return tasks;
}

bool ApplyStreamReports(CoordinatorState* state, uint32_t node,
                        const google::protobuf::RepeatedPtrField<quiver::v1::StreamReport>& reports) {
  bool finished = false;
  for (const auto& report : reports) {
    for (auto& m : *state->mutable_moves()) {
      if (m.id() != report.move_id()) continue;
      if (m.stage() != quiver::v1::MOVE_STREAM || m.stream_attempt() != report.attempt()) break;
      const std::vector<uint32_t> targets = Targets(m);
      if (std::find(targets.begin(), targets.end(), node) == targets.end()) break;
      if (!report.done() || Has(m.streamed_by(), node)) break;
      m.add_streamed_by(node);
      m.set_rows_streamed(m.rows_streamed() + report.rows());
      m.set_bytes_streamed(m.bytes_streamed() + report.bytes());
      bool all = true;
      for (uint32_t t : targets) all = all && Has(m.streamed_by(), t);
      m.set_streamed(all);
      finished = true;
      break;
    }
  }
  return finished;
}

bool RestartStreamsTo(CoordinatorState* state, uint32_t node) {
  bool restarted = false;
  for (auto& m : *state->mutable_moves()) {
    if (m.stage() != quiver::v1::MOVE_STREAM) continue;
    const std::vector<uint32_t> targets = Targets(m);
    if (std::find(targets.begin(), targets.end(), node) == targets.end()) continue;
    m.set_stream_attempt(m.stream_attempt() + 1);
    m.clear_streamed_by();
    m.set_streamed(false);
    m.set_rows_streamed(0);
    m.set_bytes_streamed(0);
    restarted = true;
  }
  if (restarted) spdlog::warn("node {} missed a write: its streams start over", node);
  return restarted;
}

quiver::v1::RebalanceStatus RebalanceStatusOf(const CoordinatorState& state) {
  quiver::v1::RebalanceStatus r = state.rebalance();
  uint32_t active = 0;
  for (const auto& m : state.moves()) {
    if (m.stage() != quiver::v1::MOVE_PREPARE) ++active;
    r.set_rows_streamed(r.rows_streamed() + m.rows_streamed());
    r.set_bytes_streamed(r.bytes_streamed() + m.bytes_streamed());
  }
  r.set_moves_active(active);
  // Active while moves run, and while the map is not balanced yet (a plan
  // is about to come: a node joined or was drained during other moves).
  bool balanced = true;
  if (state.registry().version() > 0 && state.map().partitions_size() > 0) {
    const std::vector<uint32_t> planning = PlanningNodes(state);
    std::map<uint32_t, uint64_t> held;
    for (uint32_t id : planning) held[id] = 0;
    for (const auto& p : state.map().partitions()) {
      for (uint32_t id : p.node_ids()) {
        auto it = held.find(id);
        if (it == held.end()) {
          balanced = false;  // a LEAVING or removed node still owns it
        } else {
          ++it->second;
        }
      }
    }
    if (!planning.empty()) {
      const uint64_t n = planning.size();
      const uint64_t slots = static_cast<uint64_t>(state.map().partitions_size()) *
                             std::min<uint64_t>(state.map().replication_factor(), n);
      for (const auto& [id, count] : held) {
        balanced = balanced && count >= slots / n && count <= (slots + n - 1) / n;
      }
    }
  }
  r.set_active(state.moves_size() > 0 || !balanced);
  uint32_t eligible = 0;
  for (const auto& n : state.map().nodes()) eligible += n.state() != quiver::v1::LEAVING && !n.removed();
  const uint32_t want = std::min(state.map().replication_factor(), eligible);
  // Stats() computes this after every coordinator RPC: one pass over the
  // nodes, then set lookups, not a node search per owner.
  std::set<uint32_t> serving_nodes;
  for (const auto& n : state.map().nodes()) {
    if (Serves(state, n.id())) serving_nodes.insert(n.id());
  }
  uint32_t under = 0;
  for (const auto& p : state.map().partitions()) {
    uint32_t serving = 0;
    for (uint32_t id : p.node_ids()) serving += serving_nodes.count(id);
    under += serving < want;
  }
  r.set_under_replicated(under);
  return r;
}

bool Owns(const quiver::v1::PartitionReplicas& p, uint32_t node) { return Has(p.node_ids(), node); }

bool Names(const quiver::v1::PartitionReplicas& p, uint32_t node) {
  return Has(p.node_ids(), node) || Has(p.pending_ids(), node);
}

uint32_t PartitionsNaming(const CoordinatorState& state, uint32_t node) {
  uint32_t n = 0;
  for (const auto& p : state.map().partitions()) n += Names(p, node);
  return n;
}

bool InAnyMove(const CoordinatorState& state, uint32_t node) {
  return std::any_of(state.moves().begin(), state.moves().end(), [&](const PartitionMove& m) {
    return Has(m.old_replicas(), node) || Has(m.new_replicas(), node);
  });
}

}  // namespace quiver::coordinator
