// Streamer: the receiving side of partition moves (docs/architecture.md,
// "Rebalancing and epoch fencing", "Streaming"). The coordinator lists, in
// every heartbeat response, the streams this node must run (StreamTask: one
// partition copied from one source); the node hands the list to SetTasks and
// reports Reports() in its next heartbeat.
//
// A stream pages every online view of the registry through
// ScanPartitions{view, [partition, partition + 1), after, max_bytes, epoch}
// on the source and merges each page here last-writer-wins (the merge
// function: RequestHandler::MergeStreamed → RowStore::MergeRaw), so a newer
// row double-written to this node meanwhile stays. Pages are throttled by a
// token bucket on bytes (--stream-mb-per-s). A failed page is retried from
// the last merged key after a backoff (100 ms doubling to 2 s), refreshing
// the node's map first when the source answered kAborted (stale map); LWW
// makes a re-copy harmless. A newer attempt of the same move starts over; a
// stream no longer listed is dropped (cancelled between pages).
//
// Thread-safety: every method is thread-safe. Streams run one at a time on
// the background thread Start() launches (or, in tests, in the thread that
// calls RunPending()).
#ifndef QUIVER_NODE_STREAMER_H_
#define QUIVER_NODE_STREAMER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "quiver.pb.h"
#include "quiver/client/registry_index.h"
#include "quiver/node/repair.h"
#include "quiver/storage/row_store.h"

namespace quiver::node {

struct NodeMetrics;

// A token bucket on bytes: `bytes_per_s` refill, at most `burst_bytes`
// banked. A page is taken whole (the balance may go negative); the next one
// waits until the balance is back to zero.
// Thread-safety: not thread-safe (the Streamer guards its own).
class TokenBucket {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  // `bytes_per_s` 0: unlimited (Delay() is always 0).
  explicit TokenBucket(double bytes_per_s, double burst_bytes, Clock clock = {});
  // Takes `bytes` from the balance.
  void Consume(uint64_t bytes);
  // How long until the balance is not negative; 0 when it is not now.
  std::chrono::nanoseconds Delay();

 private:
  void Refill();
  double rate_;   // bytes per second; 0: unlimited
  double burst_;  // bytes
  double balance_;
  Clock clock_;
  std::chrono::steady_clock::time_point last_;
};

// Merges one page of `partition` of `view` (row keys RowStore::RowKey).
// Errors: whatever the merge returned (kAborted: the node no longer
// receives the partition).
using StreamMergeFn = std::function<absl::Status(
    std::string_view view, uint32_t partition, std::span<const storage::RawRow> rows)>;

struct StreamerOptions {
  // Throttle. unit: MiB per second; 0 means unlimited.
  uint32_t mb_per_s = 200;
  // Streams run at once (one thread each): a stream fetches a page, then
  // merges it, strictly in turn, so one stream leaves the source idle while
  // it merges and itself idle while the source scans. The throttle is
  // shared. At least 1.
  int threads = 2;
  // The streams' threads run at this nice value (setpriority(2) on each
  // thread; Linux schedules threads apart), so that lookups, which run at
  // the process's priority, win the CPU while partitions move: the same
  // split as ScyllaDB's scheduling groups for streaming against queries. 0
  // leaves them at the process's. A value the process may not set (below
  // its own without CAP_SYS_NICE) is logged and ignored.
  int nice = 10;
  // ScanPartitionsRequest.max_bytes of each page. unit: bytes.
  uint64_t page_bytes = 1u << 20;
  // Retry of a failed page: from min_backoff, doubling, up to max_backoff.
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{2000};
  // Reads one page from the source (gRPC in the node, a fake in tests). Required.
  ScanPartitionsFn scan;
  // Merges one page here. Required.
  StreamMergeFn merge;
  // The registry whose online views are streamed (read when an attempt
  // starts); null while none is known (the attempt fails and is retried).
  std::function<std::shared_ptr<const client::RegistryIndex>()> registry;
  // The node's map epoch, stamped on every page request. Required.
  std::function<uint64_t()> epoch;
  // Called when the source refused a page as stale (kAborted): the node
  // refreshes its map before the retry. May be empty.
  std::function<void()> refresh_map;
  // Clock of the throttle (tests inject one); empty: steady_clock.
  TokenBucket::Clock clock;
  NodeMetrics* metrics = nullptr;  // may be null
};

class Streamer {
 public:
  explicit Streamer(StreamerOptions options);
  // Stops the threads (Stop()).
  ~Streamer();
  Streamer(const Streamer&) = delete;
  Streamer& operator=(const Streamer&) = delete;

  // Starts the options.threads background threads that run the streams.
  // Call once.
  void Start();
  // Cancels every stream and joins the threads; a page in flight finishes
  // first (it blocks on the source's answer). Idempotent.
  void Stop();

  // The full current list of this node's streams (HeartbeatResponse.streams).
  // A stream not known starts; one with a newer attempt than the known one
  // starts over (the old attempt is cancelled); an older attempt is ignored;
  // known streams not listed are cancelled and forgotten. Does not block on
  // a running stream.
  void SetTasks(std::span<const quiver::v1::StreamTask> tasks);

  // One report per known stream (done, rows and bytes merged in its current
  // attempt, the last error; empty once it succeeded), by move id.
  std::vector<quiver::v1::StreamReport> Reports() const;

  // Runs every known stream that is neither done nor running, in the calling
  // thread, each until it is done or its first failed page (no backoff
  // wait; throttle waits still apply). For tests; do not mix with Start().
  void RunPending();

 private:
  struct Task;
  // Copies the stream from where it stopped. Errors: the failed page's or
  // merge's error, kCancelled.
  absl::Status Run(Task& task);
  // Records the outcome of one Run; needs mu_.
  void Finish(Task& task, const absl::Status& status);
  // Waits (cancellable) for the throttle; false when cancelled or stopping.
  bool Throttle(const Task& task);
  void Loop();
  void UpdateGauge();  // needs mu_

  StreamerOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;           // SetTasks, Stop, a stream's end
  std::map<uint64_t, std::shared_ptr<Task>> tasks_;  // by move id; guarded by mu_
  TokenBucket bucket_;                   // guarded by mu_
  bool stopping_ = false;                // guarded by mu_
  std::vector<std::thread> threads_;      // guarded by mu_
};

}  // namespace quiver::node

#endif  // QUIVER_NODE_STREAMER_H_
