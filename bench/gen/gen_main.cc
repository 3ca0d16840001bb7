// quiver-bench-gen: writes the benchmark dataset (see
// quiver/bench/gen/dataset.h).
//
//   quiver-bench-gen --entities N --out DIR [--seed S] [--now-us T] [--parallel-views 2]
//
// Prints `gen entities=N views=25 features=250 rows=R seconds=S dir=DIR`.
#include <cstdio>
#include <string>

#include "quiver/bench/gen/dataset.h"
#include "quiver/runtime/runtime.h"

namespace {

int Fail(const std::string& msg) {
  std::fprintf(stderr, "quiver-bench-gen: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  auto flags = quiver::runtime::Flags::Parse(
      argc, argv, 1, {"entities", "out", "seed", "now-us", "parallel-views"});
  if (!flags.ok()) return Fail(std::string(flags.status().message()));
  auto entities = flags->GetInt("entities", 0);
  auto seed = flags->GetInt("seed", 1);
  auto now_us = flags->GetInt("now-us", 0);
  auto parallel = flags->GetInt("parallel-views", 2);
  for (const auto* v : {&entities, &seed, &now_us, &parallel}) {
    if (!v->ok()) return Fail(std::string(v->status().message()));
  }
  if (!flags->positional().empty()) return Fail("unexpected argument " + flags->positional()[0]);
  if (*seed < 0) return Fail("--seed must be >= 0");
  quiver::bench::GenOptions options;
  options.entities = *entities;
  options.out_dir = flags->Get("out");
  options.seed = static_cast<uint64_t>(*seed);
  if (flags->Has("now-us")) options.now_us = *now_us;
  options.parallel_views = static_cast<int>(*parallel);
  auto result = quiver::bench::GenerateDataset(options);
  if (!result.ok()) return Fail(std::string(result.status().message()));
  std::printf("gen entities=%lld views=%d features=%d rows=%lld seconds=%.2f dir=%s\n",
              static_cast<long long>(options.entities), quiver::bench::kViews,
              quiver::bench::kViews * quiver::bench::kFeaturesPerView,
              static_cast<long long>(result->rows), result->seconds, result->dir.c_str());
  return 0;
}
