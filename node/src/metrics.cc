#include "quiver/node/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace quiver::node {

NodeMetrics::NodeMetrics(prometheus::Registry& registry) {
  rows_written = &prometheus::BuildCounter()
                      .Name("quiver_node_rows_written_total")
                      .Help("Rows applied by NodeService.Write on this node")
                      .Register(registry)
                      .Add({});
  rows_materialized = &prometheus::BuildCounter()
                           .Name("quiver_node_materialized_rows_total")
                           .Help("Rows this node's materialization tasks wrote to their replicas")
                           .Register(registry)
                           .Add({});
  rows_skipped = &prometheus::BuildCounter()
                      .Name("quiver_node_materialize_skipped_rows_total")
                      .Help("Offline rows skipped because their entity key could not be encoded")
                      .Register(registry)
                      .Add({});
  repaired_rows = &prometheus::BuildCounter()
                       .Name("quiver_node_repaired_rows_total")
                       .Help("Rows copied from peer replicas by repair (RECOVERING)")
                       .Register(registry)
                       .Add({});
  streamed_rows = &prometheus::BuildCounter()
                       .Name("quiver_node_streamed_rows_total")
                       .Help("Rows merged from a source by partition streams (rebalancing)")
                       .Register(registry)
                       .Add({});
  streamed_bytes = &prometheus::BuildCounter()
                        .Name("quiver_node_streamed_bytes_total")
                        .Help("Bytes of keys and values merged by partition streams")
                        .Register(registry)
                        .Add({});
  streams_done = &prometheus::BuildCounter()
                      .Name("quiver_node_streams_done_total")
                      .Help("Partition stream attempts this node completed")
                      .Register(registry)
                      .Add({});
  partitions_cleaned = &prometheus::BuildCounter()
                            .Name("quiver_node_partitions_cleaned_total")
                            .Help("Partitions deleted after the adopted map dropped them here")
                            .Register(registry)
                            .Add({});
  streams_running = &prometheus::BuildGauge()
                         .Name("quiver_node_streams_running")
                         .Help("Partition streams handed to this node and not done")
                         .Register(registry)
                         .Add({});
  auto& tasks = prometheus::BuildCounter()
                    .Name("quiver_node_materialize_tasks_total")
                    .Help("Materialization tasks finished on this node, by result")
                    .Register(registry);
  tasks_done = &tasks.Add({{"result", "done"}});
  tasks_failed = &tasks.Add({{"result", "failed"}});
  partitions_held = &prometheus::BuildGauge()
                         .Name("quiver_node_partitions_held")
                         .Help("Partitions whose replica list names this node")
                         .Register(registry)
                         .Add({});
  map_epoch = &prometheus::BuildGauge()
                   .Name("quiver_node_map_epoch")
                   .Help("Cluster map epoch the node knows")
                   .Register(registry)
                   .Add({});
  registry_version = &prometheus::BuildGauge()
                          .Name("quiver_node_registry_version")
                          .Help("Registry version the node's store is synced to")
                          .Register(registry)
                          .Add({});
}

}  // namespace quiver::node
