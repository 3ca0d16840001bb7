#include "quiver/node/lookup_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <climits>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "thread_priority.h"

namespace quiver::node {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// A connection's read buffer starts at this size and grows (doubling, only as
// bytes arrive) up to one whole frame; back to it when a large frame is done.
constexpr size_t kInitialReadBytes = 64 << 10;
constexpr size_t kShrinkAboveBytes = 1 << 20;
// Answers of pipelined requests are batched into one write up to this size.
constexpr size_t kFlushBytes = 256 << 10;
// After an error frame that closes the connection, this much of what the peer
// still sends is read and dropped, so that closing does not reset the
// connection before the peer has read the error frame.
constexpr size_t kLingerDiscardBytes = 1 << 20;
// unit: milliseconds. Pause after a failed accept (e.g. out of descriptors).
constexpr auto kAcceptRetry = std::chrono::milliseconds(50);
// A lookup slower than this is logged (a warning per lookup).
constexpr auto kSlowLookup = std::chrono::milliseconds(200);

uint32_t LoadU32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[1]) << 8 |
         static_cast<uint32_t>(b[2]) << 16 | static_cast<uint32_t>(b[3]) << 24;
}

void StoreU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// Appends a frame header for a body of `body_bytes` and returns where the body goes.
char* AppendHeader(std::string* out, uint32_t id, uint8_t status, size_t body_bytes) {
  const size_t at = out->size();
  out->resize(at + kLookupHeaderBytes + body_bytes);
  char* p = out->data() + at;
  StoreU32(p, static_cast<uint32_t>(body_bytes));
  StoreU32(p + 4, id);
  p[8] = static_cast<char>(status);
  return p + kLookupHeaderBytes;
}

}  // namespace

class Session;

class LookupServer::Impl {
 public:
  Impl(const LookupServerOptions& options, RequestHandler* handler, runtime::RpcMetrics* metrics)
      : options_(options), handler_(handler), metrics_(metrics) {}
  ~Impl() { Stop(); }

  absl::Status Start();
  void Stop();

  const LookupServerOptions options_;
  // Set when options_.tls is enabled.
  std::unique_ptr<asio::ssl::context> tls_;
  // options_.guard when it checks tokens, else null.
  security::CallGuard* guard_ = nullptr;
  RequestHandler* const handler_;
  runtime::RpcMetrics* const metrics_;
  std::atomic<bool> stopping_{false};
  std::string address_;

  void Unregister(Session* s) {
    std::lock_guard<std::mutex> lock(mu_);
    sessions_.erase(s);
  }

 private:
  using WorkGuard = asio::executor_work_guard<asio::io_context::executor_type>;

  void Accept();

  // One event loop per io thread: a connection lives on one loop, so its
  // completions never hop threads (no futex wake between epoll and handler).
  std::vector<std::unique_ptr<asio::io_context>> loops_;
  std::vector<WorkGuard> guards_;
  std::optional<tcp::acceptor> acceptor_;
  std::optional<asio::steady_timer> retry_timer_;
  size_t next_loop_ = 0;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions_;
  bool stopped_ = false;
};

// One connection: reads whatever bytes arrived, answers every complete frame
// in order into one output buffer, writes it, and reads again. At most one
// read or one write is in flight, so the members need no lock.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, LookupServer::Impl* server)
      : socket_(std::move(socket)), server_(server), in_(kInitialReadBytes, '\0') {
    if (server_->tls_ != nullptr) tls_.emplace(socket_, *server_->tls_);
  }
  ~Session() { server_->Unregister(this); }

  void Start() {
    if (!tls_) {
      ReadMore();
      return;
    }
    tls_->async_handshake(asio::ssl::stream_base::server,
                          [self = shared_from_this()](const error_code& ec) {
                            if (ec) {
                              spdlog::debug("lookup server: TLS handshake failed: {}", ec.message());
                              return;  // the session ends, closing the socket
                            }
                            self->ReadMore();
                          });
  }
  // Only while no io thread runs (LookupServer::Stop).
  void Close() {
    error_code ec;
    socket_.close(ec);
  }

 private:
  void ReadMore();
  void OnRead(const error_code& ec, size_t n);
  // Answers frames until the buffer holds no complete one or the output is
  // large; then writes, or reads more. `close_after` ends the connection once
  // the output is written.
  void Process();
  // Returns false when the stream cannot go on (an error frame was appended).
  bool HandleFrames();
  void HandleGet(uint32_t id, const char* body, size_t body_bytes);
  // kLookupKindAuth; false when the token is refused (the connection closes).
  bool HandleAuth(uint32_t id, const char* body, size_t body_bytes);
  // The first permission denial of `request_`'s views, or OK.
  absl::Status Authorize();
  template <typename Handler>
  void ReadSome(asio::mutable_buffer buffer, Handler&& handler) {
    if (tls_) {
      tls_->async_read_some(buffer, std::forward<Handler>(handler));
    } else {
      socket_.async_read_some(buffer, std::forward<Handler>(handler));
    }
  }
  template <typename Handler>
  void WriteAll(asio::const_buffer buffer, Handler&& handler) {
    if (tls_) {
      asio::async_write(*tls_, buffer, std::forward<Handler>(handler));
    } else {
      asio::async_write(socket_, buffer, std::forward<Handler>(handler));
    }
  }
  void AppendError(uint32_t id, const absl::Status& status);
  void OnWritten(const error_code& ec, bool close_after);
  void Linger();

  tcp::socket socket_;
  std::optional<asio::ssl::stream<tcp::socket&>> tls_;
  LookupServer::Impl* server_;
  // Set by a kLookupKindAuth frame with a known token.
  std::optional<auth::Identity> identity_;
  // Views decided for identity_ under registry `decided_version_`.
  uint64_t decided_version_ = 0;
  std::unordered_map<std::string, absl::Status> decided_;
  std::string in_;
  size_t begin_ = 0;  // first unconsumed byte of in_
  size_t end_ = 0;    // end of the bytes read into in_
  std::string out_;
  size_t discarded_ = 0;
  // Reused across requests: Clear() keeps their allocations.
  quiver::v1::GetRequest request_;
  quiver::v1::GetResponse response_;
};

void Session::ReadMore() {
  if (begin_ == end_) {
    begin_ = end_ = 0;
    if (in_.size() > kShrinkAboveBytes) in_.assign(kInitialReadBytes, '\0');
  } else if (begin_ > 0) {
    std::memmove(in_.data(), in_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == in_.size()) {
    // A frame larger than the buffer (its length was checked in HandleFrames).
    const size_t frame = kLookupHeaderBytes + LoadU32(in_.data());
    in_.resize(std::min(frame, in_.size() * 2));
  }
  ReadSome(asio::buffer(in_.data() + end_, in_.size() - end_),
           [self = shared_from_this()](const error_code& ec, size_t n) { self->OnRead(ec, n); });
}

void Session::OnRead(const error_code& ec, size_t n) {
  // EOF, reset, or Stop's close: the session ends when its last handler goes.
  if (ec || server_->stopping_.load(std::memory_order_relaxed)) return;
  end_ += n;
  Process();
}

void Session::Process() {
  const bool go_on = HandleFrames();
  if (out_.empty()) {
    ReadMore();
    return;
  }
  WriteAll(asio::buffer(out_), [self = shared_from_this(), go_on](const error_code& ec, size_t) {
    self->OnWritten(ec, !go_on);
  });
}

bool Session::HandleFrames() {
  const size_t max = server_->options_.max_frame_bytes;
  while (end_ - begin_ >= kLookupHeaderBytes && out_.size() < kFlushBytes) {
    const char* frame = in_.data() + begin_;
    const uint32_t body_bytes = LoadU32(frame);
    const uint32_t id = LoadU32(frame + 4);
    const uint8_t kind = static_cast<uint8_t>(frame[8]);
    if (body_bytes > max) {
      AppendError(id, absl::InvalidArgumentError(absl::StrCat(
                          "frame body of ", body_bytes, " bytes exceeds the limit of ", max,
                          " bytes; closing the connection")));
      return false;
    }
    if (kind != kLookupKindGet && kind != kLookupKindAuth) {
      AppendError(id, absl::InvalidArgumentError(absl::StrCat(
                          "unknown request kind ", kind, "; closing the connection")));
      return false;
    }
    if (end_ - begin_ < kLookupHeaderBytes + body_bytes) break;
    if (kind == kLookupKindAuth) {
      if (!HandleAuth(id, frame + kLookupHeaderBytes, body_bytes)) return false;
    } else if (server_->guard_ != nullptr && !identity_.has_value()) {
      AppendError(id, absl::UnauthenticatedError(
                          "Missing authentication token (send an auth frame first); closing the connection"));
      return false;
    } else {
      HandleGet(id, frame + kLookupHeaderBytes, body_bytes);
    }
    begin_ += kLookupHeaderBytes + body_bytes;
  }
  return true;
}

bool Session::HandleAuth(uint32_t id, const char* body, size_t body_bytes) {
  if (server_->guard_ == nullptr) {  // authentication off: any token is fine
    AppendHeader(&out_, id, kLookupStatusOk, 0);
    return true;
  }
  const std::string authorization = absl::StrCat("Bearer ", absl::string_view(body, body_bytes));
  auto identity = server_->guard_->Authenticate(body_bytes == 0 ? std::string_view() : authorization);
  if (!identity.ok()) {
    AppendError(id, identity.status());
    return false;
  }
  identity_ = **identity;
  decided_.clear();
  AppendHeader(&out_, id, kLookupStatusOk, 0);
  return true;
}

absl::Status Session::Authorize() {
  if (server_->guard_ == nullptr) return absl::OkStatus();
  std::shared_ptr<const client::RegistryIndex> registry = server_->options_.cluster->registry();
  static const quiver::v1::Registry kNone;
  const quiver::v1::Registry& r = registry != nullptr ? registry->registry() : kNone;
  if (r.version() != decided_version_) {
    decided_.clear();
    decided_version_ = r.version();
  }
  for (const auto& lookup : request_.lookups()) {
    auto it = decided_.find(lookup.view());
    if (it == decided_.end()) {
      absl::Status s = server_->guard_->Authorize(
          identity_, r, {{auth::FeatureViewResource(r, lookup.view()), quiver::v1::ACTION_READ_ONLINE}});
      it = decided_.emplace(lookup.view(), std::move(s)).first;
    }
    if (!it->second.ok()) return it->second;
  }
  return absl::OkStatus();
}

void Session::HandleGet(uint32_t id, const char* body, size_t body_bytes) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status status;
  request_.Clear();
  // body_bytes <= max_frame_bytes <= INT_MAX (checked in Start).
  if (!request_.ParseFromArray(body, static_cast<int>(body_bytes))) {
    status = absl::InvalidArgumentError("request body is not a serialized quiver.v1.GetRequest");
  } else if (status = Authorize(); status.ok()) {
    response_.Clear();
    status = server_->handler_->Get(request_, &response_);
  }
  if (status.ok()) {
    const size_t size = response_.ByteSizeLong();
    if (size > server_->options_.max_frame_bytes) {
      status = absl::ResourceExhaustedError(
          absl::StrCat("response of ", size, " bytes exceeds the limit of ",
                       server_->options_.max_frame_bytes, " bytes"));
    } else {
      char* dst = AppendHeader(&out_, id, kLookupStatusOk, size);
      response_.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(dst));
    }
  }
  if (!status.ok()) AppendError(id, status);
  const auto took = std::chrono::steady_clock::now() - start;
  if (server_->metrics_ != nullptr) server_->metrics_->Record("LeanGet", status.ok(), took);
  // A lookup this slow holds up every other session of this I/O thread.
  if (took > kSlowLookup) {
    spdlog::warn("slow lean lookup: {} ms for {} lookups ({})",
                 std::chrono::duration_cast<std::chrono::milliseconds>(took).count(),
                 request_.lookups_size(), status.ok() ? "ok" : status.ToString());
  }
}

void Session::AppendError(uint32_t id, const absl::Status& status) {
  const absl::string_view message = status.message();
  char* dst = AppendHeader(&out_, id, static_cast<uint8_t>(status.code()), message.size());
  std::memcpy(dst, message.data(), message.size());
}

void Session::OnWritten(const error_code& ec, bool close_after) {
  if (ec || server_->stopping_.load(std::memory_order_relaxed)) return;
  if (out_.capacity() > kShrinkAboveBytes) {
    std::string().swap(out_);
  } else {
    out_.clear();
  }
  if (close_after) {
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    Linger();
    return;
  }
  Process();
}

void Session::Linger() {
  ReadSome(asio::buffer(in_), [self = shared_from_this()](const error_code& ec, size_t n) {
    self->discarded_ += n;
    if (ec || self->discarded_ > kLingerDiscardBytes ||
        self->server_->stopping_.load(std::memory_order_relaxed)) {
      return;  // the socket closes with the session
    }
    self->Linger();
  });
}

absl::Status LookupServer::Impl::Start() {
  if (options_.threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("lookup server threads must be at least 1, got ", options_.threads));
  }
  if (options_.max_frame_bytes > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "lookup server max_frame_bytes must be at most ", INT_MAX, ", got ",
        options_.max_frame_bytes));
  }
  if (options_.guard != nullptr && options_.guard->enabled()) {
    if (options_.cluster == nullptr) {
      return absl::InvalidArgumentError("lookup server: a guard needs the cluster view");
    }
    guard_ = options_.guard;
  }
  if (options_.tls.enabled()) {
    tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    error_code tls_ec;
    tls_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                      asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                      asio::ssl::context::no_tlsv1_1);
    if (tls_->use_certificate_chain_file(options_.tls.cert, tls_ec) ||
        tls_->use_private_key_file(options_.tls.key, asio::ssl::context::pem, tls_ec)) {
      return absl::InvalidArgumentError(absl::StrCat("lookup server TLS: ", options_.tls.cert, " / ",
                                                     options_.tls.key, ": ", tls_ec.message()));
    }
    if (!options_.tls.client_ca.empty()) {
      if (tls_->load_verify_file(options_.tls.client_ca, tls_ec)) {
        return absl::InvalidArgumentError(
            absl::StrCat("lookup server TLS: ", options_.tls.client_ca, ": ", tls_ec.message()));
      }
      tls_->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
    }
  }
  auto hp = runtime::SplitHostPort(options_.listen);
  if (!hp.ok()) return hp.status();
  std::string host = hp->first == "*" ? "0.0.0.0" : hp->first;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  for (int i = 0; i < options_.threads; ++i) {
    loops_.push_back(std::make_unique<asio::io_context>(1));
    guards_.push_back(asio::make_work_guard(*loops_.back()));
  }
  error_code ec;
  tcp::resolver resolver(*loops_[0]);
  auto endpoints = resolver.resolve(host, std::to_string(hp->second),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen,
                                               ": unknown host (", ec.message(), ")"));
  }
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  acceptor_.emplace(*loops_[0]);
  retry_timer_.emplace(*loops_[0]);
  const auto fail = [&](const char* step) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options_.listen, ": ", step, ": ", ec.message()));
  };
  if (acceptor_->open(endpoint.protocol(), ec)) return fail("open");
  if (acceptor_->set_option(tcp::acceptor::reuse_address(true), ec)) return fail("reuse");
  if (acceptor_->bind(endpoint, ec)) return fail("bind");
  if (acceptor_->listen(asio::socket_base::max_listen_connections, ec)) return fail("listen");
  const tcp::endpoint bound = acceptor_->local_endpoint(ec);
  if (ec) return fail("local_endpoint");
  address_ = absl::StrCat(hp->first, ":", bound.port());
  Accept();
  for (auto& loop : loops_) {
    threads_.emplace_back([io = loop.get()] {
      NameThisThread("quiver-lookup");
      io->run();
    });
  }
  return absl::OkStatus();
}

void LookupServer::Impl::Accept() {
  asio::io_context& loop = *loops_[next_loop_];
  next_loop_ = (next_loop_ + 1) % loops_.size();
  acceptor_->async_accept(loop, [this, &loop](const error_code& ec, tcp::socket socket) {
    if (stopping_.load()) return;
    if (ec) {
      spdlog::warn("lookup server: accept failed: {}; retrying", ec.message());
      retry_timer_->expires_after(kAcceptRetry);
      retry_timer_->async_wait([this](const error_code& timer_ec) {
        if (!timer_ec && !stopping_.load()) Accept();
      });
      return;
    }
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    socket.set_option(asio::socket_base::keep_alive(true), ignored);
    auto session = std::make_shared<Session>(std::move(socket), this);
    {
      std::lock_guard<std::mutex> lock(mu_);
      sessions_.emplace(session.get(), session);
    }
    // Start on the connection's own loop.
    asio::post(loop, [session] { session->Start(); });
    Accept();
  });
}

void LookupServer::Impl::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_.store(true);
  for (auto& loop : loops_) loop->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  // No io thread runs now: close everything from this thread, then run the
  // loops once more so the aborted handlers release their sessions.
  error_code ignored;
  if (acceptor_) acceptor_->close(ignored);
  if (retry_timer_) retry_timer_->cancel();
  std::vector<std::shared_ptr<Session>> open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& entry : sessions_) {
      if (auto s = entry.second.lock()) open.push_back(std::move(s));
    }
  }
  for (auto& s : open) s->Close();
  open.clear();
  guards_.clear();
  for (auto& loop : loops_) {
    loop->restart();
    loop->run();
  }
}

absl::StatusOr<std::unique_ptr<LookupServer>> LookupServer::Start(
    const LookupServerOptions& options, RequestHandler* handler, runtime::RpcMetrics* metrics) {
  auto impl = std::make_unique<Impl>(options, handler, metrics);
  if (absl::Status s = impl->Start(); !s.ok()) return s;
  return std::unique_ptr<LookupServer>(new LookupServer(std::move(impl)));
}

LookupServer::LookupServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LookupServer::~LookupServer() { Stop(); }
void LookupServer::Stop() { impl_->Stop(); }
const std::string& LookupServer::address() const { return impl_->address_; }

}  // namespace quiver::node
