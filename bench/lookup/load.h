// Load generators of the lookup benchmark: closed loop and open loop.
//
// Closed loop: `threads` workers each issue calls back to back; latency is
// measured around each call. Open loop: calls are scheduled at a fixed offered
// rate (call k at t0 + k / rate), workers take the next slot, sleep until it
// and record latency from the INTENDED start, so a system that falls behind
// is charged for the queueing it causes (no coordinated omission; the method
// of Gil Tene's HdrHistogram / wrk2). Every latency is kept (exact
// percentiles; a 10 s run at 100k calls/s is 8 MB).
//
// Thread-safety: each Run* call is self-contained; `call` is invoked
// concurrently from `threads` threads, with the worker index as first argument.
#ifndef QUIVER_BENCH_LOOKUP_LOAD_H_
#define QUIVER_BENCH_LOOKUP_LOAD_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace quiver::bench {

// One call of the system under test: worker index, global call sequence number.
using CallFn = std::function<absl::Status(int worker, uint64_t seq)>;

struct LoadResult {
  std::vector<int64_t> latencies_us;  // sorted ascending; measured calls only
  double seconds = 0;                 // measured wall time. unit: seconds
  int64_t errors = 0;
  std::string first_error;

  // p in [0, 1]; 0 for an empty result. unit: µs
  int64_t Percentile(double p) const;
  double CallsPerSecond() const { return seconds > 0 ? latencies_us.size() / seconds : 0; }
};

// Runs `warmup` of unmeasured calls, then measures for `duration`.
LoadResult RunClosedLoop(int threads, std::chrono::milliseconds warmup,
                         std::chrono::milliseconds duration, const CallFn& call);

// Offers `rate_per_s` calls per second for `duration` (after `warmup` at the
// same rate), from `threads` workers. Calls that start late are recorded
// from their intended start time.
LoadResult RunOpenLoop(int threads, double rate_per_s, std::chrono::milliseconds warmup,
                       std::chrono::milliseconds duration, const CallFn& call);

}  // namespace quiver::bench

#endif  // QUIVER_BENCH_LOOKUP_LOAD_H_
