// Hedged reads (Dean and Barroso, "The Tail at Scale", CACM 2013): a lookup
// still running after its replica's recent p95 latency is sent to the next
// replica too, and the first answer wins. The Hedger keeps each node's
// recent latencies and a budget that caps hedges at ~10% of calls, so a slow
// cluster is not loaded twice over.
//
// A node whose call is still running at its hedge time is also marked slow
// for kSlowFor: new lookups try its peers first, so a stalled node (a GC
// pause, a stopped process, a saturated disk) costs one hedge delay per
// kSlowFor instead of one per lookup routed to it, and needs no budget.
// Per-node p95s alone cannot do that: a node stalled part of the time pushes
// its own p95, and with it its hedge delay, up to the stall's length.
// Private to quiver::client.
//
// Thread-safety: all methods are thread-safe (one mutex; O(window) work).
#ifndef QUIVER_CLIENT_SRC_HEDGER_H_
#define QUIVER_CLIENT_SRC_HEDGER_H_

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace quiver::client::internal {

class Hedger {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kWindow = 64;      // latencies kept per node
  static constexpr size_t kMinSamples = 16;  // below this, never hedge
  static constexpr double kBudgetPerCall = 0.1;
  static constexpr double kMaxTokens = 20;
  // A hedge never fires sooner than this. Below it, slowness is usually the
  // whole machine's (CPU queueing, measured with bench/lookup --hedge on|off),
  // where a second request only adds load. unit: µs
  static constexpr int64_t kFloorUs = 1000;
  // How long a node that overran its hedge delay is tried after its peers.
  // Long enough to outlast a stall of tens of ms; short enough that a node
  // marked by a blip of the whole machine soon gets its share back.
  static constexpr Clock::duration kSlowFor = std::chrono::milliseconds(250);

  void Record(uint32_t node, Clock::duration latency) {
    absl::MutexLock lock(&mu_);
    Window& w = windows_[node];
    w.us[w.next] = std::chrono::duration_cast<std::chrono::microseconds>(latency).count();
    w.next = (w.next + 1) % kWindow;
    w.count = std::min(w.count + 1, kWindow);
    w.dirty = true;
  }

  // The node's recent p95 (at least kFloorUs), or max() without enough samples.
  Clock::duration HedgeAfter(uint32_t node) {
    absl::MutexLock lock(&mu_);
    auto it = windows_.find(node);
    if (it == windows_.end() || it->second.count < kMinSamples) return Clock::duration::max();
    Window& w = it->second;
    if (w.dirty) {
      std::array<int64_t, kWindow> sorted = w.us;
      const size_t k = w.count * 95 / 100;
      std::nth_element(sorted.begin(), sorted.begin() + k, sorted.begin() + w.count);
      w.p95_us = std::max<int64_t>(sorted[k], kFloorUs);
      w.dirty = false;
    }
    return std::chrono::microseconds(w.p95_us);
  }

  // Each call earns kBudgetPerCall hedges.
  void NoteCall() {
    absl::MutexLock lock(&mu_);
    tokens_ = std::min(kMaxTokens, tokens_ + kBudgetPerCall);
  }

  bool TakeHedge() {
    absl::MutexLock lock(&mu_);
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    ++hedges_;
    return true;
  }

  // A call to `node` was still running at its hedge time, `now`.
  void NoteSlow(uint32_t node, Clock::time_point now) {
    absl::MutexLock lock(&mu_);
    slow_until_[node] = now + kSlowFor;
  }

  // Nodes marked slow at `now` (to be tried after their peers), the one
  // whose mark ends first (that overran longest ago) first.
  std::vector<uint32_t> Slow(Clock::time_point now) {
    std::vector<std::pair<Clock::time_point, uint32_t>> marks;
    {
      absl::MutexLock lock(&mu_);
      if (slow_until_.empty()) return {};
      for (auto it = slow_until_.begin(); it != slow_until_.end();) {
        if (it->second <= now) {
          it = slow_until_.erase(it);
        } else {
          marks.emplace_back(it->second, it->first);
          ++it;
        }
      }
    }
    std::sort(marks.begin(), marks.end());
    std::vector<uint32_t> out;
    out.reserve(marks.size());
    for (const auto& [until, node] : marks) out.push_back(node);
    return out;
  }

  uint64_t hedges() {
    absl::MutexLock lock(&mu_);
    return hedges_;
  }

 private:
  struct Window {
    std::array<int64_t, kWindow> us{};
    size_t next = 0;
    size_t count = 0;
    bool dirty = false;
    int64_t p95_us = 0;
  };
  absl::Mutex mu_;
  std::unordered_map<uint32_t, Window> windows_;
  std::unordered_map<uint32_t, Clock::time_point> slow_until_;
  double tokens_ = 0;
  uint64_t hedges_ = 0;
};

}  // namespace quiver::client::internal

#endif  // QUIVER_CLIENT_SRC_HEDGER_H_
