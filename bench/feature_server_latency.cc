// quiver-bench-feature-server: the feature server's cost over the direct
// C++ client (issue 13's benchmark), measured in one process, one run:
// the same lookups (random entities of `--keys` users u0..u{N-1}, the same
// features) through quiver::Client, through quiver-feature-server's HTTP
// POST /get-online-features (Feast's JSON), and through its gRPC
// feast.serving.ServingService/GetOnlineFeatures. Closed loop, one call at a
// time, modes interleaved per call so that a noisy moment hits all three.
//
//   quiver-bench-feature-server --coordinator HOST:PORT --http HOST:PORT --grpc HOST:PORT
//       --features R,R,... [--keys 10000] [--rows-per-call 1] [--calls 5000] [--warmup 300]
//
// Prints one line per mode: p50 / p99 / p99.9 µs per call and calls/s, then
// the p50 overhead of HTTP and gRPC over the client. Exit 1 when a call
// failed.
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "feast/serving/ServingService.grpc.pb.h"
#include "quiver/client/client.h"
#include "quiver/runtime/runtime.h"

namespace {

using Clock = std::chrono::steady_clock;

int Fail(const std::string& msg) {
  std::fprintf(stderr, "quiver-bench-feature-server: %s\n", msg.c_str());
  return 1;
}

struct Stats {
  std::vector<double> us;
  double Percentile(double p) {
    std::sort(us.begin(), us.end());
    return us.empty() ? 0 : us[std::min(us.size() - 1, static_cast<size_t>(p * us.size()))];
  }
};

}  // namespace

int main(int argc, char** argv) {
  auto flags = quiver::runtime::Flags::Parse(
      argc, argv, 1, {"coordinator", "http", "grpc", "features", "keys", "rows-per-call", "calls", "warmup"});
  if (!flags.ok()) return Fail(std::string(flags.status().message()));
  const std::vector<std::string> features = absl::StrSplit(flags->Get("features"), ',');
  const int64_t keys = *flags->GetInt("keys", 10000);
  const int64_t rows = *flags->GetInt("rows-per-call", 1);
  const int64_t calls = *flags->GetInt("calls", 5000);
  const int64_t warmup = *flags->GetInt("warmup", 300);

  quiver::client::ClientOptions copts;
  copts.coordinator_address = flags->Get("coordinator");
  auto client = quiver::client::Client::Create(copts);
  if (!client.ok()) return Fail(std::string(client.status().message()));
  const std::string http_address = flags->Get("http");
  httplib::Client http(http_address.substr(0, http_address.rfind(':')),
                       std::stoi(http_address.substr(http_address.rfind(':') + 1)));
  http.set_keep_alive(true);
  http.set_tcp_nodelay(true);
  auto grpc_stub = feast::serving::ServingService::NewStub(
      grpc::CreateChannel(flags->Get("grpc"), grpc::InsecureChannelCredentials()));

  std::mt19937_64 rng(42);
  // `floor`: GET /health on the same keep-alive connection: one loopback
  // HTTP round trip to the server and no lookup, the least any HTTP hop costs.
  Stats direct, over_http, over_grpc, floor;
  for (int64_t i = 0; i < warmup + calls; ++i) {
    std::vector<std::string> ids;
    for (int64_t r = 0; r < rows; ++r) ids.push_back(absl::StrCat("u", rng() % static_cast<uint64_t>(keys)));
    const bool measured = i >= warmup;

    quiver::client::OnlineRequest request;
    request.features = features;
    for (const std::string& id : ids) request.entity_rows.push_back({{"user_id", quiver::Value::String(id)}});
    auto t0 = Clock::now();
    auto response = (*client)->GetOnlineFeatures(request);
    auto t1 = Clock::now();
    if (!response.ok()) return Fail(absl::StrCat("client: ", response.status().message()));
    if (measured) direct.us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());

    std::string body = R"({"entities": {"user_id": [")" + absl::StrJoin(ids, R"(", ")") +
                       R"("]}, "features": [")" + absl::StrJoin(features, R"(", ")") + R"("]})";
    t0 = Clock::now();
    auto res = http.Post("/get-online-features", body, "application/json");
    t1 = Clock::now();
    if (!res || res->status != 200) return Fail(absl::StrCat("http: ", res ? res->body : "no response"));
    if (measured) over_http.us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());

    t0 = Clock::now();
    auto health = http.Get("/health");
    t1 = Clock::now();
    if (!health) return Fail("http: /health: no response");
    if (measured) floor.us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());

    feast::serving::GetOnlineFeaturesRequest greq;
    for (const std::string& f : features) greq.mutable_features()->add_val(f);
    auto& column = (*greq.mutable_entities())["user_id"];
    for (const std::string& id : ids) column.add_val()->set_string_val(id);
    feast::serving::GetOnlineFeaturesResponse gresp;
    grpc::ClientContext ctx;
    t0 = Clock::now();
    grpc::Status s = grpc_stub->GetOnlineFeatures(&ctx, greq, &gresp);
    t1 = Clock::now();
    if (!s.ok()) return Fail(absl::StrCat("grpc: ", s.error_message()));
    if (measured) over_grpc.us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  auto line = [&](const char* mode, Stats& st) {
    double sum = 0;
    for (double u : st.us) sum += u;
    const double p50 = st.Percentile(0.5);
    std::printf("feature_server mode=%s rows=%lld features=%zu calls=%lld p50_us=%.0f p99_us=%.0f p999_us=%.0f calls_per_s=%.0f\n",
                mode, static_cast<long long>(rows), features.size(), static_cast<long long>(calls), p50,
                st.Percentile(0.99), st.Percentile(0.999), st.us.size() / (sum / 1e6));
    return p50;
  };
  const double c = line("client", direct);
  const double h = line("http", over_http);
  const double g = line("grpc", over_grpc);
  const double f = line("http_health_floor", floor);
  std::printf("feature_server rows=%lld features=%zu http_overhead_p50_us=%.0f grpc_overhead_p50_us=%.0f "
              "http_round_trip_floor_p50_us=%.0f\n",
              static_cast<long long>(rows), features.size(), h - c, g - c, f);
  return 0;
}
