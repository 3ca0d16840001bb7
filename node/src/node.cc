#include "quiver/node/node.h"

#include <grpc/support/log.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>
#include <grpcpp/grpcpp.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <string_view>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "quiver.grpc.pb.h"
#include "quiver/client/client.h"
#include "quiver/keys/entity_key.h"
#include "quiver/node/grpc_service.h"
#include "quiver/node/lookup_server.h"
#include "quiver/node/materializer.h"
#include "quiver/node/metrics.h"
#include "peer_stubs.h"
#include "thread_priority.h"
#include "quiver/node/repair.h"
#include "quiver/node/request_handler.h"
#include "quiver/node/streamer.h"
#include "quiver/runtime/runtime.h"
#include "quiver/storage/offline_store.h"
#include "quiver/storage/row_store.h"

namespace quiver::node {
namespace {

namespace fs = std::filesystem;

constexpr auto kCoordinatorDeadline = std::chrono::seconds(2);
// gRPC's own log lines go through spdlog at debug level, so that a startup
// failure prints the node's one clear error line and not gRPC's internals.
void RouteGrpcLogging() {
  gpr_set_log_function([](gpr_log_func_args* args) {
    spdlog::debug("grpc {}:{} {}", args->file, args->line, args->message);
  });
}

// Reads an unsigned integer file of the data dir; nullopt if missing.
absl::StatusOr<std::optional<uint64_t>> ReadUintFile(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::optional<uint64_t>();
  std::ifstream in(path);
  std::string text;
  uint64_t v = 0;
  if (!in || !(in >> text) || !absl::SimpleAtoi(text, &v)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path.string(), " is unreadable or does not hold a number"));
  }
  return std::optional<uint64_t>(v);
}

// Replaces the file atomically (write a temporary file, then rename).
absl::Status WriteUintFile(const fs::path& path, uint64_t v) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << v << "\n";
    out.flush();
    if (!out) return absl::FailedPreconditionError(absl::StrCat("cannot write ", tmp.string()));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write ", path.string(), ": ", ec.message()));
  }
  return absl::OkStatus();
}

// Calls `attempt` until it succeeds, backing off from 100 ms to 2 s, or until
// `cancel` is notified (kCancelled).
absl::Status RetryWithBackoff(const std::string& what, absl::Notification* cancel,
                              const std::function<absl::Status()>& attempt) {
  auto backoff = std::chrono::milliseconds(100);
  for (int n = 1;; ++n) {
    absl::Status s = attempt();
    if (s.ok()) return s;
    if (s.code() != absl::StatusCode::kUnavailable &&
        s.code() != absl::StatusCode::kDeadlineExceeded) {
      return s;
    }
    if (n == 1 || n % 10 == 0) spdlog::warn("{} (attempt {}): {}; retrying", what, n, s.ToString());
    if (cancel != nullptr) {
      if (cancel->WaitForNotificationWithTimeout(absl::FromChrono(backoff))) {
        return absl::CancelledError(absl::StrCat(what, ": cancelled"));
      }
    } else {
      std::this_thread::sleep_for(backoff);
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
}

// Fails fast on an address nobody could bind (taken, not local, bad host),
// before start-up waits for the coordinator; the real bind happens later.
absl::Status ProbeBind(const std::string& address) {
  auto hp = runtime::SplitHostPort(address);
  if (!hp.ok()) return hp.status();
  if (hp->second == 0) return absl::OkStatus();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* info = nullptr;
  const std::string host = hp->first == "*" ? "0.0.0.0" : hp->first;
  if (getaddrinfo(host.c_str(), std::to_string(hp->second).c_str(), &hints, &info) != 0 ||
      info == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, ": unknown host"));
  }
  int fd = socket(info->ai_family, info->ai_socktype, info->ai_protocol);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, info->ai_addr, info->ai_addrlen) != 0) err = errno;
    close(fd);
  }
  freeaddrinfo(info);
  if (err != 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, ": ", strerror(err)));
  }
  return absl::OkStatus();
}

std::unique_ptr<grpc::ClientContext> CoordinatorContext() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + kCoordinatorDeadline);
  return ctx;
}

// The ClusterView of the running process: the client once it exists.
class ClientClusterView final : public ClusterView {
 public:
  void set_client(std::shared_ptr<client::Client> c) {
    std::lock_guard<std::mutex> lock(mu_);
    client_ = std::move(c);
  }
  std::shared_ptr<client::Client> client() const {
    std::lock_guard<std::mutex> lock(mu_);
    return client_;
  }
  std::shared_ptr<const client::RegistryIndex> registry() const override {
    auto c = client();
    return c ? c->registry() : nullptr;
  }
  absl::Status Refresh() override {
    auto c = client();
    return c ? c->Refresh() : absl::UnavailableError("the node is not registered yet");
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<client::Client> client_;
};

}  // namespace

class Node::Impl {
 public:
  explicit Impl(NodeOptions options) : options_(std::move(options)) {}
  ~Impl() { Stop(); }

  absl::Status Start(absl::Notification* cancel);
  void Stop();

  NodeOptions options_;
  std::string listen_address_;
  std::string advertise_address_;
  std::string lookup_advertise_address_;
  std::atomic<uint32_t> node_id_{0};

 private:
  absl::Status PrepareDataDir(uint32_t num_partitions);
  absl::Status Register();
  void HeartbeatLoop();
  void AfterRefresh();
  // Follows the node's state in the map: reads unless RECOVERING; a
  // RECOVERING node with a recovery it has not repaired starts the repair
  // thread once the coordinator's barrier for that recovery completed
  // (recovery_fenced == recovery: every write that skipped this node is
  // committed on its peers or refused).
  void OnState(quiver::v1::NodeState state, uint64_t recovery, uint64_t recovery_fenced);
  // Adopts `map` (the registration answer) in the handler.
  void AdoptWireMap(const quiver::v1::ClusterMap& map);
  // Copies what this node missed from its UP peers (RepairFromPeers); on
  // success the next heartbeat reports `recovery` repaired.
  void Repair(uint64_t recovery);

  fs::path data_dir_;
  std::shared_ptr<prometheus::Registry> prometheus_ = std::make_shared<prometheus::Registry>();
  std::unique_ptr<NodeMetrics> metrics_;
  std::unique_ptr<runtime::RpcMetrics> rpc_metrics_;
  std::unique_ptr<runtime::MetricsServer> metrics_server_;
  std::unique_ptr<quiver::v1::CoordinatorService::Stub> coordinator_;
  std::unique_ptr<storage::RowStore> store_;
  std::unique_ptr<storage::OfflineStore> offline_;
  ClientClusterView cluster_;
  std::unique_ptr<RequestHandler> handler_;
  std::unique_ptr<NodeGrpcService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<LookupServer> lookup_server_;
  std::unique_ptr<MaterializationWorker> worker_;
  std::unique_ptr<PeerStubs> peers_;
  security::ChannelFactory channels_;
  std::unique_ptr<security::CallGuard> guard_;
  std::unique_ptr<Streamer> streamer_;
  std::thread heartbeat_thread_;
  std::thread repair_thread_;  // guarded by mu_; joined in Stop
  bool repairing_ = false;     // guarded by mu_
  std::atomic<uint64_t> repaired_recovery_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool refresh_requested_ = false;  // guarded by mu_: an AdoptMap pushed a newer map
  bool stopping_ = false;
  bool stopped_ = false;

  friend class Node;
};

absl::Status Node::Impl::PrepareDataDir(uint32_t num_partitions) {
  const fs::path q_file = data_dir_ / "num_partitions";
  auto stored_q = ReadUintFile(q_file);
  if (!stored_q.ok()) return stored_q.status();
  if (stored_q->has_value() && **stored_q != num_partitions) {
    return absl::FailedPreconditionError(absl::StrCat(
        "data dir ", data_dir_.string(), " holds a store with ", **stored_q,
        " partitions but the cluster map has ", num_partitions));
  }
  if (!stored_q->has_value()) return WriteUintFile(q_file, num_partitions);
  return absl::OkStatus();
}

absl::Status Node::Impl::Register() {
  quiver::v1::RegisterRequest request;
  request.set_node_id(node_id_.load());
  request.set_address(advertise_address_);
  request.set_metrics_address(metrics_server_->address());
  request.set_lookup_address(lookup_advertise_address_);
  quiver::v1::RegisterResponse response;
  auto ctx = CoordinatorContext();
  absl::Status s = FromGrpcStatus(coordinator_->Register(ctx.get(), request, &response));
  if (!s.ok()) return s;
  if (response.node_id() == 0) return absl::InternalError("coordinator assigned node id 0");
  if (response.node_id() != node_id_.load()) {
    if (node_id_.load() != 0) {
      spdlog::warn("coordinator assigned node id {} instead of {}", response.node_id(),
                   node_id_.load());
    }
    if (absl::Status w = WriteUintFile(data_dir_ / "node_id", response.node_id()); !w.ok()) {
      return w;
    }
    node_id_.store(response.node_id());
  }
  handler_->set_node_id(response.node_id());
  AdoptWireMap(response.map());
  // A coordinator that does not list the node yet counts as UP.
  quiver::v1::NodeState state = quiver::v1::UP;
  uint64_t recovery = 0;
  uint64_t recovery_fenced = 0;
  for (const auto& n : response.map().nodes()) {
    if (n.id() == response.node_id()) {
      state = n.state();
      recovery = n.recovery();
      recovery_fenced = n.recovery_fenced();
    }
  }
  OnState(state, recovery, recovery_fenced);
  return absl::OkStatus();
}

void Node::Impl::AdoptWireMap(const quiver::v1::ClusterMap& map) {
  absl::StatusOr<client::ClusterMapView> view = client::ClusterMapView::Build(map);
  if (!view.ok()) {
    spdlog::warn("the coordinator's map (epoch {}) does not build: {}", map.epoch(),
                 view.status().ToString());
    return;
  }
  handler_->AdoptMap(std::make_shared<const client::ClusterMapView>(*std::move(view)));
}

void Node::Impl::OnState(quiver::v1::NodeState state, uint64_t recovery,
                         uint64_t recovery_fenced) {
  // Only a RECOVERING node holds back reads (JOINING and LEAVING serve the
  // partitions they own): a node the coordinator thinks DOWN while it
  // heartbeats is about to become RECOVERING or UP.
  handler_->set_reads_enabled(state != quiver::v1::RECOVERING);
  if (state != quiver::v1::RECOVERING || recovery <= repaired_recovery_.load()) return;
  // Writes that skipped this node may still be staged on its peers until
  // the coordinator's barrier for this recovery completed.
  if (recovery_fenced != recovery) return;
  // Registration comes before the client exists; the first heartbeat starts it.
  if (cluster_.client() == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_ || repairing_) return;
  if (repair_thread_.joinable()) repair_thread_.join();  // a finished earlier run
  repairing_ = true;
  repair_thread_ = std::thread([this, recovery] { Repair(recovery); });
}

void Node::Impl::Repair(uint64_t recovery) {
  NameThisThread("quiver-repair");
  // Background work, like the streams: on a busy machine the lookups of the
  // other nodes on it come first (this node serves none while RECOVERING).
  NiceThisThread(kBackgroundNice, "repair");
  spdlog::info("node {} is RECOVERING (recovery {}): copying missed rows from its peers",
               node_id_.load(), recovery);
  absl::Status status;
  auto client = cluster_.client();
  if (client == nullptr) {
    status = absl::UnavailableError("no client yet");
  } else if (status = client->Refresh(); status.ok()) {
    AfterRefresh();  // the views exist before rows arrive
    ScanPartitionsFn scan = [this](const std::string& address,
                                   const quiver::v1::ScanPartitionsRequest& request) {
      // The node's current epoch: the source refuses an older one.
      quiver::v1::ScanPartitionsRequest stamped = request;
      stamped.set_epoch(std::max(request.epoch(), handler_->adopted_epoch()));
      return peers_->ScanPartitions(address, stamped);
    };
    auto stopping = [this] {
      std::lock_guard<std::mutex> lock(mu_);
      return stopping_;
    };
    auto stats = RepairFromPeers(*client->cluster_map(), *client->registry(), node_id_.load(),
                                 *store_, scan, RequestHandler::kDefaultScanBytes, stopping);
    status = stats.status();
    if (stats.ok()) {
      repaired_recovery_.store(recovery);
      metrics_->repaired_rows->Increment(static_cast<double>(stats->rows));
    }
  }
  if (!status.ok()) {
    spdlog::warn("repair (recovery {}) failed, retried on a later heartbeat: {}", recovery,
                 status.ToString());
    // A source that refused the scan as stale: our map is older than its.
    if (status.code() == absl::StatusCode::kAborted && client != nullptr) {
      if (absl::Status r = client->Refresh(); r.ok()) AfterRefresh();
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    repairing_ = false;
  }
  cv_.notify_all();
}

absl::Status Node::Impl::Start(absl::Notification* cancel) {
  RouteGrpcLogging();
  // Data dir: usable and writable before anything else.
  data_dir_ = options_.data_dir;
  std::error_code ec;
  fs::create_directories(data_dir_, ec);
  if (ec || !fs::is_directory(data_dir_)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot use data dir ", data_dir_.string(), ec ? absl::StrCat(": ", ec.message()) : ""));
  }
  if (absl::Status s = WriteUintFile(data_dir_ / ".write_test", 0); !s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("data dir ", data_dir_.string(), " is not writable"));
  }
  fs::remove(data_dir_ / ".write_test", ec);
  auto stored_id = ReadUintFile(data_dir_ / "node_id");
  if (!stored_id.ok()) return stored_id.status();
  if (stored_id->has_value()) {
    if (**stored_id > UINT32_MAX) {
      return absl::FailedPreconditionError(
          absl::StrCat((data_dir_ / "node_id").string(), " holds an invalid id"));
    }
    node_id_.store(static_cast<uint32_t>(**stored_id));
  }

  if (absl::Status s = ProbeBind(options_.listen); !s.ok()) return s;
  const std::string lookup_listen =
      options_.lookup_listen.empty()
          ? absl::StrCat(runtime::SplitHostPort(options_.listen)->first, ":0")
          : options_.lookup_listen;
  if (absl::Status s = ProbeBind(lookup_listen); !s.ok()) return s;
  metrics_ = std::make_unique<NodeMetrics>(*prometheus_);
  rpc_metrics_ = std::make_unique<runtime::RpcMetrics>(*prometheus_, "NodeService");
  auto channels = security::ChannelFactory::Create(options_.security.client);
  if (!channels.ok()) return channels.status();
  channels_ = *std::move(channels);
  auto guard = security::CallGuard::Create(
      options_.security,
      &prometheus::BuildCounter()
           .Name("quiver_auth_denials_total")
           .Help("Calls refused: no or an unknown token, or no permission")
           .Register(*prometheus_)
           .Add({{"process", "node"}}));
  if (!guard.ok()) return guard.status();
  guard_ = *std::move(guard);
  auto metrics_server =
      runtime::MetricsServer::Start(options_.metrics_listen, prometheus_, options_.security.server);
  if (!metrics_server.ok()) return metrics_server.status();
  metrics_server_ = *std::move(metrics_server);

  // The store's partition count must be the cluster's.
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(static_cast<int>(options_.max_message_bytes));
  // Heartbeats must resume soon after a coordinator restart: with gRPC's
  // default reconnect backoff (1 s, growing) a restarted coordinator saw its
  // nodes silent past the heartbeat timeout, marked them DOWN, and they came
  // back RECOVERING (chaos/run kill-coordinator).
  channel_args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  channel_args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  coordinator_ =
      quiver::v1::CoordinatorService::NewStub(channels_.Make(options_.coordinator, channel_args));
  quiver::v1::ClusterMap map;
  absl::Status s = RetryWithBackoff("fetching the cluster map", cancel, [&] {
    quiver::v1::GetClusterMapRequest request;
    auto ctx = CoordinatorContext();
    return FromGrpcStatus(coordinator_->GetClusterMap(ctx.get(), request, &map));
  });
  if (!s.ok()) return s;
  if (Log2PartitionCount(map.num_partitions()) < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the coordinator's cluster map has an invalid partition count ", map.num_partitions()));
  }
  if (s = PrepareDataDir(map.num_partitions()); !s.ok()) return s;

  storage::RowStoreOptions store_options;
  store_options.path = (data_dir_ / "rocksdb").string();
  store_options.num_partitions = map.num_partitions();
  store_options.block_cache_bytes = options_.block_cache_mb << 20;
  auto store = storage::RowStore::Open(store_options);
  if (!store.ok()) return store.status();
  store_ = *std::move(store);
  // DuckDB's memory is capped (its default is 80 % of RAM); a task whose
  // latest-row window outgrows the cap spills under the data directory.
  auto offline =
      storage::OfflineStore::Open(options_.offline_threads,
                                  absl::StrCat(options_.offline_memory_mb, "MB"),
                                  (data_dir_ / "offline-tmp").string());
  if (!offline.ok()) return offline.status();
  offline_ = *std::move(offline);

  handler_ = std::make_unique<RequestHandler>(store_.get(), &cluster_, metrics_.get());
  handler_->set_node_id(node_id_.load());
  // A newer map exists (the coordinator's barrier pushed it, or a refused
  // request carried a newer epoch): the node's own client (which routes the
  // materializer's writes) fetches it soon, and the handler adopts it.
  handler_->set_on_newer_map([this](uint64_t) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      refresh_requested_ = true;
    }
    cv_.notify_all();
  });
  peers_ = std::make_unique<PeerStubs>(options_.max_message_bytes, &channels_);
  // No reads until the coordinator says this node is UP (a restarted node
  // comes back RECOVERING: it may have missed writes while it was away).
  handler_->set_reads_enabled(false);
  service_ = std::make_unique<NodeGrpcService>(handler_.get(), rpc_metrics_.get(), guard_.get(), &cluster_);
  auto credentials = security::ServerCredentials(options_.security.server);
  if (!credentials.ok()) return credentials.status();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options_.listen, *credentials, &port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options_.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options_.max_message_bytes));
  // Two nodes must never share a port silently.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen));
  }
  const std::string host = runtime::SplitHostPort(options_.listen)->first;
  listen_address_ = absl::StrCat(host, ":", port);
  advertise_address_ = options_.advertise.empty() ? listen_address_ : options_.advertise;

  LookupServerOptions lookup_options;
  lookup_options.listen = lookup_listen;
  lookup_options.threads = options_.lookup_threads;
  lookup_options.max_frame_bytes = options_.max_message_bytes;
  lookup_options.tls = options_.security.server;
  lookup_options.guard = guard_.get();
  lookup_options.cluster = &cluster_;
  auto lookup_server = LookupServer::Start(lookup_options, handler_.get(), rpc_metrics_.get());
  if (!lookup_server.ok()) return lookup_server.status();
  lookup_server_ = *std::move(lookup_server);
  lookup_advertise_address_ =
      absl::StrCat(runtime::SplitHostPort(advertise_address_)->first, ":",
                   runtime::SplitHostPort(lookup_server_->address())->second);

  if (s = RetryWithBackoff("registering with the coordinator", cancel, [&] { return Register(); });
      !s.ok()) {
    return s;
  }
  std::shared_ptr<client::Client> client;
  s = RetryWithBackoff("connecting the client", cancel, [&] {
    client::ClientOptions client_options;
    client_options.coordinator_address = options_.coordinator;
    client_options.security = options_.security.client;
    // One Write RPC per replica per materialization batch: large sorted
    // batches make RocksDB's memtable inserts cheap (bench/README.md).
    client_options.write_batch_rows = std::max<size_t>(1, options_.materialize_batch_rows);
    auto c = client::Client::Create(client_options);
    if (!c.ok()) return c.status();
    client = std::shared_ptr<client::Client>(std::move(*c));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  cluster_.set_client(client);
  AfterRefresh();

  WorkerOptions worker_options;
  worker_options.node_id = [this] { return node_id_.load(); };
  worker_options.batch_rows = options_.materialize_batch_rows;
  worker_options.write_quorum = options_.write_quorum;
  worker_options.ingest = options_.materialize_ingest;
  worker_ = std::make_unique<MaterializationWorker>(worker_options, coordinator_.get(),
                                                    client.get(), offline_.get(), metrics_.get());
  worker_->Start();

  StreamerOptions stream_options;
  stream_options.mb_per_s = options_.stream_mb_per_s;
  stream_options.page_bytes = RequestHandler::kDefaultScanBytes;
  stream_options.scan = [this](const std::string& address,
                               const quiver::v1::ScanPartitionsRequest& request) {
    return peers_->ScanPartitions(address, request);
  };
  stream_options.merge = [this](std::string_view view, uint32_t partition,
                                std::span<const storage::RawRow> rows) {
    return handler_->MergeStreamed(view, partition, rows);
  };
  stream_options.registry = [this] { return cluster_.registry(); };
  stream_options.epoch = [this] { return handler_->adopted_epoch(); };
  stream_options.refresh_map = [this] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      refresh_requested_ = true;
    }
    cv_.notify_all();
  };
  stream_options.metrics = metrics_.get();
  streamer_ = std::make_unique<Streamer>(std::move(stream_options));
  streamer_->Start();
  heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
  spdlog::info("listening={} metrics={} lookup={} node_id={} advertise={} partitions={}",
               listen_address_, metrics_server_->address(), lookup_server_->address(),
               node_id_.load(), advertise_address_, map.num_partitions());
  return absl::OkStatus();
}

// Brings the store and the gauges in line with the client's registry and map.
void Node::Impl::AfterRefresh() {
  auto client = cluster_.client();
  if (client == nullptr) return;
  if (auto registry = client->registry(); registry != nullptr) {
    (void)handler_->SyncViews(*registry);
  }
  auto map = client->cluster_map();
  handler_->AdoptMap(map);
  uint32_t held = 0;
  if (map->has_partitions()) {
    const uint32_t self = node_id_.load();
    for (uint32_t p = 0; p < map->num_partitions(); ++p) {
      for (uint32_t id : map->AllReplicasOf(p)) held += id == self ? 1 : 0;
    }
  }
  metrics_->partitions_held->Set(held);
  metrics_->map_epoch->Set(static_cast<double>(map->epoch()));
}

void Node::Impl::HeartbeatLoop() {
  NameThisThread("quiver-heartbt");
  auto next_heartbeat = std::chrono::steady_clock::now() + options_.heartbeat;
  for (;;) {
    bool refresh = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_until(lock, next_heartbeat, [this] { return stopping_ || refresh_requested_; });
      if (stopping_) return;
      refresh = std::exchange(refresh_requested_, false);
    }
    auto client = cluster_.client();
    if (refresh) {
      // A newer map was pushed (AdoptMap) or a peer refused us as stale.
      if (absl::Status r = client->Refresh(); !r.ok()) {
        spdlog::debug("map refresh failed: {}", r.ToString());
      }
      AfterRefresh();
    }
    if (std::chrono::steady_clock::now() < next_heartbeat) continue;
    next_heartbeat = std::chrono::steady_clock::now() + options_.heartbeat;
    auto registry = client->registry();
    quiver::v1::HeartbeatRequest request;
    request.set_node_id(node_id_.load());
    request.set_epoch(client->cluster_map()->epoch());
    request.set_registry_version(registry ? registry->version() : 0);
    request.set_repaired_recovery(repaired_recovery_.load());
    for (quiver::v1::StreamReport& report : streamer_->Reports()) {
      *request.add_streams() = std::move(report);
    }
    if (worker_ != nullptr) {
      for (quiver::v1::RunningTask& task : worker_->RunningTasks()) {
        *request.add_running_tasks() = std::move(task);
      }
    }
    quiver::v1::HeartbeatResponse response;
    auto ctx = CoordinatorContext();
    absl::Status s = FromGrpcStatus(coordinator_->Heartbeat(ctx.get(), request, &response));
    if (s.code() == absl::StatusCode::kNotFound) {
      spdlog::warn("coordinator does not know node {}; registering again", node_id_.load());
      if (absl::Status r = Register(); !r.ok()) {
        spdlog::warn("re-registering failed: {}", r.ToString());
      } else {
        (void)client->Refresh();
      }
    } else if (!s.ok()) {
      spdlog::debug("heartbeat failed: {}", s.ToString());
    } else {
      OnState(response.state(), response.recovery(), response.recovery_fenced());
      const std::vector<quiver::v1::StreamTask> streams(response.streams().begin(),
                                                        response.streams().end());
      streamer_->SetTasks(streams);
      if (response.epoch() != request.epoch() ||
          response.registry_version() != request.registry_version()) {
        if (absl::Status r = client->Refresh(); !r.ok()) {
          spdlog::debug("refresh failed: {}", r.ToString());
        }
      }
    }
    AfterRefresh();
  }
}

void Node::Impl::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = stopping_ = true;
  }
  cv_.notify_all();
  const bool heartbeat_started = heartbeat_thread_.joinable();
  if (heartbeat_started) heartbeat_thread_.join();
  // No heartbeat starts a repair any more; a running one sees stopping_.
  if (repair_thread_.joinable()) repair_thread_.join();
  if (streamer_) streamer_->Stop();
  if (worker_) worker_->Stop();
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_->Wait();
  }
  if (lookup_server_) lookup_server_->Stop();
  // Nothing calls the handler any more: release the client's threads and the
  // RocksDB lock, so the same data dir can be opened again in this process.
  worker_.reset();
  cluster_.set_client(nullptr);
  if (handler_) {
    handler_->StopCleanup();  // before the store closes
    handler_->AbortIngestSessions();
  }
  streamer_.reset();
  store_.reset();
  if (heartbeat_started) spdlog::info("node {} stopped", node_id_.load());
}

absl::StatusOr<std::unique_ptr<Node>> Node::Start(const NodeOptions& options,
                                                  absl::Notification* cancel) {
  auto impl = std::make_unique<Impl>(options);
  if (absl::Status s = impl->Start(cancel); !s.ok()) return s;
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::~Node() { Stop(); }
void Node::Stop() { impl_->Stop(); }
const std::string& Node::listen_address() const { return impl_->listen_address_; }
const std::string& Node::advertise_address() const { return impl_->advertise_address_; }
const std::string& Node::metrics_address() const { return impl_->metrics_server_->address(); }
const std::string& Node::lookup_address() const { return impl_->lookup_server_->address(); }
const std::string& Node::lookup_advertise_address() const {
  return impl_->lookup_advertise_address_;
}
uint32_t Node::node_id() const { return impl_->node_id_.load(); }

}  // namespace quiver::node
