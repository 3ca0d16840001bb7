// ClientImpl: the one implementation of quiver::client::Client. Private.
//
// Layout: client.cc holds creation, the refresh thread and the channel pool;
// client_read.cc the lookup path; client_write.cc the write path.
//
// Thread-safety: every public method may be called concurrently. The map and
// the registry are immutable snapshots swapped as shared_ptr<const> under
// state_mu_; a call takes one snapshot of both and uses it throughout.
#ifndef QUIVER_CLIENT_SRC_CLIENT_IMPL_H_
#define QUIVER_CLIENT_SRC_CLIENT_IMPL_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "quiver.grpc.pb.h"
#include "circuit_breaker.h"
#include "hedger.h"
#include "lean_fanout.h"
#include "quiver/client/client.h"

namespace quiver::client::internal {

using Clock = std::chrono::steady_clock;

// now + `timeout`, with the timeout clamped to a day so that a huge
// caller-supplied deadline cannot overflow the clock.
inline Clock::time_point DeadlineAfter(std::chrono::milliseconds timeout) {
  return Clock::now() + std::min<std::chrono::milliseconds>(timeout, std::chrono::hours(24));
}

// Channel arguments shared by every channel the client opens.
grpc::ChannelArguments ClientChannelArgs();

class ClientImpl final : public Client {
 public:
  explicit ClientImpl(const ClientOptions& options);
  ~ClientImpl() override;

  // Fetches the first map and registry, then starts the refresh thread.
  absl::Status Start();

  absl::StatusOr<OnlineResponse> GetOnlineFeatures(const OnlineRequest& request) override;
  absl::Status Push(const std::string& view, const std::vector<WriteRowInput>& rows,
                    const WriteOptions& options) override;
  absl::Status WriteEncoded(const std::string& view, uint32_t schema_version,
                            const std::vector<EncodedRow>& rows,
                            const WriteOptions& options) override;
  absl::Status FinishIngest(const std::string& session, bool commit) override;
  std::shared_ptr<const RegistryIndex> registry() const override;
  std::shared_ptr<const ClusterMapView> cluster_map() const override;
  absl::Status Refresh() override;

 private:
  struct Snapshot {
    std::shared_ptr<const RegistryIndex> registry;
    std::shared_ptr<const ClusterMapView> map;
  };
  Snapshot Take() const;

  // The stub for a node's address, creating (and warming) its channel once.
  std::shared_ptr<quiver::v1::NodeService::Stub> StubFor(const std::string& address);
  void WarmChannels(const ClusterMapView& map);

  // A node answered with `epoch`; wakes the refresh thread if it is newer.
  void NoteEpoch(uint64_t epoch);
  void RefreshLoop();
  // A node refused rows as routed by a stale map: wakes the refresh thread
  // and waits until a fetch it started after this call has finished, or
  // until `deadline`. Returns that fetch's status (kDeadlineExceeded when
  // none finished in time, kCancelled when the client is shutting down).
  // Concurrent callers share one fetch. Thread-safe.
  absl::Status AwaitFetch(Clock::time_point deadline);
  // One map + registry fetch within `deadline`; wait_for_ready waits through
  // a connection being (re-)established, otherwise a coordinator that is not
  // connected fails fast. Concurrent fetches install in the order they began.
  absl::Status Fetch(bool wait_for_ready, std::chrono::system_clock::time_point deadline);
  // Now + options_.default_deadline, for coordinator calls.
  std::chrono::system_clock::time_point SystemDeadline() const;
  // Runs one coordinator RPC; a wait_for_ready one is cancellable by the
  // destructor (a fail-fast one ends on its own).
  absl::Status CoordinatorCall(bool wait_for_ready, std::chrono::system_clock::time_point deadline,
                               const std::function<grpc::Status(grpc::ClientContext*)>& rpc);

  // Nodes whose circuit is open (circuit_breaker.h) are tried after the
  // others, so a hung node costs one attempt timeout, not one per call.
  std::vector<uint32_t> SuspectNodes() const { return breaker_.Open(Clock::now()); }

  // One lookup over `snap`; sets *stale when a node refused rows as routed
  // by a stale map.
  absl::StatusOr<OnlineResponse> Lookup(const OnlineRequest& request, const Snapshot& snap,
                                        Clock::time_point deadline, bool* stale);
  // Lookup of a request with on-demand features (client_on_demand.cc): one
  // Lookup of the stored features and the sources they read, then each
  // on-demand feature evaluated per row.
  absl::StatusOr<OnlineResponse> LookupOnDemand(const OnlineRequest& request,
                                                const std::vector<ResolvedFeature>& resolved,
                                                const Snapshot& snap, Clock::time_point deadline,
                                                bool* stale);

  absl::Status WriteRows(const Snapshot& snap, const std::string& view, uint32_t schema_version,
                         const std::vector<EncodedRow>& rows, const WriteOptions& options);

  // Tells the coordinator that `node` failed a write other replicas took
  // (ReportMissedWrites RPC), so it repairs (again) after the write. Every
  // report is sent: the coordinator makes no new recovery while the node's
  // current one has not started copying (it will see the write anyway), so
  // a burst of reports costs at most one more repair per barrier. Blocks for
  // at most kMissedWriteReportDeadline. Returns false when the report could
  // not be delivered (logged).
  bool ReportMissedWrites(uint32_t node, const std::string& error);
  static constexpr std::chrono::milliseconds kMissedWriteReportDeadline{300};

  const ClientOptions options_;
  // TLS and the token of every channel; Start fails with `channels_status_`.
  security::ChannelFactory channels_;
  absl::Status channels_status_;
  std::unique_ptr<quiver::v1::CoordinatorService::Stub> coordinator_;

  mutable absl::Mutex state_mu_;
  Snapshot state_ ABSL_GUARDED_BY(state_mu_);
  // Fetches are numbered as they begin; one installs its answer only if no
  // later-begun fetch has installed one (installed_fetch_).
  std::atomic<uint64_t> fetch_seq_{0};
  uint64_t installed_fetch_ ABSL_GUARDED_BY(state_mu_) = 0;

  absl::Mutex channels_mu_;
  std::unordered_map<std::string, std::shared_ptr<quiver::v1::NodeService::Stub>> stubs_
      ABSL_GUARDED_BY(channels_mu_);

  LeanConnectionPool lean_pool_{options_.security.token};
  Hedger hedger_;

  // Rows each node acknowledged per open ingest session (FinishIngest).
  absl::Mutex ingest_mu_;
  std::unordered_map<std::string, std::unordered_map<uint32_t, uint64_t>> ingest_acks_
      ABSL_GUARDED_BY(ingest_mu_);
  // Nodes that failed rows of an open ingest session that others took: they
  // are reported once the session is committed (a report before the commit
  // could start their repair before the rows are visible on the peers).
  std::unordered_map<std::string, std::vector<std::pair<uint32_t, std::string>>> ingest_missed_
      ABSL_GUARDED_BY(ingest_mu_);

  CircuitBreaker breaker_;


  absl::Mutex loop_mu_;
  absl::CondVar loop_cv_;
  bool stop_ ABSL_GUARDED_BY(loop_mu_) = false;
  bool refresh_requested_ ABSL_GUARDED_BY(loop_mu_) = false;
  bool coordinator_ok_ ABSL_GUARDED_BY(loop_mu_) = true;
  grpc::ClientContext* active_ctx_ ABSL_GUARDED_BY(loop_mu_) = nullptr;
  // The refresh thread's rounds begun and finished, and the last one's
  // status (AwaitFetch); round_cv_ signals each finish.
  uint64_t rounds_begun_ ABSL_GUARDED_BY(loop_mu_) = 0;
  uint64_t rounds_done_ ABSL_GUARDED_BY(loop_mu_) = 0;
  absl::Status last_round_ ABSL_GUARDED_BY(loop_mu_);
  absl::CondVar round_cv_;
  std::thread loop_;
};

}  // namespace quiver::client::internal

#endif  // QUIVER_CLIENT_SRC_CLIENT_IMPL_H_
