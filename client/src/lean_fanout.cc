#include "lean_fanout.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lean_tls.h"

namespace quiver::client::internal {
namespace {

int PollTimeoutMs(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
  if (left.count() <= 0) return 0;
  // Round up so a wait never ends just before the deadline and spins.
  return static_cast<int>(std::min<int64_t>((left.count() + 999) / 1000, 24 * 3600 * 1000));
}

absl::StatusOr<sockaddr_storage> Resolve(const std::string& address, socklen_t* len) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port <= 0 || port > 65535) {
    return absl::UnavailableError(absl::StrCat("bad lookup address '", address, "'"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || res == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot resolve '", address, "'"));
  }
  sockaddr_storage out{};
  std::memcpy(&out, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return out;
}

// One non-blocking connect attempt, bounded by `deadline`.
absl::StatusOr<int> ConnectOnce(const sockaddr_storage& addr, socklen_t len,
                                const std::string& address, Clock::time_point deadline) {
  const int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    if (errno != EINPROGRESS) {
      const int err = errno;
      close(fd);
      return absl::UnavailableError(absl::StrCat("connect ", address, ": ", std::strerror(err)));
    }
    pollfd p{fd, POLLOUT, 0};
    int n;
    do {
      n = poll(&p, 1, PollTimeoutMs(deadline));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      close(fd);
      return absl::DeadlineExceededError(absl::StrCat("connect ", address, ": timed out"));
    }
    int err = 0;
    socklen_t err_len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
    if (err != 0) {
      close(fd);
      return absl::UnavailableError(absl::StrCat("connect ", address, ": ", std::strerror(err)));
    }
  }
  return fd;
}

// Writes all of `data` to a non-blocking socket before `deadline`.
// send(2), or through TLS when `tls` is set.
ssize_t SendSome(LeanTls* tls, int fd, const char* data, size_t size) {
  return tls != nullptr ? tls->Send(fd, data, size) : send(fd, data, size, MSG_NOSIGNAL);
}

// recv(2) without blocking, or through TLS when `tls` is set.
ssize_t RecvSome(LeanTls* tls, int fd, char* data, size_t size) {
  return tls != nullptr ? tls->Recv(fd, data, size) : recv(fd, data, size, MSG_DONTWAIT);
}

grpc::Status WriteAll(LeanTls* tls, int fd, const std::string& data, Clock::time_point deadline) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = SendSome(tls, fd, data.data() + off, data.size() - off);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      const int r = poll(&p, 1, PollTimeoutMs(deadline));
      if (r == 0) return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "lean: write timed out");
      continue;
    }
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrCat("lean: write failed: ", std::strerror(errno)));
  }
  return grpc::Status::OK;
}

void PutU32(uint32_t v, char* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t GetU32(const char* in) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

// Reads exactly `n` bytes from a non-blocking socket before `deadline`.
absl::Status ReadExact(LeanTls* tls, int fd, char* out, size_t n, Clock::time_point deadline) {
  size_t have = 0;
  while (have < n) {
    const ssize_t r = RecvSome(tls, fd, out + have, n - have);
    if (r > 0) {
      have += static_cast<size_t>(r);
      continue;
    }
    if (r == 0) return absl::UnavailableError("lean: node closed the connection");
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return absl::UnavailableError(absl::StrCat("lean: recv: ", std::strerror(errno)));
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, PollTimeoutMs(deadline)) <= 0 && Clock::now() >= deadline) {
      return absl::DeadlineExceededError("lean: authentication timed out");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LeanConnectionPool::Authenticate(int fd, Clock::time_point deadline) const {
  std::string frame(kLeanHeaderBytes, '\0');
  PutU32(static_cast<uint32_t>(token_.size()), frame.data());
  PutU32(0, frame.data() + 4);
  frame[8] = static_cast<char>(kLeanKindAuth);
  frame += token_;
  if (grpc::Status s = WriteAll(tls_.get(), fd, frame, deadline); !s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  }
  char header[kLeanHeaderBytes];
  if (absl::Status s = ReadExact(tls_.get(), fd, header, sizeof(header), deadline); !s.ok()) return s;
  const uint32_t body_bytes = GetU32(header);
  const auto status = static_cast<uint8_t>(header[8]);
  if (body_bytes > 4096) return absl::UnavailableError("lean: oversized authentication answer");
  std::string body(body_bytes, '\0');
  if (absl::Status s = ReadExact(tls_.get(), fd, body.data(), body.size(), deadline); !s.ok()) return s;
  if (status == 0) return absl::OkStatus();
  if (status > kLeanMaxStatus) return absl::UnavailableError(absl::StrCat("lean: bad reply status ", static_cast<int>(status)));
  return absl::Status(static_cast<absl::StatusCode>(status), body);
}

absl::Status LeanConnectionPool::ConfigureTls(const std::string& ca_pem, const std::string& cert_pem,
                                              const std::string& key_pem) {
  auto tls = LeanTls::Create(ca_pem, cert_pem, key_pem);
  if (!tls.ok()) return tls.status();
  tls_ = *std::move(tls);
  return absl::OkStatus();
}

void LeanConnectionPool::CloseFd(int fd) {
  if (tls_ != nullptr) tls_->Close(fd);
  close(fd);
}

LeanConnectionPool::~LeanConnectionPool() {
  absl::MutexLock lock(&mu_);
  for (auto& [address, fds] : idle_) {
    for (int fd : fds) CloseFd(fd);
  }
}

absl::StatusOr<int> LeanConnectionPool::Acquire(const std::string& address,
                                                Clock::time_point deadline, bool patient) {
  {
    absl::MutexLock lock(&mu_);
    auto it = idle_.find(address);
    if (it != idle_.end() && !it->second.empty()) {
      const int fd = it->second.back();
      it->second.pop_back();
      return fd;
    }
  }
  socklen_t len = 0;
  auto addr = Resolve(address, &len);
  if (!addr.ok()) return addr.status();
  for (;;) {
    auto fd = ConnectOnce(*addr, len, address, deadline);
    if (fd.ok() && tls_ != nullptr) {
      std::string host = address.substr(0, address.rfind(':'));
      if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
      if (absl::Status s = tls_->Handshake(*fd, host, deadline); !s.ok()) {
        close(*fd);
        return s;
      }
    }
    if (fd.ok() && !token_.empty()) {
      if (absl::Status s = Authenticate(*fd, deadline); !s.ok()) {
        CloseFd(*fd);
        return s;
      }
    }
    if (fd.ok() || !patient || fd.status().code() != absl::StatusCode::kUnavailable) return fd;
    if (Clock::now() + std::chrono::milliseconds(20) >= deadline) return fd;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void LeanConnectionPool::Release(const std::string& address, int fd) {
  absl::MutexLock lock(&mu_);
  idle_[address].push_back(fd);
}

void LeanConnectionPool::Discard(const std::string& address, int fd) {
  CloseFd(fd);
  std::vector<int> stale;
  {
    absl::MutexLock lock(&mu_);
    auto it = idle_.find(address);
    if (it != idle_.end()) stale.swap(it->second);
  }
  for (int s : stale) CloseFd(s);
}

LeanFanout::Call* LeanFanout::NewCall(uint32_t node, Clock::time_point deadline) {
  calls_.push_back(std::make_unique<Call>());
  Call* c = calls_.back().get();
  c->node = node;
  c->deadline = deadline;
  c->id = next_id_++;
  return c;
}

void LeanFanout::Start(Call* c, const std::string& address, const quiver::v1::GetRequest& request,
                       bool patient, Clock::time_point connect_deadline) {
  ++outstanding_;
  c->address = address;
  auto fd = pool_->Acquire(address, std::min(c->deadline, connect_deadline), patient);
  if (!fd.ok()) {
    c->status = grpc::Status(fd.status().code() == absl::StatusCode::kDeadlineExceeded
                                 ? grpc::StatusCode::DEADLINE_EXCEEDED
                                 : grpc::StatusCode::UNAVAILABLE,
                             std::string(fd.status().message()));
    ready_.push_back(c);
    return;
  }
  c->fd = *fd;
  const size_t body = request.ByteSizeLong();
  std::string frame(kLeanHeaderBytes + body, '\0');
  PutU32(static_cast<uint32_t>(body), frame.data());
  PutU32(c->id, frame.data() + 4);
  frame[8] = static_cast<char>(kLeanKindGet);
  request.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(frame.data() + kLeanHeaderBytes));
  grpc::Status s = WriteAll(pool_->tls(), c->fd, frame, c->deadline);
  if (!s.ok()) {
    pool_->Discard(address, c->fd);
    c->fd = -1;
    c->status = s;
    ready_.push_back(c);
  }
}

LeanFanout::Call* LeanFanout::Complete(Call* c, grpc::Status status) {
  c->status = std::move(status);
  if (c->fd >= 0) {
    if (c->status.ok() || c->header_read) {
      // A complete reply (even an error reply) leaves the stream in sync.
      pool_->Release(c->address, c->fd);
    } else if (c->status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      pool_->CloseFd(c->fd);  // a slow node: its other connections may be fine
    } else {
      pool_->Discard(c->address, c->fd);
    }
    c->fd = -1;
  }
  c->done = true;
  --outstanding_;
  return c;
}

bool LeanFanout::ReadSome(Call* c) {
  for (;;) {
    const size_t have = c->in.size();
    if (have < c->want) {
      c->in.resize(c->want);
      const ssize_t n = RecvSome(pool_->tls(), c->fd, c->in.data() + have, c->want - have);
      if (n <= 0) {
        c->in.resize(have);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return false;
        c->header_read = false;  // the stream is broken: never reuse it
        Complete(c, grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 n == 0 ? "lean: node closed the connection"
                                        : absl::StrCat("lean: read failed: ", std::strerror(errno))));
        return true;
      }
      c->in.resize(have + static_cast<size_t>(n));
      if (c->in.size() < c->want) continue;
    }
    if (!c->header_read) {
      const uint32_t body = GetU32(c->in.data());
      const uint32_t id = GetU32(c->in.data() + 4);
      c->reply_status = static_cast<uint8_t>(c->in[8]);
      if (id != c->id || body > kLeanMaxFrameBytes || c->reply_status > kLeanMaxStatus) {
        Complete(c, grpc::Status(grpc::StatusCode::INTERNAL,
                                 absl::StrCat("lean: bad reply frame (id ", id, ", ", body, " bytes, status ",
                                              static_cast<int>(c->reply_status), ")")));
        return true;
      }
      c->header_read = true;
      c->in.clear();
      c->want = body;
      if (body > 0) continue;
    }
    // The whole body is in.
    if (c->reply_status != 0) {
      Complete(c, grpc::Status(static_cast<grpc::StatusCode>(c->reply_status), c->in));
      return true;
    }
    if (!c->response.ParseFromString(c->in)) {
      c->header_read = false;
      Complete(c, grpc::Status(grpc::StatusCode::INTERNAL, "lean: reply does not parse"));
      return true;
    }
    Complete(c, grpc::Status::OK);
    return true;
  }
}

LeanFanout::Call* LeanFanout::Next(Clock::time_point deadline) {
  std::vector<pollfd> fds;
  std::vector<Call*> polled;
  for (;;) {
    if (!ready_.empty()) {
      Call* c = ready_.back();
      ready_.pop_back();
      c->done = true;
      --outstanding_;
      return c;
    }
    fds.clear();
    polled.clear();
    Clock::time_point wake = deadline;
    const auto now = Clock::now();
    for (auto& up : calls_) {
      Call* c = up.get();
      if (c->done || c->fd < 0) continue;
      if (c->deadline <= now) {
        c->header_read = false;
        return Complete(c, grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "lean: deadline exceeded"));
      }
      // Decrypted bytes already buffered by TLS: poll(2) cannot see them.
      if (pool_->tls() != nullptr && pool_->tls()->Pending(c->fd) && ReadSome(c)) return c;
      if (c->done) continue;
      wake = std::min(wake, c->deadline);
      fds.push_back(pollfd{c->fd, POLLIN, 0});
      polled.push_back(c);
    }
    if (polled.empty() || now >= deadline) return nullptr;
    const int n = poll(fds.data(), fds.size(), PollTimeoutMs(wake));
    if (n < 0 && errno != EINTR) return nullptr;
    for (size_t i = 0; i < fds.size() && n > 0; ++i) {
      if (fds[i].revents == 0) continue;
      if (ReadSome(polled[i])) return polled[i];
    }
    if (n == 0 && Clock::now() >= deadline) return nullptr;
  }
}

std::vector<LeanFanout::Call*> LeanFanout::CancelAndDrain() {
  std::vector<Call*> cancelled;
  for (Call* c : ready_) {
    c->done = true;
    cancelled.push_back(c);
  }
  ready_.clear();
  for (auto& up : calls_) {
    Call* c = up.get();
    if (c->done) continue;
    if (c->fd >= 0) {
      pool_->Discard(c->address, c->fd);
      c->fd = -1;
    }
    c->done = true;
    cancelled.push_back(c);
  }
  outstanding_ = 0;
  return cancelled;
}

}  // namespace quiver::client::internal
