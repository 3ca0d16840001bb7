// quiver-bench-online: measures GetOnlineFeatures through quiver::Client
// against a running cluster, closed loop.
//
//   quiver-bench-online --coordinator HOST:PORT (--features R,R | --feature-service S)
//       --entities FILE.csv [--calls 10000] [--rows-per-call 1] [--concurrency 1]
//       [--warmup 500] [--deadline-ms 1000]
//       [--tls-ca FILE [--tls-cert FILE --tls-key FILE]] [--token-file FILE]
//
// Entity rows come from the CSV (header = join keys), used round-robin. Prints
// p50 / p99 / p99.9 / max latency (µs, per call, measured around the client
// call) and throughput (calls/s, entity rows/s). Exit 1 when any call failed.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <set>
#include <thread>

#include "absl/strings/str_split.h"
#include "ctl/csv.h"
#include "quiver/client/client.h"
#include "quiver/runtime/runtime.h"
#include "quiver/security/security.h"

namespace {

using Clock = std::chrono::steady_clock;

int Fail(const std::string& msg) {
  std::fprintf(stderr, "quiver-bench-online: %s\n", msg.c_str());
  return 1;
}

double Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i = std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()));
  return static_cast<double>(sorted[i]);
}

}  // namespace

int main(int argc, char** argv) {
  std::set<std::string> known = {"coordinator", "features", "feature-service", "entities", "calls",
                                 "rows-per-call", "concurrency", "warmup", "deadline-ms", "log-level"};
  known.insert(quiver::security::ClientFlagNames().begin(), quiver::security::ClientFlagNames().end());
  auto flags = quiver::runtime::Flags::Parse(argc, argv, 1, known);
  if (!flags.ok()) return Fail(std::string(flags.status().message()));
  auto security = quiver::security::ParseClientFlags(*flags);
  if (!security.ok()) return Fail(std::string(security.status().message()));
  (void)quiver::runtime::SetupLogging("bench", flags->Get("log-level", "warn"));
  auto calls = flags->GetInt("calls", 10000);
  auto rows_per_call = flags->GetInt("rows-per-call", 1);
  auto concurrency = flags->GetInt("concurrency", 1);
  auto warmup = flags->GetInt("warmup", 500);
  auto deadline_ms = flags->GetInt("deadline-ms", 1000);
  for (const auto* v : {&calls, &rows_per_call, &concurrency, &warmup, &deadline_ms}) {
    if (!v->ok()) return Fail(std::string(v->status().message()));
  }
  if (*calls < 1 || *rows_per_call < 1 || *concurrency < 1 || *warmup < 0) {
    return Fail("--calls, --rows-per-call and --concurrency must be >= 1");
  }
  if (flags->Has("features") == flags->Has("feature-service") || !flags->Has("entities")) {
    return Fail("give --entities and one of --features / --feature-service");
  }

  quiver::client::ClientOptions opts;
  opts.coordinator_address = flags->Get("coordinator", "127.0.0.1:6000");
  opts.security = *security;
  auto client = quiver::client::Client::Create(opts);
  if (!client.ok()) return Fail(client.status().ToString());

  std::ifstream in(flags->Get("entities"));
  if (!in) return Fail("cannot read " + flags->Get("entities"));
  std::stringstream text;
  text << in.rdbuf();
  std::map<std::string, quiver::ValueType> join_key_types;
  for (const auto& e : (*client)->registry()->registry().entities()) {
    join_key_types[e.join_key()] = static_cast<quiver::ValueType>(e.value_type());
  }
  auto entities = quiver::ctl::ParseEntityCsv(text.str(), join_key_types);
  if (!entities.ok()) return Fail(entities.status().ToString());
  if (entities->rows.empty()) return Fail("no entity rows in " + flags->Get("entities"));

  quiver::client::OnlineRequest base;
  if (flags->Has("features")) {
    base.features = absl::StrSplit(flags->Get("features"), ',');
  } else {
    base.feature_service = flags->Get("feature-service");
  }
  base.deadline = std::chrono::milliseconds(*deadline_ms);

  const int64_t total = *calls + *warmup;
  std::atomic<int64_t> next{0}, errors{0};
  std::vector<std::vector<int64_t>> latencies(*concurrency);
  std::string first_error;
  std::mutex error_mu;
  Clock::time_point start;
  std::atomic<bool> started{false};
  auto worker = [&](int t) {
    quiver::client::OnlineRequest req = base;
    for (int64_t i; (i = next.fetch_add(1)) < total;) {
      if (i == *warmup && !started.exchange(true)) start = Clock::now();
      req.entity_rows.clear();
      for (int64_t r = 0; r < *rows_per_call; ++r) {
        req.entity_rows.push_back(
            entities->rows[(i * *rows_per_call + r) % entities->rows.size()]);
      }
      const auto t0 = Clock::now();
      auto resp = (*client)->GetOnlineFeatures(req);
      const auto us =
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
      if (!resp.ok()) {
        errors.fetch_add(1);
        std::lock_guard<std::mutex> lock(error_mu);
        if (first_error.empty()) first_error = resp.status().ToString();
      }
      if (i >= *warmup) latencies[t].push_back(us);
    }
  };
  if (*warmup == 0) {
    start = Clock::now();
    started = true;
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < *concurrency; ++t) threads.emplace_back(worker, t);
  for (auto& th : threads) th.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<int64_t> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  std::printf("calls=%lld rows_per_call=%lld concurrency=%lld errors=%lld\n",
              static_cast<long long>(*calls), static_cast<long long>(*rows_per_call),
              static_cast<long long>(*concurrency), static_cast<long long>(errors.load()));
  std::printf("latency_us p50=%.0f p99=%.0f p99.9=%.0f max=%lld\n", Percentile(all, 0.50),
              Percentile(all, 0.99), Percentile(all, 0.999),
              static_cast<long long>(all.empty() ? 0 : all.back()));
  std::printf("throughput calls_per_s=%.0f entity_rows_per_s=%.0f\n", all.size() / seconds,
              all.size() * *rows_per_call / seconds);
  if (errors.load() > 0) return Fail("first error: " + first_error);
  return 0;
}
