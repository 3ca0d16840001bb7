// Fuzz target: the client's side of the lean lookup protocol — reading a
// node's reply frames (client/src/lean_fanout.cc) and decoding GetResponse
// into an OnlineResponse (client/src/client_read.cc: packed and unpacked
// rows, value conversion, on-demand evaluation) — through the public
// quiver::Client, whose code stays untouched.
//
// Setup (once): an in-process fake coordinator (tests/unit/client/
// fake_cluster.h) whose map has one node, owner of every partition, whose
// lookup address is a fake lean node in this process. The fake node answers
// each Get frame from the current input; auth frames get an empty OK.
//
// Input: byte 0 picks the mode.
//   (empty: the node closes at once)
//   even: the rest is the raw reply stream, with bytes 4..7 (the request id of
//         the first frame) overwritten by the request's id; the node closes
//         the connection after it unless it is exactly one whole frame.
//   odd:  an OK frame carrying a GetResponse built from the rest: chunks of
//         u16 length + bytes, one per lookup of the request (bit 2 of byte 0:
//         one result more, bit 3: one fewer); a chunk is the result's
//         packed_rows, or with bit 1 a serialized ViewResult (packed_rows
//         = the chunk if it does not parse).
// Each input runs one GetOnlineFeatures of three entity rows over two views,
// an on-demand view and its request fields, with a 200 ms deadline.
//
// Properties: no crash, no hang; the call ends with a status, and an OK
// answer has one row per entity row and one value per feature, each PRESENT
// value well-formed and of the declared type, every other one null.
//
// FUZZ_LEAN_SEEDS=<folder> writes valid structured replies for this request
// (packed and unpacked) into <folder> instead of fuzzing: the seeds depend on
// how the client shapes its request, which the fake node sees.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fuzz_registry.h"
#include "fuzz_util.h"
#include "quiver/client/client.h"
#include "quiver/client/convert.h"
#include "quiver/client/packed_rows.h"
#include "quiver/client/registry_index.h"
#include "unit/client/fake_cluster.h"

namespace quiver::fuzz {
namespace {

uint32_t LoadU32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[1]) << 8 |
         static_cast<uint32_t>(b[2]) << 16 | static_cast<uint32_t>(b[3]) << 24;
}

bool ReadAll(int fd, char* p, size_t n) {
  while (n > 0) {
    const ssize_t r = recv(fd, p, n, 0);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool WriteAll(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t w = send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
    if (w <= 0) return false;
    done += static_cast<size_t>(w);
  }
  return true;
}

// A sample value of `t` for valid replies (seeds).
Value Sample(ValueType t, int i) {
  switch (t) {
    case ValueType::kInt32: return Value::Int32(-i);
    case ValueType::kInt64: return Value::Int64(i * 10);
    case ValueType::kFloat: return Value::Float(1.5f);
    case ValueType::kDouble: return Value::Double(i * 0.5);
    case ValueType::kBool: return Value::Bool(i % 2 == 0);
    case ValueType::kString: return Value::String("s" + std::to_string(i));
    case ValueType::kBytes: return Value::Bytes(std::string("\0\xff", 2));
    case ValueType::kUnixTimestamp: return Value::UnixTimestamp(1'700'000'000'000'000 + i);
    case ValueType::kStringList: return Value{t, std::vector<std::string>{"a", "b"}};
    case ValueType::kDoubleList: return Value{t, std::vector<double>{1, -2}};
    default: return Value::Null(t);
  }
}

class FakeLeanNode {
 public:
  FakeLeanNode() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    FUZZ_CHECK(listen_fd_ >= 0, "socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    FUZZ_CHECK(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0, "bind");
    FUZZ_CHECK(listen(listen_fd_, 64) == 0, "listen");
    socklen_t len = sizeof(addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    std::thread([this] { AcceptLoop(); }).detach();
  }

  int port() const { return port_; }
  void SetInput(std::string input) {
    std::lock_guard<std::mutex> lock(mu_);
    input_ = std::move(input);
  }
  // Seed mode: answer validly, and record the replies' structured inputs.
  void SetRecording(bool on) { recording_ = on; }
  std::vector<std::string> TakeRecorded() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(recorded_, {});
  }

 private:
  void AcceptLoop() {
    for (;;) {
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      std::thread([this, fd] { Serve(fd); }).detach();
    }
  }

  void Serve(int fd) {
    for (;;) {
      char header[9];
      if (!ReadAll(fd, header, sizeof(header))) break;
      const uint32_t len = LoadU32(header);
      const uint32_t id = LoadU32(header + 4);
      if (len > (16u << 20)) break;
      std::string body(len, '\0');
      if (!ReadAll(fd, body.data(), len)) break;
      if (static_cast<uint8_t>(header[8]) != 1) {  // auth or unknown: accept
        if (!WriteAll(fd, LeanFrame(id, 0, ""))) break;
        continue;
      }
      quiver::v1::GetRequest request;
      if (!request.ParseFromString(body)) break;
      bool keep_open = true;
      const std::string reply = Reply(id, request, &keep_open);
      if (!WriteAll(fd, reply) || !keep_open) break;
    }
    close(fd);
  }

  std::string Reply(uint32_t id, const quiver::v1::GetRequest& request, bool* keep_open) {
    if (recording_) return ValidReply(id, request);
    std::string input;
    {
      std::lock_guard<std::mutex> lock(mu_);
      input = input_;
    }
    if (input.empty()) {
      *keep_open = false;  // nothing to answer: close, rather than let the call time out
      return "";
    }
    const uint8_t mode = static_cast<uint8_t>(input[0]);
    std::string rest = input.substr(1);
    if ((mode & 1) == 0) {
      if (rest.size() >= 8) {
        for (int i = 0; i < 4; ++i) rest[4 + i] = static_cast<char>((id >> (8 * i)) & 0xff);
      }
      *keep_open = rest.size() >= 9 && rest.size() == 9 + static_cast<size_t>(LoadU32(rest.data()));
      return rest;
    }
    int results = request.lookups_size();
    if (mode & 4) ++results;
    if ((mode & 8) && results > 0) --results;
    quiver::v1::GetResponse response;
    std::string_view chunks = rest;
    for (int i = 0; i < results; ++i) {
      std::string_view chunk;
      if (chunks.size() >= 2) {
        const size_t n = static_cast<uint8_t>(chunks[0]) | static_cast<size_t>(static_cast<uint8_t>(chunks[1])) << 8;
        chunks.remove_prefix(2);
        chunk = chunks.substr(0, n);
        chunks.remove_prefix(chunk.size());
      }
      auto* result = response.add_results();
      if (!(mode & 2) || !result->ParseFromArray(chunk.data(), static_cast<int>(chunk.size()))) {
        result->Clear();
        result->set_packed_rows(std::string(chunk));
      }
    }
    return LeanFrame(id, 0, response.SerializeAsString());
  }

  // A correct answer to `request` (rows PRESENT, NOT_FOUND, OUTSIDE_MAX_AGE
  // in turn), recorded as the structured inputs that produce it.
  std::string ValidReply(uint32_t id, const quiver::v1::GetRequest& request) {
    static const auto* index = new std::shared_ptr<const client::RegistryIndex>(
        client::RegistryIndex::Build(FuzzRegistry()).value());
    std::string packed_input(1, '\x01'), unpacked_input(1, '\x03');
    quiver::v1::GetResponse response;
    for (const auto& lookup : request.lookups()) {
      const client::ViewInfo* view = (*index)->FindView(lookup.view());
      FUZZ_CHECK(view != nullptr, "the client asked for view %s", lookup.view().c_str());
      std::vector<ValueType> types;
      if (lookup.features().empty()) {
        types = view->feature_types;
      } else {
        for (const auto& f : lookup.features()) {
          types.push_back(view->feature_types[static_cast<size_t>(view->feature_index.at(f))]);
        }
      }
      std::string packed;
      client::PackedRowWriter writer(&packed);
      quiver::v1::ViewResult rows;
      for (int k = 0; k < lookup.entity_keys_size(); ++k) {
        auto* row = rows.add_rows();
        if (k % 3 == 1) {
          writer.NotFound();
          row->set_status(quiver::v1::NOT_FOUND);
          continue;
        }
        if (k % 3 == 2) {
          writer.OutsideMaxAge(1'600'000'000'000'000);
          row->set_status(quiver::v1::OUTSIDE_MAX_AGE);
          row->set_event_ts_us(1'600'000'000'000'000);
          continue;
        }
        std::vector<std::string> cells;
        for (size_t f = 0; f < types.size(); ++f) {
          const Value v = f == 1 ? Value::Null(types[f]) : Sample(types[f], k);
          std::string c(1, v.is_null() ? '\0' : static_cast<char>(v.type));
          AppendPayload(v, &c);
          cells.push_back(std::move(c));
          client::ToProto(v, row->add_values());
        }
        const std::vector<std::string_view> views(cells.begin(), cells.end());
        writer.Present(1'700'000'000'000'000 + k, views);
        row->set_status(quiver::v1::PRESENT);
        row->set_event_ts_us(1'700'000'000'000'000 + k);
      }
      auto chunk = [](const std::string& bytes, std::string* out) {
        out->push_back(static_cast<char>(bytes.size() & 0xff));
        out->push_back(static_cast<char>((bytes.size() >> 8) & 0xff));
        out->append(bytes);
      };
      chunk(packed, &packed_input);
      chunk(rows.SerializeAsString(), &unpacked_input);
      if (request.packed()) {
        response.add_results()->set_packed_rows(packed);
      } else {
        *response.add_results() = rows;
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      recorded_.push_back(packed_input);
      recorded_.push_back(unpacked_input);
      recorded_.push_back(std::string(1, '\0') + LeanFrame(0, 0, response.SerializeAsString()));
    }
    return LeanFrame(id, 0, response.SerializeAsString());
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> recording_{false};
  std::mutex mu_;
  std::string input_;
  std::vector<std::string> recorded_;
};

struct Env {
  FakeLeanNode node;
  std::unique_ptr<testing::FakeCoordinator> coordinator;
  std::unique_ptr<client::Client> client;
  std::shared_ptr<const client::RegistryIndex> index;
};

Env* Start() {
  auto* env = new Env();  // lives until exit: its threads are detached
  env->coordinator = std::make_unique<testing::FakeCoordinator>();
  quiver::v1::ClusterMap map;
  map.set_epoch(1);
  map.set_num_partitions(16);
  map.set_replication_factor(1);
  auto* n = map.add_nodes();
  n->set_id(1);
  n->set_address("127.0.0.1:1");  // gRPC: never used, lookups are lean
  n->set_lookup_address("127.0.0.1:" + std::to_string(env->node.port()));
  n->set_state(quiver::v1::UP);
  for (int p = 0; p < 16; ++p) map.add_partitions()->add_node_ids(1);
  env->coordinator->SetMap(map);
  env->coordinator->SetRegistry(FuzzRegistry());
  client::ClientOptions options;
  options.coordinator_address = env->coordinator->address();
  // Generous for connecting (a loaded machine); each lookup sets its own 200 ms.
  options.default_deadline = std::chrono::milliseconds(10'000);
  options.refresh_interval = std::chrono::milliseconds(60'000);
  auto c = client::Client::Create(options);
  for (int attempt = 1; !c.ok() && attempt < 5; ++attempt) c = client::Client::Create(options);
  FUZZ_CHECK(c.ok(), "client: %s", c.status().ToString().c_str());
  env->client = *std::move(c);
  env->index = client::RegistryIndex::Build(FuzzRegistry()).value();
  return env;
}

client::OnlineRequest Request() {
  client::OnlineRequest req;
  req.features = {"user_stats:clicks", "user_stats:ratio", "user_stats:tags", "user_stats:seen",
                  "user_stats:blob", "route_stats:delay", "user_derived:boosted",
                  "user_derived:label"};
  for (int i = 0; i < 3; ++i) {
    req.entity_rows.push_back({{"user_id", Value::Int64(i)},
                               {"origin", Value::String("LAX")},
                               {"destination", Value::String(i == 1 ? "SFO" : "JFK")},
                               {"boost", Value::Double(2)},
                               {"tag", Value::String("t")},
                               {"n", Value::Int32(i)},
                               {"flag", Value::Bool(i == 0)}});
  }
  req.deadline = std::chrono::milliseconds(200);
  return req;
}

ValueType DeclaredType(const client::RegistryIndex& index, const std::string& ref) {
  const size_t colon = ref.find(':');
  const std::string view = ref.substr(0, colon), feature = ref.substr(colon + 1);
  if (const client::ViewInfo* v = index.FindView(view)) {
    return v->feature_types[static_cast<size_t>(v->feature_index.at(feature))];
  }
  const expr::OnDemandView* odfv = index.FindOnDemandView(view);
  FUZZ_CHECK(odfv != nullptr, "unknown ref %s", ref.c_str());
  for (size_t i = 0; i < odfv->feature_names().size(); ++i) {
    if (odfv->feature_names()[i] == feature) return odfv->feature_types()[i];
  }
  FUZZ_CHECK(false, "unknown feature %s", ref.c_str());
  return ValueType::kInvalid;
}

void WriteSeeds(Env& env, const char* folder) {
  env.node.SetRecording(true);
  auto resp = env.client->GetOnlineFeatures(Request());
  FUZZ_CHECK(resp.ok(), "valid replies: %s", resp.status().ToString().c_str());
  int i = 0;
  for (const std::string& seed : env.node.TakeRecorded()) {
    std::ofstream(std::string(folder) + "/valid_" + std::to_string(i++) + ".bin", std::ios::binary)
        << seed;
  }
  std::fprintf(stderr, "wrote %d seeds to %s\n", i, folder);
  std::exit(0);
}

}  // namespace
}  // namespace quiver::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quiver;
  using namespace quiver::fuzz;
  static Env* env = Start();
  static const client::OnlineRequest request = Request();
  if (const char* folder = std::getenv("FUZZ_LEAN_SEEDS")) WriteSeeds(*env, folder);
  env->node.SetInput(std::string(reinterpret_cast<const char*>(data), size));
  auto resp = env->client->GetOnlineFeatures(request);
  FUZZ_LOG("GetOnlineFeatures: %s\n", resp.status().ToString().c_str());
  if (!resp.ok()) return 0;
  FUZZ_CHECK(resp->rows.size() == request.entity_rows.size(), "%zu rows for %zu entity rows",
             resp->rows.size(), request.entity_rows.size());
  FUZZ_CHECK(resp->feature_refs.size() == request.features.size(), "%zu refs for %zu features",
             resp->feature_refs.size(), request.features.size());
  for (const auto& row : resp->rows) {
    FUZZ_CHECK(row.size() == resp->feature_refs.size(), "row of %zu values", row.size());
    for (size_t f = 0; f < row.size(); ++f) {
      const client::FeatureValue& v = row[f];
      const ValueType declared = DeclaredType(*env->index, resp->feature_refs[f]);
      FUZZ_CHECK(v.value.type == declared, "%s: typed %d, declared %d", resp->feature_refs[f].c_str(),
                 static_cast<int>(v.value.type), static_cast<int>(declared));
      if (v.status == client::FeatureStatus::kPresent) {
        FUZZ_CHECK(!v.value.is_null(), "%s: PRESENT null", resp->feature_refs[f].c_str());
        const absl::Status s = CheckValue(v.value);
        FUZZ_CHECK(s.ok(), "%s: %s", resp->feature_refs[f].c_str(), s.ToString().c_str());
      } else {
        FUZZ_CHECK(v.value.is_null(), "%s: non-null value with status %d", resp->feature_refs[f].c_str(),
                   static_cast<int>(v.status));
      }
    }
  }
  return 0;
}
