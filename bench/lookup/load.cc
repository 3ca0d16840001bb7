#include "load.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

namespace quiver::bench {
namespace {

using Clock = std::chrono::steady_clock;

int64_t Micros(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

// Shared bookkeeping of one run: per-worker samples, merged at the end.
class Recorder {
 public:
  explicit Recorder(int threads) : samples_(threads) {}

  void Record(int worker, int64_t us) { samples_[worker].push_back(us); }

  void Error(const absl::Status& s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (result_.errors++ == 0) result_.first_error = s.ToString();
  }

  LoadResult Finish(double seconds) {
    for (auto& s : samples_) {
      result_.latencies_us.insert(result_.latencies_us.end(), s.begin(), s.end());
    }
    std::sort(result_.latencies_us.begin(), result_.latencies_us.end());
    result_.seconds = seconds;
    return std::move(result_);
  }

 private:
  std::vector<std::vector<int64_t>> samples_;
  std::mutex mu_;
  LoadResult result_;
};

}  // namespace

int64_t LoadResult::Percentile(double p) const {
  if (latencies_us.empty()) return 0;
  const size_t i = std::min(latencies_us.size() - 1, static_cast<size_t>(p * latencies_us.size()));
  return latencies_us[i];
}

LoadResult RunClosedLoop(int threads, std::chrono::milliseconds warmup,
                         std::chrono::milliseconds duration, const CallFn& call) {
  Recorder recorder(threads);
  std::atomic<uint64_t> seq{0};
  const auto start = Clock::now() + warmup;
  const auto end = start + duration;
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      for (;;) {
        const auto t0 = Clock::now();
        if (t0 >= end) break;
        absl::Status s = call(w, seq.fetch_add(1, std::memory_order_relaxed));
        const auto t1 = Clock::now();
        if (t0 < start) continue;
        if (!s.ok()) recorder.Error(s);
        recorder.Record(w, Micros(t1 - t0));
      }
    });
  }
  for (auto& t : workers) t.join();
  return recorder.Finish(std::chrono::duration<double>(duration).count());
}

LoadResult RunOpenLoop(int threads, double rate_per_s, std::chrono::milliseconds warmup,
                       std::chrono::milliseconds duration, const CallFn& call) {
  Recorder recorder(threads);
  std::atomic<uint64_t> slot{0};
  const auto t0 = Clock::now();
  const auto start = t0 + warmup;
  const auto end = start + duration;
  const double interval_ns = 1e9 / rate_per_s;
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      for (;;) {
        const uint64_t k = slot.fetch_add(1, std::memory_order_relaxed);
        const auto intended =
            t0 + std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(k) * interval_ns));
        if (intended >= end) break;
        std::this_thread::sleep_until(intended);
        absl::Status s = call(w, k);
        const auto done = Clock::now();
        if (intended < start) continue;
        if (!s.ok()) recorder.Error(s);
        recorder.Record(w, Micros(done - intended));
      }
    });
  }
  for (auto& t : workers) t.join();
  // Calls scheduled in the window that finished after it still count: the
  // window is the offered one.
  return recorder.Finish(std::chrono::duration<double>(duration).count());
}

}  // namespace quiver::bench
