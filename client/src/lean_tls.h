// TLS for the lean lookup client (lean_fanout.h): OpenSSL over the same
// non-blocking sockets, keyed by file descriptor so the connection pool and
// the poll loop keep handling plain ints. The node's side is Boost.Asio's
// ssl::stream (node/include/quiver/node/lookup_server.h).
//
// Send and Recv behave as send(2)/recv(2) on a non-blocking socket: bytes
// moved, 0 for a closed peer, -1 with errno EAGAIN when TLS needs the socket
// readable/writable first (poll and call again), -1 with another errno (EIO
// for a TLS failure) otherwise. Writes never raise SIGPIPE (the BIO sends
// with MSG_NOSIGNAL). Pending tells whether decrypted bytes wait in
// OpenSSL's buffer, which poll(2) cannot see.
//
// Thread-safety: Handshake, Send, Recv, Pending and Close for one fd come
// from one thread at a time (the pool hands each connection to one caller);
// different fds are independent. Private to quiver::client.
#ifndef QUIVER_CLIENT_SRC_LEAN_TLS_H_
#define QUIVER_CLIENT_SRC_LEAN_TLS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace quiver::client::internal {

class LeanTls {
 public:
  // `ca_pem` verifies the nodes' certificates (their IP address or host name
  // must be in the certificate's subject alternative names); `cert_pem` and
  // `key_pem` (both or neither) are the client certificate for mutual TLS.
  // Errors: kInvalidArgument when a PEM does not load.
  static absl::StatusOr<std::unique_ptr<LeanTls>> Create(const std::string& ca_pem,
                                                         const std::string& cert_pem,
                                                         const std::string& key_pem);
  ~LeanTls();
  LeanTls(const LeanTls&) = delete;
  LeanTls& operator=(const LeanTls&) = delete;

  // The TLS handshake on a connected non-blocking socket, verifying the
  // node's certificate against `host`, before `deadline`. Errors:
  // kUnavailable (refused, wrong certificate), kDeadlineExceeded.
  absl::Status Handshake(int fd, const std::string& host, std::chrono::steady_clock::time_point deadline);
  ssize_t Send(int fd, const char* data, size_t size);
  ssize_t Recv(int fd, char* data, size_t size);
  bool Pending(int fd) const;
  // Frees the fd's TLS state (not the fd itself).
  void Close(int fd);

 private:
  LeanTls() = default;
  SSL* At(int fd) const { return fd >= 0 && static_cast<size_t>(fd) < ssl_.size() ? ssl_[fd] : nullptr; }

  SSL_CTX* ctx_ = nullptr;
  // Indexed by fd, sized once from RLIMIT_NOFILE (never resized, so lookups
  // need no lock).
  std::vector<SSL*> ssl_;
};

}  // namespace quiver::client::internal

#endif  // QUIVER_CLIENT_SRC_LEAN_TLS_H_
