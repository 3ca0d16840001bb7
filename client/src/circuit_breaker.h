// Circuit breaking for reads (Nygard, "Release It!", the Circuit Breaker
// pattern): a node whose calls keep failing (an error, a timeout, a refused
// connection) is tried after the other replicas for a cool-down that doubles
// with each consecutive failure (1 s, 2 s, 4 s ... at most 30 s). When the
// cool-down ends the node is tried again (half-open); one success closes the
// circuit and resets the count, one failure opens it for twice as long.
// A lookup whose only replicas are open still tries them: a breaker decides
// order, never availability. Writes go to every replica regardless (they
// need their quorum). Private to quiver::client.
//
// Thread-safety: all methods are thread-safe (one mutex).
#ifndef QUIVER_CLIENT_SRC_CIRCUIT_BREAKER_H_
#define QUIVER_CLIENT_SRC_CIRCUIT_BREAKER_H_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace quiver::client::internal {

class CircuitBreaker {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr Clock::duration kBaseOpen = std::chrono::seconds(1);
  static constexpr Clock::duration kMaxOpen = std::chrono::seconds(30);

  // A call to `node` failed at `now`: opens (or re-opens) its circuit.
  void Failure(uint32_t node, Clock::time_point now) {
    absl::MutexLock l(&mu_);
    State& s = nodes_[node];
    s.failures = std::min(s.failures + 1, 30);
    Clock::duration open = kBaseOpen;
    for (int i = 1; i < s.failures && open < kMaxOpen; ++i) open *= 2;
    s.open_until = now + std::min(open, kMaxOpen);
  }

  // A call to `node` succeeded: closes its circuit.
  void Success(uint32_t node) {
    absl::MutexLock l(&mu_);
    nodes_.erase(node);
  }

  // Nodes whose circuit is open at `now` (to be tried last).
  std::vector<uint32_t> Open(Clock::time_point now) const {
    std::vector<uint32_t> out;
    absl::MutexLock l(&mu_);
    for (const auto& [node, s] : nodes_) {
      if (s.open_until > now) out.push_back(node);
    }
    return out;
  }

  // Consecutive failures of `node` (0 when closed).
  int failures(uint32_t node) const {
    absl::MutexLock l(&mu_);
    auto it = nodes_.find(node);
    return it == nodes_.end() ? 0 : it->second.failures;
  }

 private:
  struct State {
    int failures = 0;
    Clock::time_point open_until;
  };
  mutable absl::Mutex mu_;
  std::unordered_map<uint32_t, State> nodes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace quiver::client::internal

#endif  // QUIVER_CLIENT_SRC_CIRCUIT_BREAKER_H_
