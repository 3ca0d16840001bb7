// LeanTls (lean_tls.h): OpenSSL 3 on the lean client's non-blocking sockets.
#include "lean_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace quiver::client::internal {
namespace {

// A socket BIO that sends with MSG_NOSIGNAL: OpenSSL's own socket BIO uses
// write(2), which raises SIGPIPE on a connection the node closed.
int BioWrite(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  const ssize_t n = send(static_cast<int>(BIO_get_fd(bio, nullptr)), data, static_cast<size_t>(size), MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_write(bio);
  return static_cast<int>(n);
}

int BioRead(BIO* bio, char* data, int size) {
  BIO_clear_retry_flags(bio);
  const ssize_t n = recv(static_cast<int>(BIO_get_fd(bio, nullptr)), data, static_cast<size_t>(size), 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_read(bio);
  return static_cast<int>(n);
}

// The socket BIO's control calls (fd get/set, flush), with our read/write.
BIO_METHOD* NoSigpipeSocket() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "quiver lean socket");
    const BIO_METHOD* base = BIO_s_socket();
    BIO_meth_set_write(m, BioWrite);
    BIO_meth_set_read(m, BioRead);
    BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(base));
    BIO_meth_set_create(m, BIO_meth_get_create(base));
    BIO_meth_set_destroy(m, BIO_meth_get_destroy(base));
    return m;
  }();
  return method;
}

std::string LastError() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

// Maps SSL_get_error after a failed SSL_read/SSL_write to send/recv's
// convention.
ssize_t Failed(SSL* ssl, int ret) {
  switch (SSL_get_error(ssl, ret)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_ZERO_RETURN:
      return 0;
    case SSL_ERROR_SYSCALL:
      if (errno == 0) return 0;  // the peer went away without close_notify
      return -1;
    default:
      ERR_clear_error();
      errno = EIO;
      return -1;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<LeanTls>> LeanTls::Create(const std::string& ca_pem, const std::string& cert_pem,
                                                         const std::string& key_pem) {
  std::unique_ptr<LeanTls> tls(new LeanTls());
  tls->ctx_ = SSL_CTX_new(TLS_client_method());
  if (tls->ctx_ == nullptr) return absl::InternalError(absl::StrCat("lean TLS: ", LastError()));
  SSL_CTX_set_min_proto_version(tls->ctx_, TLS1_2_VERSION);
  SSL_CTX_set_verify(tls->ctx_, SSL_VERIFY_PEER, nullptr);
  X509_STORE* store = SSL_CTX_get_cert_store(tls->ctx_);
  BIO* ca = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
  int loaded = 0;
  while (X509* cert = PEM_read_bio_X509(ca, nullptr, nullptr, nullptr)) {
    loaded += X509_STORE_add_cert(store, cert) == 1;
    X509_free(cert);
  }
  BIO_free(ca);
  ERR_clear_error();  // the loop ends on "no start line"
  if (loaded == 0) return absl::InvalidArgumentError("lean TLS: the CA holds no certificate");
  if (!cert_pem.empty()) {
    BIO* cb = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
    X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
    BIO_free(cb);
    BIO* kb = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
    BIO_free(kb);
    const bool ok = cert != nullptr && key != nullptr && SSL_CTX_use_certificate(tls->ctx_, cert) == 1 &&
                    SSL_CTX_use_PrivateKey(tls->ctx_, key) == 1 && SSL_CTX_check_private_key(tls->ctx_) == 1;
    X509_free(cert);
    EVP_PKEY_free(key);
    if (!ok) return absl::InvalidArgumentError(absl::StrCat("lean TLS: client certificate: ", LastError()));
  }
  rlimit limit{};
  size_t fds = 65536;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    fds = static_cast<size_t>(limit.rlim_cur);
  }
  tls->ssl_.assign(std::min<size_t>(fds, size_t{1} << 20), nullptr);
  return tls;
}

LeanTls::~LeanTls() {
  for (SSL* ssl : ssl_) {
    if (ssl != nullptr) SSL_free(ssl);
  }
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

absl::Status LeanTls::Handshake(int fd, const std::string& host, std::chrono::steady_clock::time_point deadline) {
  if (fd < 0 || static_cast<size_t>(fd) >= ssl_.size()) {
    return absl::UnavailableError(absl::StrCat("lean TLS: descriptor ", fd, " beyond the open-file limit"));
  }
  Close(fd);
  SSL* ssl = SSL_new(ctx_);
  BIO* bio = BIO_new(NoSigpipeSocket());
  if (ssl == nullptr || bio == nullptr) {
    SSL_free(ssl);
    BIO_free(bio);
    return absl::UnavailableError(absl::StrCat("lean TLS: ", LastError()));
  }
  BIO_set_fd(bio, fd, BIO_NOCLOSE);
  SSL_set_bio(ssl, bio, bio);
  in6_addr ip6;
  in_addr ip4;
  const bool is_ip = inet_pton(AF_INET, host.c_str(), &ip4) == 1 || inet_pton(AF_INET6, host.c_str(), &ip6) == 1;
  if (is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  } else {
    SSL_set1_host(ssl, host.c_str());
    SSL_set_tlsext_host_name(ssl, host.c_str());
  }
  ssl_[fd] = ssl;
  for (;;) {
    const int r = SSL_connect(ssl);
    if (r == 1) return absl::OkStatus();
    const int e = SSL_get_error(ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      const long verify = SSL_get_verify_result(ssl);
      std::string why = verify != X509_V_OK ? X509_verify_cert_error_string(verify) : LastError();
      Close(fd);
      return absl::UnavailableError(absl::StrCat("lean TLS handshake with ", host, ": ", why));
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      Close(fd);
      return absl::DeadlineExceededError(absl::StrCat("lean TLS handshake with ", host, ": timed out"));
    }
    pollfd p{fd, static_cast<short>(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
    poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count() + 1, 1000)));
  }
}

ssize_t LeanTls::Send(int fd, const char* data, size_t size) {
  SSL* ssl = At(fd);
  if (ssl == nullptr) {
    errno = EBADF;
    return -1;
  }
  size_t written = 0;
  const int r = SSL_write_ex(ssl, data, size, &written);
  if (r == 1) return static_cast<ssize_t>(written);
  return Failed(ssl, r);
}

ssize_t LeanTls::Recv(int fd, char* data, size_t size) {
  SSL* ssl = At(fd);
  if (ssl == nullptr) {
    errno = EBADF;
    return -1;
  }
  size_t read = 0;
  const int r = SSL_read_ex(ssl, data, size, &read);
  if (r == 1) return static_cast<ssize_t>(read);
  return Failed(ssl, r);
}

bool LeanTls::Pending(int fd) const {
  SSL* ssl = At(fd);
  return ssl != nullptr && SSL_pending(ssl) > 0;
}

void LeanTls::Close(int fd) {
  if (fd < 0 || static_cast<size_t>(fd) >= ssl_.size() || ssl_[fd] == nullptr) return;
  SSL_free(ssl_[fd]);
  ssl_[fd] = nullptr;
}

}  // namespace quiver::client::internal
