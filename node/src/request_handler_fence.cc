// RequestHandler's epoch fencing (docs/architecture.md, "Rebalancing and
// epoch fencing"): the adopted map, the AdoptMap barrier, the streamed-page
// merge and the cleanup of partitions the node no longer holds.
#include <prometheus/counter.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "quiver/node/metrics.h"
#include "quiver/node/request_handler.h"
#include "request_handler_internal.h"
#include "thread_priority.h"

namespace quiver::node {
namespace {

bool ListsNode(const client::ClusterMapView& map, uint32_t node) {
  for (const quiver::v1::NodeInfo& n : map.nodes()) {
    if (n.id() == node) return true;
  }
  return false;
}

}  // namespace

RequestHandler::~RequestHandler() { StopCleanup(); }

uint64_t RequestHandler::adopted_epoch() const {
  std::shared_ptr<const client::ClusterMapView> map = map_.load();
  return map == nullptr ? 0 : map->epoch();
}

absl::StatusOr<std::shared_ptr<const client::ClusterMapView>> RequestHandler::MapOrUnavailable()
    const {
  std::shared_ptr<const client::ClusterMapView> map = map_.load();
  if (map == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("node ", node_id_.load(), " has no cluster map yet"));
  }
  return map;
}

absl::Status RequestHandler::StaleMap(const client::ClusterMapView& map, uint32_t partition,
                                      std::string_view what, uint64_t request_epoch) {
  if (request_epoch > map.epoch()) NoteNewerEpoch(request_epoch);
  return absl::AbortedError(absl::StrCat("stale map: node ", node_id_.load(), " ", std::string(what),
                                         " partition ", partition, " (node epoch ", map.epoch(),
                                         ", request epoch ", request_epoch, ")"));
}

void RequestHandler::NoteNewerEpoch(uint64_t epoch) {
  uint64_t seen = newest_noted_.load();
  while (epoch > seen) {
    if (newest_noted_.compare_exchange_weak(seen, epoch)) {
      if (on_newer_map_) on_newer_map_(epoch);
      return;
    }
  }
}

bool RequestHandler::IsStale(const IngestState& state, const client::ClusterMapView& map) {
  for (const auto& [partition, epoch] : state.min_epoch) {
    if (epoch < map.FenceOf(partition)) return true;
  }
  return false;
}

std::vector<bool> RequestHandler::PartitionsOfOpenSessions(uint32_t num_partitions) const {
  std::vector<bool> written(num_partitions, false);
  for (const auto& [name, state] : ingest_) {
    if (state->closed) continue;
    for (const auto& [partition, epoch] : state->min_epoch) {
      if (partition < num_partitions) written[partition] = true;
    }
  }
  return written;
}

void RequestHandler::CloseSession(const std::string& name,
                                  const std::shared_ptr<IngestState>& state) {
  {
    std::lock_guard<std::mutex> lock(ingest_mu_);
    state->closed = true;
    auto it = ingest_.find(name);
    if (it != ingest_.end() && it->second == state) ingest_.erase(it);
  }
  ingest_cv_.notify_all();
}

bool RequestHandler::AdoptMap(std::shared_ptr<const client::ClusterMapView> map) {
  if (map == nullptr) return false;
  if (map->has_partitions() && map->num_partitions() != store_->num_partitions()) {
    spdlog::warn("ignoring a cluster map of {} partitions (epoch {}): the store has {}",
                 map->num_partitions(), map->epoch(), store_->num_partitions());
    return false;
  }
  if (map_.load() != nullptr && map->epoch() <= adopted_epoch()) return false;  // the common case
  return Adopt(std::move(map), nullptr);
}

bool RequestHandler::Adopt(std::shared_ptr<const client::ClusterMapView> map,
                           std::vector<std::shared_ptr<IngestState>>* stale) {
  std::shared_ptr<const client::ClusterMapView> previous;
  bool adopted = false;
  {
    // Writes in flight finish under the map they were checked against.
    std::unique_lock<DrainLock> drain(drain_);
    previous = map_.load();
    if (previous == nullptr || previous->epoch() < map->epoch()) {
      map_.store(map);
      adopted = true;
    }
    if (stale != nullptr) {
      // Taken before any request runs under the new map: a session that
      // commits from now on is one the barrier waited for.
      std::shared_ptr<const client::ClusterMapView> current = map_.load();
      std::lock_guard<std::mutex> lock(ingest_mu_);
      for (const auto& [name, state] : ingest_) {
        if (!state->closed && !state->fenced && IsStale(*state, *current)) stale->push_back(state);
      }
    }
  }
  if (!adopted) return false;
  spdlog::debug("node {} adopted map epoch {}", node_id_.load(), map->epoch());
  ScheduleCleanup(std::move(previous), std::move(map));
  return true;
}

absl::Status RequestHandler::HandleAdoptMap(const quiver::v1::AdoptMapRequest& request,
                                            quiver::v1::AdoptMapResponse* response) {
  absl::StatusOr<client::ClusterMapView> built = client::ClusterMapView::Build(request.map());
  if (!built.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("AdoptMap: bad cluster map: ", built.status().message()));
  }
  auto map = std::make_shared<const client::ClusterMapView>(*std::move(built));
  if (map->has_partitions() && map->num_partitions() != store_->num_partitions()) {
    return absl::InvalidArgumentError(absl::StrCat("AdoptMap: the map has ", map->num_partitions(),
                                                   " partitions, the node's store ",
                                                   store_->num_partitions()));
  }
  const uint64_t epoch = map->epoch();
  // The stale sessions as of the adoption: none can become stale later under
  // this map (appends under older epochs are refused from now on).
  std::vector<std::shared_ptr<IngestState>> stale;
  if (Adopt(std::move(map), &stale)) NoteNewerEpoch(epoch);  // the client is behind

  std::unique_lock<std::mutex> lock(ingest_mu_);
  const auto open = [&] {
    return std::any_of(stale.begin(), stale.end(), [](const auto& s) { return !s->closed; });
  };
  const auto timeout = request.drain_timeout_ms() == 0
                           ? kDefaultDrainTimeout
                           : std::chrono::milliseconds(request.drain_timeout_ms());
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  ingest_cv_.wait_until(lock, deadline, [&] { return !open(); });
  // Still open: fence those not committing; a commit in progress already
  // passed its fence check, so it is waited for (it is finite).
  uint32_t fenced = 0;
  for (const auto& state : stale) {
    if (!state->closed && !state->closing) {
      state->fenced = true;
      ++fenced;
    }
  }
  ingest_cv_.wait(lock, [&] {
    return std::none_of(stale.begin(), stale.end(),
                        [](const auto& s) { return s->closing && !s->closed && !s->fenced; });
  });
  lock.unlock();
  if (!stale.empty()) {
    spdlog::info("barrier at epoch {}: {} stale ingest sessions closed, {} fenced", epoch,
                 stale.size() - fenced, fenced);
  }
  response->set_epoch(adopted_epoch());
  response->set_sessions_waited(static_cast<uint32_t>(stale.size()) - fenced);
  response->set_sessions_fenced(fenced);
  return absl::OkStatus();
}

absl::Status RequestHandler::MergeStreamed(std::string_view view, uint32_t partition,
                                           std::span<const storage::RawRow> rows) {
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].key.size() <= 4 || PartitionOfRowKey(rows[i].key) != partition) {
      return absl::InvalidArgumentError(absl::StrCat("streamed row ", i, " of view ",
                                                     std::string(view), " is not of partition ",
                                                     partition));
    }
  }
  std::shared_lock<DrainLock> drain(drain_);
  auto map = MapOrUnavailable();
  if (!map.ok()) return map.status();
  if (!(*map)->OwnsOrReceives(node_id_.load(), partition)) {
    return StaleMap(**map, partition, "neither owns nor receives", 0);
  }
  return store_->MergeRaw(view, rows);
}

void RequestHandler::ScheduleCleanup(std::shared_ptr<const client::ClusterMapView> previous,
                                     std::shared_ptr<const client::ClusterMapView> map) {
  const uint32_t self = node_id_.load();
  // Conservative: only a map with partitions that lists this node says what
  // it no longer holds.
  if (self == 0 || !map->has_partitions() || !ListsNode(*map, self)) return;
  const uint32_t q = map->num_partitions();
  {
    std::lock_guard<std::mutex> lock(cleanup_mu_);
    if (cleanup_stopping_) return;
    const auto now = std::chrono::steady_clock::now();
    if (cleanup_map_ == nullptr) {
      cleanup_held_before_.assign(q, false);
      cleanup_since_ = now;
    }
    if (previous != nullptr && previous->has_partitions() && previous->num_partitions() == q) {
      for (uint32_t p = 0; p < q; ++p) {
        if (previous->OwnsOrReceives(self, p)) cleanup_held_before_[p] = true;
      }
    }
    cleanup_map_ = std::move(map);
    cleanup_last_ = now;
    if (!cleanup_thread_.joinable()) cleanup_thread_ = std::thread([this] { CleanupLoop(); });
  }
  cleanup_cv_.notify_all();
}

void RequestHandler::CleanupLoop() {
  NameThisThread("quiver-cleanup");
  // Background work, as the streams and repair: lookups come first.
  NiceThisThread(kBackgroundNice, "cleanup");
  std::unique_lock<std::mutex> lock(cleanup_mu_);
  for (;;) {
    cleanup_cv_.wait(lock, [this] { return cleanup_stopping_ || cleanup_map_ != nullptr; });
    if (cleanup_stopping_) return;
    // Until the map has settled (no newer one for cleanup_settle), at most
    // cleanup_max_defer after the first queued map, or WaitForCleanup.
    const auto due = [this] {
      return std::min(cleanup_last_ + limits_.cleanup_settle,
                      cleanup_since_ + limits_.cleanup_max_defer);
    };
    while (!cleanup_stopping_ && !cleanup_now_ && std::chrono::steady_clock::now() < due()) {
      cleanup_cv_.wait_until(lock, due());
    }
    if (cleanup_stopping_) return;
    std::shared_ptr<const client::ClusterMapView> map = std::move(cleanup_map_);
    std::vector<bool> held_before = std::move(cleanup_held_before_);
    cleanup_map_ = nullptr;
    cleanup_held_before_.clear();
    cleanup_now_ = false;
    cleanup_running_ = true;
    lock.unlock();
    RunCleanup(held_before, *map);
    lock.lock();
    cleanup_running_ = false;
    cleanup_cv_.notify_all();
  }
}

void RequestHandler::RunCleanup(const std::vector<bool>& held_before,
                                const client::ClusterMapView& map) {
  const uint32_t self = node_id_.load();
  const uint32_t q = map.num_partitions();
  std::vector<bool> candidate(q, false);
  for (uint32_t p = 0; p < q && p < held_before.size(); ++p) {
    candidate[p] = held_before[p] && !map.OwnsOrReceives(self, p);
  }
  absl::StatusOr<std::vector<uint32_t>> held = store_->PartitionsWithRows();
  if (!held.ok()) {
    spdlog::warn("cleanup: cannot list the store's partitions: {}", held.status().ToString());
  } else {
    for (uint32_t p : *held) {
      if (p < q && !map.OwnsOrReceives(self, p)) candidate[p] = true;
    }
  }
  std::vector<uint32_t> drop;
  uint64_t epoch = 0;
  {
    // Under the drain lock the map cannot change, so no write reaches these
    // partitions while they are deleted (they are refused by this map). The
    // adopted map decides: a newer one than `map` may give some back.
    std::shared_lock<DrainLock> drain(drain_);
    std::shared_ptr<const client::ClusterMapView> current = map_.load();
    if (current == nullptr || current->num_partitions() != q) return;
    epoch = current->epoch();
    {
      std::lock_guard<std::mutex> lock(ingest_mu_);
      const std::vector<bool> written = PartitionsOfOpenSessions(q);
      for (uint32_t p = 0; p < q; ++p) {
        if (candidate[p] && !written[p] && !current->OwnsOrReceives(self, p)) drop.push_back(p);
      }
    }
    if (drop.empty()) return;
    if (absl::Status s = store_->DeletePartitions(drop); !s.ok()) {
      spdlog::warn("cleanup of {} partitions at epoch {} failed (retried at the next map): {}",
                   drop.size(), epoch, s.ToString());
      return;
    }
  }
  // Out of the drain lock: a flush takes tens of ms, and a map adoption
  // waiting for it would hold up every write behind it.
  if (absl::Status s = store_->FlushViews(); !s.ok()) {
    spdlog::warn("cleanup: flushing the deleted partitions failed: {}", s.ToString());
  }
  spdlog::info("node {} deleted {} partitions it no longer holds (epoch {})", self, drop.size(),
               epoch);
  if (metrics_ != nullptr) metrics_->partitions_cleaned->Increment(static_cast<double>(drop.size()));
}

void RequestHandler::WaitForCleanup() {
  std::unique_lock<std::mutex> lock(cleanup_mu_);
  cleanup_now_ = true;
  cleanup_cv_.notify_all();
  cleanup_cv_.wait(lock, [this] {
    return cleanup_stopping_ || (cleanup_map_ == nullptr && !cleanup_running_);
  });
  // Nothing was queued (or it ran): the next map's cleanup settles again.
  cleanup_now_ = false;
}

void RequestHandler::StopCleanup() {
  std::thread thread;
  {
    std::lock_guard<std::mutex> lock(cleanup_mu_);
    cleanup_stopping_ = true;
    cleanup_map_ = nullptr;
    thread = std::move(cleanup_thread_);
  }
  cleanup_cv_.notify_all();
  if (thread.joinable()) thread.join();
}

}  // namespace quiver::node
