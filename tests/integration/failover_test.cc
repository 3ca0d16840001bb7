// With replication factor 2, killing any one node (kill -9) leaves every
// lookup answering correctly within its deadline: the client fails over to
// the partition's other replica at once, without waiting for the coordinator.
#include <gtest/gtest.h>

#include <chrono>

#include "flights_util.h"
#include "harness.h"

namespace quiver::testing {
namespace {


TEST(Failover, KillingAnyOneNodeLeavesEveryLookupCorrect) {
  FlightsDataDir();
  auto cluster = LocalCluster::Up(3, 2);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_EQ((*cluster)->Ctl({"apply", SourceDir() + "/examples/flights"}).exit_code, 0);
  const int64_t end_us = NowMicros() / 1000000 * 1000000;
  auto mat = (*cluster)->Ctl({"materialize", "2000-01-01T00:00:00Z", FormatTimestamp(end_us)});
  ASSERT_EQ(mat.exit_code, 0) << mat.err;

  auto client = (*cluster)->Connect();
  ASSERT_TRUE(client.ok()) << client.status();

  constexpr int kDeadlineMs = 500;
  for (int victim = 1; victim <= 3; ++victim) {
    SCOPED_TRACE("killed node " + std::to_string(victim));
    ASSERT_TRUE((*cluster)->KillNode(victim));
    // Right after the kill: the coordinator has not noticed yet.
    for (const auto& view : FlightsViews()) {
      const auto t0 = std::chrono::steady_clock::now();
      const ViewCheck c = CheckViewAgainstDuckDb(**client, view, kFlightsStartUs, end_us,
                                                 /*batch=*/20, kDeadlineMs);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      EXPECT_EQ(c.failed_lookups, 0) << view.name << ": " << c.first_mismatch;
      EXPECT_EQ(c.mismatches, 0) << view.name << ": " << c.first_mismatch;
      std::cout << "node " << victim << " killed: " << view.name << " " << c.keys
                << " keys correct in " << s << " s\n";
    }
    // Single-entity lookups, as inference makes them, each within its deadline.
    for (const char* origin : {"ORD", "ATL", "DFW", "LAX", "SFO", "DEN", "PHX", "LAS"}) {
      client::OnlineRequest req;
      req.feature_service = "delay_model_v1";
      req.entity_rows = {{{"origin", Value::String(origin)}, {"destination", Value::String("SEA")}}};
      req.deadline = std::chrono::milliseconds(kDeadlineMs);
      const auto t0 = std::chrono::steady_clock::now();
      auto resp = (*client)->GetOnlineFeatures(req);
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - t0).count();
      EXPECT_TRUE(resp.ok()) << origin << ": " << resp.status();
      EXPECT_LE(ms, kDeadlineMs);
    }
    absl::Status started = (*cluster)->StartNode(victim);  // waits until all are UP
    ASSERT_TRUE(started.ok()) << started;
  }
}

}  // namespace
}  // namespace quiver::testing
