// ParseNodeFlags: quiver-node's command line (node.h). Kept apart from the
// process assembly in node.cc.
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "quiver/node/node.h"
#include "quiver/runtime/runtime.h"

namespace quiver::node {
namespace {

absl::StatusOr<int64_t> IntFlag(const runtime::Flags& flags, const std::string& name,
                                int64_t fallback, int64_t min, int64_t max) {
  auto v = flags.GetInt(name, fallback);
  if (!v.ok()) return v.status();
  if (*v < min || *v > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " must be in [", min, ", ", max, "], got ", *v));
  }
  return *v;
}

}  // namespace

absl::StatusOr<NodeOptions> ParseNodeFlags(int argc, char** argv) {
  std::set<std::string> known = {
      "listen",    "advertise",      "metrics-listen", "coordinator",
      "data-dir",  "block-cache-mb", "heartbeat-ms",   "write-quorum",
      "materialize-batch-rows",      "log-level",      "lookup-listen",
      "lookup-threads", "materialize-mode", "offline-memory-mb", "offline-threads",
      "stream-mb-per-s"};
  known.insert(security::ProcessFlagNames().begin(), security::ProcessFlagNames().end());
  auto flags = runtime::Flags::Parse(argc, argv, 1, known, {security::kInsecureSwitch});
  if (!flags.ok()) return flags.status();
  if (!flags->positional().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument '", flags->positional()[0], "'"));
  }
  NodeOptions o;
  o.listen = flags->Get("listen", o.listen);
  o.advertise = flags->Get("advertise", "");
  o.metrics_listen = flags->Get("metrics-listen", o.metrics_listen);
  o.coordinator = flags->Get("coordinator", "");
  o.data_dir = flags->Get("data-dir", "");
  o.log_level = flags->Get("log-level", o.log_level);
  o.lookup_listen = flags->Get("lookup-listen", "");
  const std::string mode = flags->Get("materialize-mode", "ingest");
  if (mode != "ingest" && mode != "write") {
    return absl::InvalidArgumentError(
        absl::StrCat("--materialize-mode must be ingest or write, not '", mode, "'"));
  }
  o.materialize_ingest = mode == "ingest";
  if (o.coordinator.empty()) return absl::InvalidArgumentError("--coordinator is required");
  if (o.data_dir.empty()) return absl::InvalidArgumentError("--data-dir is required");
  for (const auto& [name, value] : {std::pair<const char*, const std::string&>{"listen", o.listen},
                                    {"metrics-listen", o.metrics_listen},
                                    {"coordinator", o.coordinator}}) {
    if (auto hp = runtime::SplitHostPort(value); !hp.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, ": ", hp.status().message()));
    }
  }
  if (!o.lookup_listen.empty()) {
    if (auto hp = runtime::SplitHostPort(o.lookup_listen); !hp.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--lookup-listen: ", hp.status().message()));
    }
  }
  auto security = security::ParseProcessFlags(*flags);
  if (!security.ok()) return security.status();
  o.security = *std::move(security);
  for (const auto& [name, value] :
       {std::pair<const char*, const std::string&>{"listen", o.listen},
        {"metrics-listen", o.metrics_listen}, {"lookup-listen", o.lookup_listen}}) {
    if (absl::Status s = security::CheckListenAddress(name, value, o.security.server, o.security.insecure);
        !s.ok()) {
      return s;
    }
  }
  if (!o.advertise.empty()) {
    auto hp = runtime::SplitHostPort(o.advertise);
    if (!hp.ok() || hp->second == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--advertise: '", o.advertise, "' is not a host:port with a port"));
    }
  }
  auto cache = IntFlag(*flags, "block-cache-mb", 256, 1, 1 << 20);
  auto heartbeat = IntFlag(*flags, "heartbeat-ms", 500, 10, 600000);
  auto quorum = IntFlag(*flags, "write-quorum", 0, 0, 255);
  auto batch = IntFlag(*flags, "materialize-batch-rows", 10000, 1, 10000000);
  auto lookup_threads = IntFlag(*flags, "lookup-threads", 2, 1, 256);
  auto offline_memory = IntFlag(*flags, "offline-memory-mb", 512, 16, 1 << 20);
  auto offline_threads = IntFlag(*flags, "offline-threads", 0, 0, 256);
  auto stream_mb = IntFlag(*flags, "stream-mb-per-s", 200, 0, 1 << 20);
  for (const absl::Status& s : {cache.status(), heartbeat.status(), quorum.status(),
                                batch.status(), lookup_threads.status(), offline_memory.status(),
                                offline_threads.status(), stream_mb.status()}) {
    if (!s.ok()) return s;
  }
  o.block_cache_mb = static_cast<uint64_t>(*cache);
  o.heartbeat = std::chrono::milliseconds(*heartbeat);
  o.write_quorum = static_cast<uint32_t>(*quorum);
  o.materialize_batch_rows = static_cast<size_t>(*batch);
  o.lookup_threads = static_cast<int>(*lookup_threads);
  o.offline_memory_mb = static_cast<uint64_t>(*offline_memory);
  o.offline_threads = static_cast<int>(*offline_threads);
  o.stream_mb_per_s = static_cast<uint32_t>(*stream_mb);
  return o;
}

}  // namespace quiver::node
