// CoordinatorServer: the gRPC CoordinatorService over a Coordinator, with
// per-RPC metrics, coordinator gauges on /metrics and a ticker thread that
// marks silent nodes DOWN. quiver-coordinator's main is a thin shell over it;
// integration tests start it in-process.
//
// Thread-safety: Start/Shutdown from one thread; the RPCs run concurrently.
#ifndef QUIVER_COORDINATOR_SERVER_H_
#define QUIVER_COORDINATOR_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "quiver/coordinator/coordinator.h"
#include "quiver/security/security.h"

namespace quiver::coordinator {

struct ServerOptions {
  CoordinatorOptions coordinator;
  std::string listen = "127.0.0.1:6000";  // port 0 picks a free port
  std::string metrics_listen = "127.0.0.1:0";
  int max_message_bytes = 64 << 20;
  // TLS of the gRPC and /metrics listeners and of the calls to the nodes;
  // tokens (quiver/security/security.h). Operator RPCs need a permission on
  // the PROJECT: ApplyRegistry, Restore, Rebalance and DrainNode UPDATE,
  // RemoveNode DELETE; StartMaterialization WRITE_ONLINE on each view it
  // names (all online views when none); Register, Heartbeat, LeaseTask and
  // CompleteTask only the cluster role; the reads (GetClusterMap,
  // GetRegistry, GetJob, ListNodes, GetIntervals) and ReportMissedWrites any
  // authenticated identity.
  security::ProcessSecurity security;
};

class CoordinatorServer {
 public:
  // Opens the coordinator (loading its state), binds both addresses and
  // starts serving. Errors: as Coordinator::Open; kUnavailable when an address
  // cannot be bound; kInvalidArgument for a malformed address.
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(ServerOptions options);
  // Shuts down (idempotent): stops RPCs and the ticker. State is persisted on
  // every change, so nothing is left to write.
  ~CoordinatorServer();
  void Shutdown();

  // "host:port" actually bound.
  const std::string& address() const;
  const std::string& metrics_address() const;
  Coordinator& coordinator();

 private:
  class Impl;
  explicit CoordinatorServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quiver::coordinator

#endif  // QUIVER_COORDINATOR_SERVER_H_
