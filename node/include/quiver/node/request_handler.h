// RequestHandler: the node's data-plane logic (NodeService.Get / Write /
// Health), independent of the transport so that the gRPC service and any
// leaner framed protocol share it (docs/architecture.md, "Reads").
//
// The registry and the map epoch come from an injected ClusterView (the
// process uses the coordinator's, tests an in-process one); "now" for TTL
// decisions is the RowStore's injected clock (storage::RowStoreOptions::clock).
//
// Thread-safety: every method is thread-safe; requests run concurrently.
// Blocking: methods block on RocksDB I/O and, at most once per request, on a
// registry refresh when a request names a view the node does not know yet.
#ifndef QUIVER_NODE_REQUEST_HANDLER_H_
#define QUIVER_NODE_REQUEST_HANDLER_H_

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "absl/status/status.h"
#include "quiver.pb.h"
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
  // The node's cluster map epoch; 0 while unknown.
  virtual uint64_t epoch() const = 0;
};

struct HandlerLimits {
  // Entity keys per Get request, summed over its lookups; rows per Write.
  size_t max_keys_per_request = 10000;
  // Lookups per Get request.
  size_t max_lookups_per_request = 1000;
  // Values (entity keys × requested features, summed over lookups) per Get
  // response; bounds the memory one request can make a node allocate.
  size_t max_values_per_request = 1000000;
};

class RequestHandler {
 public:
  // `store` and `cluster` must outlive the handler; `metrics` may be null.
  RequestHandler(storage::RowStore* store, ClusterView* cluster, NodeMetrics* metrics = nullptr,
                 HandlerLimits limits = {});

  // One ViewResult per lookup, one RowResult per entity key, in order; every
  // RowResult carries one Value per requested feature (unset = null, and
  // always unset unless PRESENT). response->epoch is the node's map epoch.
  // Errors: kInvalidArgument (too many keys or lookups, a key empty or longer
  // than kMaxEntityKeyBytes, an unknown or malformed feature name),
  // kNotFound (unknown view), kUnavailable (no registry yet, or reads
  // disabled while recovering; retryable), kDataLoss / kInternal from the store.
  absl::Status Get(const quiver::v1::GetRequest& request, quiver::v1::GetResponse* response);

  // Converts every value by its declared type and applies the rows atomically.
  // With request.ingest_session set, appends them to that bulk-load session
  // instead (created by its first request; storage::IngestSession): they
  // become visible at CommitIngest. A session keeps the view and schema
  // version of its first request; requests of one session are serialized.
  // Errors: kNotFound (unknown view), kFailedPrecondition (schema_version is
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
  // kIngestIdleTimeout are dropped (their writer is gone).
  // Errors: kNotFound (unknown session with rows expected), kAborted (row
  // count differs; the session is dropped), kUnavailable (the view's schema
  // changed; dropped, retryable), kResourceExhausted, kInternal.
  absl::Status CommitIngest(const quiver::v1::CommitIngestRequest& request,
                            quiver::v1::CommitIngestResponse* response);
  static constexpr size_t kMaxIngestSessions = 64;
  // Drops every open ingest session (their files are deleted); the node calls
  // it before closing the store.
  void AbortIngestSessions();
  static constexpr std::chrono::seconds kIngestIdleTimeout{120};

  // Repair, source side: a page of `request.view`'s stored rows in a
  // partition range (storage::RowStore::ScanRaw), for a replica catching up.
  // Errors: kNotFound (unknown view), kInvalidArgument (bad partition range),
  // kUnavailable (no registry yet), kInternal.
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
  // Errors: kInvalidArgument (too many rows, a bad key or row, naming its
  // index; nothing written), kNotFound (unknown view), kUnavailable (no
  // registry yet), kResourceExhausted, kInternal.
  absl::Status MergeRows(const quiver::v1::MergeRowsRequest& request,
                         quiver::v1::MergeRowsResponse* response);

  void Health(quiver::v1::HealthResponse* response) const;

  // Makes sure every online view of `registry` has its column family with the
  // current schema and TTL. A no-op when this registry version was synced.
  // Errors: the first EnsureView failure (the version is then retried later).
  absl::Status SyncViews(const client::RegistryIndex& registry);

  // Whether Get answers. A node that is RECOVERING (it may have missed
  // writes; docs/architecture.md, "Repair") refuses reads with kUnavailable,
  // so a client with an older map moves to another replica instead of
  // reading stale rows. Writes are always taken. Default: answering.
  void set_reads_enabled(bool enabled) { reads_enabled_.store(enabled); }
  bool reads_enabled() const { return reads_enabled_.load(); }

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
  std::mutex sync_mu_;  // serializes SyncViews
  std::atomic<bool> synced_any_{false};
  std::atomic<uint64_t> synced_version_{0};

  struct IngestState;
  // The session `request` names, created on first use. Errors as Write.
  absl::StatusOr<std::shared_ptr<IngestState>> SessionFor(const quiver::v1::WriteRequest& request,
                                                          uint32_t schema_version);
  std::mutex ingest_mu_;  // guards ingest_ (the map; each session has its own lock)
  std::map<std::string, std::shared_ptr<IngestState>, std::less<>> ingest_;
};

}  // namespace quiver::node

#endif  // QUIVER_NODE_REQUEST_HANDLER_H_
