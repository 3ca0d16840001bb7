// The client side of the lean lookup protocol (docs/architecture.md, "Lean
// lookup protocol"): GetRequest/GetResponse as length-prefixed protobuf
// frames over persistent TCP connections to each node's lookup port.
//   request:  u32 body_length | u32 request_id | u8 kind (1 = Get) | body
//   response: u32 body_length | u32 request_id | u8 status (0 OK, else a
//             grpc::StatusCode) | body (GetResponse, or the error message)
// Measured on this project's 2-core machine, a gRPC unary call costs several
// times Redis's round trip; this path is what lets small lookups keep up
// (bench/README.md). gRPC stays the control plane and the path for other
// clients.
//
// LeanConnectionPool keeps idle connections per address (warm, reused by
// every call). LeanFanout has RpcFanout's shape: many calls in flight, each
// on its own checked-out connection, polled by the calling thread with
// poll(2), so a single lookup costs one write and one read on the caller's
// thread, with no thread hand-off. Private to quiver::client.
//
// Thread-safety: the pool is thread-safe; a LeanFanout belongs to one thread.
#ifndef QUIVER_CLIENT_SRC_LEAN_FANOUT_H_
#define QUIVER_CLIENT_SRC_LEAN_FANOUT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "lean_tls.h"
#include "quiver.pb.h"

namespace quiver::client::internal {

using Clock = std::chrono::steady_clock;

inline constexpr uint8_t kLeanKindGet = 1;
// Body: a bearer token; sent once on each new connection when the client has
// a token (quiver/node/lookup_server.h).
inline constexpr uint8_t kLeanKindAuth = 2;
inline constexpr size_t kLeanHeaderBytes = 9;
// Reply statuses are 0 (OK) or a canonical status code (1..16); anything
// larger is a broken stream.
inline constexpr uint8_t kLeanMaxStatus = 16;
// The largest response body accepted (the gRPC channels' limit too). unit: bytes
inline constexpr uint32_t kLeanMaxFrameBytes = 64u << 20;

class LeanConnectionPool {
 public:
  // `token`: sent in an auth frame on each new connection (empty: none).
  explicit LeanConnectionPool(std::string token = "") : token_(std::move(token)) {}
  ~LeanConnectionPool();
  LeanConnectionPool(const LeanConnectionPool&) = delete;
  LeanConnectionPool& operator=(const LeanConnectionPool&) = delete;

  // An idle connection to `address` ("host:port"), or a new one connected
  // (and authenticated, with a token) before `deadline` (non-blocking
  // socket, TCP_NODELAY). `patient`: a refused connect is retried every
  // 20 ms until the deadline (the node may be restarting). Errors:
  // kUnavailable (refused, unreachable, bad address), kDeadlineExceeded,
  // kUnauthenticated (the node refused the token; not retryable).
  absl::StatusOr<int> Acquire(const std::string& address, Clock::time_point deadline, bool patient);
  // TLS for every new connection (lean_tls.h), before any is made.
  // Errors: kInvalidArgument when a PEM does not load.
  absl::Status ConfigureTls(const std::string& ca_pem, const std::string& cert_pem,
                            const std::string& key_pem);
  LeanTls* tls() const { return tls_.get(); }
  // Closes a connection (and frees its TLS state).
  void CloseFd(int fd);
  // Returns a connection whose last exchange completed cleanly.
  void Release(const std::string& address, int fd);
  // The peer failed: closes `fd` and every idle connection to `address`
  // (they most likely died with it).
  void Discard(const std::string& address, int fd);

 private:
  // Sends the auth frame on a new connection and reads the answer.
  absl::Status Authenticate(int fd, Clock::time_point deadline) const;

  const std::string token_;
  std::unique_ptr<LeanTls> tls_;
  absl::Mutex mu_;
  std::unordered_map<std::string, std::vector<int>> idle_ ABSL_GUARDED_BY(mu_);
};

class LeanFanout {
 public:
  struct Call {
    uint32_t node = 0;
    std::string address;
    int fd = -1;
    uint32_t id = 0;
    Clock::time_point deadline;
    quiver::v1::GetResponse response;
    grpc::Status status;
    std::vector<uint32_t> items;
    std::vector<uint32_t> lookup_views;
    std::vector<uint32_t> lookup_sizes;
    bool done = false;
    // Reception state.
    std::string in;
    size_t want = kLeanHeaderBytes;
    bool header_read = false;
    uint8_t reply_status = 0;
  };

  explicit LeanFanout(LeanConnectionPool* pool) : pool_(pool) {}
  LeanFanout(const LeanFanout&) = delete;
  LeanFanout& operator=(const LeanFanout&) = delete;
  ~LeanFanout() { CancelAndDrain(); }

  Call* NewCall(uint32_t node, Clock::time_point deadline);
  // Connects (or reuses a connection) and writes the request. A failure
  // completes the call at once with UNAVAILABLE / DEADLINE_EXCEEDED, handed
  // out by the next Next(). A new connection must be made before
  // `connect_deadline` too (it blocks the caller).
  void Start(Call* c, const std::string& address, const quiver::v1::GetRequest& request,
             bool patient, Clock::time_point connect_deadline = Clock::time_point::max());

  size_t outstanding() const { return outstanding_; }

  // The next finished call (ok or not), or nullptr when `deadline` passed first.
  Call* Next(Clock::time_point deadline);

  // Abandons every call still in flight (their connections are closed, as a
  // late reply would desynchronize them) and returns those calls.
  std::vector<Call*> CancelAndDrain();

 private:
  // Finishes `c` with `status`; a failed call's connection is discarded.
  Call* Complete(Call* c, grpc::Status status);
  // Reads what is available; returns true when the reply is complete or failed.
  bool ReadSome(Call* c);

  LeanConnectionPool* pool_;
  std::vector<std::unique_ptr<Call>> calls_;
  std::vector<Call*> ready_;  // failed at Start, not yet handed out
  size_t outstanding_ = 0;
  uint32_t next_id_ = 1;
};

}  // namespace quiver::client::internal

#endif  // QUIVER_CLIENT_SRC_LEAN_FANOUT_H_
