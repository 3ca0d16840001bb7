#include "quiver/client/client.h"

#include <algorithm>
#include <climits>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client_impl.h"

#include <google/protobuf/util/message_differencer.h>
#include "spdlog/spdlog.h"

namespace quiver::client {

const char* FeatureStatusName(FeatureStatus s) {
  switch (s) {
    case FeatureStatus::kPresent:
      return "PRESENT";
    case FeatureStatus::kNotFound:
      return "NOT_FOUND";
    case FeatureStatus::kNullValue:
      return "NULL_VALUE";
    case FeatureStatus::kOutsideMaxAge:
      return "OUTSIDE_MAX_AGE";
  }
  return "UNKNOWN";
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(const ClientOptions& options) {
  if (options.coordinator_address.empty()) {
    return absl::InvalidArgumentError("client: empty coordinator address");
  }
  auto impl = std::make_unique<internal::ClientImpl>(options);
  if (absl::Status s = impl->Start(); !s.ok()) return s;
  return std::unique_ptr<Client>(std::move(impl));
}

namespace internal {
namespace {

// Early refreshes (a node reported a newer epoch) are spaced at least this far
// apart, so a coordinator that is down is not hammered once per response.
constexpr auto kMinRefreshGap = std::chrono::milliseconds(50);
constexpr int kMaxMessageBytes = 64 << 20;

}  // namespace

grpc::ChannelArguments ClientChannelArgs() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // Pings only while calls are in flight: gRPC servers by default answer
  // idle-time pings more often than every 5 minutes with GOAWAY.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  // Keep connections warm: never drop them for idleness, and reconnect fast
  // after a node restarts (gRPC's default backoff grows to two minutes).
  // GRPC_ARG_MIN_RECONNECT_BACKOFF_MS stays at its default: gRPC also uses it
  // as the minimum connect timeout, and 100 ms made connects fail whenever
  // the client process was busy for a moment.
  args.SetInt(GRPC_ARG_CLIENT_IDLE_TIMEOUT_MS, INT_MAX);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return args;
}

ClientImpl::ClientImpl(const ClientOptions& options) : options_(options) {
  // A restarted coordinator must be reached within a refresh or two: moves
  // it resumes flip partitions, and lookups refused by their old owners need
  // the new map (with the nodes' 2 s cap the chaos drill saw 5 s).
  grpc::ChannelArguments args = ClientChannelArgs();
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  auto channels = security::ChannelFactory::Create(options_.security);
  if (channels.ok()) {
    channels_ = *std::move(channels);
    if (options_.security.tls.enabled()) {
      channels_status_ = lean_pool_.ConfigureTls(channels_.ca_pem(), channels_.cert_pem(), channels_.key_pem());
    }
  } else {
    channels_status_ = channels.status();
  }
  coordinator_ = quiver::v1::CoordinatorService::NewStub(channels_.Make(options_.coordinator_address, args));
}

ClientImpl::~ClientImpl() {
  {
    absl::MutexLock l(&loop_mu_);
    stop_ = true;
    if (active_ctx_ != nullptr) active_ctx_->TryCancel();
    loop_cv_.SignalAll();
    round_cv_.SignalAll();
  }
  if (loop_.joinable()) loop_.join();
}

absl::Status ClientImpl::Start() {
  if (!channels_status_.ok()) return channels_status_;
  // Waits for the connection within the deadline: a coordinator that is
  // still starting should not fail the first fetch.
  if (absl::Status s = Fetch(/*wait_for_ready=*/true, SystemDeadline()); !s.ok()) return s;
  loop_ = std::thread([this] { RefreshLoop(); });
  return absl::OkStatus();
}

ClientImpl::Snapshot ClientImpl::Take() const {
  absl::ReaderMutexLock l(&state_mu_);
  return state_;
}

std::shared_ptr<const RegistryIndex> ClientImpl::registry() const { return Take().registry; }
std::shared_ptr<const ClusterMapView> ClientImpl::cluster_map() const { return Take().map; }

absl::Status ClientImpl::Refresh() { return Fetch(/*wait_for_ready=*/false, SystemDeadline()); }

std::chrono::system_clock::time_point ClientImpl::SystemDeadline() const {
  return std::chrono::system_clock::now() + options_.default_deadline;
}

absl::Status ClientImpl::CoordinatorCall(bool wait_for_ready, std::chrono::system_clock::time_point deadline,
                                         const std::function<grpc::Status(grpc::ClientContext*)>& rpc) {
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline);
  ctx.set_wait_for_ready(wait_for_ready);
  if (wait_for_ready) {
    absl::MutexLock l(&loop_mu_);
    if (stop_) return absl::CancelledError("client is shutting down");
    active_ctx_ = &ctx;
  }
  const grpc::Status s = rpc(&ctx);
  if (wait_for_ready) {
    absl::MutexLock l(&loop_mu_);
    if (active_ctx_ == &ctx) active_ctx_ = nullptr;
  }
  if (s.ok()) return absl::OkStatus();
  // The caller's token or permissions keep their code (not retryable);
  // anything else reads as the coordinator being unreachable.
  const bool refused = s.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
                       s.error_code() == grpc::StatusCode::PERMISSION_DENIED;
  return absl::Status(refused ? static_cast<absl::StatusCode>(s.error_code()) : absl::StatusCode::kUnavailable,
                      absl::StrCat("coordinator ", options_.coordinator_address, ": ", s.error_message(),
                                   " (grpc code ", static_cast<int>(s.error_code()), ")"));
}

absl::Status ClientImpl::Fetch(bool wait_for_ready, std::chrono::system_clock::time_point deadline) {
  const uint64_t seq = fetch_seq_.fetch_add(1) + 1;
  quiver::v1::ClusterMap map_proto;
  quiver::v1::Registry registry_proto;
  // known_epoch 0: always the full map, whatever the coordinator does with it.
  absl::Status s = CoordinatorCall(wait_for_ready, deadline, [&](grpc::ClientContext* ctx) {
    return coordinator_->GetClusterMap(ctx, quiver::v1::GetClusterMapRequest(), &map_proto);
  });
  if (!s.ok()) return s;
  s = CoordinatorCall(wait_for_ready, deadline, [&](grpc::ClientContext* ctx) {
    return coordinator_->GetRegistry(ctx, quiver::v1::GetRegistryRequest(), &registry_proto);
  });
  if (!s.ok()) return s;
  {
    // Unchanged (the usual case each second; the epoch and the registry
    // version grow with every change): keep the built snapshot, so the lookup
    // path's structures are not rebuilt and freed for nothing.
    absl::MutexLock l(&state_mu_);
    if (seq < installed_fetch_) return absl::OkStatus();  // a later fetch's answer is in
    if (state_.map != nullptr && state_.registry != nullptr &&
        state_.map->epoch() == map_proto.epoch() &&
        state_.registry->version() == registry_proto.version()) {
      installed_fetch_ = seq;
      return absl::OkStatus();
    }
  }
  auto map = ClusterMapView::Build(map_proto);
  if (!map.ok()) return map.status();
  auto registry = RegistryIndex::Build(std::move(registry_proto));
  if (!registry.ok()) return registry.status();
  auto map_ptr = std::make_shared<const ClusterMapView>(*std::move(map));
  WarmChannels(*map_ptr);
  absl::MutexLock l(&state_mu_);
  if (seq < installed_fetch_) return absl::OkStatus();
  installed_fetch_ = seq;
  if (state_.map == nullptr || state_.map->epoch() != map_ptr->epoch() ||
      state_.registry->version() != (*registry)->version()) {
    spdlog::debug("client: cluster map epoch {}, registry version {}", map_ptr->epoch(),
                  (*registry)->version());
  }
  state_.map = std::move(map_ptr);
  state_.registry = *std::move(registry);
  return absl::OkStatus();
}

void ClientImpl::RefreshLoop() {
  loop_mu_.Lock();
  while (!stop_) {
    if (!refresh_requested_) {
      loop_cv_.WaitWithTimeout(&loop_mu_, absl::FromChrono(options_.refresh_interval));
    }
    if (stop_) break;
    refresh_requested_ = false;
    const uint64_t round = ++rounds_begun_;
    loop_mu_.Unlock();
    // wait_for_ready, so that this thread waits through a reconnect: with
    // gRPC's synchronous API a channel's connection attempts make progress
    // only while some thread waits on a call of that process (or in gRPC's
    // backup poller, every 5 s), and pick_first keeps a channel whose
    // connection failed in TRANSIENT_FAILURE, where fail-fast calls fail at
    // once without waiting. Fail-fast refreshes alone left a client unable
    // to reach a restarted coordinator for 10 s and more when no other gRPC
    // call of its process was waiting (lookups over the lean port).
    const absl::Status s = Fetch(/*wait_for_ready=*/true, SystemDeadline());
    loop_mu_.Lock();
    rounds_done_ = round;
    last_round_ = s;
    round_cv_.SignalAll();
    if (s.ok() != coordinator_ok_) {
      coordinator_ok_ = s.ok();
      if (s.ok()) {
        spdlog::info("client: coordinator reachable again");
      } else {
        spdlog::warn("client: refresh failed, serving from the cached map: {}", s.ToString());
      }
    }
    // Space refreshes out; a stop still wakes us at once.
    const auto until = absl::Now() + absl::FromChrono(kMinRefreshGap);
    while (!stop_ && absl::Now() < until) loop_cv_.WaitWithDeadline(&loop_mu_, until);
  }
  loop_mu_.Unlock();
}

absl::Status ClientImpl::AwaitFetch(Clock::time_point deadline) {
  if (!loop_.joinable()) return Refresh();  // not started: no refresh thread to wait for
  absl::MutexLock l(&loop_mu_);
  const uint64_t want = rounds_begun_ + 1;  // a round that begins after this call
  refresh_requested_ = true;
  loop_cv_.Signal();
  while (!stop_ && rounds_done_ < want) {
    const auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) break;
    round_cv_.WaitWithTimeout(&loop_mu_, absl::FromChrono(left));
  }
  if (rounds_done_ >= want) return last_round_;
  if (stop_) return absl::CancelledError("client is shutting down");
  return absl::DeadlineExceededError("no fresh cluster map within the deadline");
}

void ClientImpl::NoteEpoch(uint64_t epoch) {
  {
    absl::ReaderMutexLock l(&state_mu_);
    if (state_.map != nullptr && epoch <= state_.map->epoch()) return;
  }
  absl::MutexLock l(&loop_mu_);
  if (!refresh_requested_) {
    spdlog::debug("client: node reports epoch {}, refreshing", epoch);
    refresh_requested_ = true;
    loop_cv_.Signal();
  }
}

std::shared_ptr<quiver::v1::NodeService::Stub> ClientImpl::StubFor(const std::string& address) {
  {
    absl::ReaderMutexLock l(&channels_mu_);
    auto it = stubs_.find(address);
    if (it != stubs_.end()) return it->second;
  }
  auto channel = channels_.Make(address, ClientChannelArgs());
  channel->GetState(/*try_to_connect=*/true);
  std::shared_ptr<quiver::v1::NodeService::Stub> stub = quiver::v1::NodeService::NewStub(channel);
  absl::MutexLock l(&channels_mu_);
  return stubs_.emplace(address, std::move(stub)).first->second;
}

void ClientImpl::WarmChannels(const ClusterMapView& map) {
  for (const auto& node : map.nodes()) {
    if (!node.address().empty()) StubFor(node.address());
  }
  // Drop channels of addresses that left the map; calls in flight hold theirs.
  absl::MutexLock l(&channels_mu_);
  for (auto it = stubs_.begin(); it != stubs_.end();) {
    const bool known = std::any_of(map.nodes().begin(), map.nodes().end(),
                                   [&](const auto& n) { return n.address() == it->first; });
    it = known ? std::next(it) : stubs_.erase(it);
  }
}

}  // namespace internal
}  // namespace quiver::client
