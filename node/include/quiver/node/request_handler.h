// RequestHandler: the node's data-plane logic (NodeService.Get / Write /
// Health), independent of the transport so that the gRPC service and any
// leaner framed protocol share it (docs/architecture.md, "Reads").
//
// The registry comes from an injected ClusterView (the process uses the
// coordinator's, tests an in-process one); "now" for TTL decisions is the
// RowStore's injected clock (storage::RowStoreOptions::clock).
//
// Epoch fencing (docs/architecture.md, "Rebalancing and epoch fencing"): the
// handler checks every request against its *adopted map*, the newest
// ClusterMapView it has been given (AdoptMap: the node's client refresh, the
// registration answer, or the coordinator's AdoptMap barrier). Refusals are
// kAborted with a message starting "stale map:" (the sender's map is stale:
// it refreshes and re-routes). Writes, ingest appends, CommitIngest and
// MergeRows hold a drain lock shared for their whole duration; adopting a
// newer map takes it exclusively, so a request runs entirely under one map.
//
// Thread-safety: every method is thread-safe; requests run concurrently.
// Blocking: methods block on RocksDB I/O and, at most once per request, on a
// registry refresh when a request names a view the node does not know yet;
// AdoptMap waits for in-flight writes, HandleAdoptMap also for stale ingest
// sessions (bounded by the request's drain timeout).
#ifndef QUIVER_NODE_REQUEST_HANDLER_H_
#define QUIVER_NODE_REQUEST_HANDLER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "quiver.pb.h"
#include "quiver/client/cluster_map.h"
#include "quiver/client/registry_index.h"
#include "quiver/storage/row_store.h"

namespace quiver::node {

struct NodeMetrics;

// What the handler needs to know of the cluster.
class ClusterView {
 public:
  virtual ~ClusterView() = default;
  // The newest known registry; nullptr while none is known yet.
  virtual std::shared_ptr<const client::RegistryIndex> registry() const = 0;
  // Fetches the registry (and map) now. Blocks. Errors: kUnavailable (retryable).
  virtual absl::Status Refresh() = 0;
};

// A lock that drains: many holders share it (writes in flight), one takes it
// exclusively (adopting a map) and, once it waits, new shared holders queue
// behind it, so a steady stream of writes cannot starve an adoption (glibc's
// std::shared_mutex prefers readers). Not recursive. Thread-safe.
class DrainLock {
 public:
  void lock_shared() {
    std::lock_guard<std::mutex> gate(gate_);
    mu_.lock_shared();
  }
  void unlock_shared() { mu_.unlock_shared(); }
  void lock() {
    std::lock_guard<std::mutex> gate(gate_);
    mu_.lock();
  }
  void unlock() { mu_.unlock(); }

 private:
  std::mutex gate_;  // held by an exclusive locker until it has the lock
  std::shared_mutex mu_;
};

struct HandlerLimits {
  // Entity keys per Get request, summed over its lookups; rows per Write.
  size_t max_keys_per_request = 10000;
  // Lookups per Get request.
  size_t max_lookups_per_request = 1000;
  // Values (entity keys × requested features, summed over lookups) per Get
  // response; bounds the memory one request can make a node allocate.
  size_t max_values_per_request = 1000000;
  // The cleanup of partitions the node no longer holds waits until no newer
  // map has arrived for `cleanup_settle`, but not longer than
  // `cleanup_max_defer` after the first map it waits for; then one
  // DeleteRange pass and one flush take every partition given up meanwhile.
  // A rebalance changes the map every few hundred ms: a cleanup per map is a
  // flush per map and an L0 file per flush, CPU the lookups need while the
  // partitions move (the chaos drills' p99 rule). Reads are fenced by the
  // map, not by the deletion, so deferring it only holds disk space longer.
  std::chrono::milliseconds cleanup_settle{2000};
  std::chrono::milliseconds cleanup_max_defer{30000};
};

class RequestHandler {
 public:
  // `store` and `cluster` must outlive the handler; `metrics` may be null.
  RequestHandler(storage::RowStore* store, ClusterView* cluster, NodeMetrics* metrics = nullptr,
                 HandlerLimits limits = {});

  // One ViewResult per lookup, one RowResult per entity key, in order; every
  // RowResult carries one Value per requested feature (unset = null, and
  // always unset unless PRESENT). response->epoch is the adopted map's epoch.
  // Errors: kInvalidArgument (too many keys or lookups, a key empty or longer
  // than kMaxEntityKeyBytes, an unknown or malformed feature name),
  // kNotFound (unknown view), kAborted ("stale map: ...": some key's
  // partition is not owned by this node in the adopted map; nothing is
  // answered, the client refreshes its map and re-routes), kUnavailable (no
  // registry or map yet, or reads disabled while recovering; retryable),
  // kDataLoss / kInternal from the store.
  absl::Status Get(const quiver::v1::GetRequest& request, quiver::v1::GetResponse* response);

  // Converts every value by its declared type and applies the rows atomically.
  // With request.ingest_session set, appends them to that bulk-load session
  // instead (created by its first request; storage::IngestSession): they
  // become visible at CommitIngest. A session keeps the view and schema
  // version of its first request; requests of one session are serialized.
  // Fencing: every row's partition must be owned or pending here in the
  // adopted map, and request.epoch must be at least its fence_epoch (0 is
  // refused like any stale epoch once fences are raised); a session
  // remembers, per partition, the oldest epoch its rows carried.
  // Errors: kAborted ("stale map: ..."; nothing written, or appended to a
  // session that a barrier fenced), kNotFound (unknown view), kFailedPrecondition (schema_version is
  // not the registry's, or a session request naming another view or version,
  // or a session that failed before), kInvalidArgument (too many rows, bad
  // key, wrong value count or type, a session row out of key order; nothing
  // written), kUnavailable, kResourceExhausted (disk full, or more than
  // kMaxIngestSessions open sessions), kInternal.
  absl::Status Write(const quiver::v1::WriteRequest& request, quiver::v1::WriteResponse* response);

  // Commits (or with request.abort drops) an ingest session. Committing
  // checks that the session holds request.expected_rows rows, so rows the
  // writer saw acknowledged are never silently missing (a restarted node has
  // lost its open sessions). An unknown session with expected_rows 0 commits
  // as a no-op; aborting an unknown session is a no-op. Sessions idle for
  // kIngestIdleTimeout are dropped (their writer is gone). A session that
  // wrote a partition under an epoch older than its fence may still commit
  // until a barrier (HandleAdoptMap) fences it.
  // Errors: kNotFound (unknown session with rows expected), kAborted (row
  // count differs, or "stale map: ingest session ... was fenced" by a
  // barrier; the session is dropped: rewrite it under the new map),
  // kUnavailable (the view's schema changed, or no map yet; dropped,
  // retryable), kResourceExhausted, kInternal.
  absl::Status CommitIngest(const quiver::v1::CommitIngestRequest& request,
                            quiver::v1::CommitIngestResponse* response);
  static constexpr size_t kMaxIngestSessions = 64;
  // Drops every open ingest session (their files are deleted); the node calls
  // it before closing the store.
  void AbortIngestSessions();
  static constexpr std::chrono::seconds kIngestIdleTimeout{120};

  // Repair, source side: a page of `request.view`'s stored rows in a
  // partition range (storage::RowStore::ScanRaw), for a replica catching up
  // or a stream. Every partition of the range must be owned here in the
  // adopted map and request.epoch at least its fence, so a scan never passes
  // off an empty or partial partition as complete.
  // Errors: kNotFound (unknown view), kInvalidArgument (bad partition range),
  // kAborted ("stale map: ..."), kUnavailable (no registry or map yet),
  // kInternal.
  absl::Status ScanPartitions(const quiver::v1::ScanPartitionsRequest& request,
                              quiver::v1::ScanPartitionsResponse* response);
  static constexpr uint64_t kDefaultScanBytes = 1u << 20;
  static constexpr uint64_t kMaxScanBytes = 16u << 20;

  // Backup: backs the node's store up into request.backup_dir
  // (storage::RowStore::CreateBackup: a checkpoint, digested, then copied
  // incrementally into the BackupEngine directory). Blocks for the copy;
  // one backup at a time (a second request waits).
  // Errors: kInvalidArgument (backup_dir empty or relative),
  // kResourceExhausted (disk full), kInternal (RocksDB).
  absl::Status Backup(const quiver::v1::BackupRequest& request,
                      quiver::v1::BackupResponse* response);

  // Restore: merges stored rows (keys of this node's partition count, values
  // as a backup or ScanPartitions returned them) under last writer wins
  // (storage::RowStore::MergeRaw). Taken while RECOVERING too, like writes.
  // Every row's partition must be owned or pending here in the adopted map
  // (the request carries no epoch: restores run on fresh clusters).
  // Errors: kInvalidArgument (too many rows, a bad key or row, naming its
  // index; nothing written), kAborted ("stale map: ..."; nothing written),
  // kNotFound (unknown view), kUnavailable (no registry or map yet),
  // kResourceExhausted, kInternal.
  absl::Status MergeRows(const quiver::v1::MergeRowsRequest& request,
                         quiver::v1::MergeRowsResponse* response);

  // Streaming, receiving side (streamer.h): merges a page of `partition`
  // copied from a source (RowStore::MergeRaw, last writer wins) while the
  // adopted map still has this node own or receive `partition`, under the
  // drain lock, so a cancelled stream's late page never lands in a partition
  // the cleanup has dropped. Every key must be of `partition`.
  // Errors: kAborted ("stale map: ..."), kInvalidArgument (a key of another
  // partition, a bad row), kNotFound (unknown view), kUnavailable (no map
  // yet), kResourceExhausted, kInternal.
  absl::Status MergeStreamed(std::string_view view, uint32_t partition,
                             std::span<const storage::RawRow> rows);

  // Response epoch = the adopted map's epoch.
  void Health(quiver::v1::HealthResponse* response) const;

  // Adopts `map` when it is newer (by epoch) than the adopted one; a null or
  // older map, or one whose partition count differs from the store's, is
  // ignored. Waits for the writes, appends, commits and merges in flight to
  // finish first (drain lock). Afterwards, when the map has partitions and
  // lists this node, partitions the node neither owns nor receives are
  // deleted in the background (RowStore::DeletePartitions): those it held in
  // the previous adopted map or that hold rows, unless an open ingest
  // session wrote them. Returns whether the map was adopted. Blocks.
  bool AdoptMap(std::shared_ptr<const client::ClusterMapView> map);

  // NodeService.AdoptMap, the barrier: builds the map from request.map,
  // adopts it if newer, then waits until no open ingest session is stale
  // (wrote a partition under an epoch older than its fence in the adopted
  // map), up to request.drain_timeout_ms (0: kDefaultDrainTimeout); sessions
  // still stale then are fenced (their commit is refused). A session
  // committing when the timeout passes is waited for. response: the adopted
  // epoch afterwards and the counts. Calls the map-pushed callback after a
  // newer map was adopted. Blocks up to the drain timeout (plus a commit).
  // Errors: kInvalidArgument (the map does not build, or its partition
  // count differs from the store's; not retryable).
  absl::Status HandleAdoptMap(const quiver::v1::AdoptMapRequest& request,
                              quiver::v1::AdoptMapResponse* response);
  static constexpr std::chrono::milliseconds kDefaultDrainTimeout{20000};

  // The adopted map (null until one was adopted) and its epoch (0). Thread-safe.
  std::shared_ptr<const client::ClusterMapView> adopted_map() const { return map_.load(); }
  uint64_t adopted_epoch() const;

  // Called (from a request's thread, so it must not block) when the node
  // learns of a map newer than its client's or its own: HandleAdoptMap
  // adopted a pushed map (the node's client, which routes the materializer's
  // writes, must catch up), or a refused request carried a newer epoch than
  // the adopted map. At most once per epoch, increasing. The node makes its
  // client refresh soon. Set before serving; may be empty.
  void set_on_newer_map(std::function<void(uint64_t epoch)> callback) {
    on_newer_map_ = std::move(callback);
  }

  // Runs the queued cleanup now (without waiting for the map to settle, see
  // HandlerLimits::cleanup_settle) and waits until nothing is queued or
  // running (tests and shutdown). Blocks.
  void WaitForCleanup();
  // Stops the cleanup thread (queued work is dropped). Idempotent; the
  // destructor calls it.
  void StopCleanup();
  ~RequestHandler();

  // Makes sure every online view of `registry` has its column family with the
  // current schema and TTL. A no-op when this registry version was synced.
  // Errors: the first EnsureView failure (the version is then retried later).
  absl::Status SyncViews(const client::RegistryIndex& registry);

  // Whether Get answers. A node that is RECOVERING (it may have missed
  // writes; docs/architecture.md, "Repair") refuses reads with kUnavailable,
  // so a client with an older map moves to another replica instead of
  // reading stale rows. Writes are always taken (as fencing allows).
  // Default: answering.
  void set_reads_enabled(bool enabled) { reads_enabled_.store(enabled); }
  bool reads_enabled() const { return reads_enabled_.load(); }

  // The node's id, which fencing checks ownership for; set before serving.
  void set_node_id(uint32_t id) { node_id_.store(id); }
  uint32_t node_id() const { return node_id_.load(); }

 private:
  // The current registry, synced into the store. `refreshed` tells whether the
  // request already spent its one refresh. Errors: kUnavailable.
  absl::StatusOr<std::shared_ptr<const client::RegistryIndex>> CurrentRegistry(bool refresh,
                                                                              bool* refreshed);

  storage::RowStore* store_;
  ClusterView* cluster_;
  NodeMetrics* metrics_;
  HandlerLimits limits_;
  std::atomic<uint32_t> node_id_{0};
  std::atomic<bool> reads_enabled_{true};
  // Fencing (request_handler_fence.cc).
  // The adopted map, or kUnavailable while there is none.
  absl::StatusOr<std::shared_ptr<const client::ClusterMapView>> MapOrUnavailable() const;
  // kAborted "stale map: ..." for `partition` (what: why it is refused).
  // A refused request stamped with a newer epoch than `map` (0: none) means
  // the node is behind: NoteNewerEpoch.
  absl::Status StaleMap(const client::ClusterMapView& map, uint32_t partition,
                        std::string_view what, uint64_t request_epoch);
  // Calls on_newer_map_ for an epoch newer than any noted before.
  void NoteNewerEpoch(uint64_t epoch);
  // Whether the session wrote a partition under an epoch older than its
  // fence in `map`. Needs ingest_mu_.
  struct IngestState;
  static bool IsStale(const IngestState& state, const client::ClusterMapView& map);
  // Partitions some open ingest session wrote. Needs ingest_mu_.
  std::vector<bool> PartitionsOfOpenSessions(uint32_t num_partitions) const;
  // Adopts `map` if newer (under the drain lock); with `stale`, also lists
  // the open sessions stale under the map adopted afterwards. Returns
  // whether `map` was adopted.
  bool Adopt(std::shared_ptr<const client::ClusterMapView> map,
             std::vector<std::shared_ptr<IngestState>>* stale);
  // Queues a cleanup against `map` (the adopted one) and `previous`.
  void ScheduleCleanup(std::shared_ptr<const client::ClusterMapView> previous,
                       std::shared_ptr<const client::ClusterMapView> map);
  void CleanupLoop();
  // Deletes the partitions the node neither owns nor receives in `map`: those
  // `held_before` marks (held under an earlier map) and those with rows.
  void RunCleanup(const std::vector<bool>& held_before, const client::ClusterMapView& map);
  // Removes the session `name` if it is still `state`, and wakes a barrier.
  void CloseSession(const std::string& name, const std::shared_ptr<IngestState>& state);

  DrainLock drain_;
  std::atomic<std::shared_ptr<const client::ClusterMapView>> map_;
  std::function<void(uint64_t)> on_newer_map_;
  std::atomic<uint64_t> newest_noted_{0};
  std::condition_variable ingest_cv_;  // with ingest_mu_: signalled when a session closes
  std::mutex cleanup_mu_;
  std::condition_variable cleanup_cv_;
  // The queued cleanup (guarded by cleanup_mu_): against the newest adopted
  // map (null: none queued), of the partitions held under any map adopted
  // before it since the last cleanup, queued first at `cleanup_since_` and
  // last at `cleanup_last_`. `cleanup_now_`: WaitForCleanup skips the settle.
  std::shared_ptr<const client::ClusterMapView> cleanup_map_;
  std::vector<bool> cleanup_held_before_;
  std::chrono::steady_clock::time_point cleanup_since_;
  std::chrono::steady_clock::time_point cleanup_last_;
  bool cleanup_now_ = false;
  bool cleanup_running_ = false;           // guarded by cleanup_mu_
  bool cleanup_stopping_ = false;          // guarded by cleanup_mu_
  std::thread cleanup_thread_;             // started on first use, guarded by cleanup_mu_

  std::mutex sync_mu_;  // serializes SyncViews
  std::atomic<bool> synced_any_{false};
  std::atomic<uint64_t> synced_version_{0};

  // The session `request` names, created on first use. Errors as Write.
  absl::StatusOr<std::shared_ptr<IngestState>> SessionFor(const quiver::v1::WriteRequest& request,
                                                          uint32_t schema_version);
  std::mutex ingest_mu_;  // guards ingest_ (the map; each session has its own lock)
  std::map<std::string, std::shared_ptr<IngestState>, std::less<>> ingest_;
};

}  // namespace quiver::node

#endif  // QUIVER_NODE_REQUEST_HANDLER_H_
