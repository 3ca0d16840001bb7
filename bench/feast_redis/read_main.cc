// quiver-bench-redis-read: a first look at FeastRedisReader latency, closed
// loop on one thread (the lead's driver does the real comparison).
//
//   quiver-bench-redis-read --port P --entities N [--host 127.0.0.1]
//       [--features 50|250] [--rows 1] [--calls 10000] [--warmup 500] [--seed 1]
//
// Entity ids are drawn uniformly from 1..N. Prints
// `redis_read rows=R features=F calls=C p50_us=.. p99_us=.. mean_us=..`.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "quiver/bench/feast_redis/reader.h"
#include "quiver/bench/gen/dataset.h"
#include "quiver/runtime/runtime.h"

namespace {

int Fail(const std::string& msg) {
  std::fprintf(stderr, "quiver-bench-redis-read: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  namespace qb = quiver::bench;
  auto flags = quiver::runtime::Flags::Parse(
      argc, argv, 1, {"host", "port", "entities", "features", "rows", "calls", "warmup", "seed"});
  if (!flags.ok()) return Fail(std::string(flags.status().message()));
  auto port = flags->GetInt("port", 6379);
  auto entities = flags->GetInt("entities", 0);
  auto features = flags->GetInt("features", 50);
  auto rows = flags->GetInt("rows", 1);
  auto calls = flags->GetInt("calls", 10000);
  auto warmup = flags->GetInt("warmup", 500);
  auto seed = flags->GetInt("seed", 1);
  for (const auto* v : {&port, &entities, &features, &rows, &calls, &warmup, &seed}) {
    if (!v->ok()) return Fail(std::string(v->status().message()));
  }
  if (*entities < 1 || *rows < 1 || *calls < 1 || *warmup < 0) {
    return Fail("--entities, --rows and --calls must be >= 1");
  }
  if (*features != 50 && *features != 250) return Fail("--features must be 50 or 250");
  std::vector<qb::feast::FeastFeatureRef> refs;
  for (const auto& [v, f] :
       qb::ServiceFeatures(static_cast<int>(*features / qb::kFeaturesPerView))) {
    const auto& view = qb::BenchViews()[v];
    refs.push_back({view.name, view.features[f].name, view.features[f].type});
  }
  qb::feast::FeastRedisReader reader;
  if (auto st = reader.Connect(flags->Get("host", "127.0.0.1"), static_cast<int>(*port),
                               qb::kProject, refs);
      !st.ok()) {
    return Fail(std::string(st.message()));
  }
  std::mt19937_64 rng(static_cast<uint64_t>(*seed));
  std::uniform_int_distribution<int64_t> pick(1, *entities);
  std::vector<int64_t> ids(*rows);
  std::vector<int64_t> latencies_ns;
  latencies_ns.reserve(*calls);
  qb::feast::FeastReadResult out;
  for (int64_t i = 0; i < *warmup + *calls; ++i) {
    for (auto& id : ids) id = pick(rng);
    const auto t0 = std::chrono::steady_clock::now();
    if (auto st = reader.Read(ids, &out); !st.ok()) return Fail(std::string(st.message()));
    const auto t1 = std::chrono::steady_clock::now();
    if (i >= *warmup) latencies_ns.push_back((t1 - t0).count());
  }
  std::sort(latencies_ns.begin(), latencies_ns.end());
  double sum = 0;
  for (int64_t ns : latencies_ns) sum += static_cast<double>(ns);
  auto pct = [&](double p) {
    return latencies_ns[std::min(
               latencies_ns.size() - 1,
               static_cast<size_t>(p * static_cast<double>(latencies_ns.size())))] /
           1000.0;
  };
  std::printf(
      "redis_read rows=%lld features=%lld calls=%lld p50_us=%.1f p99_us=%.1f mean_us=%.1f\n",
      static_cast<long long>(*rows), static_cast<long long>(*features),
      static_cast<long long>(*calls), pct(0.5), pct(0.99),
      sum / static_cast<double>(latencies_ns.size()) / 1000.0);
  return 0;
}
