// What quiverctl's commands share: the coordinator stub with per-call
// deadlines, node stubs, the C++ client, and small output and file helpers.
//
// Thread-safety: a Coordinator or node stub may be used from several threads
// (gRPC stubs are thread-safe); the helpers are reentrant.
#ifndef QUIVER_COORDINATOR_CTL_SESSION_H_
#define QUIVER_COORDINATOR_CTL_SESSION_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "ctl/args.h"
#include "quiver.grpc.pb.h"
#include "quiver/client/client.h"
#include "quiver/security/security.h"

namespace quiver::ctl {

// Writes `text` to `f` as is.
void Print(std::FILE* f, const std::string& text);

// The whole file. Errors: kNotFound (cannot open, with errno's text),
// kDataLoss (read error).
absl::StatusOr<std::string> ReadFile(const std::string& path);

// kUnavailable or kDeadlineExceeded: worth retrying.
bool Transient(const absl::Status& s);

// grpc::Status as absl::Status, the message prefixed with `what`.
absl::Status FromGrpc(const grpc::Status& s, const std::string& what);

// Reads --tls-ca, --tls-cert/--tls-key and --token-file once for every
// stub and client this process makes (RunCommand calls it first).
// Errors: kInvalidArgument (a certificate without its key, an unreadable or
// empty file). Not retryable.
absl::Status UseSecurity(const CommandLine& cl);
// What UseSecurity read (plaintext and no token before it).
const security::ChannelFactory& Channels();

class Coordinator {
 public:
  using Stub = quiver::v1::CoordinatorService::Stub;
  explicit Coordinator(const CommandLine& cl);

  // Calls stub->*method with a fresh context whose deadline is the larger of
  // `deadline` and --deadline-ms. Errors: the RPC's status, its message
  // prefixed "<name> on coordinator <address> failed: ".
  template <typename Req, typename Resp>
  absl::Status Call(const char* name,
                    grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                    const Req& req, Resp* resp,
                    std::chrono::milliseconds deadline = std::chrono::milliseconds(0)) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::max(deadline, deadline_));
    grpc::Status s = (stub_.get()->*method)(&ctx, req, resp);
    return FromGrpc(s, absl::StrCat(name, " on coordinator ", address_, " failed"));
  }

 private:
  std::string address_;
  std::chrono::milliseconds deadline_;
  std::unique_ptr<Stub> stub_;
};

// A NodeService stub for `address` (host:port) that takes messages up to
// 64 MiB (a backup's digests, a page of rows).
std::unique_ptr<quiver::v1::NodeService::Stub> NodeStub(const std::string& address);

// Pages through `view`'s stored rows in partitions [begin, end) of one node
// (NodeService.ScanPartitions, 4 MiB pages, 60 s per page) and calls `visit`
// for each, in key order. `what` names the node in errors. `epoch`: the
// caller's map epoch (a node refuses a scan of partitions it does not own,
// or under an older epoch than their fence: ABORTED; fetch the map again).
// Errors: the first page's RPC error, prefixed "scanning <what>".
absl::Status ForEachStoredRow(quiver::v1::NodeService::Stub& stub, const std::string& what,
                              const std::string& view, uint32_t begin, uint32_t end,
                              uint64_t epoch,
                              absl::FunctionRef<void(const quiver::v1::StoredRow&)> visit);

// A client of the cluster; its errors name the coordinator.
absl::StatusOr<std::unique_ptr<client::Client>> ConnectClient(const CommandLine& cl);

}  // namespace quiver::ctl

#endif  // QUIVER_COORDINATOR_CTL_SESSION_H_
