// Shared pieces of the coordinator tests: a manual clock and Coordinator setup.
#ifndef QUIVER_TESTS_UNIT_COORDINATOR_COORDINATOR_TEST_UTIL_H_
#define QUIVER_TESTS_UNIT_COORDINATOR_COORDINATOR_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>

#include "quiver/coordinator/coordinator.h"

namespace quiver::coordinator::testing {

// unit: µs since the epoch; starts at 2001-01-01 so TTL arithmetic stays positive.
class ManualClock {
 public:
  int64_t Now() const { return now_.load(); }
  void Advance(int64_t us) { now_ += us; }
  std::function<int64_t()> AsFunction() {
    return [this] { return Now(); };
  }

 private:
  std::atomic<int64_t> now_{978'307'200'000'000};
};

inline CoordinatorOptions TestOptions(const std::string& dir, ManualClock& clock) {
  CoordinatorOptions o;
  o.data_dir = dir;
  o.num_partitions = 64;
  o.replication_factor = 3;
  o.heartbeat_timeout_us = 2'000'000;
  o.lease_us = 30'000'000;
  o.clock = clock.AsFunction();
  return o;
}

inline std::unique_ptr<Coordinator> MustOpen(const CoordinatorOptions& o) {
  auto c = Coordinator::Open(o);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::move(*c) : nullptr;
}

inline uint32_t MustRegister(Coordinator& c, const std::string& address, uint32_t id = 0) {
  quiver::v1::RegisterRequest req;
  req.set_node_id(id);
  req.set_address(address);
  auto r = c.Register(req);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->node_id() : 0;
}

}  // namespace quiver::coordinator::testing

#endif  // QUIVER_TESTS_UNIT_COORDINATOR_COORDINATOR_TEST_UTIL_H_
