// Node: the quiver-node process assembled from its parts — the RowStore, the
// NodeService gRPC server, registration and heartbeats with the coordinator,
// registry sync, the metrics endpoint, the materialization worker, the
// lean lookup server (lookup_server.h: Get frames over plain TCP) and the
// partition streams of rebalancing (streamer.h). The handler adopts the
// client's map after every refresh, the registration's map, and maps the
// coordinator pushes (NodeService.AdoptMap, after which the client refreshes).
//
// Start-up order: fetch the cluster map's partition count Q (the store's Q is
// persisted in DATA_DIR/num_partitions and must match it), open RocksDB under
// DATA_DIR/rocksdb, start serving, register (id persisted in DATA_DIR/node_id),
// connect the client, then heartbeat and lease tasks until Stop.
//
// Thread-safety: Start and Stop are called from one thread; the accessors are
// safe from any thread.
#ifndef QUIVER_NODE_NODE_H_
#define QUIVER_NODE_NODE_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quiver/security/security.h"
#include "absl/synchronization/notification.h"

namespace quiver::node {

struct NodeOptions {
  std::string listen = "127.0.0.1:7000";  // host:port; port 0 picks one
  std::string advertise;  // host:port peers and clients dial; empty: listen host + bound port
  std::string metrics_listen = "127.0.0.1:0";
  std::string coordinator;  // host:port, required
  std::string data_dir;  // required
  uint64_t block_cache_mb = 256;  // unit: MiB
  std::chrono::milliseconds heartbeat{500};
  uint32_t write_quorum = 0;  // 0: majority of each partition's replicas
  size_t materialize_batch_rows = 10000;
  // --materialize-mode ingest|write: bulk-load tasks through ingest sessions
  // (SST files on every replica, the default) or write them as ordinary
  // memtable writes.
  bool materialize_ingest = true;
  std::string log_level = "info";
  size_t max_message_bytes = 64u << 20;  // gRPC send/receive limit; also the lookup frame limit
  // host:port of the lean lookup server; empty: the listen host, port 0 (a
  // free port). Advertised to the coordinator with the advertise host.
  std::string lookup_listen;
  int lookup_threads = 2;  // io threads of the lookup server
  // DuckDB's memory cap for materialization tasks (--offline-memory-mb; a
  // task that outgrows it spills under <data-dir>/offline-tmp) and its
  // threads (--offline-threads; 0: one per core). unit: MiB.
  uint64_t offline_memory_mb = 512;
  int offline_threads = 0;
  // --stream-mb-per-s: throttle of partition streams (rebalancing; the
  // node is their target). unit: MiB per second; 0 means unlimited.
  uint32_t stream_mb_per_s = 200;
  // TLS of every listener (gRPC, lookup, /metrics) and of the node's own
  // calls, tokens checked and presented (quiver/security/security.h).
  security::ProcessSecurity security;
};

// Parses the command line (and --config FILE). Errors: kInvalidArgument naming
// the flag (unknown flag, bad number, missing --coordinator or --data-dir, bad
// address), kNotFound (config file missing).
absl::StatusOr<NodeOptions> ParseNodeFlags(int argc, char** argv);

class Node {
 public:
  // Starts the node; blocks until the coordinator answered (retrying with
  // backoff) or `cancel` is notified (then kCancelled). `cancel` may be null
  // and must outlive the call.
  // Errors: kInvalidArgument / kFailedPrecondition (unusable data dir, Q of
  // the store differs from the map's), kUnavailable (port not bindable),
  // kCancelled, and the store's open errors.
  static absl::StatusOr<std::unique_ptr<Node>> Start(const NodeOptions& options,
                                                     absl::Notification* cancel = nullptr);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Stops heartbeats, the worker and the server (in-flight RPCs finish), then
  // closes the store. Idempotent.
  void Stop();

  const std::string& listen_address() const;
  const std::string& advertise_address() const;
  const std::string& metrics_address() const;
  // The lookup server's bound "host:port" (lookup_listen host, bound port).
  const std::string& lookup_address() const;
  // What the coordinator tells clients: the advertise host, the bound port.
  const std::string& lookup_advertise_address() const;
  uint32_t node_id() const;

  class Impl;

 private:
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quiver::node

#endif  // QUIVER_NODE_NODE_H_
