// quiverctl backup create / backup list / restore (operations.h).
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "ctl/backup_plan.h"
#include "ctl/operations.h"
#include "ctl/session.h"
#include "quiver/client/cluster_map.h"
#include "quiver/keys/entity_key.h"
#include "quiver/storage/row_store.h"

namespace quiver::ctl {
namespace {

namespace fs = std::filesystem;
namespace v1 = quiver::v1;
using Stub = Coordinator::Stub;

constexpr char kDefaultDest[] = "quiver-backups";
// A node backs up its whole store in one RPC.
constexpr auto kBackupDeadline = std::chrono::hours(2);
constexpr size_t kScanPageBytes = 4u << 20;
constexpr size_t kMergeBatchRows = 2000;
constexpr size_t kMergeBatchBytes = 2u << 20;
constexpr int kMergeAttempts = 5;
constexpr auto kRegistryWait = std::chrono::seconds(30);

absl::StatusOr<fs::path> DestDir(const CommandLine& cl) {
  std::string dest;
  if (auto it = cl.flags.find("dest"); it != cl.flags.end()) {
    dest = it->second;
  } else if (const char* env = std::getenv("QUIVER_BACKUP_DIR"); env != nullptr && *env) {
    dest = env;
  } else {
    dest = kDefaultDest;
  }
  if (dest.empty()) return absl::InvalidArgumentError("--dest is empty");
  std::error_code ec;
  fs::path p = fs::absolute(dest, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("--dest ", dest, ": ", ec.message()));
  return p.lexically_normal();
}

std::string ManifestJson(const v1::BackupManifest& m) {
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(m, &json, o);
  return json;
}

absl::StatusOr<v1::BackupManifest> ReadManifest(const fs::path& file) {
  auto text = ReadFile(file.string());
  if (!text.ok()) return text.status();
  v1::BackupManifest m;
  auto s = google::protobuf::util::JsonStringToMessage(*text, &m);
  if (!s.ok()) {
    return absl::DataLossError(absl::StrCat(file.string(), " is not a valid manifest: ", s.ToString()));
  }
  if (m.id().empty() || m.map().partitions_size() == 0 || m.nodes_size() == 0) {
    return absl::DataLossError(absl::StrCat(file.string(), " is not a complete manifest"));
  }
  return m;
}

// Writes `text` to `file` through a temporary file and a rename, so a reader
// never sees half a manifest.
absl::Status WriteFileAtomically(const fs::path& file, const std::string& text) {
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
    f.flush();
    if (!f) return absl::UnavailableError(absl::StrCat("cannot write ", tmp.string()));
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot write ", file.string(), ": ", ec.message()));
  return absl::OkStatus();
}

std::string Bytes(uint64_t n) {
  if (n >= (10ull << 20)) return absl::StrCat(n >> 20, " MiB");
  if (n >= (10ull << 10)) return absl::StrCat(n >> 10, " KiB");
  return absl::StrCat(n, " B");
}

}  // namespace

absl::Status RunBackupCreate(const CommandLine& cl, std::FILE* out, std::FILE* err) {
  auto dest = DestDir(cl);
  if (!dest.ok()) return dest.status();
  Coordinator coord(cl);
  v1::ClusterMap map;
  if (auto s = coord.Call("GetClusterMap", &Stub::GetClusterMap, v1::GetClusterMapRequest(), &map);
      !s.ok()) {
    return s;
  }
  v1::Registry registry;
  if (auto s = coord.Call("GetRegistry", &Stub::GetRegistry, v1::GetRegistryRequest(), &registry);
      !s.ok()) {
    return s;
  }
  v1::GetIntervalsResponse intervals;
  if (auto s = coord.Call("GetIntervals", &Stub::GetIntervals, v1::GetIntervalsRequest(),
                          &intervals);
      !s.ok()) {
    return s;
  }
  if (registry.version() == 0) {
    return absl::FailedPreconditionError("the cluster has no registry: nothing to back up");
  }
  std::vector<v1::NodeInfo> up;
  for (const auto& n : map.nodes()) {
    if (n.state() == v1::UP) {
      up.push_back(n);
    } else {
      Print(err, absl::StrCat("node ", n.id(), " (", n.address(), ") is ",
                              v1::NodeState_Name(n.state()), ": not backed up; its partitions "
                              "come from their UP replicas\n"));
    }
  }
  // Fail before any node copies anything when some partition has no UP replica.
  {
    std::vector<v1::NodeBackup> probe;
    for (const auto& n : up) probe.emplace_back().set_node_id(n.id());
    if (auto plan = PlanBackup(map, probe); !plan.ok()) return plan.status();
  }
  std::error_code ec;
  fs::create_directories(*dest / "nodes", ec);
  fs::create_directories(*dest / "backups", ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("cannot create ", dest->string(), ": ", ec.message()));

  // Every node copies at once; each call blocks until its node is done.
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::future<absl::StatusOr<v1::NodeBackup>>> calls;
  for (const v1::NodeInfo& n : up) {
    calls.push_back(std::async(std::launch::async, [n, &dest]() -> absl::StatusOr<v1::NodeBackup> {
      const std::string rel = absl::StrCat("nodes/node-", n.id());
      v1::BackupRequest req;
      req.set_backup_dir((*dest / rel).string());
      v1::BackupResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + kBackupDeadline);
      auto stub = NodeStub(n.address());
      if (auto s = FromGrpc(stub->Backup(&ctx, req, &resp),
                            absl::StrCat("backup of node ", n.id(), " (", n.address(), ")"));
          !s.ok()) {
        return s;
      }
      v1::NodeBackup nb;
      nb.set_node_id(n.id());
      nb.set_address(n.address());
      nb.set_dir(rel);
      nb.set_backup_id(resp.backup_id());
      nb.set_size_bytes(resp.size_bytes());
      nb.set_new_bytes(resp.new_bytes());
      *nb.mutable_views() = resp.views();
      return nb;
    }));
  }
  v1::BackupManifest manifest;
  absl::Status first_error;
  for (auto& c : calls) {
    absl::StatusOr<v1::NodeBackup> nb = c.get();
    if (!nb.ok()) {
      if (first_error.ok()) first_error = nb.status();
      continue;
    }
    *manifest.add_nodes() = *std::move(nb);
  }
  if (!first_error.ok()) return first_error;
  std::vector<v1::NodeBackup> nodes(manifest.nodes().begin(), manifest.nodes().end());
  auto plan = PlanBackup(map, nodes);
  if (!plan.ok()) return plan.status();

  const int64_t now = absl::ToUnixMicros(absl::Now());
  std::string id = BackupId(now);
  for (int n = 2; fs::exists(*dest / "backups" / id, ec); ++n) id = absl::StrCat(BackupId(now), "-", n);
  manifest.set_id(id);
  manifest.set_created_us(now);
  *manifest.mutable_registry() = registry;
  *manifest.mutable_map() = map;
  *manifest.mutable_intervals() = intervals.views();
  for (auto& s : plan->first) *manifest.add_views() = std::move(s);
  const fs::path dir = *dest / "backups" / id;
  fs::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
  if (auto s = WriteFileAtomically(dir / "manifest.json", ManifestJson(manifest)); !s.ok()) return s;

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::string text;
  for (const auto& nb : manifest.nodes()) {
    absl::StrAppend(&text, "node ", nb.node_id(), " (", nb.address(), "): backup ", nb.backup_id(),
                    ", ", Bytes(nb.size_bytes()), ", ", Bytes(nb.new_bytes()), " new\n");
  }
  for (const auto& v : manifest.views()) {
    absl::StrAppend(&text, "view ", v.view(), ": ", v.rows(), " rows, checksum ",
                    absl::Hex(v.checksum(), absl::kZeroPad16));
    if (v.divergent_partitions() > 0) {
      absl::StrAppend(&text, ", ", v.divergent_partitions(),
                      " partitions whose replicas differ (a restore merges them)");
    }
    absl::StrAppend(&text, "\n");
  }
  absl::StrAppend(&text, "backup ", id, " of ", manifest.nodes_size(), " nodes in ",
                  absl::StrFormat("%.1f", seconds), " s: ", dir.string(), "\n");
  Print(out, text);
  return absl::OkStatus();
}

absl::Status RunBackupList(const CommandLine& cl, std::FILE* out, std::FILE* err) {
  auto dest = DestDir(cl);
  if (!dest.ok()) return dest.status();
  std::error_code ec;
  if (!fs::is_directory(*dest / "backups", ec)) {
    return absl::NotFoundError(absl::StrCat("no backups in ", dest->string()));
  }
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(*dest / "backups", ec)) {
    if (e.is_directory()) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  std::string text = "ID                  CREATED (UTC)         NODES  ROWS         SIZE       NEW\n";
  for (const fs::path& d : dirs) {
    auto m = ReadManifest(d / "manifest.json");
    if (!m.ok()) {
      Print(err, absl::StrCat("unreadable backup ", d.filename().string(), ": ", m.status().message(), "\n"));
      continue;
    }
    uint64_t rows = 0, size = 0, added = 0;
    for (const auto& v : m->views()) rows += v.rows();
    for (const auto& n : m->nodes()) {
      size += n.size_bytes();
      added += n.new_bytes();
    }
    absl::StrAppend(&text, absl::StrFormat("%-19s %-21s %5d  %-12d %-10s %s\n", m->id(),
                                           absl::FormatTime("%Y-%m-%d %H:%M:%S",
                                                            absl::FromUnixMicros(m->created_us()),
                                                            absl::UTCTimeZone()),
                                           m->nodes_size(), rows, Bytes(size), Bytes(added)));
  }
  Print(out, text);
  return absl::OkStatus();
}

namespace {

// The rows a restore sends, buffered per target node and view.
class MergeSender {
 public:
  explicit MergeSender(const client::ClusterMapView& map) : map_(map) {
    for (const auto& n : map.nodes()) stubs_[n.id()] = NodeStub(n.address());
  }

  // Queues one row for every replica of its partition in the new map.
  absl::Status Add(const std::string& view, const std::string& key, const std::string& value,
                   uint32_t partition) {
    for (uint32_t id : map_.AllReplicasOf(partition)) {
      Buffer& b = buffers_[{id, view}];
      v1::StoredRow* row = b.req.add_rows();
      row->set_key(key);
      row->set_value(value);
      b.bytes += key.size() + value.size();
      if (static_cast<size_t>(b.req.rows_size()) >= kMergeBatchRows || b.bytes >= kMergeBatchBytes) {
        if (auto s = Flush(id, view, &b); !s.ok()) return s;
      }
    }
    return absl::OkStatus();
  }

  absl::Status FlushAll() {
    for (auto& [k, b] : buffers_) {
      if (auto s = Flush(k.first, k.second, &b); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  uint64_t rows_sent() const { return rows_sent_; }

 private:
  struct Buffer {
    v1::MergeRowsRequest req;
    size_t bytes = 0;
  };

  absl::Status Flush(uint32_t id, const std::string& view, Buffer* b) {
    if (b->req.rows_size() == 0) return absl::OkStatus();
    b->req.set_view(view);
    absl::Status s;
    for (int attempt = 0; attempt < kMergeAttempts; ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      v1::MergeRowsResponse resp;
      s = FromGrpc(stubs_.at(id)->MergeRows(&ctx, b->req, &resp),
                   absl::StrCat("MergeRows on node ", id, " (", map_.AddressOf(id), ")"));
      if (s.ok() || !Transient(s)) break;
    }
    if (!s.ok()) return s;
    rows_sent_ += static_cast<uint64_t>(b->req.rows_size());
    b->req.clear_rows();
    b->bytes = 0;
    return absl::OkStatus();
  }

  const client::ClusterMapView& map_;
  std::map<uint32_t, std::unique_ptr<v1::NodeService::Stub>> stubs_;
  std::map<std::pair<uint32_t, std::string>, Buffer> buffers_;
  uint64_t rows_sent_ = 0;
};

// Finds the manifest `from` names: a backup's folder, or the root (newest).
absl::StatusOr<fs::path> ManifestPath(const std::string& from) {
  std::error_code ec;
  const fs::path p = fs::absolute(from, ec).lexically_normal();
  if (fs::exists(p / "manifest.json", ec)) return p / "manifest.json";
  if (fs::is_directory(p / "backups", ec)) {
    std::vector<fs::path> dirs;
    for (const auto& e : fs::directory_iterator(p / "backups", ec)) {
      if (fs::exists(e.path() / "manifest.json")) dirs.push_back(e.path());
    }
    std::sort(dirs.begin(), dirs.end());
    if (!dirs.empty()) return dirs.back() / "manifest.json";
  }
  return absl::NotFoundError(absl::StrCat("no backup in ", p.string()));
}

// Per view, per partition, per node: the digest of what every replica of
// the new cluster holds, by ScanPartitions.
using ReplicaDigests =
    std::map<std::string, std::map<uint32_t, std::map<uint32_t, std::pair<uint64_t, uint64_t>>>>;

absl::Status DigestReplicas(const client::ClusterMapView& map, const std::vector<std::string>& views,
                            ReplicaDigests* out) {
  for (const auto& n : map.nodes()) {
    std::vector<uint32_t> held;
    for (uint32_t p = 0; p < map.num_partitions(); ++p) {
      for (uint32_t id : map.AllReplicasOf(p)) {
        if (id == n.id()) held.push_back(p);
      }
    }
    auto stub = NodeStub(n.address());
    for (const std::string& view : views) {
      for (auto [begin, end] : PartitionRanges(held)) {
        auto s = ForEachStoredRow(*stub, absl::StrCat("node ", n.id(), " (", n.address(), ")"), view,
                                  begin, end, map.epoch(), [&](const v1::StoredRow& row) {
                                    const std::string_view ek =
                                        storage::RowStore::EntityKeyOfRowKey(row.key());
                                    const uint32_t p = PartitionOf(ek, map.num_partitions());
                                    auto& d = (*out)[view][p][n.id()];
                                    d.first += 1;
                                    d.second += storage::RowStore::RowChecksum(ek, row.value());
                                  });
        if (!s.ok()) return s;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunRestore(const CommandLine& cl, std::FILE* out, std::FILE* err) {
  auto manifest_path = ManifestPath(cl.flags.at("from"));
  if (!manifest_path.ok()) return manifest_path.status();
  auto manifest = ReadManifest(*manifest_path);
  if (!manifest.ok()) return manifest.status();
  // DEST/backups/<id>/manifest.json: node folders are relative to DEST.
  const fs::path dest = manifest_path->parent_path().parent_path().parent_path();
  std::vector<v1::NodeBackup> nodes(manifest->nodes().begin(), manifest->nodes().end());
  auto plan = PlanBackup(manifest->map(), nodes);
  if (!plan.ok()) return absl::DataLossError(absl::StrCat("manifest: ", plan.status().message()));
  const RestoreSources& sources = plan->second;

  Coordinator coord(cl);
  v1::ClusterMap map_proto;
  if (auto s = coord.Call("GetClusterMap", &Stub::GetClusterMap, v1::GetClusterMapRequest(),
                          &map_proto);
      !s.ok()) {
    return s;
  }
  if (map_proto.nodes_size() == 0 || map_proto.partitions_size() == 0) {
    return absl::FailedPreconditionError("the target cluster has no nodes");
  }
  for (const auto& n : map_proto.nodes()) {
    if (n.state() != v1::UP) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node ", n.id(), " (", n.address(), ") is ", v1::NodeState_Name(n.state()),
          ": restore needs every node of the target cluster UP"));
    }
  }
  auto map = client::ClusterMapView::Build(map_proto);
  if (!map.ok()) return map.status();

  v1::RestoreRequest rreq;
  *rreq.mutable_registry() = manifest->registry();
  *rreq.mutable_intervals() = manifest->intervals();
  v1::RestoreResponse rresp;
  if (auto s = coord.Call("Restore", &Stub::Restore, rreq, &rresp); !s.ok()) return s;
  Print(err, absl::StrCat("registry version ", rresp.registry_version(), " (project '",
                          manifest->registry().project(), "') restored; waiting for ",
                          map->nodes().size(), " nodes to load it\n"));
  // Nodes pick the registry up with their next heartbeat.
  const auto wait_until = std::chrono::steady_clock::now() + kRegistryWait;
  for (const auto& n : map->nodes()) {
    auto stub = NodeStub(n.address());
    for (;;) {
      v1::HealthResponse h;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      if (stub->Health(&ctx, v1::HealthRequest(), &h).ok() &&
          h.registry_version() >= rresp.registry_version()) {
        break;
      }
      if (std::chrono::steady_clock::now() > wait_until) {
        return absl::DeadlineExceededError(
            absl::StrCat("node ", n.id(), " did not load the restored registry in 30 s"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  const auto started = std::chrono::steady_clock::now();
  std::error_code ec;
  const fs::path scratch_root =
      cl.flags.count("scratch") ? fs::path(cl.flags.at("scratch")) : fs::temp_directory_path(ec);
  MergeSender sender(*map);
  std::map<std::string, uint64_t> read_rows;
  for (const v1::NodeBackup& nb : manifest->nodes()) {
    bool needed = false;
    for (const auto& [view, by_node] : sources) needed = needed || by_node.count(nb.node_id());
    if (!needed) continue;
    const fs::path scratch =
        scratch_root / absl::StrCat("quiver-restore-", getpid(), "-node-", nb.node_id());
    fs::remove_all(scratch, ec);
    struct Cleanup {
      fs::path p;
      ~Cleanup() {
        std::error_code e;
        fs::remove_all(p, e);
      }
    } cleanup{scratch};
    Print(err, absl::StrCat("restoring node ", nb.node_id(), "'s backup ", nb.backup_id(), "\n"));
    if (auto s = storage::RowStore::RestoreBackup((dest / nb.dir()).string(), nb.backup_id(),
                                                  scratch.string());
        !s.ok()) {
      return s;
    }
    storage::RowStoreOptions o;
    o.path = scratch.string();
    o.num_partitions = manifest->map().num_partitions();
    o.block_cache_bytes = 16u << 20;
    o.use_io_uring = false;
    o.frozen = true;
    auto store = storage::RowStore::Open(o);
    if (!store.ok()) return store.status();
    for (const auto& [view, by_node] : sources) {
      auto it = by_node.find(nb.node_id());
      if (it == by_node.end()) continue;
      for (auto [begin, end] : PartitionRanges(it->second)) {
        std::string after;
        for (;;) {
          auto page = (*store)->ScanRaw(view, begin, end, after, kScanPageBytes);
          if (!page.ok()) return page.status();
          for (const storage::RawRow& row : page->rows) {
            const std::string_view ek = storage::RowStore::EntityKeyOfRowKey(row.key);
            const std::string key = storage::RowStore::RowKey(ek, map->num_partitions());
            if (auto s = sender.Add(view, key, row.value, PartitionOf(ek, map->num_partitions()));
                !s.ok()) {
              return s;
            }
            ++read_rows[view];
          }
          if (page->done || page->rows.empty()) break;
          after = page->rows.back().key;
        }
      }
    }
  }
  if (auto s = sender.FlushAll(); !s.ok()) return s;

  // Every replica of the new cluster, scanned and digested.
  std::vector<std::string> views;
  for (const auto& v : manifest->views()) views.push_back(v.view());
  ReplicaDigests got;
  if (auto s = DigestReplicas(*map, views, &got); !s.ok()) return s;
  std::string text;
  absl::Status result;
  for (const auto& v : manifest->views()) {
    uint64_t rows = 0, checksum = 0, disagree = 0;
    for (uint32_t p = 0; p < map->num_partitions(); ++p) {
      std::pair<uint64_t, uint64_t> first{0, 0};
      bool have_first = false;
      for (uint32_t id : map->AllReplicasOf(p)) {
        std::pair<uint64_t, uint64_t> d{0, 0};
        if (auto a = got[v.view()].find(p); a != got[v.view()].end()) {
          if (auto b = a->second.find(id); b != a->second.end()) d = b->second;
        }
        if (!have_first) {
          first = d;
          have_first = true;
        } else if (d != first) {
          ++disagree;
        }
      }
      rows += first.first;
      checksum += first.second;
    }
    const bool exact = v.divergent_partitions() == 0;
    const bool match = exact ? rows == v.rows() && checksum == v.checksum() : rows >= v.rows();
    absl::StrAppend(&text, "view ", v.view(), ": ", rows, " rows restored (checksum ",
                    absl::Hex(checksum, absl::kZeroPad16), "), manifest ", v.rows(), " (",
                    absl::Hex(v.checksum(), absl::kZeroPad16), ")",
                    exact ? "" : absl::StrCat(", ", v.divergent_partitions(),
                                              " divergent partitions merged"),
                    disagree == 0 ? "" : absl::StrCat(", ", disagree, " replicas disagree"),
                    match && disagree == 0 ? ": match\n" : ": MISMATCH\n");
    if ((!match || disagree > 0) && result.ok()) {
      result = absl::DataLossError(absl::StrCat("view ", v.view(),
                                                ": the restored rows do not match the backup"));
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  absl::StrAppend(&text, "restored backup ", manifest->id(), " onto ", map->nodes().size(),
                  " nodes (", map->num_partitions(), " partitions): ", sender.rows_sent(),
                  " rows written to replicas in ", absl::StrFormat("%.1f", seconds), " s\n");
  Print(out, text);
  return result;
}

}  // namespace quiver::ctl
