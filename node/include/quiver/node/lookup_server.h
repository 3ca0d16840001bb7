// LookupServer: the node's lean lookup protocol — length-prefixed protobuf
// Get frames over persistent, pipelined TCP connections — beside the gRPC
// NodeService, to cut gRPC's per-call cost (HTTP/2 framing, a completion
// queue hop, per-call allocations) off small batches. gRPC stays for
// everything else (Write, Health, the coordinator).
//
// Wire contract (all integers little-endian):
//   request  = u32 body_length | u32 request_id | u8 kind   | body
//   response = u32 body_length | u32 request_id | u8 status | body
// - kind 1 (kLookupKindGet): body = serialized quiver.v1.GetRequest, answered
//   by RequestHandler::Get with exactly the gRPC Get's semantics (`packed`
//   included).
// - status 0: body = serialized quiver.v1.GetResponse. Otherwise status is
//   the canonical status code (absl::StatusCode and grpc::StatusCode share the
//   numbers: 3 INVALID_ARGUMENT, 5 NOT_FOUND, 14 UNAVAILABLE, 15 DATA_LOSS...)
//   and body = the error message (UTF-8).
// - The node answers each request, in order, on the connection it came on;
//   the client may send several requests before reading (pipelining).
// - body_length > max_frame_bytes or an unknown kind: one INVALID_ARGUMENT
//   frame, then the node closes the connection (the stream cannot be trusted
//   any more). A body that does not parse: an INVALID_ARGUMENT frame and the
//   connection stays usable. A response larger than max_frame_bytes:
//   RESOURCE_EXHAUSTED (as gRPC's max send size), the connection stays usable.
// - kind 2 (kLookupKindAuth): body = a bearer token (the bytes after
//   "Bearer "). When the node checks tokens (--auth-tokens), a connection's
//   first frame must be this one: answered status 0 (empty body) for a
//   known token, else 16 UNAUTHENTICATED and the connection is closed; a Get
//   before it gets 16 and the connection is closed. A Get naming a feature
//   view the identity may not READ_ONLINE (Feast's permissions) gets 7
//   PERMISSION_DENIED and the connection stays usable. A connection decides
//   each view once per registry version (one audit line), then reuses it.
// - With TLS (LookupServerOptions::tls) the frames travel inside TLS
//   (OpenSSL through Boost.Asio's ssl::stream); mutual TLS when a client CA
//   is given.
// - Idle connections stay open (clients keep them warm; TCP keepalive finds
//   peers that vanished without a FIN).
//
// Threading: one boost::asio::io_context run by `threads` threads; each
// connection has at most one read or one write in flight, so its frames are
// handled one after another without a strand. The handler runs inline on the
// io thread, as Redis serves commands on its event loop: a lookup is served
// from the block cache / page cache in microseconds, and a hop to another
// pool would cost about as much as the lookup. A slow lookup (a cold disk
// read) therefore delays the other connections of the same io thread; more
// --lookup-threads spread that.
//
// Thread-safety: Start, Stop and the destructor are called from one thread;
// address() is safe from any thread.
#ifndef QUIVER_NODE_LOOKUP_SERVER_H_
#define QUIVER_NODE_LOOKUP_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "quiver/node/request_handler.h"
#include "quiver/runtime/runtime.h"
#include "quiver/security/security.h"

namespace quiver::node {

// Bytes of a request or response frame header.
inline constexpr size_t kLookupHeaderBytes = 9;
// Request kinds.
inline constexpr uint8_t kLookupKindGet = 1;
inline constexpr uint8_t kLookupKindAuth = 2;
// Response status of a successful request (other values: absl::StatusCode).
inline constexpr uint8_t kLookupStatusOk = 0;

struct LookupServerOptions {
  // host:port; port 0 picks a free port. "*" listens on every interface.
  std::string listen = "127.0.0.1:0";
  // io threads; each runs the event loop and the handler inline. At least 1.
  int threads = 2;
  // unit: bytes. Largest request or response body; the gRPC server's max
  // message size (NodeOptions::max_message_bytes) by default.
  size_t max_frame_bytes = 64u << 20;
  // TLS for every connection; disabled: plaintext.
  runtime::TlsFiles tls;
  // Token checks and permissions; null or disabled: none. When set,
  // `cluster` (whose registry's permissions apply) must be set too; both
  // must outlive the server.
  security::CallGuard* guard = nullptr;
  const ClusterView* cluster = nullptr;
};

class LookupServer {
 public:
  // Binds, listens and starts the io threads; returns once connections are
  // accepted. `handler` must outlive the server; `metrics` may be null (else
  // each request is recorded as method "LeanGet").
  // Errors: kInvalidArgument (bad address, threads < 1, a TLS file that
  // does not load), kUnavailable (the address cannot be resolved or bound).
  static absl::StatusOr<std::unique_ptr<LookupServer>> Start(const LookupServerOptions& options,
                                                             RequestHandler* handler,
                                                             runtime::RpcMetrics* metrics);
  ~LookupServer();
  LookupServer(const LookupServer&) = delete;
  LookupServer& operator=(const LookupServer&) = delete;

  // Stops accepting, closes every connection (a request being handled
  // finishes first, its answer is dropped), joins the io threads. Blocks at
  // most as long as the slowest in-flight handler call. Idempotent.
  void Stop();

  // "host:port" actually bound: the listen host and the bound port.
  const std::string& address() const;

  class Impl;

 private:
  explicit LookupServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quiver::node

#endif  // QUIVER_NODE_LOOKUP_SERVER_H_
