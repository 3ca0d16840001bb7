// quiver-chaos: the measuring half of the chaos drills (chaos/run).
//
//   quiver-chaos load --coordinator HOST:PORT --users N --seconds S
//                     [--threads T] [--deadline-ms D] [--window-file F]
//                     [--check-values 1|0] [--stop-file F] [--samples-file F]
//     Steady lookups through the C++ client: each call reads
//     user_stats:clicks and user_stats:score of one random user u0..u<N-1>
//     (every one of them must be PRESENT). Prints
//       load calls=<n> failed=<n> wrong=<n> p99_us=<n> window_calls=<n> window_failed=<n>
//            window_wrong=<n> window_p99_us=<n>
//            [steady_calls=<n> steady_failed=<n> steady_wrong=<n> steady_p99_us=<n>]
//     where a call fails if it returns an error or any row is not PRESENT,
//     and the window is the fault: a line "start_ms end_ms" (Unix ms) in F,
//     read at the end (absent: the whole run). An optional second line
//     "start_ms end_ms" is a steady-state window to compare with (the
//     steady_ fields). Latency counts from each call's start. --stop-file:
//     the load also ends (early) once F exists (polled every 50 ms).
//     A call is wrong (counted apart from failed) when it answers PRESENT
//     with values the drills never wrote for that user: the drills' rows
//     (chaos/run push_csv) hold, for user u<i> and version v, clicks =
//     i*10 + v and score = i + v + 0.5, so an answer is right only for one
//     integer v in [1, 1000000] (another user's row never fits: both
//     equations give its index). --check-values 0 turns this off, for drills
//     that load other data (kill-during-materialization, backup-restore).
//     --samples-file: every call as a line "start_ms latency_us ok" (Unix
//     ms, µs, 1|0), to set the slow calls against the processes' logs.
//
//   quiver-chaos stall --pid P --stop-ms S --period-ms T --seconds D
//     Stalls process P (a slow node): SIGSTOP, S ms later SIGCONT, every T
//     ms, for D seconds; always leaves P running (SIGCONT) when it ends,
//     also on SIGINT/SIGTERM. Prints
//       stall pauses=<n> stopped_ms=<n>
//
//   quiver-chaos check --coordinator HOST:PORT --expected FILE.csv
//     Reads every row of FILE.csv (user_id,ts,clicks,score, as pushed) from
//     EVERY replica of its partition directly (NodeService.Get per node,
//     not through the client's routing) and prints
//       check rows=<n> reads=<n> lost_rows=<n> short_partitions=<n>
//     where a row is lost if some replica that serves reads (UP, JOINING,
//     LEAVING) lacks it or holds other values, and short_partitions counts
//     partitions with fewer such owners than the replication factor. A pass
//     refused as stale (ABORTED: the map changed under it) starts over on a
//     fresh map, up to 5 times.
//
//   quiver-chaos wait --coordinator HOST:PORT --timeout-ms T
//                     (--address A --state S | --moves-active 1 | --not-down N)
//     Looks at ListNodes every 25 ms until the node at address A is in state
//     S (UP, DOWN, JOINING, LEAVING, ...), or a move runs (moves_active > 0),
//     or at least N nodes are known and not DOWN; a coordinator that does not
//     answer (restarting) is looked at again. Prints
//       wait ms=<n>
//     (from the command's start) and exits 0; exits 2 after T ms without it.
//     One process for the whole wait: a quiverctl process per look costs
//     tens of ms of CPU, which on a 2-core machine the lookups whose p99 a
//     drill compares would pay.
//
// Exit status: 0 when the command ran (the drill judges the numbers), 1 on a
// usage or setup error (and 2 for wait's timeout).
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "quiver.grpc.pb.h"
#include "quiver/client/client.h"
#include "quiver/keys/entity_key.h"

namespace quiver::chaos {
namespace {

using Clock = std::chrono::steady_clock;

int Fail(const std::string& message) {
  std::fprintf(stderr, "quiver-chaos: %s\n", message.c_str());
  return 1;
}

std::map<std::string, std::string> ParseFlags(int argc, char** argv, int first) {
  std::map<std::string, std::string> flags;
  for (int i = first; i + 1 < argc; i += 2) {
    std::string name = argv[i];
    if (name.rfind("--", 0) == 0) flags[name.substr(2)] = argv[i + 1];
  }
  return flags;
}

int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t P99(std::vector<int64_t> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(0.99 * static_cast<double>(v.size())))];
}

struct Sample {
  int64_t start_ms;
  int64_t latency_us;
  bool ok;
  bool wrong;
};

// Versions a drill may push (chaos/run push_csv): v in [1, kMaxVersion].
constexpr int64_t kMaxVersion = 1000000;

// Whether a PRESENT answer for user u<user> is a row the drills wrote:
// clicks = user*10 + v and score = user + v + 0.5 for one v in
// [1, kMaxVersion]. Sets *why otherwise.
bool RightValues(int64_t user, const client::FeatureValue& clicks,
                 const client::FeatureValue& score, std::string* why) {
  const int64_t* c = std::get_if<int64_t>(&clicks.value.data);
  const double* d = std::get_if<double>(&score.value.data);
  if (c == nullptr || d == nullptr) {
    *why = "clicks or score of another type";
    return false;
  }
  const int64_t v = *c - user * 10;
  // The values are small integers and halves: exact in a double.
  if (v < 1 || v > kMaxVersion || *d != static_cast<double>(user + v) + 0.5) {
    char text[160];
    std::snprintf(text, sizeof text, "clicks=%lld score=%.3f fit no version (v=%lld wants score=%.1f)",
                  static_cast<long long>(*c), *d, static_cast<long long>(v),
                  static_cast<double>(user + v) + 0.5);
    *why = text;
    return false;
  }
  return true;
}

int Load(const std::map<std::string, std::string>& f) {
  int64_t users = 0, seconds = 0, threads = 4, deadline_ms = 1000;
  if (!f.count("coordinator") || !absl::SimpleAtoi(f.count("users") ? f.at("users") : "", &users) ||
      !absl::SimpleAtoi(f.count("seconds") ? f.at("seconds") : "", &seconds) || users <= 0 ||
      seconds <= 0) {
    return Fail("load needs --coordinator, --users N and --seconds S");
  }
  if (f.count("threads") && !absl::SimpleAtoi(f.at("threads"), &threads)) return Fail("--threads");
  if (f.count("deadline-ms") && !absl::SimpleAtoi(f.at("deadline-ms"), &deadline_ms)) {
    return Fail("--deadline-ms");
  }
  bool check_values = true;
  if (f.count("check-values")) {
    const std::string& v = f.at("check-values");
    if (v != "0" && v != "1") return Fail("--check-values 1|0");
    check_values = v == "1";
  }
  client::ClientOptions opts;
  opts.coordinator_address = f.at("coordinator");
  auto client = client::Client::Create(opts);
  if (!client.ok()) return Fail(client.status().ToString());
  std::shared_ptr<client::Client> shared(std::move(*client));
  const auto end = Clock::now() + std::chrono::seconds(seconds);
  std::atomic<bool> stop{false};
  std::thread stop_watch;
  if (f.count("stop-file")) {
    stop_watch = std::thread([&, path = f.at("stop-file")] {
      while (!stop && Clock::now() < end) {
        std::error_code ec;
        if (std::filesystem::exists(path, ec)) stop = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }
  std::vector<std::vector<Sample>> samples(static_cast<size_t>(threads));
  std::atomic<int64_t> wrong_printed{0};  // stderr gets the first 50 wrong answers
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<uint64_t>(t) * 7919 + 1);
      while (Clock::now() < end && !stop) {
        const auto user = static_cast<int64_t>(rng() % static_cast<uint64_t>(users));
        const std::string user_id = absl::StrCat("u", user);
        client::OnlineRequest req;
        req.features = {"user_stats:clicks", "user_stats:score"};
        req.entity_rows = {{{"user_id", Value::String(user_id)}}};
        req.deadline = std::chrono::milliseconds(deadline_ms);
        const int64_t start_ms = UnixMs();
        const auto t0 = Clock::now();
        auto resp = shared->GetOnlineFeatures(req);
        const int64_t us =
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
        bool ok = resp.ok() && resp->rows.size() == 1 && resp->rows[0].size() == 2;
        if (ok) {
          for (const auto& v : resp->rows[0]) ok = ok && v.status == client::FeatureStatus::kPresent;
        }
        bool wrong = false;
        std::string why;
        if (ok && check_values) {
          // Columns as the response names them (feature_refs).
          const auto& refs = resp->feature_refs;
          const size_t c = static_cast<size_t>(
              std::find(refs.begin(), refs.end(), "user_stats:clicks") - refs.begin());
          const size_t d = static_cast<size_t>(
              std::find(refs.begin(), refs.end(), "user_stats:score") - refs.begin());
          if (c >= 2 || d >= 2) {
            wrong = true;
            why = "no user_stats:clicks / user_stats:score column";
          } else {
            wrong = !RightValues(user, resp->rows[0][c], resp->rows[0][d], &why);
          }
        }
        // Each line starts with the call's start (Unix ms), to set it
        // against the drill's and the processes' logs.
        if (!ok && resp.ok()) {
          std::fprintf(stderr, "quiver-chaos: %lld %s not PRESENT\n",
                       static_cast<long long>(start_ms), user_id.c_str());
        } else if (!ok) {
          std::fprintf(stderr, "quiver-chaos: %lld %s\n", static_cast<long long>(start_ms),
                       resp.status().ToString().c_str());
        } else if (wrong && wrong_printed.fetch_add(1) < 50) {
          std::fprintf(stderr, "quiver-chaos: %lld %s wrong answer: %s\n",
                       static_cast<long long>(start_ms), user_id.c_str(), why.c_str());
        }
        samples[static_cast<size_t>(t)].push_back({start_ms, us, ok, wrong});
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  for (auto& w : workers) w.join();
  stop = true;
  if (stop_watch.joinable()) stop_watch.join();
  // Window 0: the fault; window 1 (optional): the steady state before it.
  int64_t from[2] = {0, 0}, to[2] = {INT64_MAX, INT64_MAX};
  bool has_steady = false;
  if (f.count("window-file")) {
    std::ifstream in(f.at("window-file"));
    if (!(in >> from[0] >> to[0])) from[0] = 0, to[0] = INT64_MAX;
    has_steady = static_cast<bool>(in >> from[1] >> to[1]);
  }
  int64_t calls = 0, failed = 0, wrong = 0, wcalls[2] = {0, 0}, wfailed[2] = {0, 0},
          wwrong[2] = {0, 0};
  std::vector<int64_t> lat, wlat[2];
  for (const auto& per : samples) {
    for (const Sample& s : per) {
      ++calls;
      failed += !s.ok;
      wrong += s.wrong;
      lat.push_back(s.latency_us);
      for (int w = 0; w < 2; ++w) {
        if (s.start_ms >= from[w] && s.start_ms <= to[w]) {
          ++wcalls[w];
          wfailed[w] += !s.ok;
          wwrong[w] += s.wrong;
          wlat[w].push_back(s.latency_us);
        }
      }
    }
  }
  if (f.count("samples-file")) {
    std::ofstream out(f.at("samples-file"));
    for (const auto& per : samples) {
      for (const Sample& s : per) out << s.start_ms << ' ' << s.latency_us << ' ' << s.ok << '\n';
    }
    if (!out) return Fail("cannot write " + f.at("samples-file"));
  }
  std::string line = absl::StrCat(
      "load calls=", calls, " failed=", failed, " wrong=", wrong, " p99_us=", P99(lat),
      " window_calls=", wcalls[0], " window_failed=", wfailed[0], " window_wrong=", wwrong[0],
      " window_p99_us=", P99(wlat[0]));
  if (has_steady) {
    absl::StrAppend(&line, " steady_calls=", wcalls[1], " steady_failed=", wfailed[1],
                    " steady_wrong=", wwrong[1], " steady_p99_us=", P99(wlat[1]));
  }
  if (!check_values) absl::StrAppend(&line, " values_checked=0");
  std::printf("%s\n", line.c_str());
  return 0;
}

std::atomic<bool> g_stop_stall{false};

int Stall(const std::map<std::string, std::string>& f) {
  int64_t pid = 0, stop_ms = 0, period_ms = 0, seconds = 0;
  if (!absl::SimpleAtoi(f.count("pid") ? f.at("pid") : "", &pid) ||
      !absl::SimpleAtoi(f.count("stop-ms") ? f.at("stop-ms") : "", &stop_ms) ||
      !absl::SimpleAtoi(f.count("period-ms") ? f.at("period-ms") : "", &period_ms) ||
      !absl::SimpleAtoi(f.count("seconds") ? f.at("seconds") : "", &seconds) || pid <= 1 ||
      stop_ms <= 0 || period_ms <= stop_ms || seconds <= 0) {
    return Fail("stall needs --pid P --stop-ms S --period-ms T (> S) --seconds D");
  }
  const pid_t target = static_cast<pid_t>(pid);
  if (kill(target, 0) != 0) return Fail(absl::StrCat("no process ", pid));
  // A stall interrupted half-way must not leave the node stopped.
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop_stall = true; };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds(seconds);
  int64_t pauses = 0;
  Clock::duration stopped{};
  // Periods are laid on a fixed grid from the start, so a late wake-up does
  // not stretch the schedule.
  for (auto period = start; period < end && !g_stop_stall; period += std::chrono::milliseconds(period_ms)) {
    std::this_thread::sleep_until(period);
    const auto t0 = Clock::now();
    if (kill(target, SIGSTOP) != 0) break;
    ++pauses;
    std::this_thread::sleep_until(period + std::chrono::milliseconds(stop_ms));
    kill(target, SIGCONT);
    stopped += Clock::now() - t0;
  }
  kill(target, SIGCONT);
  std::printf("stall pauses=%lld stopped_ms=%lld\n", static_cast<long long>(pauses),
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(stopped).count()));
  return 0;
}

int Check(const std::map<std::string, std::string>& f) {
  if (!f.count("coordinator") || !f.count("expected")) {
    return Fail("check needs --coordinator and --expected FILE.csv");
  }
  std::ifstream in(f.at("expected"));
  if (!in) return Fail("cannot read " + f.at("expected"));
  struct Row {
    std::string key;
    int64_t clicks;
    double score;
  };
  std::vector<Row> rows;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> cells = absl::StrSplit(line, ',');
    Row r;
    if (cells.size() != 4 || !absl::SimpleAtoi(cells[2], &r.clicks) ||
        !absl::SimpleAtod(cells[3], &r.score)) {
      return Fail("bad expected line: " + line);
    }
    r.key = EncodeEntityKey({{"user_id", Value::String(cells[0])}}).value();
    rows.push_back(std::move(r));
  }
  client::ClientOptions opts;
  opts.coordinator_address = f.at("coordinator");
  auto client = client::Client::Create(opts);
  if (!client.ok()) return Fail(client.status().ToString());
  // A node refuses (ABORTED) a Get stamped with a map older than the
  // partition's ownership it knows: the map changed under the check (a move
  // flipped). Such a pass starts over on a fresh map; a refusal is not a
  // lost row.
  std::vector<bool> lost;
  int64_t reads = 0, short_partitions = 0;
  bool stale = true;
  for (int attempt = 0; attempt < 5 && stale; ++attempt) {
    if (attempt > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      (void)(*client)->Refresh();
    }
    stale = false;
    auto map = (*client)->cluster_map();
    std::map<uint32_t, std::vector<size_t>> per_node;  // replica serving reads -> row indices
    for (size_t i = 0; i < rows.size(); ++i) {
      for (uint32_t node : map->AllReplicasOf(PartitionOf(rows[i].key, map->num_partitions()))) {
        if (map->IsUp(node)) per_node[node].push_back(i);
      }
    }
    // Partitions with fewer owners serving reads (UP, JOINING, LEAVING) than
    // the replication factor (or than the nodes there are).
    short_partitions = 0;
    const uint32_t want_r = std::min<uint32_t>(
        map->proto().replication_factor(),
        static_cast<uint32_t>(std::count_if(
            map->nodes().begin(), map->nodes().end(),
            [](const quiver::v1::NodeInfo& n) { return !n.removed(); })));
    for (uint32_t p = 0; p < map->num_partitions() && map->has_partitions(); ++p) {
      uint32_t serving = 0;
      for (uint32_t node : map->AllReplicasOf(p)) serving += map->IsUp(node);
      short_partitions += serving < want_r;
    }
    lost.assign(rows.size(), false);
    reads = 0;
    for (const auto& [node, idx] : per_node) {
      auto stub = quiver::v1::NodeService::NewStub(
          grpc::CreateChannel(map->AddressOf(node), grpc::InsecureChannelCredentials()));
      for (size_t b = 0; b < idx.size() && !stale; b += 1000) {
        const size_t e = std::min(idx.size(), b + 1000);
        quiver::v1::GetRequest req;
        req.set_epoch(map->epoch());
        auto* lookup = req.add_lookups();
        lookup->set_view("user_stats");
        lookup->add_features("clicks");
        lookup->add_features("score");
        for (size_t k = b; k < e; ++k) lookup->add_entity_keys(rows[idx[k]].key);
        quiver::v1::GetResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        grpc::Status s = stub->Get(&ctx, req, &resp);
        if (s.error_code() == grpc::StatusCode::ABORTED) {
          std::fprintf(stderr, "quiver-chaos: check: node %u refused map epoch %llu (%s); again\n",
                       node, static_cast<unsigned long long>(map->epoch()),
                       s.error_message().c_str());
          stale = true;
          break;
        }
        for (size_t k = b; k < e; ++k) {
          ++reads;
          const Row& want = rows[idx[k]];
          if (!s.ok()) {
            lost[idx[k]] = true;
            continue;
          }
          const auto& got = resp.results(0).rows(static_cast<int>(k - b));
          if (got.status() != quiver::v1::PRESENT || got.values(0).int64_val() != want.clicks ||
              got.values(1).double_val() != want.score) {
            lost[idx[k]] = true;
          }
        }
      }
      if (stale) break;
    }
  }
  if (stale) return Fail("check: the map kept changing under 5 passes");
  std::printf("check rows=%zu reads=%lld lost_rows=%lld short_partitions=%lld\n", rows.size(),
              static_cast<long long>(reads),
              static_cast<long long>(std::count(lost.begin(), lost.end(), true)),
              static_cast<long long>(short_partitions));
  return 0;
}

int Wait(const std::map<std::string, std::string>& f) {
  int64_t timeout_ms = 0, not_down = 0;
  const bool by_state = f.count("address") && f.count("state");
  const bool by_moves = f.count("moves-active") && f.at("moves-active") == "1";
  const bool by_count = f.count("not-down") && absl::SimpleAtoi(f.at("not-down"), &not_down);
  quiver::v1::NodeState want = quiver::v1::NODE_STATE_UNKNOWN;
  if (!f.count("coordinator") ||
      !absl::SimpleAtoi(f.count("timeout-ms") ? f.at("timeout-ms") : "", &timeout_ms) ||
      timeout_ms <= 0 || by_state + by_moves + by_count != 1 ||
      (by_state && !quiver::v1::NodeState_Parse(f.at("state"), &want))) {
    return Fail(
        "wait needs --coordinator, --timeout-ms T and one of --address A --state S, "
        "--moves-active 1, --not-down N");
  }
  const auto start = Clock::now();
  const auto end = start + std::chrono::milliseconds(timeout_ms);
  auto stub = quiver::v1::CoordinatorService::NewStub(
      grpc::CreateChannel(f.at("coordinator"), grpc::InsecureChannelCredentials()));
  std::string seen = "no answer";
  for (;;) {
    quiver::v1::ListNodesResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    const grpc::Status s = stub->ListNodes(&ctx, quiver::v1::ListNodesRequest(), &resp);
    if (s.ok()) {
      int64_t up = 0;
      bool done = false;
      for (const auto& n : resp.nodes()) {
        if (n.node().state() != quiver::v1::DOWN) ++up;
        if (by_state && n.node().address() == f.at("address")) {
          seen = "node " + f.at("address") + " " + quiver::v1::NodeState_Name(n.node().state());
          done = n.node().state() == want;
        }
      }
      if (by_moves) {
        seen = absl::StrCat("moves_active=", resp.rebalance().moves_active());
        done = resp.rebalance().moves_active() > 0;
      }
      if (by_count) {
        seen = absl::StrCat(up, " nodes not DOWN");
        done = up >= not_down;
      }
      if (done) break;
    } else {
      seen = "coordinator: " + s.error_message();
    }
    if (Clock::now() >= end) {
      std::fprintf(stderr, "quiver-chaos: wait: not within %lld ms (last seen: %s)\n",
                   static_cast<long long>(timeout_ms), seen.c_str());
      return 2;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  std::printf("wait ms=%lld\n", static_cast<long long>(waited.count()));
  return 0;
}

}  // namespace
}  // namespace quiver::chaos

int main(int argc, char** argv) {
  if (argc < 2) return quiver::chaos::Fail("usage: quiver-chaos load|check|stall|wait --flag value ...");
  const std::string cmd = argv[1];
  const auto flags = quiver::chaos::ParseFlags(argc, argv, 2);
  if (cmd == "load") return quiver::chaos::Load(flags);
  if (cmd == "check") return quiver::chaos::Check(flags);
  if (cmd == "stall") return quiver::chaos::Stall(flags);
  if (cmd == "wait") return quiver::chaos::Wait(flags);
  return quiver::chaos::Fail("unknown command " + cmd);
}
