// quiver-coordinator: flags, then a CoordinatorServer until SIGINT/SIGTERM.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "quiver/coordinator/server.h"
#include "quiver/runtime/runtime.h"
#include "quiver/security/security.h"

namespace {

int Fail(const absl::Status& s) {
  std::cerr << "quiver-coordinator: " << s.message() << std::endl;
  return 1;
}

absl::StatusOr<quiver::coordinator::ServerOptions> ParseOptions(const quiver::runtime::Flags& f) {
  quiver::coordinator::ServerOptions o;
  if (!f.positional().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", f.positional()[0], "'"));
  }
  o.listen = f.Get("listen", o.listen);
  o.metrics_listen = f.Get("metrics-listen", o.metrics_listen);
  o.coordinator.data_dir = f.Get("data-dir");
  if (o.coordinator.data_dir.empty()) return absl::InvalidArgumentError("--data-dir is required");
  auto partitions = f.GetInt("partitions", 4096);
  auto rf = f.GetInt("replication-factor", 3);
  auto hb = f.GetInt("heartbeat-timeout-ms", 2000);
  auto lease = f.GetInt("lease-ms", 30000);
  auto task_rows = f.GetInt("max-task-rows", 20000000);
  auto moves_per_node = f.GetInt("max-moves-per-node", 128);
  auto drain_ms = f.GetInt("barrier-drain-ms", 20000);
  for (const auto* v : {&partitions, &rf, &hb, &lease, &task_rows, &moves_per_node, &drain_ms}) {
    if (!v->ok()) return v->status();
  }
  if (*partitions <= 0 || *partitions > (1 << 24) || *rf <= 0 || *rf > 255 || *hb <= 0 ||
      *lease <= 0 || *task_rows <= 0) {
    return absl::InvalidArgumentError(
        "--partitions, --replication-factor, --heartbeat-timeout-ms, --lease-ms and "
        "--max-task-rows must be positive "
        "(partitions up to 2^24, replication factor up to 255)");
  }
  o.coordinator.num_partitions = static_cast<uint32_t>(*partitions);
  o.coordinator.replication_factor = static_cast<uint32_t>(*rf);
  o.coordinator.heartbeat_timeout_us = *hb * 1000;
  o.coordinator.lease_us = *lease * 1000;
  o.coordinator.max_task_rows = static_cast<uint64_t>(*task_rows);
  if (*moves_per_node <= 0 || *moves_per_node > 1000000 || *drain_ms <= 0 || *drain_ms > 3600000) {
    return absl::InvalidArgumentError(
        "--max-moves-per-node must be in [1, 1000000] and --barrier-drain-ms in [1, 3600000]");
  }
  o.coordinator.max_moves_per_node = static_cast<uint32_t>(*moves_per_node);
  o.coordinator.barrier_drain_ms = static_cast<uint32_t>(*drain_ms);
  const std::string auto_rebalance = f.Get("auto-rebalance", "true");
  if (auto_rebalance != "true" && auto_rebalance != "false") {
    return absl::InvalidArgumentError("--auto-rebalance must be true or false");
  }
  o.coordinator.auto_rebalance = auto_rebalance == "true";
  const std::string split = f.Get("task-split", "hash");
  if (split != "hash" && split != "rows") {
    return absl::InvalidArgumentError("--task-split must be hash or rows");
  }
  o.coordinator.task_split = split == "hash" ? quiver::coordinator::TaskSplit::kEntityHash
                                             : quiver::coordinator::TaskSplit::kRowRanges;
  auto security = quiver::security::ParseProcessFlags(f);
  if (!security.ok()) return security.status();
  o.security = *std::move(security);
  for (const auto& [name, value] : {std::pair<const char*, const std::string&>{"listen", o.listen},
                                    {"metrics-listen", o.metrics_listen}}) {
    if (auto s = quiver::security::CheckListenAddress(name, value, o.security.server, o.security.insecure);
        !s.ok()) {
      return s;
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  quiver::runtime::InstallSignalHandlers();
  std::set<std::string> known = {"listen", "metrics-listen", "data-dir", "partitions",
                                 "replication-factor", "heartbeat-timeout-ms", "lease-ms",
                                 "max-task-rows", "task-split", "log-level", "auto-rebalance",
                                 "max-moves-per-node", "barrier-drain-ms"};
  known.insert(quiver::security::ProcessFlagNames().begin(), quiver::security::ProcessFlagNames().end());
  auto flags = quiver::runtime::Flags::Parse(argc, argv, 1, known, {quiver::security::kInsecureSwitch});
  if (!flags.ok()) return Fail(flags.status());
  if (auto s = quiver::runtime::SetupLogging("quiver-coordinator", flags->Get("log-level", "info"));
      !s.ok()) {
    return Fail(s);
  }
  auto options = ParseOptions(*flags);
  if (!options.ok()) return Fail(options.status());
  auto server = quiver::coordinator::CoordinatorServer::Start(std::move(*options));
  if (!server.ok()) return Fail(server.status());
  const std::string line =
      absl::StrCat("listening=", (*server)->address(), " metrics=", (*server)->metrics_address());
  std::cout << line << std::endl;
  spdlog::info("{}", line);
  const int signal = quiver::runtime::WaitForShutdownSignal();
  spdlog::info("signal {}: shutting down", signal);
  (*server)->Shutdown();
  return 0;
}
