// quiver::Client — the C++ client library that inference services link.
//
// It caches the cluster map and the registry from the coordinator (refreshed
// in the background, and at once when a node answers with a newer epoch), and
// routes each lookup straight to a replica that owns the row: rows are grouped
// per node, one batched Get per node is sent in parallel, and a node that
// fails (error, refused connection, timeout) has its rows retried on the
// partition's next replica, all within the call's deadline. While the
// coordinator is down, lookups keep working from the cached map.
//
// Results follow Feast's GetOnlineFeatures shape: for every entity row and
// feature reference, a value, a status and the event timestamp.
//
// Thread-safety: a Client is thread-safe; share one per process.
// Blocking: every method blocks the calling thread until done or deadline.
//
// Example:
//   quiver::client::ClientOptions opts;
//   opts.coordinator_address = "127.0.0.1:6000";
//   auto client = quiver::client::Client::Create(opts).value();
//   quiver::client::OnlineRequest req;
//   req.feature_service = "delay_model_v1";
//   req.entity_rows = {{{"origin", quiver::Value::String("LAX")},
//                       {"destination", quiver::Value::String("SFO")}}};
//   auto resp = client->GetOnlineFeatures(req);  // StatusOr<OnlineResponse>
#ifndef QUIVER_CLIENT_CLIENT_H_
#define QUIVER_CLIENT_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quiver.pb.h"
#include "quiver/client/cluster_map.h"
#include "quiver/client/registry_index.h"
#include "quiver/keys/value.h"
#include "quiver/security/security.h"

namespace quiver::client {

struct ClientOptions {
  std::string coordinator_address;  // host:port
  // Default per-call deadline when a request sets none. unit: milliseconds.
  std::chrono::milliseconds default_deadline{1000};
  // How often the cluster map and registry are re-fetched. unit: milliseconds.
  std::chrono::milliseconds refresh_interval{1000};
  // Deadline of one attempt on one replica before failing over, as a fraction
  // of the time left: attempt_timeout = max(min_attempt_timeout, left / replicas_left).
  std::chrono::milliseconds min_attempt_timeout{20};
  // Lookups use the nodes' lean lookup protocol (persistent TCP, protobuf
  // frames; docs/architecture.md) when every node in the map serves it, and
  // gRPC otherwise. false: always gRPC.
  bool lean_lookups = true;
  // TLS (a CA to verify the nodes and the coordinator, and optionally a
  // client certificate) and the bearer token every call presents
  // (quiver/security/security.h). With TLS the lean lookup connections
  // are TLS too (OpenSSL), and each presents the token once.
  security::ClientSecurity security;
  // Hedged reads: a per-node call still running after that node's recent p95
  // latency (at least 1 ms) is also sent to the next replica; the first
  // answer wins. At most 0.1 hedge per call on average (docs/architecture.md).
  // A node that overran its hedge delay is tried after its peers for 250 ms
  // (a stalled node then costs one hedge delay per 250 ms, not per lookup).
  bool hedged_reads = true;
  // Bounds a request (bad input is refused before any RPC).
  size_t max_entity_rows = 10000;
  size_t max_features = 1000;
  // Writes: rows per Write RPC.
  size_t write_batch_rows = 1000;
  // Not options, but behaviour worth knowing: a node whose lookup failed
  // (any retryable error) is tried after the other replicas for 2 s, so a hung
  // node costs one attempt timeout, not one per call. Channels: one per node
  // address, created when the map names it and kept connected (keepalive
  // pings while calls are in flight, messages up to 64 MiB, reconnect backoff
  // capped at 2 s).
};

enum class FeatureStatus { kPresent, kNotFound, kNullValue, kOutsideMaxAge };
const char* FeatureStatusName(FeatureStatus s);  // "PRESENT", "NOT_FOUND", ...

struct FeatureValue {
  Value value;  // null unless kPresent
  FeatureStatus status = FeatureStatus::kNotFound;
  int64_t event_ts_us = 0;  // 0 when not found
};

struct OnlineRequest {
  // Either feature references ("view:feature" or "view") or a feature service.
  std::vector<std::string> features;
  std::string feature_service;
  // One map per entity row: join key -> value (typed as the entity declares),
  // plus the request fields of the on-demand features asked for (typed as
  // their request_schema declares).
  std::vector<std::map<std::string, Value>> entity_rows;
  // 0: ClientOptions::default_deadline. unit: milliseconds.
  std::chrono::milliseconds deadline{0};
};

struct OnlineResponse {
  std::vector<std::string> feature_refs;  // resolved "view:feature", columns
  // rows × features: one vector per entity row (input order), one FeatureValue
  // per feature_refs entry.
  std::vector<std::vector<FeatureValue>> rows;
};

// A row to write through the client (push, materialization).
struct WriteRowInput {
  std::map<std::string, Value> entity;  // join key -> value
  int64_t event_ts_us = 0;  // unit: microseconds since the epoch
  int64_t created_ts_us = 0;
  std::vector<Value> values;  // every feature of the view, in schema order
};

// Already-encoded rows for one view (the materializer's path).
struct EncodedRow {
  std::string entity_key;  // serialized
  int64_t event_ts_us = 0;
  int64_t created_ts_us = 0;
  std::vector<Value> values;
  // Alternative to `values` (then empty): the features already packed as
  // WriteRow.packed_values (quiver/keys/packed_values.h), sent as they are.
  std::string packed_values;
};

struct WriteOptions {
  // Write quorum per row; 0 means a majority of the partition's replicas
  // (n/2 + 1 of the n the map lists, DOWN ones included).
  uint32_t write_quorum = 0;
  // The whole call. 0: ClientOptions::default_deadline. unit: milliseconds.
  std::chrono::milliseconds deadline{10000};
  // Bulk load: when set, rows go to this ingest session on each replica
  // (WriteRequest.ingest_session) and stay invisible until FinishIngest
  // commits it. The caller sends a session's rows in stored-key order
  // (storage::RowStore::RowKey), one WriteEncoded call at a time.
  std::string ingest_session;
};

class Client {
 public:
  // Connects to the coordinator and fetches the map and registry.
  // Errors: kInvalidArgument (empty address), kUnavailable (coordinator not
  // reachable within default_deadline; retryable).
  static absl::StatusOr<std::unique_ptr<Client>> Create(const ClientOptions& options);
  virtual ~Client() = default;

  // Looks up features for a batch of entity rows.
  // Errors (the whole call): kInvalidArgument (malformed or unknown-typed
  // entity value, too many rows/features, both or neither of features and
  // feature_service), kNotFound (unknown view, feature or service),
  // kDeadlineExceeded / kUnavailable when some row could not be read from any
  // replica before the deadline (retryable; the message says how many rows).
  // A node answering INVALID_ARGUMENT ends the call with kInvalidArgument;
  // any other node error (UNAVAILABLE, DEADLINE_EXCEEDED, NOT_FOUND from a
  // node with an older registry, ...) moves the rows to their next replica.
  // On-demand features ("odfv:feature", or in a service) are computed here
  // after the fetch by quiver::expr::OnDemandView, the evaluator
  // get-historical uses offline: their sources' features are fetched in the
  // same lookup (a missing or expired source row reads as null), request
  // fields come from each entity row (by name, of the declared type); the
  // result is kPresent, or kNullValue when null, with event_ts_us 0 (Feast's
  // rule). Errors also: kInvalidArgument when an entity row lacks a request
  // field or gives it another type (not retryable).
  virtual absl::StatusOr<OnlineResponse> GetOnlineFeatures(const OnlineRequest& request) = 0;

  // Writes rows of `view` to every replica of each row's partition; succeeds
  // when every row reached its write quorum. Idempotent (LWW), so a retry is safe.
  // Replicas the map marks DOWN are not contacted (they count as missing
  // acks); RECOVERING ones are. A DOWN replica comes back RECOVERING and
  // copies the rows it missed from its peers before serving reads (repair,
  // node/include/quiver/node/repair.h). Values are checked against the view's
  // schema (count, declared types, INT32/FLOAT range; a default Value{} is a
  // null) before any RPC. Push writes under the view's current schema_version.
  // Errors: kNotFound (unknown view), kInvalidArgument (shape or type),
  // kUnavailable (quorum missed for some row; retryable).
  virtual absl::Status Push(const std::string& view, const std::vector<WriteRowInput>& rows,
                            const WriteOptions& options = {}) = 0;
  virtual absl::Status WriteEncoded(const std::string& view, uint32_t schema_version,
                                    const std::vector<EncodedRow>& rows,
                                    const WriteOptions& options = {}) = 0;

  // Commits (or with commit=false aborts) an ingest session on every node
  // that acknowledged rows of it, telling each node how many rows it
  // acknowledged (CommitIngestRequest.expected_rows). The session is
  // forgotten afterwards either way. Succeeds only when every such node
  // committed: a node that lost the session (it restarted) or fails makes the
  // whole call fail, and the writer rewrites the rows under a new session
  // (committed rows are harmless to rewrite: LWW). An unknown session commits
  // nothing and succeeds. Thread-safe; blocks up to options_.default_deadline.
  // Errors: kUnavailable / kDeadlineExceeded (a node unreachable; retryable),
  // kNotFound / kAborted (a node lost rows of the session; rewrite them),
  // others as the node returned them.
  virtual absl::Status FinishIngest(const std::string& session, bool commit) = 0;

  // The cached registry and map (never null after Create).
  virtual std::shared_ptr<const RegistryIndex> registry() const = 0;
  virtual std::shared_ptr<const ClusterMapView> cluster_map() const = 0;

  // Fetches the map and registry now (the background thread does this every
  // refresh_interval, early when a node reports a newer epoch, and when a
  // lookup or write was refused as routed by a stale map: those wait for it
  // within their deadline). Fails fast while the coordinator is not
  // connected: the background thread is the one that waits through a
  // reconnect. Thread-safe; blocks up to options_.default_deadline.
  // Errors: kUnavailable (retryable), kInvalidArgument when the coordinator
  // served a malformed map or registry; either way the cached ones stay.
  virtual absl::Status Refresh() = 0;
};

}  // namespace quiver::client

#endif  // QUIVER_CLIENT_CLIENT_H_
