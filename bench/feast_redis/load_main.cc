// quiver-bench-redis-load: loads a quiver-bench-gen dataset into Redis in
// Feast's online layout (see quiver/bench/feast_redis/loader.h).
//
//   quiver-bench-redis-load --data DIR --port P [--host 127.0.0.1] [--project bench]
//       [--batch 1000] [--duckdb-threads 0]
//
// Prints `redis_load entities=N views=25 seconds=S used_memory_mb=M`.
#include <cstdio>
#include <string>

#include "quiver/bench/feast_redis/loader.h"
#include "quiver/runtime/runtime.h"

namespace {

int Fail(const std::string& msg) {
  std::fprintf(stderr, "quiver-bench-redis-load: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  auto flags = quiver::runtime::Flags::Parse(
      argc, argv, 1, {"data", "host", "port", "project", "batch", "duckdb-threads"});
  if (!flags.ok()) return Fail(std::string(flags.status().message()));
  auto port = flags->GetInt("port", 6379);
  auto batch = flags->GetInt("batch", 1000);
  auto threads = flags->GetInt("duckdb-threads", 0);
  for (const auto* v : {&port, &batch, &threads}) {
    if (!v->ok()) return Fail(std::string(v->status().message()));
  }
  if (!flags->positional().empty()) return Fail("unexpected argument " + flags->positional()[0]);
  if (!flags->Has("data")) return Fail("--data DIR is required");
  if (*port < 1 || *port > 65535) return Fail("--port must be in 1..65535");
  quiver::bench::feast::LoadOptions options;
  options.data_dir = flags->Get("data");
  options.host = flags->Get("host", "127.0.0.1");
  options.port = static_cast<int>(*port);
  options.project = flags->Get("project", "bench");
  options.batch_commands = static_cast<int>(*batch);
  options.duckdb_threads = static_cast<int>(*threads);
  auto result = quiver::bench::feast::LoadFeastRedis(options);
  if (!result.ok()) return Fail(std::string(result.status().message()));
  std::printf("redis_load entities=%lld views=%d seconds=%.2f used_memory_mb=%.1f\n",
              static_cast<long long>(result->entities), result->views, result->seconds,
              result->used_memory_mb);
  return 0;
}
