// NodeMetrics: the storage node's own Prometheus metrics (per-RPC counts and
// latencies come from quiver::runtime::RpcMetrics).
//
// Thread-safety: the metrics are prometheus-cpp objects, safe to update from
// any thread. A NodeMetrics must outlive every user of its pointers.
#ifndef QUIVER_NODE_METRICS_H_
#define QUIVER_NODE_METRICS_H_

namespace prometheus {
class Registry;
class Counter;
class Gauge;
}  // namespace prometheus

namespace quiver::node {

struct NodeMetrics {
  // Registers every metric in `registry` (which must outlive this object).
  explicit NodeMetrics(prometheus::Registry& registry);

  prometheus::Counter* rows_written;       // rows applied by NodeService.Write
  prometheus::Counter* rows_materialized;  // rows this node's tasks wrote to replicas
  prometheus::Counter* rows_skipped;       // offline rows whose entity key failed to encode
  prometheus::Counter* repaired_rows;      // rows copied from peers by repair
  prometheus::Counter* tasks_done;
  prometheus::Counter* tasks_failed;
  prometheus::Counter* streamed_rows;       // rows merged by streams (rebalancing targets)
  prometheus::Counter* streamed_bytes;      // bytes of keys and values merged by streams
  prometheus::Counter* streams_done;        // stream attempts completed
  prometheus::Counter* partitions_cleaned;  // partitions deleted after leaving this node
  prometheus::Gauge* streams_running;       // streams known and not done
  prometheus::Gauge* partitions_held;  // partitions listing this node as a replica
  prometheus::Gauge* map_epoch;
  prometheus::Gauge* registry_version;
};

}  // namespace quiver::node

#endif  // QUIVER_NODE_METRICS_H_
