// Fuzz target: the node's lean lookup frame decoder (node/src/lookup_server.cc)
// and everything behind it (GetRequest parsing, RequestHandler::Get over a
// real RocksDB store, packed and unpacked answers).
//
// One in-process LookupServer (one io thread) serves a RequestHandler over a
// temporary RowStore holding rows of fuzz_util.h's registry. Each input is
// written as raw bytes to a fresh loopback connection, which is then
// half-closed; the target reads until the server closes. The server must
// never crash, and must always close a half-closed connection: a connection
// still open after kHangLimit is reported as a hang (abort). Every answer
// frame is checked against the wire contract (lookup_server.h): well-formed
// headers, ids of the requests in order, status 0 bodies that parse as a
// GetResponse.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "fuzz_registry.h"
#include "fuzz_util.h"
#include "quiver/client/convert.h"
#include "quiver/client/registry_index.h"
#include "quiver/keys/entity_key.h"
#include "quiver/node/lookup_server.h"
#include "quiver/node/request_handler.h"
#include "unit/node/node_test_util.h"

namespace quiver::fuzz {
namespace {

constexpr int64_t kEventUs = 1'700'000'000LL * 1000 * 1000;
constexpr int kUsers = 64;
constexpr auto kHangLimit = std::chrono::seconds(4);

struct Server {
  node::testing::TempDir dir;
  std::unique_ptr<storage::RowStore> store;
  node::testing::FakeCluster cluster;
  std::unique_ptr<node::RequestHandler> handler;
  std::unique_ptr<node::LookupServer> server;
  int port = 0;
};

void Write(node::RequestHandler& handler, const std::string& view,
           const std::vector<std::pair<std::string, std::vector<Value>>>& rows, int64_t event_us) {
  quiver::v1::WriteRequest write;
  write.set_view(view);
  write.set_schema_version(1);
  for (const auto& [key, values] : rows) {
    auto* row = write.add_rows();
    row->set_entity_key(key);
    row->set_event_ts_us(event_us);
    row->set_created_ts_us(event_us);
    for (const Value& v : values) client::ToProto(v, row->add_values());
  }
  quiver::v1::WriteResponse written;
  const absl::Status s = handler.Write(write, &written);
  FUZZ_CHECK(s.ok(), "setup write to %s: %s", view.c_str(), s.ToString().c_str());
}

Server* StartServer() {
  static Server* s = new Server();
  FUZZ_CHECK(!s->dir.path().empty(), "mkdtemp failed");
  auto store = node::testing::OpenTestStore(s->dir.path());
  FUZZ_CHECK(store.ok(), "open store: %s", store.status().ToString().c_str());
  s->store = *std::move(store);
  s->cluster.current = node::testing::BuildIndex(FuzzRegistry());
  s->handler = std::make_unique<node::RequestHandler>(s->store.get(), &s->cluster);
  node::testing::OwnEverything(*s->handler);
  FUZZ_CHECK(s->handler->SyncViews(*s->cluster.current).ok(), "SyncViews");
  // Even users are present, odd ones are not; some rows hold nulls.
  std::vector<std::pair<std::string, std::vector<Value>>> users;
  for (int u = 0; u < kUsers; u += 2) {
    Value tags{ValueType::kStringList, std::vector<std::string>{"a", std::to_string(u)}};
    Value history{ValueType::kDoubleList, std::vector<double>{0.5 * u, -1.0}};
    users.push_back({EncodeEntityKey({{"user_id", Value::Int64(u)}}).value(),
                     {Value::Int64(u * 10), Value::Double(u * 0.5),
                      u % 4 == 0 ? Value::String("user" + std::to_string(u)) : Value::Null(ValueType::kString),
                      Value::Float(1.5f), Value::Bool(u % 3 == 0), Value::Int32(-u),
                      Value::Bytes(std::string("\0\xff", 2)), Value::UnixTimestamp(kEventUs - u),
                      tags, history}});
  }
  Write(*s->handler, "user_stats", users, kEventUs);
  // Routes: LAX->SFO is recent, JFK->BOS is past the view's 1 h TTL.
  auto route = [](const char* from, const char* to) {
    return EncodeEntityKey({{"origin", Value::String(from)}, {"destination", Value::String(to)}}).value();
  };
  const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  Write(*s->handler, "route_stats", {{route("LAX", "SFO"), {Value::Double(21.5), Value::Int64(619)}}},
        now_us);
  Write(*s->handler, "route_stats", {{route("JFK", "BOS"), {Value::Double(-3), Value::Int64(7)}}},
        kEventUs);
  node::LookupServerOptions options;
  options.listen = "127.0.0.1:0";
  options.threads = 1;
  auto server = node::LookupServer::Start(options, s->handler.get(), nullptr);
  FUZZ_CHECK(server.ok(), "start lookup server: %s", server.status().ToString().c_str());
  s->server = *std::move(server);
  auto hp = runtime::SplitHostPort(s->server->address());
  FUZZ_CHECK(hp.ok(), "bad address %s", s->server->address().c_str());
  s->port = hp->second;
  // Lives until exit, like a node's server; then stopped and its folder
  // removed (a crashed run leaves it in run.sh's TMPDIR). Registered last, so
  // it runs before the destructors of what RocksDB and gRPC set up lazily.
  std::atexit([] { delete s; });
  return s;
}

uint32_t LoadU32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[1]) << 8 |
         static_cast<uint32_t>(b[2]) << 16 | static_cast<uint32_t>(b[3]) << 24;
}

// What the server may answer to `in`: the ids of its frames in order, up to
// the first frame it cannot go on after (too large: answered, then closed)
// or a truncated one (answered only if its kind is not Get: the kind is
// judged before the body arrives). `strict`: every frame is a complete Get
// within the size limit, so each must be answered, in order, and nothing
// else. Frames of other kinds (the node may learn new ones, such as an auth
// frame) are only held to the prefix rule.
struct Expected {
  std::vector<uint32_t> ids;
  bool strict = true;
};
Expected ExpectedAnswers(std::string_view in, size_t max_frame) {
  Expected e;
  while (in.size() >= node::kLookupHeaderBytes) {
    const uint32_t len = LoadU32(in.data());
    const bool get = static_cast<uint8_t>(in[8]) == node::kLookupKindGet;
    if (!get) e.strict = false;
    if (len > max_frame) {
      e.ids.push_back(LoadU32(in.data() + 4));
      e.strict = false;
      return e;
    }
    if (in.size() - node::kLookupHeaderBytes < len) {
      if (!get) e.ids.push_back(LoadU32(in.data() + 4));
      return e;
    }
    e.ids.push_back(LoadU32(in.data() + 4));
    in.remove_prefix(node::kLookupHeaderBytes + len);
  }
  return e;
}

// Sends `input`, half-closes, and returns everything the server sent until
// it closed. Aborts if the server keeps the connection open.
std::string Exchange(int port, std::string_view input) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  FUZZ_CHECK(fd >= 0, "socket: %s", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    FUZZ_CHECK(errno == EINPROGRESS, "connect: %s", std::strerror(errno));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  std::string received;
  size_t sent = 0;
  bool write_open = true;
  const auto deadline = std::chrono::steady_clock::now() + kHangLimit;
  for (;;) {
    if (write_open && sent == input.size()) {
      shutdown(fd, SHUT_WR);
      write_open = false;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (write_open ? POLLOUT : 0)), 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    FUZZ_CHECK(left.count() > 0,
               "hang: the server kept a half-closed connection open for %lld s (sent %zu of %zu "
               "bytes, received %zu)",
               static_cast<long long>(kHangLimit.count()), sent, input.size(), received.size());
    const int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    FUZZ_CHECK(n >= 0, "poll: %s", std::strerror(errno));
    if (n == 0) continue;
    if (write_open && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t w = send(fd, input.data() + sent, input.size() - sent, MSG_NOSIGNAL);
      if (w > 0) {
        sent += static_cast<size_t>(w);
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        write_open = false;  // the server closed (after an error frame): stop sending
      }
    }
    if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
      char buf[64 << 10];
      const ssize_t r = recv(fd, buf, sizeof(buf), 0);
      if (r > 0) {
        received.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        break;  // closed (EOF or reset)
      }
    }
  }
  close(fd);
  return received;
}

// Checks the answer frames against the wire contract: whole frames, answering
// a prefix of the requests in order (all of them when `e.strict`), status
// codes in gRPC's range, OK bodies that parse as a GetResponse. A reset may
// cut the answers short when the server closed on an error frame, so only
// whole frames count then.
void CheckAnswers(std::string_view out, const Expected& e) {
  size_t i = 0;
  while (out.size() >= node::kLookupHeaderBytes) {
    const uint32_t len = LoadU32(out.data());
    const uint32_t id = LoadU32(out.data() + 4);
    const uint8_t status = static_cast<uint8_t>(out[8]);
    if (out.size() - node::kLookupHeaderBytes < len) break;
    const std::string_view body = out.substr(node::kLookupHeaderBytes, len);
    FUZZ_CHECK(i < e.ids.size(), "answer %zu (id %u) to no request (%zu expected)", i, id, e.ids.size());
    FUZZ_CHECK(id == e.ids[i], "answer %zu has id %u, request had %u", i, id, e.ids[i]);
    FUZZ_CHECK(status <= 16, "answer %zu has status %u, not a status code", i, status);
    FUZZ_LOG("answer id %u status %u: %u bytes%s%.*s\n", id, status, len, status ? ": " : "",
             status ? static_cast<int>(len) : 0, body.data());
    if (status == node::kLookupStatusOk) {
      quiver::v1::GetResponse response;
      FUZZ_CHECK(response.ParseFromArray(body.data(), static_cast<int>(body.size())),
                 "answer %zu: OK body does not parse", i);
    }
    out.remove_prefix(node::kLookupHeaderBytes + len);
    ++i;
  }
  if (e.strict) {
    FUZZ_CHECK(out.empty(), "%zu trailing bytes after %zu answers", out.size(), i);
    FUZZ_CHECK(i == e.ids.size(), "%zu answers for %zu requests", i, e.ids.size());
  }
}

}  // namespace
}  // namespace quiver::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quiver::fuzz;
  static Server* server = StartServer();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string out = Exchange(server->port, input);
  const quiver::node::LookupServerOptions defaults;
  CheckAnswers(out, ExpectedAnswers(input, defaults.max_frame_bytes));
  return 0;
}
