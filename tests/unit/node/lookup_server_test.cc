// The lean lookup protocol over real sockets on 127.0.0.1: answers equal the
// handler's, pipelining keeps order and ids, bad frames get the documented
// error frames, garbage never takes the server down, Stop closes connections.
// The client side here is a plain blocking POSIX socket written from the wire
// contract (lookup_server.h), independent of the server's code.
#include "quiver/node/lookup_server.h"

#include <arpa/inet.h>
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "node_test_util.h"
#include "quiver.grpc.pb.h"
#include "quiver/client/convert.h"
#include "quiver/keys/entity_key.h"
#include "quiver/node/grpc_service.h"

namespace quiver::node {
namespace {

using google::protobuf::util::MessageDifferencer;
using testing::AddFeature;
using testing::AddSingleEntityView;
using testing::BuildIndex;
using testing::FakeCluster;
using testing::OwnEverything;
using testing::OpenTestStore;
using testing::TempDir;

constexpr int64_t kEventUs = 1'700'000'000LL * 1000 * 1000;
constexpr int kUsers = 100;

std::string Key(int64_t user_id) {
  return EncodeEntityKey({{"user_id", Value::Int64(user_id)}}).value();
}

struct Frame {
  uint32_t id = 0;
  uint8_t status = 0;
  std::string body;
};

std::string EncodeFrame(uint32_t id, uint8_t kind, const std::string& body,
                        std::optional<uint32_t> length = std::nullopt) {
  std::string out(9, '\0');
  const uint32_t len = length.value_or(static_cast<uint32_t>(body.size()));
  for (int i = 0; i < 4; ++i) {
    out[i] = static_cast<char>((len >> (8 * i)) & 0xff);
    out[4 + i] = static_cast<char>((id >> (8 * i)) & 0xff);
  }
  out[8] = static_cast<char>(kind);
  return out + body;
}

// A blocking connection with a 5 s receive timeout, so a broken server fails
// the test instead of hanging it.
class Conn {
 public:
  explicit Conn(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd_);
      fd_ = -1;
      return;
    }
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~Conn() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }

  bool Send(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }
  // Exactly n bytes; false on EOF, error or timeout.
  bool Recv(size_t n, std::string* out) {
    out->resize(n);
    size_t got = 0;
    while (got < n) {
      const ssize_t r = recv(fd_, out->data() + got, n - got, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      got += static_cast<size_t>(r);
    }
    return true;
  }
  std::optional<Frame> ReadFrame() {
    std::string header;
    if (!Recv(9, &header)) return std::nullopt;
    Frame f;
    uint32_t len = 0;
    for (int i = 3; i >= 0; --i) {
      len = len << 8 | static_cast<uint8_t>(header[i]);
      f.id = f.id << 8 | static_cast<uint8_t>(header[4 + i]);
    }
    f.status = static_cast<uint8_t>(header[8]);
    if (!Recv(len, &f.body)) return std::nullopt;
    return f;
  }
  // True when the server closed the connection (EOF or reset), false on data
  // or timeout.
  bool ClosedByPeer() {
    char c;
    const ssize_t r = recv(fd_, &c, 1, 0);
    return r == 0 || (r < 0 && errno == ECONNRESET);
  }

 private:
  int fd_ = -1;
};

class LookupServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenTestStore(dir_.path());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    quiver::v1::Registry r;
    r.set_project("test");
    r.set_version(1);
    auto* view = AddSingleEntityView(&r, {.entity = "user", .join_key = "user_id",
                                          .source = "events", .path = "/nonexistent.parquet",
                                          .view = "user_stats"});
    AddFeature(view, "clicks", quiver::v1::INT64);
    AddFeature(view, "score", quiver::v1::DOUBLE);
    AddFeature(view, "name", quiver::v1::STRING);
    cluster_.current = BuildIndex(r);
    handler_ = std::make_unique<RequestHandler>(store_.get(), &cluster_);
    OwnEverything(*handler_);
    ASSERT_TRUE(handler_->SyncViews(*cluster_.current).ok());
    // Even users are present; odd ones are not.
    quiver::v1::WriteRequest write;
    write.set_view("user_stats");
    write.set_schema_version(1);
    for (int u = 0; u < kUsers; u += 2) {
      auto* row = write.add_rows();
      row->set_entity_key(Key(u));
      row->set_event_ts_us(kEventUs + u);
      row->set_created_ts_us(kEventUs + u);
      client::ToProto(Value::Int64(u * 10), row->add_values());
      client::ToProto(Value::Double(u * 0.5), row->add_values());
      client::ToProto(Value::String("user" + std::to_string(u)), row->add_values());
    }
    quiver::v1::WriteResponse written;
    ASSERT_TRUE(handler_->Write(write, &written).ok());
    StartServer({});
  }

  void StartServer(LookupServerOptions options) {
    server_.reset();
    options.listen = "127.0.0.1:0";
    auto server = LookupServer::Start(options, handler_.get(), nullptr);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    port_ = runtime::SplitHostPort(server_->address())->second;
    ASSERT_GT(port_, 0);
  }

  static quiver::v1::GetRequest Request(std::vector<int> users, bool packed = false,
                                        const std::string& view = "user_stats") {
    quiver::v1::GetRequest request;
    request.set_packed(packed);
    auto* lookup = request.add_lookups();
    lookup->set_view(view);
    for (int u : users) lookup->add_entity_keys(Key(u));
    return request;
  }

  // The independent answer: the handler called directly.
  quiver::v1::GetResponse Direct(const quiver::v1::GetRequest& request) {
    quiver::v1::GetResponse response;
    EXPECT_TRUE(handler_->Get(request, &response).ok());
    return response;
  }

  // Sends one Get frame and expects an OK answer equal to the handler's.
  void ExpectServed(Conn& conn, uint32_t id, const quiver::v1::GetRequest& request) {
    ASSERT_TRUE(conn.Send(EncodeFrame(id, kLookupKindGet, request.SerializeAsString())));
    auto frame = conn.ReadFrame();
    ASSERT_TRUE(frame.has_value());
    EXPECT_EQ(frame->id, id);
    ASSERT_EQ(frame->status, kLookupStatusOk) << frame->body;
    quiver::v1::GetResponse got;
    ASSERT_TRUE(got.ParseFromString(frame->body));
    EXPECT_TRUE(MessageDifferencer::Equals(got, Direct(request))) << got.DebugString();
  }

  TempDir dir_;
  std::unique_ptr<storage::RowStore> store_;
  FakeCluster cluster_;
  std::unique_ptr<RequestHandler> handler_;
  std::unique_ptr<LookupServer> server_;
  int port_ = 0;
};

TEST_F(LookupServerTest, GetFrameIsAnsweredLikeTheHandler) {
  Conn conn(port_);
  ASSERT_TRUE(conn.ok());
  for (bool packed : {false, true}) {
    const auto request = Request({0, 1, 42}, packed);
    const auto direct = Direct(request);
    // The direct answer really holds the rows (present, missing, present).
    ASSERT_EQ(direct.results_size(), 1);
    if (packed) {
      EXPECT_FALSE(direct.results(0).packed_rows().empty());
    } else {
      ASSERT_EQ(direct.results(0).rows_size(), 3);
      EXPECT_EQ(direct.results(0).rows(2).values(0).int64_val(), 420);
      EXPECT_EQ(direct.results(0).rows(1).status(), quiver::v1::NOT_FOUND);
    }
    ExpectServed(conn, packed ? 2 : 1, request);
  }
}

TEST_F(LookupServerTest, HandlerErrorsCarryTheirCodeAndMessage) {
  Conn conn(port_);
  ASSERT_TRUE(conn.Send(
      EncodeFrame(7, kLookupKindGet, Request({1}, false, "no_such_view").SerializeAsString())));
  auto frame = conn.ReadFrame();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->id, 7u);
  EXPECT_EQ(frame->status, static_cast<uint8_t>(absl::StatusCode::kNotFound));
  EXPECT_NE(frame->body.find("no_such_view"), std::string::npos) << frame->body;
  ExpectServed(conn, 8, Request({2}));  // the connection goes on
}

TEST_F(LookupServerTest, PipelinedRequestsAreAnsweredInOrderWithTheirIds) {
  Conn conn(port_);
  const std::vector<quiver::v1::GetRequest> requests = {
      Request({2, 4}), Request({3}, false, "no_such_view"), Request({10, 11, 12}, true)};
  const std::vector<uint32_t> ids = {0xdeadbeef, 5, 1u << 31};
  std::string burst;
  for (size_t i = 0; i < requests.size(); ++i) {
    burst += EncodeFrame(ids[i], kLookupKindGet, requests[i].SerializeAsString());
  }
  ASSERT_TRUE(conn.Send(burst));  // all three before reading anything
  for (size_t i = 0; i < requests.size(); ++i) {
    auto frame = conn.ReadFrame();
    ASSERT_TRUE(frame.has_value()) << i;
    EXPECT_EQ(frame->id, ids[i]);
    if (i == 1) {
      EXPECT_EQ(frame->status, static_cast<uint8_t>(absl::StatusCode::kNotFound));
      continue;
    }
    ASSERT_EQ(frame->status, kLookupStatusOk) << frame->body;
    quiver::v1::GetResponse got;
    ASSERT_TRUE(got.ParseFromString(frame->body));
    EXPECT_TRUE(MessageDifferencer::Equals(got, Direct(requests[i])));
  }
}

TEST_F(LookupServerTest, UnparsableBodyIsInvalidArgumentAndTheConnectionGoesOn) {
  Conn conn(port_);
  ASSERT_TRUE(conn.Send(EncodeFrame(3, kLookupKindGet, "\xff\xff\xff\xff\x0f\x12\x80garbage")));
  auto frame = conn.ReadFrame();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->id, 3u);
  EXPECT_EQ(frame->status, static_cast<uint8_t>(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(frame->body.find("GetRequest"), std::string::npos) << frame->body;
  ExpectServed(conn, 4, Request({6, 7}));
}

TEST_F(LookupServerTest, EmptyBodyIsAnEmptyGetRequest) {
  Conn conn(port_);
  ExpectServed(conn, 1, quiver::v1::GetRequest());
}

TEST_F(LookupServerTest, OversizedLengthGetsAnErrorFrameThenClose) {
  LookupServerOptions options;
  options.max_frame_bytes = 1024;
  StartServer(options);
  {
    Conn conn(port_);
    ExpectServed(conn, 1, Request({0}));  // under the limit: served
    ASSERT_TRUE(conn.Send(EncodeFrame(9, kLookupKindGet, "", 1025)));
    auto frame = conn.ReadFrame();
    ASSERT_TRUE(frame.has_value());
    EXPECT_EQ(frame->id, 9u);
    EXPECT_EQ(frame->status, static_cast<uint8_t>(absl::StatusCode::kInvalidArgument));
    EXPECT_NE(frame->body.find("1025"), std::string::npos) << frame->body;
    EXPECT_TRUE(conn.ClosedByPeer());
  }
  Conn next(port_);
  ExpectServed(next, 1, Request({0}));
}

TEST_F(LookupServerTest, UnknownKindGetsAnErrorFrameThenClose) {
  Conn conn(port_);
  ASSERT_TRUE(conn.Send(EncodeFrame(11, 3, "x")));  // 1 Get, 2 Auth
  auto frame = conn.ReadFrame();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->id, 11u);
  EXPECT_EQ(frame->status, static_cast<uint8_t>(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(frame->body.find("kind 3"), std::string::npos) << frame->body;
  EXPECT_TRUE(conn.ClosedByPeer());
}

TEST_F(LookupServerTest, OversizedResponseIsResourceExhaustedAndTheConnectionGoesOn) {
  std::vector<int> users;
  for (int u = 0; u < 40; u += 2) users.push_back(u);
  const size_t request_bytes = Request(users).ByteSizeLong();
  const size_t response_bytes = Direct(Request(users)).ByteSizeLong();
  ASSERT_LT(request_bytes + 16, response_bytes);
  LookupServerOptions options;
  options.max_frame_bytes = (request_bytes + response_bytes) / 2;  // request fits, answer not
  StartServer(options);
  Conn conn(port_);
  ASSERT_TRUE(conn.Send(EncodeFrame(1, kLookupKindGet, Request(users).SerializeAsString())));
  auto frame = conn.ReadFrame();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->status, static_cast<uint8_t>(absl::StatusCode::kResourceExhausted))
      << frame->body;
  ExpectServed(conn, 2, Request({0}));
}

TEST_F(LookupServerTest, LargeRequestSpanningManyReadsIsServed) {
  std::vector<int> users;
  for (int i = 0; i < 5000; ++i) users.push_back(i % kUsers);
  const auto request = Request(users);
  ASSERT_GT(request.ByteSizeLong(), 64u << 10);  // larger than the initial read buffer
  Conn conn(port_);
  ExpectServed(conn, 1, request);
  ExpectServed(conn, 2, Request({4}));
}

TEST_F(LookupServerTest, GarbageNeverCrashesTheServer) {
  std::mt19937 rng(12345);
  for (int round = 0; round < 50; ++round) {
    Conn conn(port_);
    ASSERT_TRUE(conn.ok());
    std::string junk(1 + rng() % 4096, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    if (round % 5 == 0) junk[8] = static_cast<char>(kLookupKindGet);  // a plausible kind
    (void)conn.Send(junk);
    // Whatever comes back (error frames, nothing, a close), the client leaves.
  }
  // Half-sent frames left idle on open connections block nobody.
  Conn idle(port_);
  ASSERT_TRUE(idle.Send(EncodeFrame(1, kLookupKindGet, "", 100).substr(0, 5)));
  Conn conn(port_);
  ExpectServed(conn, 1, Request({0, 1, 2}));
}

TEST_F(LookupServerTest, ManyConcurrentConnectionsAreServed) {
  constexpr int kThreads = 8;
  constexpr int kConnsPerThread = 8;
  constexpr int kRounds = 20;
  // Precomputed answers: the checking threads must not race on the fixture.
  std::vector<std::string> expected(kUsers);
  for (int u = 0; u < kUsers; ++u) expected[u] = Direct(Request({u})).SerializeAsString();
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::unique_ptr<Conn>> conns;
      for (int c = 0; c < kConnsPerThread; ++c) conns.push_back(std::make_unique<Conn>(port_));
      for (int round = 0; round < kRounds; ++round) {
        for (int c = 0; c < kConnsPerThread; ++c) {
          const int user = (t * 31 + c * 7 + round) % kUsers;
          if (!conns[c]->Send(EncodeFrame(static_cast<uint32_t>(user), kLookupKindGet,
                                          Request({user}).SerializeAsString()))) {
            continue;
          }
        }
        for (int c = 0; c < kConnsPerThread; ++c) {
          const int user = (t * 31 + c * 7 + round) % kUsers;
          auto frame = conns[c]->ReadFrame();
          quiver::v1::GetResponse got;
          quiver::v1::GetResponse want;
          if (frame && frame->id == static_cast<uint32_t>(user) && frame->status == 0 &&
              got.ParseFromString(frame->body) && want.ParseFromString(expected[user]) &&
              MessageDifferencer::Equals(got, want)) {
            ++good;
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), kThreads * kConnsPerThread * kRounds);
}

TEST_F(LookupServerTest, StopClosesIdleConnectionsAndReturns) {
  Conn idle(port_);
  ExpectServed(idle, 1, Request({0}));
  Conn half(port_);
  ASSERT_TRUE(half.Send(EncodeFrame(1, kLookupKindGet, "", 100).substr(0, 12)));
  const auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_TRUE(idle.ClosedByPeer());
  EXPECT_TRUE(half.ClosedByPeer());
  server_->Stop();  // idempotent
}

TEST(LookupServerStartTest, BadOptionsAreRejected) {
  FakeCluster cluster;
  TempDir dir;
  auto store = OpenTestStore(dir.path());
  ASSERT_TRUE(store.ok());
  RequestHandler handler(store->get(), &cluster);
  LookupServerOptions options;
  options.threads = 0;
  EXPECT_EQ(LookupServer::Start(options, &handler, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.threads = 1;
  options.listen = "no-port";
  EXPECT_EQ(LookupServer::Start(options, &handler, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A port already taken.
  options.listen = "127.0.0.1:0";
  auto first = LookupServer::Start(options, &handler, nullptr);
  ASSERT_TRUE(first.ok());
  options.listen = (*first)->address();
  EXPECT_EQ(LookupServer::Start(options, &handler, nullptr).status().code(),
            absl::StatusCode::kUnavailable);
}

// Not a benchmark gate: prints the round trip of a 1-lookup Get over both
// transports on the same handler, so a regression is visible in the log.
TEST_F(LookupServerTest, RoundTripVersusGrpcIsPrinted) {
  NodeGrpcService service(handler_.get(), nullptr);
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &grpc_port);
  builder.RegisterService(&service);
  auto grpc_server = builder.BuildAndStart();
  ASSERT_NE(grpc_server, nullptr);
  auto stub = quiver::v1::NodeService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(grpc_port), grpc::InsecureChannelCredentials()));
  Conn conn(port_);
  const auto request = Request({42}, true);
  const std::string frame = EncodeFrame(1, kLookupKindGet, request.SerializeAsString());
  const std::string want = Direct(request).SerializeAsString();
  constexpr int kIters = 2000;
  auto median_us = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::vector<double> lean_us, grpc_us;
  for (int i = 0; i < kIters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(conn.Send(frame));
    auto got = conn.ReadFrame();
    const auto t1 = std::chrono::steady_clock::now();
    ASSERT_TRUE(got.has_value());
    ASSERT_EQ(got->body, want);
    lean_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());

    grpc::ClientContext ctx;
    quiver::v1::GetResponse response;
    const auto t2 = std::chrono::steady_clock::now();
    ASSERT_TRUE(stub->Get(&ctx, request, &response).ok());
    const auto t3 = std::chrono::steady_clock::now();
    ASSERT_EQ(response.SerializeAsString(), want);
    grpc_us.push_back(std::chrono::duration<double, std::micro>(t3 - t2).count());
  }
  std::printf("1-lookup Get round trip over %d calls: lean p50 %.1f us, gRPC p50 %.1f us\n",
              kIters, median_us(lean_us), median_us(grpc_us));
  grpc_server->Shutdown();
}

}  // namespace
}  // namespace quiver::node
