// quiver-bench-lookup: Quiver vs Feast-on-Redis, same rows, same client load,
// one run. Used by bench/run; see bench/README.md.
//
//   quiver-bench-lookup --coordinator HOST:PORT --redis HOST:PORT --entities N
//       [--workloads 1x50,1x250,10x50,100x50] [--concurrency 1,4,16]
//       [--duration-ms 5000] [--warmup-ms 1000] [--open-threads 16]
//       [--open-fraction 0.5] [--verify-calls 200] [--deadline-ms 1000]
//       [--systems quiver,redis] [--out FILE.json] [--plot-data FILE.tsv]
//       [--label TEXT] [--hedge on|off]
//
// 1. Verifies: --verify-calls random calls per workload must give equal
//    tables from both systems (exit 1 otherwise).
// 2. Closed loop per workload, system and concurrency.
// 3. Open loop per workload at one offered rate for both systems:
//    open_fraction × the lower of the two systems' best closed-loop rates.
// Prints one line per run, then
//   ratio_p99_100x50=… ratio_p99_1x50=… ratio_qps_100x50=… ratio_qps_1x250=… ratio_qps_1x50=…
// where p99 ratios come from the open loop (same offered load) and QPS ratios
// from the best closed-loop rate of each system. Exit 1 on a failed call.
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "load.h"
#include "quiver/runtime/runtime.h"
#include "targets.h"

namespace quiver::bench {
namespace {

struct RunRecord {
  std::string workload, system, mode;  // mode: closed | open
  int concurrency = 0;
  double offered_rate = 0;  // open loop only. unit: calls/s
  int rows = 0;
  LoadResult result;
};

int Fail(const std::string& msg) {
  std::fprintf(stderr, "quiver-bench-lookup: %s\n", msg.c_str());
  return 1;
}

absl::StatusOr<std::vector<int>> ParseInts(const std::string& text) {
  std::vector<int> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int v = 0;
    if (!absl::SimpleAtoi(part, &v) || v < 1) {
      return absl::InvalidArgumentError(absl::StrCat("not a positive integer: '", part, "'"));
    }
    out.push_back(v);
  }
  if (out.empty()) return absl::InvalidArgumentError("empty list");
  return out;
}

absl::StatusOr<std::pair<std::string, int>> ParseHostPort(const std::string& text) {
  const size_t colon = text.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(text.substr(colon + 1), &port) ||
      port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("not host:port: '", text, "'"));
  }
  return std::make_pair(text.substr(0, colon), port);
}

// Entity ids of call `seq`: uniform in 1..n, the same for both systems.
void IdsFor(uint64_t seq, int rows, int64_t n, std::vector<int64_t>* ids) {
  std::mt19937_64 rng(seq * 0x9E3779B97F4A7C15ull + 17);
  ids->resize(rows);
  for (int i = 0; i < rows; ++i) (*ids)[i] = 1 + static_cast<int64_t>(rng() % n);
}

std::string Describe(const RunRecord& r) {
  const LoadResult& x = r.result;
  return absl::StrCat("run workload=", r.workload, " system=", r.system, " mode=", r.mode,
                      " concurrency=", r.concurrency,
                      r.mode == "open" ? absl::StrCat(" offered_per_s=", static_cast<int64_t>(r.offered_rate)) : "",
                      " calls=", x.latencies_us.size(), " errors=", x.errors,
                      " p50_us=", x.Percentile(0.5), " p99_us=", x.Percentile(0.99),
                      " p999_us=", x.Percentile(0.999), " max_us=",
                      x.latencies_us.empty() ? 0 : x.latencies_us.back(),
                      " calls_per_s=", static_cast<int64_t>(x.CallsPerSecond()),
                      " rows_per_s=", static_cast<int64_t>(x.CallsPerSecond() * r.rows));
}

std::string Json(const std::vector<RunRecord>& runs, const std::map<std::string, double>& ratios,
                 const std::string& label, int64_t entities) {
  std::string out = absl::StrCat("{\n  \"label\": \"", label, "\",\n  \"entities\": ", entities,
                                 ",\n  \"ratios\": {");
  bool first = true;
  for (const auto& [k, v] : ratios) {
    absl::StrAppend(&out, first ? "" : ",", "\n    \"", k, "\": ", v);
    first = false;
  }
  absl::StrAppend(&out, "\n  },\n  \"runs\": [");
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunRecord& r = runs[i];
    const LoadResult& x = r.result;
    absl::StrAppend(&out, i ? "," : "", "\n    {\"workload\": \"", r.workload, "\", \"system\": \"",
                    r.system, "\", \"mode\": \"", r.mode, "\", \"concurrency\": ", r.concurrency,
                    ", \"offered_per_s\": ", r.offered_rate, ", \"rows_per_call\": ", r.rows,
                    ", \"calls\": ", x.latencies_us.size(), ", \"errors\": ", x.errors,
                    ", \"p50_us\": ", x.Percentile(0.5), ", \"p99_us\": ", x.Percentile(0.99),
                    ", \"p999_us\": ", x.Percentile(0.999), ", \"calls_per_s\": ",
                    x.CallsPerSecond(), ", \"rows_per_s\": ", x.CallsPerSecond() * r.rows, "}");
  }
  absl::StrAppend(&out, "\n  ]\n}\n");
  return out;
}

// Compares both systems on random calls. Returns the number of differing values.
absl::StatusOr<int64_t> Verify(const Workload& w, Target& quiver, Target& redis, int calls,
                               int64_t entities, int64_t* compared) {
  std::vector<int64_t> ids;
  int64_t mismatches = 0;
  for (int c = 0; c < calls; ++c) {
    IdsFor(1'000'000'000ull + c, w.rows, entities, &ids);
    Table a, b;
    if (absl::Status s = quiver.Lookup(w, ids, &a); !s.ok()) return s;
    if (absl::Status s = redis.Lookup(w, ids, &b); !s.ok()) return s;
    if (a.size() != b.size()) return absl::InternalError("tables differ in row count");
    for (size_t r = 0; r < a.size(); ++r) {
      if (a[r].size() != b[r].size()) return absl::InternalError("tables differ in width");
      for (size_t f = 0; f < a[r].size(); ++f) {
        ++*compared;
        if (a[r][f] == b[r][f]) continue;
        if (++mismatches <= 5) {
          std::string qa, rb;
          AppendJson(a[r][f], &qa);
          AppendJson(b[r][f], &rb);
          std::fprintf(stderr, "mismatch workload=%s entity=%" PRId64 " feature=%s quiver=%s redis=%s\n",
                       w.name.c_str(), ids[r], w.features[f].ref.c_str(), qa.c_str(), rb.c_str());
        }
      }
    }
  }
  return mismatches;
}

int Main(int argc, char** argv) {
  auto flags = runtime::Flags::Parse(
      argc, argv, 1,
      {"coordinator", "redis", "project", "entities", "workloads", "concurrency", "duration-ms",
       "warmup-ms", "open-threads", "open-fraction", "verify-calls", "deadline-ms", "systems",
       "out", "plot-data", "label", "hedge", "log-level"});
  if (!flags.ok()) return Fail(std::string(flags.status().message()));
  (void)runtime::SetupLogging("bench", flags->Get("log-level", "warn"));
  auto entities = flags->GetInt("entities", 0);
  auto duration = flags->GetInt("duration-ms", 5000);
  auto warmup = flags->GetInt("warmup-ms", 1000);
  auto open_threads = flags->GetInt("open-threads", 16);
  auto verify_calls = flags->GetInt("verify-calls", 200);
  auto deadline = flags->GetInt("deadline-ms", 1000);
  for (const auto* v : {&entities, &duration, &warmup, &open_threads, &verify_calls, &deadline}) {
    if (!v->ok()) return Fail(std::string(v->status().message()));
  }
  double open_fraction = 0.5;
  if (!absl::SimpleAtod(flags->Get("open-fraction", "0.5"), &open_fraction) ||
      open_fraction <= 0 || open_fraction > 1) {
    return Fail("--open-fraction must be in (0, 1]");
  }
  if (*entities < 1 || *duration < 1 || *open_threads < 1) {
    return Fail("--entities, --duration-ms and --open-threads must be >= 1");
  }
  auto concurrency = ParseInts(flags->Get("concurrency", "1,4,16"));
  if (!concurrency.ok()) return Fail(absl::StrCat("--concurrency: ", concurrency.status().message()));
  const std::vector<std::string> systems =
      absl::StrSplit(flags->Get("systems", "quiver,redis"), ',', absl::SkipEmpty());
  const bool with_redis = std::find(systems.begin(), systems.end(), "redis") != systems.end();
  const bool with_quiver = std::find(systems.begin(), systems.end(), "quiver") != systems.end();

  client::ClientOptions opts;
  opts.coordinator_address = flags->Get("coordinator", "127.0.0.1:6000");
  opts.hedged_reads = flags->Get("hedge", "on") != "off";
  auto client = client::Client::Create(opts);
  if (!client.ok()) return Fail(client.status().ToString());
  auto registry = (*client)->registry();

  std::vector<Workload> workloads;
  for (absl::string_view spec :
       absl::StrSplit(flags->Get("workloads", "1x50,1x250,10x50,100x50"), ',', absl::SkipEmpty())) {
    std::vector<std::string> parts = absl::StrSplit(spec, 'x');
    Workload w;
    w.name = std::string(spec);
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &w.rows) || w.rows < 1) {
      return Fail(absl::StrCat("workload '", std::string(spec), "' is not ROWSxFEATURES"));
    }
    w.service = "bench_" + parts[1];
    auto features = registry->ResolveService(w.service);
    if (!features.ok()) return Fail(absl::StrCat("workload ", w.name, ": ", features.status().ToString()));
    w.features = *std::move(features);
    workloads.push_back(std::move(w));
  }

  const auto call_deadline = std::chrono::milliseconds(*deadline);
  const int max_threads = std::max(static_cast<int>(*open_threads), *std::max_element(concurrency->begin(), concurrency->end()));
  std::vector<std::unique_ptr<Target>> quiver_targets, redis_targets;
  for (int i = 0; i < max_threads; ++i) {
    quiver_targets.push_back(NewQuiverTarget(client->get(), call_deadline));
  }
  if (with_redis) {
    auto hp = ParseHostPort(flags->Get("redis"));
    if (!hp.ok()) return Fail(absl::StrCat("--redis: ", hp.status().message()));
    for (int i = 0; i < max_threads; ++i) {
      auto t = NewRedisTarget(hp->first, hp->second, flags->Get("project", "bench"), workloads);
      if (!t.ok()) return Fail(t.status().ToString());
      redis_targets.push_back(*std::move(t));
    }
  }

  if (with_redis && with_quiver && *verify_calls > 0) {
    for (const Workload& w : workloads) {
      int64_t compared = 0;
      auto mismatches = Verify(w, *quiver_targets[0], *redis_targets[0],
                               static_cast<int>(*verify_calls), *entities, &compared);
      if (!mismatches.ok()) return Fail(absl::StrCat("verify ", w.name, ": ", mismatches.status().ToString()));
      std::printf("verify workload=%s calls=%" PRId64 " values=%" PRId64 " mismatches=%" PRId64 "\n",
                  w.name.c_str(), *verify_calls, compared, *mismatches);
      std::fflush(stdout);
      if (*mismatches > 0) return Fail("Quiver and Redis disagree");
    }
  }

  std::vector<RunRecord> runs;
  std::map<std::string, double> ratios;
  int64_t errors = 0;
  auto run = [&](const Workload& w, const std::string& system, const std::string& mode, int threads,
                 double rate) {
    auto& targets = system == "quiver" ? quiver_targets : redis_targets;
    std::vector<std::vector<int64_t>> ids(threads);
    CallFn fn = [&](int worker, uint64_t seq) {
      IdsFor(seq, w.rows, *entities, &ids[worker]);
      return targets[worker]->Lookup(w, ids[worker], nullptr);
    };
    RunRecord r{w.name, system, mode, threads, rate, w.rows, {}};
    r.result = mode == "closed"
                   ? RunClosedLoop(threads, std::chrono::milliseconds(*warmup),
                                   std::chrono::milliseconds(*duration), fn)
                   : RunOpenLoop(threads, rate, std::chrono::milliseconds(*warmup),
                                 std::chrono::milliseconds(*duration), fn);
    errors += r.result.errors;
    std::printf("%s\n", Describe(r).c_str());
    if (r.result.errors > 0) std::printf("  first_error: %s\n", r.result.first_error.c_str());
    std::fflush(stdout);
    runs.push_back(std::move(r));
    return runs.back().result;
  };
  for (const Workload& w : workloads) {
    std::map<std::string, double> best;
    for (int c : *concurrency) {
      for (const std::string& system : systems) {
        const LoadResult& x = run(w, system, "closed", c, 0);
        best[system] = std::max(best[system], x.CallsPerSecond());
      }
    }
    double rate = 0;
    for (const auto& [system, qps] : best) rate = rate == 0 ? qps : std::min(rate, qps);
    rate *= open_fraction;
    std::map<std::string, int64_t> open_p99;
    if (rate > 0) {
      for (const std::string& system : systems) {
        open_p99[system] = run(w, system, "open", static_cast<int>(*open_threads), rate).Percentile(0.99);
      }
    }
    if (with_redis && with_quiver && best["redis"] > 0 && open_p99["redis"] > 0) {
      ratios["ratio_p99_" + w.name] = static_cast<double>(open_p99["quiver"]) / open_p99["redis"];
      ratios["ratio_qps_" + w.name] = best["quiver"] / best["redis"];
    }
  }

  if (flags->Has("out")) {
    std::ofstream out(flags->Get("out"));
    out << Json(runs, ratios, flags->Get("label"), *entities);
    if (!out) return Fail("cannot write " + flags->Get("out"));
  }
  if (flags->Has("plot-data")) {
    std::ofstream out(flags->Get("plot-data"));
    out << "# workload system mode concurrency calls_per_s p50_us p99_us p999_us\n";
    for (const RunRecord& r : runs) {
      out << r.workload << ' ' << r.system << ' ' << r.mode << ' ' << r.concurrency << ' '
          << r.result.CallsPerSecond() << ' ' << r.result.Percentile(0.5) << ' '
          << r.result.Percentile(0.99) << ' ' << r.result.Percentile(0.999) << '\n';
    }
    if (!out) return Fail("cannot write " + flags->Get("plot-data"));
  }
  std::vector<std::string> all;
  for (const auto& [k, v] : ratios) all.push_back(absl::StrCat(k, "=", absl::SixDigits(v)));
  std::printf("ratios %s\n", absl::StrJoin(all, " ").c_str());
  auto ratio = [&](const std::string& k) {
    auto it = ratios.find(k);
    return it == ratios.end() ? std::string("n/a") : std::string(absl::StrCat(absl::SixDigits(it->second)));
  };
  std::printf("ratio_p99_100x50=%s ratio_p99_1x50=%s ratio_qps_100x50=%s ratio_qps_1x250=%s ratio_qps_1x50=%s\n",
              ratio("ratio_p99_100x50").c_str(), ratio("ratio_p99_1x50").c_str(),
              ratio("ratio_qps_100x50").c_str(), ratio("ratio_qps_1x250").c_str(),
              ratio("ratio_qps_1x50").c_str());
  if (errors > 0) return Fail(absl::StrCat(errors, " calls failed"));
  return 0;
}

}  // namespace
}  // namespace quiver::bench

int main(int argc, char** argv) { return quiver::bench::Main(argc, argv); }
