// The coordinator's barrier over gRPC: NodeService.AdoptMap to every live
// node in parallel (docs/architecture.md, "Rebalancing and epoch fencing").
//
// Thread-safety: the returned function may be called from one thread at a
// time (the coordinator's driver).
#ifndef QUIVER_COORDINATOR_SRC_BARRIER_H_
#define QUIVER_COORDINATOR_SRC_BARRIER_H_

#include <cstdint>

#include "quiver/coordinator/coordinator.h"
#include "quiver/security/security.h"

namespace quiver::coordinator {

// Each call sends the map to every node with `drain_timeout_ms` (unit: ms)
// and waits for all answers, each RPC bounded by the drain timeout plus 5 s;
// true when every node answered with an epoch >= the map's. A node that
// fails or times out makes it false (the driver retries; a node that stays
// silent is marked DOWN by the heartbeat timeout and is no longer asked).
// `channels`: TLS and the token of the calls to the nodes.
BarrierFn MakeGrpcBarrier(uint32_t drain_timeout_ms, int max_message_bytes,
                          security::ChannelFactory channels = {});

}  // namespace quiver::coordinator

#endif  // QUIVER_COORDINATOR_SRC_BARRIER_H_
